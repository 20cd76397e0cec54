/**
 * --registry-qps and --registry-quota-floor from the command line to every registry client: a
 * child `image-mirror sync` against a real registry, its requests counted in the registry's log.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');

async function sync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [BIN, 'sync', ...args], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('registry request budget flags (CLI, real registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let dir: string;

  before(async () => {
    [reg, dir] = await Promise.all([startRegistry(), mkdtemp(join(tmpdir(), 'imc-qps-'))]);
    const c = new RegistryClient(reg.host);
    await pushImage(c.repository('dev/web'), buildImage({ layers: [1024, 2048] }), '1.0.0');
    await c.close();
  });
  after(async () => {
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('--registry-qps spaces every request to the registry (the wall time of N requests is at least (N-1)/qps)', async () => {
    const file = join(dir, 'm.yaml');
    await writeFile(file, `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: m}\nspec:\n  source: {repository: ${reg.host}/dev/web, tags: ["1.0.0"]}\n  targets: [{repository: ${reg.host}/qps/web}]\n`);
    await reg.resetLog();
    const started = performance.now();
    const r = await sync(['-f', file, '--registry-qps', '4']);
    const elapsed = performance.now() - started;
    assert.equal(r.code, 0, r.stderr);
    const n = (await reg.accessLog()).length;
    assert.ok(n >= 6, `a copy makes several requests (saw ${n})`);
    assert.ok(elapsed >= ((n - 1) / 4) * 1000 * 0.95, `${n} requests at 4/s took only ${Math.round(elapsed)} ms`);
  });

  it('bad values are usage errors (exit 2, one line)', async () => {
    for (const args of [['--registry-qps', '0'], ['--registry-qps', 'fast'], ['--registry-quota-floor', '-1']]) {
      const r = await sync(['-f', 'x.yaml', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
