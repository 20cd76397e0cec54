/**
 * The published package: `files`, the bin and `prepack` give a tarball that runs without the
 * sources, tsx or any dev dependency, and `--version`/`version` name the version, commit and Node.
 *
 * The tarball itself is built and installed by hand for a release check (npm pack; npm install
 * --prefer-offline <tgz>; about 30 s): here the same layout is assembled in a temp directory (the
 * bin, a fresh bundle, package.json, and node_modules holding only the production dependencies), so
 * nothing can resolve tsx or src/ from it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RegistryClient } from '../../src/oci/registry.js';
import { UNKNOWN_COMMIT } from '../../src/version.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Pkg {
  version: string;
  private?: boolean;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
}

async function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(cmd, args, { ...opts, env: { ...process.env, DOCKER_CONFIG: '/nonexistent', ...opts.env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const VERSION_LINE = /^image-mirror (\S+) \(commit (\S+), node (v\d+\.\d+\.\d+)\)\n$/;

describe('package: an installable CLI', function () {
  this.timeout(120_000);
  let pkg: Pkg;
  let dir: string;
  let installed: string;
  let head: string;

  before(async () => {
    pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Pkg;
    head = (await exec('git', ['rev-parse', 'HEAD'], { cwd: ROOT })).stdout.trim();
    dir = await mkdtemp(join(tmpdir(), 'imc-package-'));
    installed = join(dir, 'node_modules', 'image-mirror-controller');
    await mkdir(join(installed, 'node_modules'), { recursive: true });
    await cp(join(ROOT, 'bin'), join(installed, 'bin'), { recursive: true });
    await cp(join(ROOT, 'package.json'), join(installed, 'package.json'));
    await exec(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), join(installed, 'dist')], { cwd: ROOT });
    // Production dependencies only: tsx, esbuild and the rest of devDependencies are not there.
    for (const name of Object.keys(pkg.dependencies)) {
      await mkdir(join(installed, 'node_modules', name, '..'), { recursive: true });
      await symlink(join(ROOT, 'node_modules', name), join(installed, 'node_modules', name));
    }
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('package.json ships the bin, the bundle and the CRDs, and builds the bundle before packing', async () => {
    assert.equal(pkg.bin['image-mirror'], 'bin/image-mirror.js');
    for (const f of ['bin/', 'dist/', 'crds/']) assert.ok(pkg.files.includes(f), `files lacks ${f}`);
    assert.match(pkg.scripts.prepack ?? '', /npm run build/);
    const { stdout } = await exec('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT });
    const paths = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    assert.ok(paths.includes('bin/image-mirror.js'));
    assert.ok(paths.includes('crds/imagemirror.yaml'));
    assert.ok(paths.includes('docs/sync-output.schema.json'));
    assert.deepEqual(paths.filter((p) => /^(src|test|scripts|charts|node_modules)\//.test(p)), [], 'sources or tests would be published');
  });

  it('the installed bin runs the bundle without tsx: --version and version print version, commit and Node', async () => {
    // Resolved from the installed bin's directory, as the bin's own import would be.
    const probe = join(installed, 'bin', 'probe.mjs');
    await writeFile(probe, "import.meta.resolve('tsx/esm/api');\n");
    await assert.rejects(exec(process.execPath, [probe]), 'tsx resolves from the installed package');
    await rm(probe);
    for (const args of [['--version'], ['version'], ['-V']]) {
      const r = await run(process.execPath, [join(installed, 'bin', 'image-mirror.js'), ...args], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const m = VERSION_LINE.exec(r.stdout);
      assert.ok(m, r.stdout);
      assert.deepEqual([m[1], m[2], m[3]], [pkg.version, head, process.version]);
    }
  });

  it('the bundle records the commit at build time: IMAGE_MIRROR_COMMIT when given, "unknown" outside a checkout', async () => {
    const out = join(dir, 'given');
    await exec(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), out], { cwd: ROOT, env: { ...process.env, IMAGE_MIRROR_COMMIT: 'abcdef1234567' } });
    const js = await Promise.all((await readdir(out)).filter((f) => f.endsWith('.js')).map((f) => readFile(join(out, f), 'utf8')));
    assert.ok(js.some((t) => t.includes('"abcdef1234567"')), 'the given commit is not in the bundle');
    // A copy of the build inputs outside any git repository (as from a source tarball).
    const bare = join(dir, 'bare');
    await mkdir(bare);
    for (const p of ['src', 'scripts', 'package.json']) await cp(join(ROOT, p), join(bare, p), { recursive: true });
    await symlink(join(ROOT, 'node_modules'), join(bare, 'node_modules'));
    await exec(process.execPath, [join(bare, 'scripts', 'build.mjs'), join(bare, 'dist')], { cwd: bare, env: { ...process.env, GIT_CEILING_DIRECTORIES: dir } });
    const r = await run(process.execPath, [join(bare, 'dist', 'main.js'), '--version']);
    assert.equal(VERSION_LINE.exec(r.stdout)?.[2], UNKNOWN_COMMIT, r.stdout);
  });

  describe('a real sync from the installed package', () => {
    let reg: TestRegistry;
    let client: RegistryClient;
    let pushed: string;
    before(async () => {
      reg = await startRegistry();
      client = new RegistryClient(reg.host);
      pushed = (await pushImage(client.repository('pkg/src'), buildImage({ layers: [2048] }), 'v1')).digest;
    });
    after(async () => {
      await client?.close();
      await reg?.stop();
    });

    it('copies an image and exits 0', async () => {
      const spec = join(dir, 'mirror.yaml');
      await writeFile(spec, `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: pkg, namespace: ci}\nspec:\n  source: {repository: ${reg.host}/pkg/src, tags: [v1]}\n  targets: [{repository: ${reg.host}/pkg/dst}]\n`);
      const r = await run(process.execPath, [join(installed, 'bin', 'image-mirror.js'), 'sync', '-f', spec, '-o', 'json'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const written = await client.repository('pkg/dst').headManifest('v1');
      assert.equal(written?.digest, pushed);
      const out = JSON.parse(r.stdout) as { mirrors: Array<{ targets: Array<{ reference: string; action: string }> }> };
      assert.deepEqual(out.mirrors[0]!.targets.map((t) => [t.reference, t.action]), [[`${reg.host}/pkg/dst:v1`, 'Copied']]);
    });
  });
});
