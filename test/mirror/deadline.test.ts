import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_RECONCILE_TIMEOUT_MS, createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext, ReconcileResult } from '../../src/mirror/reconciler.js';
import type { ImageMirror } from '../../src/mirror/types.js';
import { WorkQueue } from '../../src/queue/work-queue.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

/** How late past the deadline a reconcile may resolve (timer and event-loop slack on a busy CI box). */
const SLACK_MS = 1500;
const TIMEOUT_MS = 400;

/**
 * A hostile registry: answers the API check, then sends a tag list one byte every TRICKLE_MS and
 * never finishes it, so no idle timeout ever fires.
 */
const TRICKLE_MS = 150;
async function startTrickler(): Promise<{ host: string; requests: () => number; hangUp(): void; stop(): Promise<void> }> {
  let requests = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    requests++;
    if (req.url === '/v2/' || req.url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      res.end('{}');
      return;
    }
    if (/\/tags\/list/.test(req.url ?? '')) {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      res.write('{"name":"slow/app","tags":["1.0"');
      const t = setInterval(() => res.write(' '), TRICKLE_MS);
      timers.add(t);
      res.on('close', () => {
        clearInterval(t);
        timers.delete(t);
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests: () => requests,
    /** Ends every trickle, so the requests the deadline abandoned fail and the clients can close. */
    hangUp() {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('per-reconcile deadline (trickling registry)', function () {
  this.timeout(30_000);
  let reg: TestRegistry;
  let slow: Awaited<ReturnType<typeof startTrickler>>;
  let reconciler: MirrorReconciler;
  const ctx: ReconcileContext = { credentials: async () => ({ get: async () => undefined }) };

  before(async () => {
    [reg, slow] = await Promise.all([startRegistry(), startTrickler()]);
    const client = new RegistryClient(reg.host);
    await pushImage(client.repository('src/app'), buildImage(), '1.0');
    await client.close();
  });
  beforeEach(() => {
    reconciler = createReconciler({ reconcileTimeoutMs: TIMEOUT_MS, client: { retry: { attempts: 1 } } });
  });
  afterEach(async () => {
    slow.hangUp();
    await reconciler.close();
  });
  after(async () => {
    await slow.stop();
    await reg.stop();
  });

  const mirror = (name: string, source: string): ImageMirror => ({
    apiVersion: 'imagemirror.dev/v1alpha1',
    kind: 'ImageMirror',
    metadata: { name, namespace: 'team-a', generation: 1 },
    spec: { source: { repository: source, tags: ['1.0'] }, targets: [{ repository: `${reg.host}/dst/${name}` }] },
  });
  const hostile = (name: string) => mirror(name, `${slow.host}/slow/app`);
  const healthy = (name: string) => mirror(name, `${reg.host}/src/app`);

  it('frees the worker at the deadline with a retry and a clear reason, though the read ignores the abort', async () => {
    const before = slow.requests();
    const t0 = performance.now();
    const r = await reconciler.reconcile(hostile('slow'), ctx);
    const took = performance.now() - t0;
    assert.ok(slow.requests() > before, 'the hostile registry was reached');
    assert.ok(took >= TIMEOUT_MS - 5 && took < TIMEOUT_MS + SLACK_MS, `resolved after ${took.toFixed(0)} ms`);
    assert.equal(r.outcome, 'retry');
    assert.equal(r.reason, 'RegistryError');
    assert.equal(r.message, 'reconcile took longer than 400ms; will retry with backoff');
    const ready = r.status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason, ready?.message], ['False', 'RegistryError', r.message]);
    assert.equal(r.status.conditions?.find((c) => c.type === 'Reconciling')?.status, 'True');
  });

  it('four trickling mirrors on four workers do not starve a healthy one', async () => {
    const mirrors = new Map<string, ImageMirror>([
      ...['s1', 's2', 's3', 's4'].map((k) => [k, hostile(k)] as const),
      ['ok', healthy('ok')],
    ]);
    const results = new Map<string, ReconcileResult>();
    const q = new WorkQueue();
    let resolveOk!: (at: number) => void;
    const okDone = new Promise<number>((r) => (resolveOk = r));
    const t0 = performance.now();
    for (const k of mirrors.keys()) q.add(k);
    q.run(4, async (key, signal) => {
      const r = await reconciler.reconcile(mirrors.get(key)!, { ...ctx, signal });
      results.set(key, r);
      if (key === 'ok') resolveOk(performance.now() - t0);
    });
    const at = await okDone;
    await q.shutdown({ graceMs: 0 });
    assert.equal(results.get('ok')?.outcome, 'synced', results.get('ok')?.message);
    // The healthy mirror waited for one round of deadlines at most.
    assert.ok(at < TIMEOUT_MS + SLACK_MS, `healthy mirror done after ${at.toFixed(0)} ms`);
    for (const k of ['s1', 's2', 's3', 's4']) assert.equal(results.get(k)?.reason, 'RegistryError', k);
  });

  it('with one worker, a healthy mirror queued behind a trickling one is still reconciled', async () => {
    const order: string[] = [];
    const q = new WorkQueue();
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    q.add('slow');
    q.add('ok');
    q.run(1, async (key, signal) => {
      const r = await reconciler.reconcile(key === 'slow' ? hostile('slow1') : healthy('ok1'), { ...ctx, signal });
      order.push(`${key}:${r.outcome}`);
      if (key === 'ok') done();
    });
    await finished;
    await q.shutdown({ graceMs: 0 });
    assert.deepEqual(order, ['slow:retry', 'ok:synced']);
  });

  it('a limit past what setTimeout can hold (--reconcile-timeout 999999h) does not fire at once', async () => {
    const long = createReconciler({ reconcileTimeoutMs: 999_999 * 3600_000 });
    try {
      const r = await long.reconcile(healthy('long'), ctx);
      assert.equal(r.outcome, 'synced', r.message);
    } finally {
      await long.close();
    }
  });

  it('defaults to 30 minutes', () => {
    assert.equal(DEFAULT_RECONCILE_TIMEOUT_MS, 30 * 60_000);
  });
});
