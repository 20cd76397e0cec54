import { STANDARD } from './metrics.js';
import { appShape, pushFresh, skopeoCopy } from './shapes.js';
import type { Scenario } from './types.js';

const FAN = 10;

/**
 * A fresh registry B per run: skopeo's blob cache remembers where it wrote blobs (host:port/repo), so
 * reusing B would let later runs mount from earlier ones and stop measuring a first fan-out.
 */
export const fanOut: Scenario = {
  name: 'fanout',
  title: 'one image to 10 repos on another registry',
  tools: ['ours', 'skopeo'],
  metrics: STANDARD,
  method:
    'A/fanout/app:1 (5×20 MiB) to B/fan-0/app … B/fan-9/app on a fresh registry B per run; ours: one ImageMirror ' +
    'with 10 targets; skopeo: 10 `skopeo copy` commands in a row (times summed, peak RSS is the largest).',
  async prepare(ctx) {
    const A = ctx.registryA;
    ctx.progress('fanout: pushing the source image');
    const src = 'fanout/app';
    await pushFresh(ctx, src, appShape(ctx));
    const sources = [{ registry: A.host, repo: src }];
    return {
      async run(tool, i) {
        const B = await ctx.freshRegistry();
        try {
          const targets = Array.from({ length: FAN }, (_, k) => `${B.host}/fan-${k}/app`);
          if (tool === 'ours') {
            return await ctx.runOurs(
              [{ name: `fanout-${i}`, source: { repository: `${A.host}/${src}`, tags: ['1'] }, targets: targets.map((repository) => ({ repository })) }],
              [A, B],
              sources,
            );
          }
          return await ctx.runSkopeo(targets.map((t) => skopeoCopy(`${A.host}/${src}:1`, `${t}:1`)), [A, B], sources);
        } finally {
          await B.stop();
        }
      },
    };
  },
};
