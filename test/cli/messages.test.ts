/**
 * Operator-facing messages: a missing CRD says to apply crds/; a missing kubeconfig and an invalid
 * listen address are one line with exit 2 (before anything connects); bytes print the same way
 * (IEC units) in the CLI table and, through formatBytes, in the controller's events. The exit code of a UsageError (2) is shown end to end by the spawned runs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { formatBytes } from '../../src/format.js';
import { humanBytes } from '../../src/standalone/sync.js';
import { startControllerCommand, type ControllerCommandOptions } from '../../src/controller/command.js';
import { silentLogger } from '../../src/log.js';
import { UsageError } from '../../src/usage-error.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';

const BIN = join(process.cwd(), 'bin', 'image-mirror.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, KUBERNETES_SERVICE_HOST: '', DOCKER_CONFIG: '/nonexistent', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const oneLine = (s: string) => s.endsWith('\n') && !s.slice(0, -1).includes('\n');

describe('CLI messages', function () {
  this.timeout(60_000);
  let dir: string;
  let fake: FakeApiServer | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'messages-'));
  });
  after(async () => {
    await fake?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('controller --kubeconfig naming no file: one line, exit 2', async () => {
    const missing = join(dir, 'nope', 'kubeconfig');
    const r = await cli(['controller', '--kubeconfig', missing]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `image-mirror: --kubeconfig ${missing}: no such file\n`);
  });

  /** The controller command in-process (loading client-node in a child costs seconds). */
  const controllerOpts = (o: Partial<ControllerCommandOptions>): ControllerCommandOptions => ({
    namespace: [], concurrency: 1, leaseDuration: '15s', renewDeadline: '10s', retryPeriod: '2s', metricsAddr: '127.0.0.1:0', shutdownGrace: '1s', leaderElect: false, log: silentLogger, ...o,
  });

  it('KUBECONFIG naming no existing file is a usage error (client-node would skip it silently)', async () => {
    const missing = join(dir, 'nope', 'config');
    await assert.rejects(startControllerCommand(controllerOpts({ env: { KUBECONFIG: missing } })), (e: unknown) => e instanceof UsageError && e.message === `KUBECONFIG=${missing}: no such file`);
  });

  it('an API server without the CRD: one line saying to apply crds/', async () => {
    fake = await startFakeApiServer({ crds: [], namespaces: ['team-a'] });
    const kubeconfig = join(dir, 'kubeconfig');
    await fake.writeKubeconfig(kubeconfig);
    await assert.rejects(startControllerCommand(controllerOpts({ kubeconfig, env: {} })), (e: unknown) => {
      const m = (e as Error).message;
      assert.ok(!m.includes('\n'), m);
      assert.match(m, /the ImageMirror CRD \(imagemirrors\.imagemirror\.dev\/v1alpha1\) is not installed; apply it with kubectl apply -f crds\//);
      return true;
    });
  });

  it('an invalid listen address is exit 2, one line, for run and controller (before connecting anywhere)', async () => {
    const specs = join(dir, 'specs');
    await mkdir(specs, { recursive: true });
    await writeFile(join(specs, 'm.yaml'), 'apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: m}\nspec:\n  source: {repository: r.example/a, tags: ["1"]}\n  targets: [{repository: r.example/b}]\n');
    const run = await cli(['run', '--specs', specs, '--status-dir', join(dir, 'status'), '--metrics-addr', 'localhost:http']);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stderr, 'image-mirror: invalid listen address "localhost:http": want host:port or :port\n');
    const hook = await cli(['run', '--specs', specs, '--status-dir', join(dir, 'status'), '--metrics-addr', '127.0.0.1:0', '--webhook-addr', ':99999', '--webhook-token-file', join(dir, 't')]);
    assert.equal(hook.code, 2, hook.stderr);
    assert.match(hook.stderr, /^image-mirror: invalid listen address ":99999": bad port\n$/);
    // The controller: a kubeconfig whose server would hang shows the address is judged before connecting.
    const kubeconfig = join(dir, 'dead-kubeconfig');
    await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://192.0.2.1:9"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
    await assert.rejects(startControllerCommand(controllerOpts({ kubeconfig, env: {}, metricsAddr: 'nonsense' })), (e: unknown) => e instanceof UsageError && e.message === 'invalid listen address "nonsense": want host:port or :port');
  });

  it('formatBytes: IEC units, exact below 1 KiB, rounding never shows 1024 of a unit', () => {
    assert.deepEqual([0, 1, 1023, 1024, 1536, 10 * 1024, 1048575, 1048576, 5 * 1024 ** 3, 2 * 1024 ** 5].map(formatBytes), [
      '0 B', '1 B', '1023 B', '1.0 KiB', '1.5 KiB', '10 KiB', '1.0 MiB', '1.0 MiB', '5.0 GiB', '2.0 PiB',
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        const s = formatBytes(n);
        assert.match(s, /^(\d+ B|\d+(\.\d)? [KMGTP]iB)$/);
        assert.ok(!/^1024 [KMGT]iB$/.test(s), s);
      }),
      { numRuns: 500 },
    );
  });

  it('the CLI table uses the same formatting the controller events are to use', () => {
    for (const n of [0, 999, 4096, 123_456_789]) assert.equal(humanBytes(n), formatBytes(n));
  });
});
