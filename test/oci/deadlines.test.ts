import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/oci/registry.js';
import { OciError } from '../../src/oci/errors.js';
import { LOW_SPEED_BYTES, LOW_SPEED_WINDOW_MS, REQUEST_DEADLINE_MS, Transport, type TransportTimeouts } from '../../src/oci/http.js';
import { Authenticator, MAX_TOKEN_RESPONSE_BYTES, TOKEN_DEADLINE_MS } from '../../src/oci/auth.js';
import { anonymous } from '../../src/oci/credentials.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { startTrickleServer, type Behaviour, type TrickleServer } from '../support/trickle-server.js';

const D = 'sha256:' + 'ab'.repeat(32);
/** Scheduling slack on a loaded CI machine: bounds below are deadline + this. */
const SLACK_MS = 1500;

function client(host: string, timeouts: TransportTimeouts): RegistryClient {
  // A variable, not a literal: RegistryClientOptions declares the older timeout fields only, and
  // passes the object to the transport as is.
  return new RegistryClient(host, { timeouts, retry: { attempts: 1 } });
}

/** Awaits the rejection and returns it with the time it took. */
async function timed(p: Promise<unknown>): Promise<{ e: OciError; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    return { e, ms: performance.now() - t0 };
  }
  assert.fail('expected a rejection');
}

async function drain(s: Readable): Promise<number> {
  let n = 0;
  for await (const c of s) n += (c as Buffer).length;
  return n;
}

function oneLineTimeout(e: OciError, host: string, re?: RegExp): void {
  assert.equal(e.code, 'TIMEOUT', e.message);
  assert.equal(e.retryable, true);
  assert.ok(!e.message.includes('\n'), e.message);
  assert.ok(e.message.includes(host), `names the registry: ${e.message}`);
  if (re) assert.match(e.message, re);
}

describe('deadlines: a slow registry cannot hold a worker', function () {
  this.timeout(20_000);
  let srv: TrickleServer;
  let route: (method: string, path: string, base: string) => Behaviour;
  before(async () => {
    srv = await startTrickleServer((req, base) => route(req.method ?? '', (req.url ?? '').split('?')[0]!, base));
  });
  beforeEach(() => srv.reset());
  after(async () => srv.stop());

  it('defaults are the named constants', () => {
    const t = new Transport('r.example');
    assert.deepEqual(t.limits, { requestMs: REQUEST_DEADLINE_MS, lowSpeedBytes: LOW_SPEED_BYTES, lowSpeedWindowMs: LOW_SPEED_WINDOW_MS, tokenMs: undefined });
    assert.equal(new Authenticator({ registry: 'r.example', credentials: anonymous }).deadlineMs, TOKEN_DEADLINE_MS);
    const custom = new Transport('r.example', { timeouts: { requestMs: 5, lowSpeedBytes: 6, lowSpeedWindowMs: 7, tokenMs: 8 } });
    assert.deepEqual(custom.limits, { requestMs: 5, lowSpeedBytes: 6, lowSpeedWindowMs: 7, tokenMs: 8 });
  });

  it('every bounded exchange (HEAD, manifest, tags, referrers, upload POST) ends with a one-line TIMEOUT within its total deadline, headers and body together', async () => {
    const requestMs = 300;
    route = (method, path) => {
      // Status lines trickled for HEAD and upload POST; bodies trickled for the GETs.
      if (method === 'HEAD' || method === 'POST') return { kind: 'trickle-head', intervalMs: 20 };
      return { kind: 'trickle-body', contentLength: 100_000, intervalMs: 20, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } };
    };
    const c = client(srv.host, { requestMs });
    try {
      const repo = c.repository('a');
      const blob = Buffer.from('x');
      const ops: Array<[string, Promise<unknown>]> = [
        ['HEAD manifest', repo.headManifest('v1')],
        ['GET manifest', repo.getManifest('v1')],
        ['list tags', repo.listTags()],
        ['referrers', repo.referrers(D)],
        ['start upload', repo.putBlob({ mediaType: 'x', digest: sha256Digest(blob), size: 1 }, async () => ({ stream: Readable.from([blob]), size: 1 }))],
      ];
      const results = await Promise.all(ops.map(async ([name, p]) => [name, await timed(p)] as const));
      for (const [name, { e, ms }] of results) {
        oneLineTimeout(e, srv.host, /timed out \(no complete response within 0\.3 s\)/);
        assert.ok(ms >= requestMs - 50, `${name}: not before the deadline (${ms} ms)`);
        assert.ok(ms < requestMs + SLACK_MS, `${name}: ${ms} ms`);
      }
    } finally {
      await c.close();
    }
  });

  it('the HTTPS probe of an insecure registry that accepts and never answers ends within the request deadline', async () => {
    const sockets: Socket[] = [];
    const hung = createServer((sock) => void sockets.push(sock.on('error', () => undefined)));
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const host = `127.0.0.1:${(hung.address() as AddressInfo).port}`;
    const timeouts: TransportTimeouts = { requestMs: 300 };
    const c = new RegistryClient(host, { insecure: true, timeouts, retry: { attempts: 1 } });
    try {
      const { e, ms } = await timed(c.repository('a').headManifest('v1'));
      oneLineTimeout(e, host, new RegExp(`GET /v2/ on ${host}: timed out \\(no complete response within 0\\.3 s\\)`));
      assert.ok(ms < 300 + SLACK_MS, `${ms} ms`);
    } finally {
      // The abandoned handshake ends when the server hangs up (closing the client waits for it).
      for (const s of sockets) s.destroy();
      await c.close();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });

  it('a blob download trickling below the minimum rate fails TIMEOUT naming the registry and the blob, one window after it stalls', async () => {
    const windowMs = 200;
    route = () => ({ kind: 'trickle-body', contentLength: 1 << 20, burst: 64 * 1024, intervalMs: 10 });
    const c = client(srv.host, { lowSpeedBytes: 4096, lowSpeedWindowMs: windowMs, requestMs: 60_000 });
    try {
      const { stream } = await c.repository('a').getBlob(D);
      const { e, ms } = await timed(drain(stream));
      oneLineTimeout(e, srv.host, new RegExp(`GET blob ${srv.host}/a@${D}: timed out \\(the registry sent fewer than 4096 bytes in 0\\.2 s\\)`));
      // The burst fills the first window; the next one sees the trickle.
      assert.ok(ms < 2 * windowMs + SLACK_MS, `${ms} ms`);
    } finally {
      await c.close();
    }
  });

  it('a blob download above the minimum rate may take longer than the total deadline', async () => {
    route = () => ({ kind: 'trickle-body', contentLength: 40_000, perTick: 1000, intervalMs: 10 });
    const c = client(srv.host, { requestMs: 100, lowSpeedBytes: 1000, lowSpeedWindowMs: 100 });
    try {
      const t0 = performance.now();
      const { stream } = await c.repository('a').getBlob(D);
      assert.equal(await drain(stream), 40_000);
      assert.ok(performance.now() - t0 > 100, 'the transfer outlasted the total deadline and was not cut');
    } finally {
      await c.close();
    }
  });

  it('a consumer that stops reading (backpressure) is not a slow registry', async () => {
    const windowMs = 100;
    // More than the body's buffer and the socket's, so the server is held up by us.
    const total = 8 << 20;
    route = () => ({ kind: 'flood', contentLength: total, total });
    const c = client(srv.host, { lowSpeedBytes: 1024, lowSpeedWindowMs: windowMs, requestMs: 60_000 });
    try {
      const { stream } = await c.repository('a').getBlob(D);
      // Our side is the slow one for several windows (as when the target registry is slow).
      await new Promise((r) => setTimeout(r, 5 * windowMs));
      assert.equal(await drain(stream), total);
    } finally {
      await c.close();
    }
  });

  for (const chunked of [false, true]) {
    it(`an upload the registry stops reading fails TIMEOUT naming the blob (${chunked ? 'PATCH chunks' : 'monolithic PUT'})`, async () => {
      const windowMs = 200;
      route = (method, path, base) => {
        if (method === 'POST') return { kind: 'answer', status: 202, headers: { location: `${base}/upload/1`, range: '0-0' } };
        if (method === 'DELETE') return { kind: 'answer', status: 204 };
        if (path === '/upload/1') return { kind: 'swallow' };
        return { kind: 'answer', status: 404 };
      };
      // Larger than what the loopback socket buffers absorb.
      const bytes = randomBytes(24 << 20);
      const digest = sha256Digest(bytes);
      const c = new RegistryClient(srv.host, {
        timeouts: { lowSpeedBytes: 256 * 1024, lowSpeedWindowMs: windowMs, requestMs: 60_000 } as TransportTimeouts,
        retry: { attempts: 1 },
        chunkSize: chunked ? 12 << 20 : undefined,
      });
      try {
        const { e, ms } = await timed(
          c.repository('a').putBlob({ mediaType: 'x', digest, size: bytes.length }, async () => ({ stream: Readable.from([bytes], { objectMode: false }), size: bytes.length })),
        );
        oneLineTimeout(e, srv.host, new RegExp(`upload ${digest} to ${srv.host}/a: timed out \\(the registry took fewer than 262144 bytes in 0\\.2 s\\)`));
        assert.ok(ms < 10 * windowMs + SLACK_MS, `${ms} ms`);
      } finally {
        await c.close();
      }
    });
  }

  it('an upload the registry took in full but never answers fails TIMEOUT within the request deadline after the last byte', async () => {
    route = (method, _path, base) => {
      if (method === 'POST') return { kind: 'answer', status: 202, headers: { location: `${base}/upload/2` } };
      if (method === 'DELETE') return { kind: 'answer', status: 204 };
      return { kind: 'trickle-head', intervalMs: 20 };
    };
    const bytes = randomBytes(256 * 1024);
    const digest = sha256Digest(bytes);
    const c = client(srv.host, { requestMs: 300, lowSpeedBytes: 1024, lowSpeedWindowMs: 100 });
    try {
      const { e, ms } = await timed(c.repository('a').putBlob({ mediaType: 'x', digest, size: bytes.length }, async () => ({ stream: Readable.from([bytes]), size: bytes.length })));
      oneLineTimeout(e, srv.host, new RegExp(`upload ${digest} to ${srv.host}/a: timed out \\(no complete response after the upload within 0\\.3 s\\)`));
      assert.ok(ms < 300 + SLACK_MS, `${ms} ms`);
    } finally {
      await c.close();
    }
  });

  describe('token requests', () => {
    const challenge = (base: string): Behaviour => ({ kind: 'answer', status: 401, headers: { 'www-authenticate': `Bearer realm="${base}/token",service="trickle"` } });

    it('a token endpoint trickling its answer fails TIMEOUT within the token deadline', async () => {
      route = (_m, path, base) => (path === '/token' ? { kind: 'trickle-body', contentLength: 10_000, intervalMs: 20 } : challenge(base));
      const c = client(srv.host, { tokenMs: 300 });
      try {
        const { e, ms } = await timed(c.repository('a').headManifest('v1'));
        oneLineTimeout(e, srv.host, new RegExp(`token request for ${srv.host} to ${srv.url}/token timed out \\(no complete answer within 0\\.3 s\\)`));
        assert.ok(ms >= 250 && ms < 300 + SLACK_MS, `${ms} ms`);
      } finally {
        await c.close();
      }
    });

    it('a token realm whose TLS handshake hangs ends within the token deadline', async () => {
      const sockets: Socket[] = [];
      const hung = createServer((sock) => void sockets.push(sock.on('error', () => undefined)));
      await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
      const realm = `https://127.0.0.1:${(hung.address() as AddressInfo).port}/token`;
      const a = new Authenticator({ registry: 'r.example', credentials: anonymous, timeoutMs: 300 });
      try {
        await a.onUnauthorized(`Bearer realm="${realm}",service="s"`, ['repository:a:pull']);
        const { e, ms } = await timed(a.authorization(['repository:a:pull']));
        oneLineTimeout(e, 'r.example', new RegExp(`token request for r\\.example to ${realm.replace(/\./g, '\\.')} timed out`));
        assert.ok(ms < 300 + SLACK_MS, `${ms} ms`);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => hung.close(() => r()));
      }
    });

    it('a token response past the cap is refused while streaming: PROTOCOL, and far fewer bytes read than sent', async () => {
      const huge = 300 << 20;
      route = (_m, path, base) => (path === '/token' ? { kind: 'flood', total: huge } : challenge(base));
      const c = client(srv.host, {});
      try {
        const t0 = performance.now();
        const closed = srv.closedByClient('/token');
        const { e } = await timed(c.repository('a').headManifest('v1'));
        assert.equal(e.code, 'PROTOCOL', e.message);
        assert.match(e.message, new RegExp(`token request for ${srv.host} to ${srv.url}/token: response larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`));
        await closed;
        const written = srv.written.get('/token') ?? 0;
        // What the server managed to write before we hung up: the cap plus socket buffers.
        assert.ok(written < MAX_TOKEN_RESPONSE_BYTES + (16 << 20), `${written} bytes written`);
        assert.ok(performance.now() - t0 < 5000);
      } finally {
        await c.close();
      }
    });

    it('a declared Content-Length past the cap is refused before reading a byte of the body', async () => {
      // Headers promise 300 MB and the body does not come: only the declared length can decide.
      route = (_m, path, base) => (path === '/token' ? { kind: 'trickle-body', contentLength: 300 << 20, intervalMs: 10_000 } : challenge(base));
      const c = client(srv.host, { tokenMs: 10_000 });
      try {
        const { e, ms } = await timed(c.repository('a').headManifest('v1'));
        assert.equal(e.code, 'PROTOCOL', e.message);
        assert.ok(ms < 2000, `${ms} ms`);
      } finally {
        await c.close();
      }
    });

    it('a token response just under the cap is accepted', async () => {
      const token = 'tok-' + 'z'.repeat(40);
      const head = `{"token":"${token}","pad":"`;
      const body = head + 'p'.repeat(MAX_TOKEN_RESPONSE_BYTES - head.length - 2) + '"}';
      assert.equal(Buffer.byteLength(body), MAX_TOKEN_RESPONSE_BYTES);
      let sawToken = false;
      route = (method, path, base) => {
        if (path === '/token') return { kind: 'answer', status: 200, headers: { 'content-type': 'application/json' }, body };
        return challenge(base);
      };
      const a = new Authenticator({ registry: srv.host, credentials: anonymous });
      await a.onUnauthorized(`Bearer realm="${srv.url}/token",service="s"`, ['repository:a:pull']);
      sawToken = (await a.authorization(['repository:a:pull'])) === `Bearer ${token}`;
      assert.ok(sawToken);
      // One byte more is refused.
      route = (method, path, base) => (path === '/token' ? { kind: 'answer', status: 200, body: body.replace('"}', ' "}') } : challenge(base));
      const b = new Authenticator({ registry: srv.host, credentials: anonymous });
      await b.onUnauthorized(`Bearer realm="${srv.url}/token",service="s"`, ['repository:a:pull']);
      await assert.rejects(b.authorization(['repository:a:pull']), (e: unknown) => e instanceof OciError && e.code === 'PROTOCOL');
    });
  });
});
