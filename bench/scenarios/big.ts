import { pidByCommandLine, processCpuSeconds } from '../lib/measure.js';
import { BYTES_UPLOADED, MOUNTS, PEAK_RSS, REQUESTS, SOURCE_GETS, UPLOADS, WALL } from './metrics.js';
import { bigShape, pushFresh, skopeoCopy } from './shapes.js';
import type { Measurement, MetricDef, Scenario } from './types.js';

const GiB = 1024 ** 3;

/** The goals of this row (issue 13), in the labels so the table says what each figure is held to. */
const WALL_GOAL: MetricDef = { ...WALL, label: 'wall time (goal ≤ 0.9× skopeo)' };
const CPU_PER_GIB: MetricDef = { key: 'cpu_s_per_gib', label: 'own CPU per GiB (goal ≤ skopeo)', format: (v) => `${v.toFixed(2)} s` };
const REGISTRY_CPU_PER_GIB: MetricDef = { key: 'registry_cpu_s_per_gib', label: 'target registry CPU per GiB', format: (v) => `${v.toFixed(2)} s` };
const PEAK_RSS_GOAL: MetricDef = { ...PEAK_RSS, label: 'peak RSS (goal ≤ 100 MiB)' };

export const bigToOtherRegistry: Scenario = {
  name: 'big',
  title: '1 GiB (8×128 MiB) to another registry',
  tools: ['ours', 'skopeo'],
  metrics: [WALL_GOAL, CPU_PER_GIB, REGISTRY_CPU_PER_GIB, PEAK_RSS_GOAL, REQUESTS, UPLOADS, MOUNTS, BYTES_UPLOADED, SOURCE_GETS],
  method:
    'One random 1 GiB image on A pushed once per bench run; each run copies it to a fresh registry B ' +
    '(new process, empty storage); ours: one ImageMirror A/big/app:1 → B/big/app; skopeo: `skopeo copy ' +
    '--preserve-digests` (both keep the digests). CPU is user + system seconds per GiB copied: the tool\'s ' +
    'own (its whole life), and registry B\'s from /proc/<pid>/stat before and after the run.',
  async prepare(ctx) {
    const A = ctx.registryA;
    const shape = bigShape(ctx);
    ctx.progress(`big: pushing ${shape.layers} × ${shape.layerSize / (1 << 20)} MiB of random data (once)`);
    const src = 'big/app';
    const img = await pushFresh(ctx, src, shape);
    const gib = [img.config, ...img.layers].reduce((n, b) => n + b.size, 0) / GiB;
    const sources = [{ registry: A.host, repo: src }];
    return {
      async run(tool, i) {
        const B = await ctx.freshRegistry();
        try {
          const registryPid = pidByCommandLine(B.dir);
          const registryBefore = registryPid === undefined ? NaN : processCpuSeconds(registryPid);
          let m: Measurement;
          if (tool === 'ours') {
            m = await ctx.runOurs(
              [{ name: `big-${i}`, source: { repository: `${A.host}/${src}`, tags: ['1'] }, targets: [{ repository: `${B.host}/big/app` }] }],
              [A, B],
              sources,
            );
          } else {
            const args = skopeoCopy(`${A.host}/${src}:1`, `${B.host}/big/app:1`);
            args.splice(args.indexOf('copy') + 1, 0, '--preserve-digests');
            m = await ctx.runSkopeo([args], [A, B], sources);
          }
          const registryCpu = registryPid === undefined ? NaN : processCpuSeconds(registryPid) - registryBefore;
          return { ...m, cpu_s_per_gib: m.cpu_s! / gib, registry_cpu_s_per_gib: registryCpu / gib };
        } finally {
          await B.stop();
        }
      },
    };
  },
};
