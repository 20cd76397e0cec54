import assert from 'node:assert/strict';
import http from 'node:http';
import { parseListenAddr, startServer } from '../../src/server.js';
import { Metrics } from '../../src/metrics.js';

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP server (/metrics, /healthz, /readyz, extra routes)', () => {
  it('parses listen addresses', () => {
    assert.deepEqual(parseListenAddr(':8080'), { host: undefined, port: 8080 });
    assert.deepEqual(parseListenAddr('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseListenAddr('[::1]:9090'), { host: '::1', port: 9090 });
    assert.deepEqual(parseListenAddr('9090'), { host: undefined, port: 9090 });
    assert.throws(() => parseListenAddr('localhost:http'), /invalid listen address/);
    assert.throws(() => parseListenAddr(':70000'), /bad port/);
  });

  it('serves the exposition, readiness from the callback, liveness, and extra routes', async () => {
    const metrics = new Metrics();
    metrics.workqueueDepth.set(3);
    let ready = false;
    let healthy = true;
    const s = await startServer({
      addr: '127.0.0.1:0',
      metrics,
      ready: () => ready,
      healthy: () => healthy,
      routes: { '/status': () => ({ body: JSON.stringify({ mirrors: [] }) }) },
    });
    try {
      assert.match(s.address, /^127\.0\.0\.1:\d+$/);
      const m = await get(`${s.url}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.type, /^text\/plain/);
      assert.match(m.body, /^imagemirror_workqueue_depth 3$/m);
      assert.equal((await get(`${s.url}/readyz`)).status, 503);
      ready = true;
      assert.equal((await get(`${s.url}/readyz`)).status, 200);
      assert.equal((await get(`${s.url}/healthz`)).status, 200);
      healthy = false;
      assert.equal((await get(`${s.url}/healthz`)).status, 503);
      const st = await get(`${s.url}/status`);
      assert.equal(st.status, 200);
      assert.equal(st.type, 'application/json');
      assert.deepEqual(JSON.parse(st.body), { mirrors: [] });
      assert.equal((await get(`${s.url}/nope`)).status, 404);
      assert.equal((await get(`${s.url}/metrics`, 'POST')).status, 405);
    } finally {
      await s.close();
    }
    await assert.rejects(get(`${s.url}/healthz`));
  });
});
