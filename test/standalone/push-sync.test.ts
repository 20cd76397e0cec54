/**
 * `image-mirror run` with --webhook-addr: a real docker-registry sends its notifications to the
 * receiver, and a pushed tag is on the target within 2 s although the mirror's interval is 1 h.
 * Bursts coalesce into one reconcile; refused requests enqueue nothing; POST /sync/NS/NAME and a
 * changed requested-at annotation reconcile now, even while the mirror backs off.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../../src/metrics.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { PUSH_COALESCE_MS } from '../../src/runtime/loop.js';
import { startRun, type RunHandle } from '../../src/standalone/run.js';
import { buildImage, pushImage } from '../support/images.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { TOKEN, envelope } from '../hooks/support.js';

async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function counter(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const values = (await m.get()).values as Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>;
  return values
    .filter((v) => (v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`) && Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))
    .reduce((a, v) => a + v.value, 0);
}

describe('image-mirror run: push-driven and on-demand sync', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let root: string;
  let specs: string;
  let run: RunHandle | undefined;
  let hookUrl: string;
  const metrics = new Metrics();
  const reconciles = (result: string): Promise<number> => counter(metrics, 'imagemirror_reconcile_total', { result });

  before(async () => {
    const port = await freePort();
    hookUrl = `http://127.0.0.1:${port}`;
    reg = await startRegistry({ notifications: { url: `${hookUrl}/hooks/distribution`, headers: { Authorization: `Bearer ${TOKEN}` } } });
    client = new RegistryClient(reg.host);
    await pushImage(client.repository('team/app'), buildImage(), '1.0');
    root = await mkdtemp(join(tmpdir(), 'push-sync-'));
    specs = join(root, 'specs');
    await mkdir(specs);
    await writeFile(join(root, 'token'), `${TOKEN}\n`);
    await writeFile(
      join(specs, 'app.yaml'),
      `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: app, namespace: team}
spec:
  source: {repository: ${reg.host}/team/app, tagPattern: '^1\\.'}
  targets: [{repository: ${reg.host}/mirror/app}]
  interval: 1h
`,
    );
    await writeFile(
      join(specs, 'broken.yaml'),
      `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: broken, namespace: team}
spec:
  source: {repository: ${reg.host}/team/missing, tags: ['1.0']}
  targets: [{repository: ${reg.host}/mirror/missing}]
  interval: 1h
`,
    );
    run = await startRun({
      specsDir: specs,
      metricsAddr: '127.0.0.1:0',
      webhookAddr: `127.0.0.1:${port}`,
      webhookTokenFile: join(root, 'token'),
      metrics,
      debounceMs: 50,
      // A failed mirror waits an hour: only "now" can bring it back sooner.
      backoff: { baseMs: 3600_000, maxMs: 3600_000 },
    });
    await until(async () => (await client.repository('mirror/app').headManifest('1.0')) !== undefined, 'initial sync');
    await until(() => run!.statuses()['team/broken']?.status.conditions?.some((c) => c.reason === 'SourceNotFound'), 'broken mirror failed once');
    await until(() => !run!.pending('team/app').queued && !run!.pending('team/broken').queued, 'initial reconciles done');
  });
  after(async () => {
    await run?.stop(5000);
    await client?.close();
    await reg?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('a tag pushed to the source is on the target within 2 s while interval is 1 h (registry notifications)', async () => {
    assert.equal(run!.webhookAddress, hookUrl.slice('http://'.length));
    const t0 = performance.now();
    await pushImage(client.repository('team/app'), buildImage(), '1.1');
    await until(async () => (await client.repository('mirror/app').headManifest('1.1')) !== undefined, 'pushed tag on the target', 2000);
    const took = performance.now() - t0;
    assert.ok(took < 2000, `took ${took.toFixed(0)} ms`);
    await until(async () => (await counter(metrics, 'imagemirror_webhook_sync_delay_seconds', {})) >= 1, 'push-to-sync delay observed');
    assert.ok((await counter(metrics, 'imagemirror_webhook_events_total', { format: 'distribution', result: 'accepted' })) >= 1);
  });

  it('50 events for one mirror within a second make one reconcile', async () => {
    await until(() => !run!.pending('team/app').queued, 'previous reconcile done');
    const before = await reconciles('success');
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        fetch(`${hookUrl}/hooks/distribution`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/vnd.docker.distribution.events.v1+json' },
          body: new Uint8Array(envelope(reg.host, 'team/app', [`1.${i}`])),
        }).then((r) => r.status),
      ),
    );
    const sent = performance.now() - t0;
    assert.ok(sent < Math.min(1000, PUSH_COALESCE_MS), `the burst took ${sent.toFixed(0)} ms`);
    assert.deepEqual(new Set(answers), new Set([202]));
    await until(async () => (await reconciles('success')) > before, 'the burst reconciled');
    await until(() => !run!.pending('team/app').queued, 'reconcile done');
    // Nothing else waiting: no second run queued, only the 1 h resync scheduled.
    assert.equal(await reconciles('success'), before + 1);
    const next = run!.pending('team/app').scheduledAt;
    assert.ok(next !== undefined && next - Date.now() > 30 * 60_000, `next run at +${((next ?? 0) - Date.now()) / 1000} s`);
  });

  it('wrong secret → 401, oversized body → 413, malformed JSON → 400: nothing enqueued, the loop keeps working', async () => {
    const before = { ok: await reconciles('success'), err: await reconciles('error') };
    const post = (body: string | Buffer, token = TOKEN): Promise<number> =>
      fetch(`${hookUrl}/hooks/distribution`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: typeof body === 'string' ? body : new Uint8Array(body) }).then(async (r) => {
        await r.arrayBuffer().catch(() => undefined);
        return r.status;
      });
    assert.equal(await post(envelope(reg.host, 'team/app', ['1.0']), 'not-the-secret'), 401);
    assert.equal(await post(Buffer.alloc(2 * 1024 * 1024, 0x20)).catch(() => 413), 413);
    assert.equal(await post('{"events": [tru'), 400);
    assert.equal(run!.pending('team/app').queued, false);
    assert.ok((run!.pending('team/app').scheduledAt ?? 0) - Date.now() > 30 * 60_000, 'no push scheduled');
    assert.equal(await reconciles('success'), before.ok);
    assert.equal(await reconciles('error'), before.err);
    // Still serving: a good notification right after is acted on.
    assert.equal(await post(envelope(reg.host, 'team/app', ['1.0'])), 202);
    await until(async () => (await reconciles('success')) > before.ok, 'good notification reconciled');
  });

  it('POST /sync/NS/NAME reconciles now, even a mirror backing off for an hour (202; 404 for an unknown mirror)', async () => {
    await until(() => !run!.pending('team/broken').queued, 'broken idle');
    const retryAt = run!.pending('team/broken').scheduledAt;
    assert.ok(retryAt !== undefined && retryAt - Date.now() > 30 * 60_000, 'backing off');
    const before = await reconciles('error');
    const r = await fetch(`http://${run!.address}/sync/team/broken`, { method: 'POST' });
    assert.equal(r.status, 202);
    await until(async () => (await reconciles('error')) > before, 'reconciled at once', 2000);
    assert.equal((await fetch(`http://${run!.address}/sync/team/nope`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`http://${run!.address}/sync/team`, { method: 'POST' })).status, 404);
  });

  it('a changed requested-at annotation in the spec file reconciles now and is recorded as status.lastHandledRequestedAt', async () => {
    await until(() => !run!.pending('team/broken').queued, 'broken idle');
    const before = await reconciles('error');
    const file = join(specs, 'broken.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('metadata: {name: broken, namespace: team}', "metadata: {name: broken, namespace: team, annotations: {imagemirror.dev/requested-at: '1700000000'}}"));
    await until(() => run!.statuses()['team/broken']?.status.lastHandledRequestedAt === '1700000000', 'handled value in status', 5000);
    // The count follows the status write.
    await until(async () => (await reconciles('error')) > before, 'reconcile counted', 2000);
    const onDisk = JSON.parse(await readFile(join(run!.statusDir, 'team_broken.json'), 'utf8')) as { status: { lastHandledRequestedAt?: string } };
    assert.equal(onDisk.status.lastHandledRequestedAt, '1700000000');
  });
});
