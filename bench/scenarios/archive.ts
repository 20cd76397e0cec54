/**
 * Issue 11's row: 1 GiB across an air gap and back, registry → oci-archive → registry, next to
 * skopeo doing the same through `oci-archive:`. Both stream the archive (no extraction for ours;
 * skopeo unpacks into a temporary directory when reading one), so wall time and peak RSS are what
 * this row holds each tool to.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PEAK_RSS, WALL } from './metrics.js';
import { bigShape, pushFresh, TLS_OFF } from './shapes.js';
import type { Measurement, MetricDef, Scenario } from './types.js';

const WALL_TO: MetricDef = { key: 'wall_to_s', label: 'registry → archive', format: (v) => `${v.toFixed(2)} s` };
const WALL_FROM: MetricDef = { key: 'wall_from_s', label: 'archive → registry', format: (v) => `${v.toFixed(2)} s` };
const PEAK_RSS_BOTH: MetricDef = { ...PEAK_RSS, label: 'peak RSS (either way)' };

export const archiveRoundTrip: Scenario = {
  name: 'archive',
  title: '1 GiB (8×128 MiB) to an oci-archive and back',
  tools: ['ours', 'skopeo'],
  metrics: [{ ...WALL, label: 'wall time (both ways)' }, WALL_TO, WALL_FROM, PEAK_RSS_BOTH],
  method:
    'The big row\'s random 1 GiB image on A (pushed once per bench run); each run writes it to a new ' +
    'oci-archive file and imports that file into a fresh registry B. Ours: `image-mirror sync` with one ' +
    'ImageMirror A/arc/app:1 → oci-archive:FILE, then one oci-archive:FILE → B/arc/app; skopeo: `skopeo copy ' +
    '--preserve-digests docker://A/arc/app:1 oci-archive:FILE:1`, then `oci-archive:FILE:1 docker://B/arc/app:1`. ' +
    'Wall times are summed; peak RSS is the larger of the two processes.',
  async prepare(ctx) {
    const A = ctx.registryA;
    const shape = bigShape(ctx);
    ctx.progress(`archive: pushing ${shape.layers} × ${shape.layerSize / (1 << 20)} MiB of random data (once)`);
    const src = 'arc/app';
    await pushFresh(ctx, src, shape);
    const sources = [{ registry: A.host, repo: src }];
    return {
      async run(tool, i) {
        const B = await ctx.freshRegistry();
        const file = join(ctx.work, `archive-${tool}-${i}.tar`);
        try {
          let to: Measurement;
          let from: Measurement;
          if (tool === 'ours') {
            to = await ctx.runOurs([{ name: `arc-to-${i}`, source: { repository: `${A.host}/${src}`, tags: ['1'] }, targets: [{ repository: `oci-archive:${file}` }] }], [A], sources);
            from = await ctx.runOurs([{ name: `arc-from-${i}`, source: { repository: `oci-archive:${file}`, tags: ['1'] }, targets: [{ repository: `${B.host}/arc/app` }] }], [B], []);
          } else {
            to = await ctx.runSkopeo([[...TLS_OFF, 'copy', '--preserve-digests', '--src-tls-verify=false', `docker://${A.host}/${src}:1`, `oci-archive:${file}:1`]], [A], sources);
            from = await ctx.runSkopeo([[...TLS_OFF, 'copy', '--preserve-digests', '--dest-tls-verify=false', `oci-archive:${file}:1`, `docker://${B.host}/arc/app:1`]], [B], []);
          }
          return {
            wall_s: to.wall_s! + from.wall_s!,
            wall_to_s: to.wall_s!,
            wall_from_s: from.wall_s!,
            peak_rss_kb: Math.max(to.peak_rss_kb!, from.peak_rss_kb!),
          };
        } finally {
          await B.stop();
          await rm(file, { force: true });
        }
      },
    };
  },
};
