import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { RegistryClient } from '../../src/oci/registry.js';
import { OciError } from '../../src/oci/errors.js';
import { errorFromStatus, nextLink } from '../../src/oci/http.js';
import { backoffDelay, parseRetryAfter, retryPolicy } from '../../src/oci/retry.js';
import { rangeEnd, withDigest } from '../../src/oci/upload.js';
import { freePort } from '../support/registry.js';

const D = 'sha256:' + 'ab'.repeat(32);

describe('registry transport pieces', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  it('backs off exponentially with jitter, bounded, and honours Retry-After up to the cap', () => {
    const p = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
    assert.equal(backoffDelay(p, 1, undefined, () => 0), 50);
    assert.equal(backoffDelay(p, 1, undefined, () => 1), 100);
    assert.equal(backoffDelay(p, 3, undefined, () => 1), 400);
    assert.equal(backoffDelay(p, 10, undefined, () => 1), 1000);
    assert.equal(backoffDelay(p, 1, 700), 700);
    assert.equal(backoffDelay(p, 1, 60_000), 1000);
  });

  it('reads the next page from a Link header', () => {
    assert.equal(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"'), '/v2/a/tags/list?n=2&last=b');
    assert.equal(nextLink('<https://x/prev>; rel="prev", <https://x/next>; rel=next'), 'https://x/next');
    assert.equal(nextLink(undefined), undefined);
    assert.equal(nextLink('<https://x/prev>; rel="prev"'), undefined);
  });

  it('appends the digest to an upload Location, keeping its query', () => {
    const base = new URL('http://r:5000/v2/a/blobs/uploads/');
    assert.equal(withDigest(new URL('/v2/a/blobs/uploads/u1?_state=x%3Dy', base), D), `http://r:5000/v2/a/blobs/uploads/u1?_state=x%3Dy&digest=${encodeURIComponent(D)}`);
    assert.equal(withDigest(new URL('u2', base), D), `http://r:5000/v2/a/blobs/uploads/u2?digest=${encodeURIComponent(D)}`);
  });

  it('reads upload Range in both spellings', () => {
    assert.equal(rangeEnd('0-99'), 99);
    assert.equal(rangeEnd('bytes=0-99'), 99);
    assert.equal(rangeEnd('junk'), undefined);
  });

  it('turns error bodies into typed errors and tolerates non-JSON', () => {
    const ctx = { registry: 'r', repository: 'a', what: 'GET manifest r/a:1', notFound: 'MANIFEST_UNKNOWN' as const };
    const e = errorFromStatus(400, '{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown\\nto registry"}]}', undefined, ctx);
    assert.equal(e.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.equal(e.message, 'GET manifest r/a:1: 400 MANIFEST_BLOB_UNKNOWN: blob unknown to registry');
    assert.equal(errorFromStatus(404, '<html>nope</html>', undefined, ctx).code, 'MANIFEST_UNKNOWN');
    const busy = errorFromStatus(429, '', '2', ctx);
    assert.equal(busy.code, 'TOO_MANY_REQUESTS');
    assert.equal(busy.retryAfterMs, 2000);
    assert.equal(busy.retryable, true);
    assert.equal(errorFromStatus(502, 'Bad Gateway', undefined, ctx).code, 'SERVER_ERROR');
    assert.equal(errorFromStatus(403, '', undefined, ctx).code, 'DENIED');
  });

  describe('timeouts and network errors', () => {
    let server: Server;
    const sockets: Socket[] = [];
    let port: number;
    before(async () => {
      // Accepts connections and never answers: a hung registry.
      server = createServer((s) => {
        sockets.push(s);
        s.on('error', () => undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      port = (server.address() as { port: number }).port;
    });
    after(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('times out waiting for headers', async () => {
      const c = new RegistryClient(`127.0.0.1:${port}`, { timeouts: { headersMs: 200 }, retry: { attempts: 1 } });
      try {
        const t0 = Date.now();
        await assert.rejects(c.repository('a').headManifest('v1'), (e: unknown) => {
          assert.ok(e instanceof OciError);
          assert.equal(e.code, 'TIMEOUT');
          assert.equal(e.retryable, true);
          return true;
        });
        assert.ok(Date.now() - t0 < 5000);
      } finally {
        await c.close();
      }
    });

    it('reports a refused connection as a retryable NETWORK error after bounded attempts', async () => {
      const dead = await freePort();
      const events: Array<string | number> = [];
      const c = new RegistryClient(`127.0.0.1:${dead}`, { retry: { attempts: 3, baseDelayMs: 1 }, onRequest: (e) => events.push(e.status) });
      try {
        await assert.rejects(c.repository('a').listTags(), (e: unknown) => {
          assert.ok(e instanceof OciError);
          assert.equal(e.code, 'NETWORK');
          assert.equal(e.retryable, true);
          assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${dead}`));
          return true;
        });
        assert.deepEqual(events, ['error', 'error', 'error']);
      } finally {
        await c.close();
      }
    });
  });
});
