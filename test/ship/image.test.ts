import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/helm-render/render.js';

// No Docker daemon here: the Dockerfile's rules are checked statically (docs/release.md).
describe('ship: container image and release workflow', () => {
  let dockerfile: string;
  let stages: Array<{ from: string; lines: string[] }>;
  before(async () => {
    dockerfile = await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const instructions = dockerfile
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    stages = [];
    for (const l of instructions) {
      if (/^FROM /i.test(l)) stages.push({ from: l, lines: [] });
      else stages.at(-1)?.lines.push(l);
    }
  });

  it('builds on a pinned node:20 slim base, documents digest pinning, and compiles with npm ci + npm run build', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:20\.\d+-slim$/m, 'base not pinned to a node:20.x-slim tag');
    assert.match(dockerfile, /NODE_IMAGE=node:20\.\d+-slim@sha256:/, 'no digest-pinning instruction');
    assert.ok(stages.length >= 2, 'not multi-stage');
    assert.ok(stages.every((s) => s.from.includes('${NODE_IMAGE}')), 'a stage uses another base');
    const all = stages.flatMap((s) => s.lines);
    assert.ok(all.some((l) => /^RUN npm ci( |$)(?!.*--omit=dev)/.test(l)), 'no full npm ci for the build');
    assert.ok(all.includes('RUN npm run build'), 'no npm run build');
  });

  it('ships production dependencies only, runs as 65532 and starts bin/image-mirror.js', () => {
    const final = stages.at(-1)!;
    assert.ok(!/AS \w+/i.test(final.from), 'the final stage should be the unnamed runtime stage');
    const copies = final.lines.filter((l) => l.startsWith('COPY'));
    const nodeModules = copies.find((l) => /node_modules/.test(l));
    assert.ok(nodeModules, 'runtime has no node_modules');
    const from = /--from=(\w+)/.exec(nodeModules)?.[1];
    const depStage = stages.find((s) => new RegExp(`AS ${from}$`, 'i').test(s.from));
    assert.ok(depStage?.lines.some((l) => /^RUN npm ci .*--omit=dev/.test(l)), 'node_modules do not come from an npm ci --omit=dev stage');
    assert.ok(copies.some((l) => /\/dist \.\/dist$/.test(l)), 'runtime lacks dist/');
    assert.ok(final.lines.includes('USER 65532:65532'));
    assert.ok(final.lines.includes('ENTRYPOINT ["node", "/app/bin/image-mirror.js"]'));
    assert.ok(final.lines.includes('CMD ["controller"]'));
    assert.ok(final.lines.includes('WORKDIR /app'));
    // Read-only root: HOME (docker config, caches) must point at the /tmp emptyDir.
    assert.ok(final.lines.some((l) => /^ENV .*HOME=\/tmp/.test(l)), 'HOME is not /tmp');
    assert.ok(!final.lines.some((l) => /^RUN /.test(l)), 'the runtime stage runs commands as root at build time');
  });

  it('.dockerignore keeps node_modules, tests and git out of the context but lets in what the Dockerfile copies', async () => {
    const ignore = (await readFile(join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'not an allow-list');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/)) assert.ok(allowed.includes(src), `COPY ${src} but .dockerignore excludes it`);
    }
    assert.ok(!allowed.includes('node_modules') && !allowed.includes('test') && !allowed.includes('.git'));
  });

  it('the bin entry the image runs prefers dist/ (no tsx at runtime)', async () => {
    const bin = await readFile(join(REPO_ROOT, 'bin', 'image-mirror.js'), 'utf8');
    assert.match(bin, /dist', 'main\.js'/);
    const build = JSON.parse(await readFile(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    assert.deepEqual([build.compilerOptions.rootDir, build.compilerOptions.outDir], ['src', 'dist'], 'dist/main.js would not exist');
  });

  it('release.yml builds linux/amd64+arm64 with buildx, pins the base by digest, and packages the chart', async () => {
    const wf = parse(await readFile(join(REPO_ROOT, '.github', 'workflows', 'release.yml'), 'utf8')) as {
      on: { push: { tags: string[] } };
      jobs: Record<string, { steps: Array<{ uses?: string; run?: string; with?: Record<string, unknown> }> }>;
    };
    assert.deepEqual(wf.on.push.tags, ['v*']);
    const steps = Object.values(wf.jobs).flatMap((j) => j.steps);
    const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action'));
    assert.equal(build?.with?.platforms, 'linux/amd64,linux/arm64');
    assert.match(String(build?.with?.['build-args']), /NODE_IMAGE=/);
    assert.ok(steps.some((s) => s.uses?.startsWith('docker/setup-buildx-action')));
    assert.ok(steps.some((s) => /helm package charts\/image-mirror-controller/.test(s.run ?? '')));
    assert.ok(steps.some((s) => /\.ci\/run/.test(s.run ?? '')), 'release does not run the tests first');
  });
});
