import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/helm-render/render.js';

/**
 * Node.js release lines the image may run: LTS lines still receiving security fixes, with their end
 * of life (nodejs.org/en/about/previous-releases). Node 20 left this table on 2026-04-30.
 */
const MAINTAINED_LTS: Record<number, string> = { 22: '2027-04-30', 24: '2028-04-30' };
/** Debian releases the node image's slim variants are built on, named in the tag. */
const DEBIAN_SLIM = /^(bookworm|trixie)-slim$/;

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

  it('builds on a maintained Node LTS, Debian slim base named by its release, documents digest pinning, and compiles with npm ci + npm run build', () => {
    const base = /^ARG NODE_IMAGE=(node:(\d+)(?:\.\d+){0,2}-([a-z]+-slim))$/m.exec(dockerfile);
    assert.ok(base, 'base is not a node:<version>-<debian release>-slim tag');
    const [, image, major, variant] = base as unknown as [string, string, string, string];
    assert.ok(MAINTAINED_LTS[Number(major)], `node ${major} is not a maintained LTS line (${Object.keys(MAINTAINED_LTS).join(', ')})`);
    assert.match(variant, DEBIAN_SLIM, `${variant} is not a Debian slim variant`);
    assert.ok(dockerfile.includes(`NODE_IMAGE=${image}@sha256:`), 'no digest-pinning instruction for the same tag');
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

  it('the CLI keeps running on Node 20.19+: engines, and the bundle targets the oldest supported major', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(pkg.engines.node, '>=20.19');
    const major = Number(/^ARG NODE_IMAGE=node:(\d+)/m.exec(dockerfile)?.[1]);
    assert.ok(semver.satisfies(`${major}.0.0`, pkg.engines.node), `the image's node ${major} is outside engines`);
    const build = await readFile(join(REPO_ROOT, 'scripts', 'build.mjs'), 'utf8');
    assert.equal(/target: 'node(\d+)'/.exec(build)?.[1], String(semver.minVersion(pkg.engines.node)?.major), 'dist/ is compiled for a newer Node than engines allows');
  });

  it('release.yml resolves the digest of the same base the Dockerfile names', async () => {
    const tag = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    const wf = await readFile(join(REPO_ROOT, '.github', 'workflows', 'release.yml'), 'utf8');
    assert.match(wf, /imagetools inspect node:/, 'release.yml does not resolve a base digest');
    const named = [...wf.matchAll(/\bnode:[\w.-]+/g)].map((m) => m[0]);
    for (const n of named) assert.equal(n, tag, 'release.yml would build on another base than the Dockerfile names');
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
