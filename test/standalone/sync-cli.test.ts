import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<CliResult> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

interface JsonOut {
  mirrors: Array<{ name: string; namespace: string; ready: boolean; reason: string; message: string; targets: Array<{ reference: string; digest: string; action: string; bytesCopied: number; bytesSaved: number; blobs: { exists: number; mount: number; upload: number } }> }>;
}

describe('image-mirror sync (CLI)', function () {
  this.timeout(120_000);
  let reg: TestRegistry;
  let dir: string;
  let client: RegistryClient;
  let digest: string;

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    const img = await pushImage(client.repository('dev/web'), buildImage({ layers: [4096, 8192] }), '1.4.2');
    digest = img.digest;
    dir = await mkdtemp(join(tmpdir(), 'sync-cli-'));
  });
  after(async () => {
    await client.close();
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const mirror = (name: string, spec: string) => `---
apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${name}, namespace: team-a}
spec:
${spec}
`;

  it('syncs the good mirrors, names each bad one with its reason, exits 1 without a stack trace', async () => {
    const file = join(dir, 'mixed.yaml');
    await writeFile(
      file,
      mirror('good', `  source: {repository: ${reg.host}/dev/web, tags: ["1.4.2"]}\n  targets:\n    - repository: ${reg.host}/staging/web\n    - repository: ${reg.host}/prod/web\n      tags: [stable]`) +
        mirror('bad-ref', `  source: {repository: "${reg.host}/Dev/WEB::x", tags: ["1"]}\n  targets: [{repository: ${reg.host}/x/y}]`) +
        mirror('two-selectors', `  source: {repository: ${reg.host}/dev/web, tags: ["1.4.2"], semver: ">=1"}\n  targets: [{repository: ${reg.host}/x/z}]`) +
        mirror('missing-tag', `  source: {repository: ${reg.host}/dev/web, tags: ["9.9.9"]}\n  targets: [{repository: ${reg.host}/x/w}]`),
    );
    const r = await cli(['sync', '-f', file, '-o', 'json']);
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+:\d+:\d+/, 'no stack trace');
    const out = JSON.parse(r.stdout) as JsonOut;
    const by = Object.fromEntries(out.mirrors.map((m) => [m.name, m]));
    assert.equal(by.good?.ready, true, by.good?.message);
    assert.deepEqual(by.good?.targets.map((t) => [t.reference, t.action]), [
      [`${reg.host}/staging/web:1.4.2`, 'Copied'],
      [`${reg.host}/prod/web:stable`, 'Copied'],
    ]);
    // Same registry: everything mounted from the source repo, nothing uploaded.
    for (const t of by.good!.targets) {
      assert.equal(t.digest, digest);
      assert.equal(t.blobs.upload, 0);
      assert.equal(t.bytesCopied, 0);
    }
    assert.equal(by['bad-ref']?.reason, 'InvalidSpec');
    assert.match(by['bad-ref']!.message, /repository/);
    assert.equal(by['two-selectors']?.reason, 'InvalidSpec');
    assert.match(by['two-selectors']!.message, /exactly one of/);
    assert.equal(by['missing-tag']?.reason, 'SourceNotFound');
    assert.match(by['missing-tag']!.message, /9\.9\.9/);
    // Each failure is one line on stderr naming the mirror.
    for (const name of ['bad-ref', 'two-selectors', 'missing-tag']) assert.match(r.stderr, new RegExp(`^team-a/${name}: \\w+: .+$`, 'm'));
    const head = await client.repository('prod/web').headManifest('stable');
    assert.equal(head?.digest, digest);
  });

  it('prints one line per target tag and exits 0 when everything is in sync; a second run is UpToDate', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(file, mirror('promote', `  source: {repository: ${reg.host}/dev/web, tags: ["1.4.2"]}\n  targets:\n    - repository: ${reg.host}/qa/web\n      tags: ["1.4", latest]`));
    const metricsFile = join(dir, 'metrics.prom');
    const first = await cli(['sync', '-f', file, '--metrics-file', metricsFile]);
    assert.equal(first.code, 0, first.stderr);
    const lines = first.stdout.trim().split('\n');
    assert.match(lines[0]!, /^MIRROR\s+TARGET\s+ACTION\s+DIGEST\s+COPIED\s+SAVED$/);
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, new RegExp(`^team-a/promote\\s+${reg.host}/qa/web:1\\.4\\s+Copied\\s+${digest}`));
    assert.match(lines[2]!, /qa\/web:latest\s+Retagged/);
    const prom = await readFile(metricsFile, 'utf8');
    assert.match(prom, /imagemirror_bytes_saved_total\{method="mount"\} [1-9]/);
    assert.match(prom, /imagemirror_target_syncs_total\{result="copied"\} 1/);

    await reg.resetLog();
    const second = await cli(['sync', '-f', file]);
    assert.equal(second.code, 0);
    assert.match(second.stdout, /qa\/web:1\.4\s+UpToDate/);
    assert.match(second.stdout, /qa\/web:latest\s+UpToDate/);
    const writes = (await reg.accessLog()).filter((e) => !['GET', 'HEAD'].includes(e.method) && !e.path.startsWith('/v2/?'));
    assert.deepEqual(writes, []);
  });

  it('--dry-run plans without writing', async () => {
    const file = join(dir, 'dry.yaml');
    await writeFile(file, mirror('dry', `  source: {repository: ${reg.host}/dev/web, tags: ["1.4.2"]}\n  targets: [{repository: ${reg.host}/planned/web}]`));
    await reg.resetLog();
    const r = await cli(['sync', '-f', file, '--dry-run', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as JsonOut;
    assert.equal(out.mirrors[0]?.targets[0]?.action, 'WouldCopy');
    assert.ok((out.mirrors[0]?.targets[0]?.blobs.mount ?? 0) > 0);
    const writes = (await reg.accessLog()).filter((e) => !['GET', 'HEAD'].includes(e.method));
    assert.deepEqual(writes, []);
    assert.equal(await client.repository('planned/web').headManifest('1.4.2'), undefined);
  });

  it('shows progress on a terminal (stderr is a TTY) and none when piped', async () => {
    const other = await startRegistry();
    try {
      const file = join(dir, 'tty.yaml');
      await writeFile(file, mirror('tty', `  source: {repository: ${reg.host}/dev/web, tags: ["1.4.2"]}\n  targets: [{repository: ${other.host}/web}]`));
      // script(1) gives the CLI a pseudo-terminal, as a person at a shell would.
      const r = await exec('script', ['-qec', `${process.execPath} ${BIN} sync -f ${file}`, '/dev/null'], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
      assert.match(r.stdout, /team-a\/tty: [\d.]+ (B|KiB|MiB) streamed/);
      assert.match(r.stdout, /web:1\.4\.2\s+Copied/);
      await rm(join(dir, 'tty.yaml'));
      const piped = await cli(['sync', '-f', join(dir, 'good.yaml')]);
      assert.doesNotMatch(piped.stderr, /streamed/);
    } finally {
      await other.stop();
    }
  });

  it('--require-policy and --reconcile-timeout reach the reconciler', async () => {
    // A registry that accepts connections and never answers: only the deadline ends that reconcile.
    const silent = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const host = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const file = join(dir, 'tenancy.yaml');
      await writeFile(
        file,
        `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirrorPolicy\nmetadata: {name: team-a}\nspec: {namespaces: [team-a], sources: ["*/**"], targets: ["${reg.host}/**"]}\n` +
          mirror('hung', `  source: {repository: ${host}/dev/web, tags: ["1"]}\n  targets: [{repository: ${reg.host}/hung/web}]`) +
          mirror('unlisted', `  source: {repository: ${reg.host}/dev/web, tags: ["1.4.2"]}\n  targets: [{repository: ${reg.host}/unlisted/web}]`).replace('namespace: team-a', 'namespace: team-b'),
      );
      const r = await cli(['sync', '-f', file, '-o', 'json', '--require-policy', '--reconcile-timeout', '1s']);
      assert.equal(r.code, 1, r.stderr);
      const by = Object.fromEntries((JSON.parse(r.stdout) as JsonOut).mirrors.map((m) => [m.name, m]));
      assert.match(by.hung!.message, /reconcile took longer than 1s/);
      assert.equal(by.unlisted?.reason, 'Forbidden');
      assert.match(by.unlisted!.message, /namespace team-b is named by no ImageMirrorPolicy/);
    } finally {
      silent.close();
    }
  });

  it('exits 2 with one line on bad usage', async () => {
    const r = await cli(['sync']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const r2 = await cli(['sync', '-f', join(dir, 'does-not-exist.yaml')]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /does-not-exist\.yaml: no such file or directory/);
    assert.equal(r2.stderr.trim().split('\n').length, 1, r2.stderr);
  });
});
