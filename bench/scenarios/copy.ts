import { STANDARD } from './metrics.js';
import { appShape, pushFresh, skopeoCopy } from './shapes.js';
import type { Scenario } from './types.js';

/**
 * A new image per run: skopeo mounts only blobs its cache has seen at the target registry
 * (container-libs#274), so reusing one image would turn its later runs into mounts and measure its
 * cache, not the first copy this scenario is about.
 */
export const copySameRegistry: Scenario = {
  name: 'copy',
  title: 'copy 5×20 MiB to another repo, same registry',
  tools: ['ours', 'skopeo'],
  metrics: STANDARD,
  method:
    'A new random image per run at A/copy-N/src/app:1; ours: one ImageMirror to A/copy-N/ours/app; ' +
    'skopeo: `skopeo copy docker://A/copy-N/src/app:1 docker://A/copy-N/skopeo/app:1`.',
  async prepare(ctx) {
    const A = ctx.registryA;
    const pushed = new Set<number>();
    return {
      async run(tool, i) {
        const src = `copy-${i}/src/app`;
        if (!pushed.has(i)) {
          pushed.add(i);
          ctx.progress(`copy: pushing a fresh ${appShape(ctx).layers}-layer image for run ${i + 1}`);
          await pushFresh(ctx, src, appShape(ctx));
        }
        const sources = [{ registry: A.host, repo: src }];
        if (tool === 'ours') {
          return ctx.runOurs(
            [{ name: `copy-${i}`, source: { repository: `${A.host}/${src}`, tags: ['1'] }, targets: [{ repository: `${A.host}/copy-${i}/ours/app` }] }],
            [A],
            sources,
          );
        }
        return ctx.runSkopeo([skopeoCopy(`${A.host}/${src}:1`, `${A.host}/copy-${i}/skopeo/app:1`)], [A], sources);
      },
    };
  },
};
