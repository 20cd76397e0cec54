/**
 * The receiver over real HTTP: routing, each format end to end with its own way of carrying the
 * secret, refusals that enqueue nothing (401, 400, 404, 405, 503) and refusals that do not read the
 * body (413 declared or streamed, 408), the metrics, the sync-delay loop, and a burst coalescing
 * into one reconcile with the real WorkQueue.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hubSignature } from '../../src/hooks/auth.js';
import { MAX_EVENTS_PER_BODY } from '../../src/hooks/formats.js';
import { WEBHOOK_METRIC_NAMES, webhookMetrics } from '../../src/hooks/metrics.js';
import {
  DEFAULT_MAX_BODY_BYTES,
  MAX_PENDING_RECEIPTS,
  MAX_RECEIPTS_PER_KEY,
  createWebhookReceiver,
  type WebhookReceiver,
  type WebhookReceiverOptions,
} from '../../src/hooks/receiver.js';
import { startWebhookServer, type WebhookServerHandle } from '../../src/hooks/server.js';
import { Metrics } from '../../src/metrics.js';
import type { ImageMirror } from '../../src/mirror/types.js';
import { WorkQueue } from '../../src/queue/work-queue.js';
import { EnqueueRecorder, TOKEN, closed, envelope, mirror, rawRequest } from './support.js';

const HOST = 'reg.example.com:5000';
const MIRRORS: ImageMirror[] = [
  mirror('app', { repository: `${HOST}/team/app`, tagPattern: '^v' }),
  mirror('sentinel', { repository: `${HOST}/team/sentinel`, tagPattern: '.*' }),
  mirror('hub', { repository: 'svendowideit/testhook', tags: ['latest'] }),
  mirror('harbor', { repository: 'hub.harbor.com/test-webhook/debian', tags: ['latest'] }),
  mirror('quay', { repository: 'quay.io/dgangaia/test', tagPattern: '.*' }),
  mirror('ghcr', { repository: 'ghcr.io/octo-org/app', semver: '>=1' }),
  mirror('gitlab', { repository: 'registry.gitlab.example.com/group/project', tags: ['latest'] }),
];

interface Rig {
  receiver: WebhookReceiver;
  server: WebhookServerHandle;
  port: number;
  rec: EnqueueRecorder;
  metrics: Metrics;
  post(path: string, body: Buffer | string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
}

const rigs: Rig[] = [];

async function rig(o: Partial<WebhookReceiverOptions> & { headersTimeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<Rig> {
  const rec = new EnqueueRecorder();
  const metrics = new Metrics();
  const { headersTimeoutMs, requestTimeoutMs, ...ro } = o;
  const receiver = createWebhookReceiver({ tokens: () => TOKEN, mirrors: () => MIRRORS, enqueue: rec.enqueue, metrics, ...ro });
  const server = await startWebhookServer({ addr: '127.0.0.1:0', receiver, headersTimeoutMs, requestTimeoutMs });
  const port = Number(server.address.split(':').pop());
  const r: Rig = {
    receiver,
    server,
    port,
    rec,
    metrics,
    async post(path, body, headers = {}) {
      const payload = typeof body === 'string' ? body : new Uint8Array(body);
      const res = await fetch(`${server.url}${path}`, { method: 'POST', body: payload, headers: { 'content-type': 'application/json', ...headers } });
      return { status: res.status, body: await res.text() };
    },
  };
  rigs.push(r);
  return r;
}

const bearer = { authorization: `Bearer ${TOKEN}` };

async function counter(m: Metrics, format: string, result: string): Promise<number> {
  const json = await webhookMetrics(m).events.get();
  return json.values.find((v) => v.labels.format === format && v.labels.result === result)?.value ?? 0;
}

/** Sends a valid push for team/sentinel and waits for it: anything enqueued before it has been by then. */
async function sentinel(r: Rig): Promise<void> {
  const n = r.rec.count('team/sentinel');
  assert.equal((await r.post('/hooks/distribution', envelope(HOST, 'team/sentinel', [`s${n}`]), bearer)).status, 202);
  await r.rec.waitFor('team/sentinel', n + 1);
}

describe('hooks: the receiver over HTTP', function () {
  this.timeout(20_000);

  afterEach(async () => {
    await Promise.all(rigs.splice(0).map((r) => r.server.close()));
  });

  describe('accepted pushes', () => {
    it('distribution: 202, then enqueue(key, why) for the matching mirror only, with the push in `why`', async () => {
      const r = await rig();
      const res = await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1.2.3', 'latest']), bearer);
      assert.equal(res.status, 202);
      assert.deepEqual(JSON.parse(res.body), { accepted: 1, unmatched: 1, ignored: 0, invalid: 0 });
      await r.rec.waitFor('team/app');
      assert.deepEqual(
        r.rec.calls.map((c) => [c.key, c.why]),
        [['team/app', `distribution notification: push to ${HOST}/team/app:v1.2.3`]],
      );
      assert.equal(await counter(r.metrics, 'distribution', 'accepted'), 1);
      assert.equal(await counter(r.metrics, 'distribution', 'unmatched'), 1);
    });

    const fixtures = (name: string) => import('node:fs').then((fs) => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));

    it('harbor with its Auth Header sent verbatim', async () => {
      const r = await rig();
      assert.equal((await r.post('/hooks/harbor', await fixtures('harbor-docs-default.json'), { authorization: TOKEN })).status, 202);
      await r.rec.waitFor('team/harbor');
    });

    it('dockerhub and quay with ?token= (neither can set a header)', async () => {
      const r = await rig();
      assert.equal((await r.post(`/hooks/dockerhub?token=${TOKEN}`, await fixtures('dockerhub-docs.json'))).status, 202);
      assert.equal((await r.post(`/hooks/quay?token=${TOKEN}`, await fixtures('quay-docs.json'))).status, 202);
      await r.rec.waitFor('team/hub');
      await r.rec.waitFor('team/quay');
    });

    it('ghcr signed with X-Hub-Signature-256', async () => {
      const r = await rig();
      const body = JSON.stringify({
        action: 'published',
        registry_package: { name: 'app', package_type: 'CONTAINER', owner: { login: 'Octo-Org' }, package_version: { package_url: 'ghcr.io/octo-org/app:1.4.0', container_metadata: { tag: { name: '1.4.0' } } } },
      });
      const res = await r.post('/hooks/ghcr', body, { 'x-github-event': 'registry_package', 'x-hub-signature-256': hubSignature(body, TOKEN) });
      assert.equal(res.status, 202);
      await r.rec.waitFor('team/ghcr');
      // A ping (sent when the webhook is created) is answered 2xx and counted ignored.
      const ping = JSON.stringify({ zen: 'Design for failure.', hook_id: 7 });
      assert.equal((await r.post('/hooks/ghcr', ping, { 'x-github-event': 'ping', 'x-hub-signature-256': hubSignature(ping, TOKEN) })).status, 202);
      assert.equal(await counter(r.metrics, 'ghcr', 'ignored'), 1);
    });

    it('gitlab with X-Gitlab-Token, the registry host from configuration when the payload has none', async () => {
      const r = await rig({ defaultRegistry: { gitlab: 'registry.gitlab.example.com' } });
      assert.equal((await r.post('/hooks/gitlab', await fixtures('gitlab-registry-spec.json'), { 'x-gitlab-token': TOKEN })).status, 202);
      await r.rec.waitFor('team/gitlab');
      assert.equal(await counter(r.metrics, 'gitlab', 'ignored'), 1); // the delete event
    });
  });

  it('answers before enqueue runs: an enqueue that throws changes nothing for the sender', async () => {
    const errors: string[] = [];
    const log = { error: (m: string) => errors.push(m), warn: () => {}, info: () => {}, debug: () => {}, child: () => log };
    let called!: () => void;
    const enqueued = new Promise<void>((resolve) => (called = resolve));
    const r = await rig({
      log,
      enqueue: () => {
        called();
        throw new Error('queue is shut down');
      },
    });
    assert.equal((await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1']), bearer)).status, 202);
    await enqueued;
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(errors, ['webhook enqueue failed']);
  });

  describe('refusals that enqueue nothing', () => {
    it('401 for a wrong, missing or misplaced secret, and for a bad signature; counted unauthorized', async () => {
      const r = await rig();
      const body = envelope(HOST, 'team/app', ['v9']);
      const refused: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }, { 'x-gitlab-token': TOKEN }];
      for (const headers of refused) {
        const res = await r.post('/hooks/distribution', body, headers);
        assert.equal(res.status, 401);
        assert.ok(!res.body.includes(TOKEN));
      }
      assert.equal((await r.post('/hooks/distribution?token=' + TOKEN, body)).status, 401);
      const gh = JSON.stringify({ action: 'published', registry_package: { package_type: 'CONTAINER', package_version: { package_url: 'ghcr.io/octo-org/app:1.0.0' } } });
      assert.equal((await r.post('/hooks/ghcr', gh, { 'x-hub-signature-256': hubSignature(gh, 'wrong') })).status, 401);
      assert.equal((await r.post('/hooks/ghcr', gh, bearer)).status, 401);
      await sentinel(r);
      assert.deepEqual(r.rec.calls.map((c) => c.key), ['team/sentinel']);
      assert.equal(await counter(r.metrics, 'distribution', 'unauthorized'), 5);
      assert.equal(await counter(r.metrics, 'ghcr', 'unauthorized'), 2);
    });

    it('401 for everything while no secret is configured (fails closed)', async () => {
      const r = await rig({ tokens: () => '  \n' });
      assert.equal((await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1']), { authorization: 'Bearer ' })).status, 401);
      assert.equal((await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1']), bearer)).status, 401);
      assert.equal(r.rec.calls.length, 0);
    });

    it('400 for a body that is not the format, counted invalid; 404 and 405 for other paths and methods', async () => {
      const r = await rig();
      const bad = await r.post('/hooks/distribution', '{"events": [', bearer);
      assert.equal(bad.status, 400);
      assert.match(JSON.parse(bad.body).error, /not valid JSON/);
      assert.equal((await r.post('/hooks/harbor', '[]', bearer)).status, 400);
      assert.equal((await r.post('/hooks/unknown', envelope(HOST, 'team/app', ['v1']), bearer)).status, 404);
      assert.equal((await r.post('/other', envelope(HOST, 'team/app', ['v1']), bearer)).status, 404);
      const get = await fetch(`${r.server.url}/hooks/distribution`, { headers: bearer });
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'POST');
      await get.text();
      await sentinel(r);
      assert.deepEqual(r.rec.calls.map((c) => c.key), ['team/sentinel']);
      assert.equal(await counter(r.metrics, 'distribution', 'invalid'), 1);
      assert.equal(await counter(r.metrics, 'harbor', 'invalid'), 1);
    });

    it('503 while not accepting (a replica that is not the leader), so the sender retries elsewhere', async () => {
      let accepting = false;
      const r = await rig({ accepting: () => accepting });
      const res = await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1']), bearer);
      assert.equal(res.status, 503);
      accepting = true;
      await sentinel(r);
      assert.deepEqual(r.rec.calls.map((c) => c.key), ['team/sentinel']);
    });
  });

  describe('bodies: limits without reading them', () => {
    /** A server on the receiver whose sockets we can inspect: bytesRead is what Node took from the kernel. */
    async function inspectable(o: Partial<WebhookReceiverOptions>): Promise<{ port: number; rec: EnqueueRecorder; metrics: Metrics; lastSocket: () => Promise<Socket>; close: () => Promise<void> }> {
      const rec = new EnqueueRecorder();
      const metrics = new Metrics();
      const receiver = createWebhookReceiver({ tokens: () => TOKEN, mirrors: () => MIRRORS, enqueue: rec.enqueue, metrics, ...o });
      let socket: Socket | undefined;
      let onSocket: ((s: Socket) => void) | undefined;
      const server = http.createServer((req, res) => {
        socket = req.socket;
        onSocket?.(req.socket);
        receiver.handle(req, res);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return {
        port: (server.address() as AddressInfo).port,
        rec,
        metrics,
        lastSocket: () => (socket ? Promise.resolve(socket) : new Promise((resolve) => (onSocket = resolve))),
        close: () =>
          new Promise((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      };
    }

    const MiB = 1024 * 1024;
    const chunks = (total: number, size = 64 * 1024): (() => Buffer | undefined) => {
      let sent = 0;
      const c = Buffer.alloc(size, 0x20);
      return () => {
        if (sent >= total) return undefined;
        sent += size;
        return c;
      };
    };

    it('413 for a declared Content-Length over the limit, before any of the body is read', async () => {
      // A limit well above what arrives with the headers: reading up to it would show in bytesRead.
      const s = await inspectable({ maxBodyBytes: 4 * MiB });
      try {
        const declared = 256 * MiB;
        const head = `POST /hooks/distribution HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${declared}`;
        const { res, socket } = await rawRequest(s.port, head, chunks(declared));
        assert.equal(res.status, 413);
        assert.match(res.head, /connection: close/i);
        socket.destroy();
        const server = await s.lastSocket();
        await closed(server);
        // Headers plus what arrived with them: nowhere near what the client was sending.
        assert.ok(server.bytesRead < 512 * 1024, `server read ${server.bytesRead} bytes`);
        assert.equal(await counter(s.metrics, 'distribution', 'too_large'), 1);
        assert.equal(s.rec.calls.length, 0);
      } finally {
        await s.close();
      }
    });

    it('413 once a chunked body passes the limit; the rest is never read', async () => {
      const limit = 64 * 1024;
      const s = await inspectable({ maxBodyBytes: limit });
      try {
        const head = `POST /hooks/distribution HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked`;
        const piece = Buffer.alloc(16 * 1024, 0x20);
        let left = 256 * MiB;
        const body = (): Buffer | undefined => {
          if (left <= 0) return undefined;
          left -= piece.length;
          return Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
        };
        const { res, socket } = await rawRequest(s.port, head, body);
        assert.equal(res.status, 413);
        socket.destroy();
        const server = await s.lastSocket();
        await closed(server);
        assert.ok(server.bytesRead < limit + 512 * 1024, `server read ${server.bytesRead} bytes`);
      } finally {
        await s.close();
      }
    });

    it('a refused connection is closed by the server right after the answer, even if the sender keeps it open', async () => {
      const s = await inspectable({ maxBodyBytes: 1024 });
      try {
        const head = `POST /hooks/distribution HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: ${64 * MiB}`;
        // allowHalfOpen: this sender does not close when the server does, nor ever on its own.
        const { res, socket } = await rawRequest(s.port, head, chunks(64 * MiB), { allowHalfOpen: true });
        assert.equal(res.status, 413);
        socket.on('error', () => {}); // unread bytes make the close a reset
        await closed(socket);
        const server = await s.lastSocket();
        await closed(server);
        assert.ok(server.bytesRead < 512 * 1024, `server read ${server.bytesRead} bytes`);
      } finally {
        await s.close();
      }
    });

    it('408 when the body stops arriving (bodyTimeoutMs), counted timeout', async () => {
      const s = await inspectable({ bodyTimeoutMs: 100 });
      try {
        const head = `POST /hooks/distribution HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100`;
        let once = false;
        const { res, socket } = await rawRequest(s.port, head, () => (once ? undefined : ((once = true), Buffer.from('{"events":'))));
        assert.equal(res.status, 408);
        socket.destroy();
        assert.equal(await counter(s.metrics, 'distribution', 'timeout'), 1);
      } finally {
        await s.close();
      }
    });

    it(`DEFAULT_MAX_BODY_BYTES (${DEFAULT_MAX_BODY_BYTES}): a body of exactly that size is read, one byte more is 413`, async () => {
      const r = await rig();
      const at = (n: number): Buffer => {
        const base = envelope(HOST, 'team/app', ['v7']);
        const pad = n - base.length - ',"pad":""'.length;
        return Buffer.concat([base.subarray(0, base.length - 1), Buffer.from(`,"pad":"${' '.repeat(pad)}"}`)]);
      };
      assert.equal(at(DEFAULT_MAX_BODY_BYTES).length, DEFAULT_MAX_BODY_BYTES);
      assert.equal((await r.post('/hooks/distribution', at(DEFAULT_MAX_BODY_BYTES), bearer)).status, 202);
      assert.equal((await r.post('/hooks/distribution', at(DEFAULT_MAX_BODY_BYTES + 1), bearer)).status, 413);
      await r.rec.waitFor('team/app');
      assert.equal(r.rec.count('team/app'), 1);
    });

    it('an unauthenticated request is refused before its body is read, however large', async () => {
      const s = await inspectable({});
      try {
        const head = `POST /hooks/distribution HTTP/1.1\r\nHost: x\r\nContent-Length: ${256 * MiB}`;
        const { res, socket } = await rawRequest(s.port, head, chunks(256 * MiB));
        assert.equal(res.status, 401);
        socket.destroy();
        const server = await s.lastSocket();
        await closed(server);
        assert.ok(server.bytesRead < 512 * 1024, `server read ${server.bytesRead} bytes`);
      } finally {
        await s.close();
      }
    });

    it('the listener drops a sender that does not finish its headers (headersTimeoutMs)', async () => {
      const r = await rig({ headersTimeoutMs: 200, requestTimeoutMs: 400 });
      const { connect } = await import('node:net');
      const socket = connect(r.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.resume(); // consume the 408 Node answers with, so the close is seen
      socket.write('POST /hooks/distribution HTTP/1.1\r\nHost: x\r\n');
      const t0 = performance.now();
      await closed(socket);
      assert.ok(performance.now() - t0 < 5000);
    });
  });

  describe('bursts', () => {
    it(`one envelope of ${MAX_EVENTS_PER_BODY} pushes for one mirror enqueues it once`, async () => {
      const r = await rig();
      const tags = Array.from({ length: MAX_EVENTS_PER_BODY }, (_, i) => `v1.0.${i}`);
      assert.equal((await r.post('/hooks/distribution', envelope(HOST, 'team/app', tags), bearer)).status, 202);
      await sentinel(r);
      assert.equal(r.rec.count('team/app'), 1);
      assert.equal(await counter(r.metrics, 'distribution', 'accepted'), MAX_EVENTS_PER_BODY + 1); // and the sentinel's
    });

    it('50 notifications within a second: enqueue at most 50 times, and the real WorkQueue reconciles the mirror once', async () => {
      const queue = new WorkQueue();
      const processed: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let blockerStarted!: () => void;
      const started = new Promise<void>((resolve) => (blockerStarted = resolve));
      let afterDone!: () => void;
      const after = new Promise<void>((resolve) => (afterDone = resolve));
      queue.run(1, async (key) => {
        processed.push(key);
        if (key === 'team/blocker') {
          blockerStarted();
          await gate;
        }
        if (key === 'team/after') afterDone();
      });
      // The one worker is busy with another mirror while the burst arrives, as it would be on a busy controller.
      queue.add('team/blocker');
      await started;
      const rec = new EnqueueRecorder();
      const r = await rig({
        enqueue: (key, why) => {
          // What the front ends do: skip any backoff or resync timer, then queue (a waiting key is not queued twice).
          queue.forget(key);
          queue.cancelDelayed(key);
          queue.add(key);
          rec.enqueue(key, why);
        },
      });
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => r.post('/hooks/distribution', envelope(HOST, 'team/app', [`v2.0.${i}`]), bearer)));
      const took = performance.now() - t0;
      assert.ok(took < 1000, `50 notifications took ${took.toFixed(0)} ms`);
      assert.ok(answers.every((a) => a.status === 202));
      await rec.waitFor('team/app', 50);
      assert.ok(rec.count('team/app') <= 50);
      assert.equal(queue.length, 1); // team/app, once
      release();
      queue.add('team/after');
      await after;
      assert.deepEqual(processed, ['team/blocker', 'team/app', 'team/after']);
      await queue.shutdown({ graceMs: 1000 });
    });

    it('notifications during the mirror\'s own reconcile lead to exactly one more reconcile (it may have listed tags before the push)', async () => {
      const queue = new WorkQueue();
      const processed: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let inFlight!: () => void;
      const running = new Promise<void>((resolve) => (inFlight = resolve));
      let afterDone!: () => void;
      const after = new Promise<void>((resolve) => (afterDone = resolve));
      queue.run(1, async (key) => {
        processed.push(key);
        if (key === 'team/app' && processed.length === 1) {
          inFlight();
          await gate;
        }
        if (key === 'team/after') afterDone();
      });
      queue.add('team/app');
      await running;
      const rec = new EnqueueRecorder();
      const r = await rig({ enqueue: (key, why) => (queue.forget(key), queue.cancelDelayed(key), queue.add(key), rec.enqueue(key, why)) });
      await Promise.all(Array.from({ length: 20 }, (_, i) => r.post('/hooks/distribution', envelope(HOST, 'team/app', [`v3.0.${i}`]), bearer)));
      await rec.waitFor('team/app', 20);
      release();
      // FIFO: were team/app queued twice, it would run again before team/after.
      await new Promise<void>((resolve) => setImmediate(resolve));
      queue.add('team/after');
      await after;
      assert.deepEqual(processed, ['team/app', 'team/app', 'team/after']);
      await queue.shutdown({ graceMs: 1000 });
    });
  });

  describe('sync delay', () => {
    async function histogram(m: Metrics): Promise<{ count: number; sum: number }> {
      const json = await webhookMetrics(m).syncDelay.get();
      const count = json.values.find((v) => v.metricName === 'imagemirror_webhook_sync_delay_seconds_count')?.value ?? 0;
      const sum = json.values.find((v) => v.metricName === 'imagemirror_webhook_sync_delay_seconds_sum')?.value ?? 0;
      return { count, sum };
    }

    it('observeSynced records receipt → reconcile end once; a reconcile that began before the push does not count', async () => {
      let now = 1_000;
      const r = await rig({ now: () => now });
      await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1']), bearer);
      await r.rec.waitFor('team/app');
      r.receiver.observeSynced('team/app', 2_000, 500); // started at 500, before the push at 1000
      assert.deepEqual(await histogram(r.metrics), { count: 0, sum: 0 });
      r.receiver.observeSynced('team/app', 4_000, 1_500);
      assert.deepEqual(await histogram(r.metrics), { count: 1, sum: 3 });
      r.receiver.observeSynced('team/app', 9_000); // nothing pending any more
      r.receiver.observeSynced('team/unknown', 9_000);
      assert.deepEqual(await histogram(r.metrics), { count: 1, sum: 3 });
      now = 10_000;
      await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v2']), bearer);
      await r.rec.waitFor('team/app', 2);
      r.receiver.observeSynced('team/app', 10_250);
      assert.deepEqual(await histogram(r.metrics), { count: 2, sum: 3.25 });
    });

    it(`MAX_RECEIPTS_PER_KEY (${MAX_RECEIPTS_PER_KEY}): past it the newest receipt replaces the last kept one`, async () => {
      let now = 0;
      const r = await rig({ now: () => now });
      const n = MAX_RECEIPTS_PER_KEY + 1;
      for (let i = 1; i <= n; i++) {
        now = i * 1000;
        await r.post('/hooks/distribution', envelope(HOST, 'team/app', [`v${i}`]), bearer);
        await r.rec.waitFor('team/app', i);
      }
      // Kept: 1 s … (MAX-1) s and n s; the receipt at MAX s was replaced. A reconcile started just
      // after (MAX-1) s satisfies the first MAX-1; what is left is the receipt at n s.
      r.receiver.observeSynced('team/app', 100_000, (MAX_RECEIPTS_PER_KEY - 1) * 1000 + 500);
      r.receiver.observeSynced('team/app', 100_000);
      assert.deepEqual(await histogram(r.metrics), { count: 2, sum: (100_000 - 1000) / 1000 + (100_000 - n * 1000) / 1000 });
    });

    it(`MAX_PENDING_RECEIPTS (${MAX_PENDING_RECEIPTS}): mirrors past it are still enqueued, just not timed`, async () => {
      const many = Array.from({ length: MAX_PENDING_RECEIPTS + 1 }, (_, i) => mirror(`m${i}`, { repository: `${HOST}/team/fanout`, tags: ['v1'] }, 'fan'));
      const r = await rig({ mirrors: () => many, now: () => 0 });
      assert.equal((await r.post('/hooks/distribution', envelope(HOST, 'team/fanout', ['v1']), bearer)).status, 202);
      await r.rec.waitFor(`fan/m${MAX_PENDING_RECEIPTS}`);
      assert.equal(r.rec.calls.length, MAX_PENDING_RECEIPTS + 1);
      for (const m of many) r.receiver.observeSynced(`fan/${m.metadata.name}`, 1000);
      assert.equal((await histogram(r.metrics)).count, MAX_PENDING_RECEIPTS);
    });
  });

  it('registers both metrics once per registry, with format and result labels only', async () => {
    const m = new Metrics();
    assert.equal(webhookMetrics(m), webhookMetrics(m));
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    for (const n of WEBHOOK_METRIC_NAMES) assert.ok(names.includes(n), n);
    const r = await rig();
    await r.post('/hooks/distribution', envelope(HOST, 'team/app', ['v1']), { authorization: 'Bearer nope' });
    const text = await r.metrics.exposition();
    assert.match(text, /imagemirror_webhook_events_total\{format="distribution",result="unauthorized"\} 1/);
    assert.ok(!text.includes('nope') && !text.includes(TOKEN));
  });
});
