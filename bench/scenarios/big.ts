import { STANDARD } from './metrics.js';
import { bigShape, pushFresh, skopeoCopy } from './shapes.js';
import type { Scenario } from './types.js';

export const bigToOtherRegistry: Scenario = {
  name: 'big',
  title: '1 GiB (8×128 MiB) to another registry',
  tools: ['ours', 'skopeo'],
  metrics: STANDARD,
  method:
    'One random 1 GiB image on A pushed once per bench run; each run copies it to a fresh registry B ' +
    '(new process, empty storage); ours: one ImageMirror A/big/app:1 → B/big/app; skopeo: `skopeo copy`.',
  async prepare(ctx) {
    const A = ctx.registryA;
    const shape = bigShape(ctx);
    ctx.progress(`big: pushing ${shape.layers} × ${shape.layerSize / (1 << 20)} MiB of random data (once)`);
    const src = 'big/app';
    await pushFresh(ctx, src, shape);
    const sources = [{ registry: A.host, repo: src }];
    return {
      async run(tool, i) {
        const B = await ctx.freshRegistry();
        try {
          if (tool === 'ours') {
            return await ctx.runOurs(
              [{ name: `big-${i}`, source: { repository: `${A.host}/${src}`, tags: ['1'] }, targets: [{ repository: `${B.host}/big/app` }] }],
              [A, B],
              sources,
            );
          }
          return await ctx.runSkopeo([skopeoCopy(`${A.host}/${src}:1`, `${B.host}/big/app:1`)], [A, B], sources);
        } finally {
          await B.stop();
        }
      },
    };
  },
};
