/**
 * The controller's push-driven and on-demand sync, against the fake API server and real registries:
 * `image-mirror controller --webhook-addr` receives a real docker-registry's notifications and a
 * pushed tag is on the target within 2 s with interval 1 h; a real `kubectl annotate … requested-at`
 * reconciles a mirror at once although it backs off for an hour, and the handled value lands in status.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startControllerCommand } from '../../src/controller/command.js';
import { runController, type ControllerHandle } from '../../src/controller/controller.js';
import { Metrics } from '../../src/metrics.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { projectCrdPath } from '../support/fake-apiserver/sample-crd.js';
import { parseMetric } from '../support/controller-process.js';
import { buildImage, pushImage } from '../support/images.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { TOKEN } from '../hooks/support.js';

const API = 'imagemirror.dev/v1alpha1';
const exec = promisify(execFile);

async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function mirrorObject(name: string, source: Record<string, unknown>, target: string): KObject {
  return { apiVersion: API, kind: 'ImageMirror', metadata: { name, namespace: 'team-a' }, spec: { source, targets: [{ repository: target }], interval: '1h' } };
}

type Stored = KObject & { status?: { lastHandledRequestedAt?: string; conditions?: Array<{ type: string; status: string; reason: string }> } };

describe('controller: push-driven and on-demand sync', function () {
  this.timeout(60_000);
  let fake: FakeApiServer;
  let reg: TestRegistry;
  let client: RegistryClient;
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctl-push-'));
    fake = await startFakeApiServer({ crds: [projectCrdPath()!], namespaces: ['team-a'], openapi: true });
  });
  afterEach(async () => {
    await client?.close();
    await reg?.stop();
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('--webhook-addr: a tag pushed to the source is on the target within 2 s while interval is 1 h', async () => {
    const port = await freePort();
    reg = await startRegistry({ notifications: { url: `http://127.0.0.1:${port}/hooks/distribution`, headers: { Authorization: `Bearer ${TOKEN}` } } });
    client = new RegistryClient(reg.host);
    await pushImage(client.repository('team/app'), buildImage(), '1.0');
    await writeFile(join(dir, 'token'), TOKEN);
    await fake.create(mirrorObject('app', { repository: `${reg.host}/team/app`, tagPattern: '^1\\.' }, `${reg.host}/mirror/app`));
    const cmd = await startControllerCommand({
      kubeConfigObject: fake.kubeconfig(),
      namespace: [],
      concurrency: 2,
      leaderElect: false,
      leaseDuration: '15s',
      renewDeadline: '10s',
      retryPeriod: '2s',
      metricsAddr: '127.0.0.1:0',
      shutdownGrace: '5s',
      webhookAddr: `127.0.0.1:${port}`,
      webhookTokenFile: join(dir, 'token'),
      log: silentLogger,
      env: {},
    });
    try {
      await until(async () => (await client.repository('mirror/app').headManifest('1.0')) !== undefined, 'initial sync');
      const t0 = performance.now();
      await pushImage(client.repository('team/app'), buildImage(), '1.1');
      await until(async () => (await client.repository('mirror/app').headManifest('1.1')) !== undefined, 'pushed tag on the target', 2000);
      const took = performance.now() - t0;
      assert.ok(took < 2000, `took ${took.toFixed(0)} ms`);
      await until(async () => {
        const text = await (await fetch(`${cmd.server.url}/metrics`)).text();
        return (parseMetric(text, 'imagemirror_webhook_sync_delay_seconds_count') ?? 0) >= 1 && (parseMetric(text, 'imagemirror_webhook_events_total', { format: 'distribution', result: 'accepted' }) ?? 0) >= 1;
      }, 'webhook metrics');
      // A wrong secret through the running controller: refused, nothing else changes.
      const r = await fetch(`${cmd.webhook!.url}/hooks/distribution`, { method: 'POST', headers: { authorization: 'Bearer nope' }, body: '{}' });
      assert.equal(r.status, 401);
    } finally {
      await cmd.stop();
    }
  });

  it('kubectl annotate requested-at reconciles at once while backing off; the handled value appears in status', async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    const metrics = new Metrics();
    const reconciler = createReconciler({ metrics });
    let handle: ControllerHandle | undefined;
    try {
      handle = await runController({
        kubeconfig: fake.kubeconfig(),
        reconciler,
        metrics,
        concurrency: 1,
        events: false,
        // Failing mirrors wait an hour: only the annotation can bring this one back sooner.
        backoff: { baseMs: 3600_000, maxMs: 3600_000 },
      });
      await fake.create(mirrorObject('web', { repository: `${reg.host}/team/missing`, tags: ['1.0'] }, `${reg.host}/mirror/web`));
      const get = (): Stored | undefined => fake.get<Stored>(API, 'imagemirrors', 'team-a', 'web');
      await until(() => get()?.status?.conditions?.some((c) => c.reason === 'SourceNotFound'), 'first failure recorded');
      const errors = async (): Promise<number> => (await metrics.reconciles.get()).values.filter((v) => v.labels.result === 'error').reduce((a, v) => a + v.value, 0);
      // The counter moves just after the status write: wait for it rather than read it once.
      const before = await until(async () => ((await errors()) >= 1 ? errors() : undefined), 'first failure counted');
      assert.equal(before, 1);

      await fake.writeKubeconfig(join(dir, 'kubeconfig'));
      const value = String(Math.floor(Date.now() / 1000));
      const t0 = performance.now();
      await exec('kubectl', ['--kubeconfig', join(dir, 'kubeconfig'), '-n', 'team-a', 'annotate', 'imagemirror', 'web', `imagemirror.dev/requested-at=${value}`, '--overwrite'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
        timeout: 30_000,
      });
      await until(() => get()?.status?.lastHandledRequestedAt === value, 'handled value in status', 5000);
      assert.ok(performance.now() - t0 < 5000);
      await until(async () => (await errors()) === before + 1, 'one more reconcile', 2000);
      const { stdout } = await exec('kubectl', ['--kubeconfig', join(dir, 'kubeconfig'), '-n', 'team-a', 'get', 'imagemirror', 'web', '-o', 'jsonpath={.status.lastHandledRequestedAt}'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      });
      assert.equal(stdout, value);
    } finally {
      await handle?.stop();
      await reconciler.close();
    }
  });
});
