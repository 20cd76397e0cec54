import { STANDARD } from './metrics.js';
import { cloneImage } from '../lib/push.js';
import { appShape, pushFresh, skopeoCopy } from './shapes.js';
import type { Scenario } from './types.js';

export const retagSameRepo: Scenario = {
  name: 'retag',
  title: 'retag in the same repo',
  tools: ['ours', 'skopeo'],
  metrics: STANDARD,
  method:
    'One image, mounted into a fresh repo per run and tool (A/retag-N-TOOL/app:1); ours: an ImageMirror whose ' +
    'target is the same repo with tags [stable]; skopeo: `skopeo copy docker://…/app:1 docker://…/app:stable`.',
  async prepare(ctx) {
    const A = ctx.registryA;
    ctx.progress('retag: pushing the source image');
    const base = 'retag-base/app';
    const img = await pushFresh(ctx, base, appShape(ctx));
    return {
      async run(tool, i) {
        const repo = `retag-${i}-${tool}/app`;
        await cloneImage(A.url, base, repo, '1', img);
        const sources = [{ registry: A.host, repo }];
        if (tool === 'ours') {
          return ctx.runOurs(
            [{ name: `retag-${i}`, source: { repository: `${A.host}/${repo}`, tags: ['1'] }, targets: [{ repository: `${A.host}/${repo}`, tags: ['stable'] }] }],
            [A],
            sources,
          );
        }
        return ctx.runSkopeo([skopeoCopy(`${A.host}/${repo}:1`, `${A.host}/${repo}:stable`)], [A], sources);
      },
    };
  },
};
