import { STANDARD, WALL } from './metrics.js';
import { appShape, pushFresh, TLS_OFF } from './shapes.js';
import type { ImageMirrorSpec, MetricDef, Scenario } from './types.js';

/** The goal of this row (issue 13): a no-op re-sync, process start included, within half a second. */
const WALL_GOAL: MetricDef = { ...WALL, label: 'wall time (goal ≤ 0.5 s)' };
const CPU: MetricDef = { key: 'cpu_s', label: 'CPU (user + system)', format: (v) => `${v.toFixed(2)} s` };

/**
 * skopeo's comparison is `skopeo sync`: `skopeo copy` always writes the manifest again, while sync
 * reads the destination first and skips an image that is already there.
 */
export const resyncNoChange: Scenario = {
  name: 'resync',
  title: 're-sync when nothing changed',
  tools: ['ours', 'skopeo'],
  metrics: [WALL_GOAL, CPU, ...STANDARD.filter((m) => m !== WALL)],
  method:
    'Each tool first syncs A/resync-src/app:1 into its own fresh repo (not measured), then the same command ' +
    'again is measured; ours: `image-mirror sync` (target A/resync-N-ours/app); skopeo: ' +
    '`skopeo sync --src docker --dest docker A/resync-src/app:1 A/resync-N-skopeo` (writes …/app:1).',
  async prepare(ctx) {
    const A = ctx.registryA;
    ctx.progress('resync: pushing the source image');
    const src = 'resync-src/app';
    await pushFresh(ctx, src, appShape(ctx));
    const sources = [{ registry: A.host, repo: src }];
    const skopeoSync = (i: number) => [
      ...TLS_OFF, 'sync', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false',
      `${A.host}/${src}:1`, `${A.host}/resync-${i}-skopeo`,
    ];
    return {
      async run(tool, i) {
        if (tool === 'ours') {
          const m: ImageMirrorSpec[] = [{ name: `resync-${i}`, source: { repository: `${A.host}/${src}`, tags: ['1'] }, targets: [{ repository: `${A.host}/resync-${i}-ours/app` }] }];
          await ctx.syncOurs(m);
          return ctx.runOurs(m, [A], sources);
        }
        await ctx.skopeo(skopeoSync(i));
        return ctx.runSkopeo([skopeoSync(i)], [A], sources);
      },
    };
  },
};
