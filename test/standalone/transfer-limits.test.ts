import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RegistryClient } from '../../src/oci/registry.js';
import { runSync } from '../../src/standalone/sync.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

/** An HTTP relay in front of a registry that records how many requests were in flight at once. */
async function inFlightCounter(upstream: TestRegistry): Promise<{ host: string; max(): number; connections(): number; requests(): number; close(): Promise<void> }> {
  let connections = 0;
  let requests = 0;
  const [uhost, uport] = upstream.host.split(':') as [string, string];
  let inFlight = 0;
  let max = 0;
  const server = createServer((req, res) => {
    inFlight++;
    requests++;
    max = Math.max(max, inFlight);
    let counted = true;
    const finish = () => {
      if (counted) inFlight--;
      counted = false;
    };
    res.on('finish', finish);
    res.on('close', finish);
    const { connection: _c, ...reqHeaders } = req.headers;
    const up = request({ host: uhost, port: Number(uport), method: req.method, path: req.url, headers: { ...reqHeaders, host: upstream.host } }, (ur) => {
      // The registry's Location headers name its own host: rewrite them so the client stays on the relay.
      const headers = { ...ur.headers };
      // Hop-by-hop headers belong to the relay's own upstream connection, not the client's.
      delete headers.connection;
      delete headers['keep-alive'];
      if (typeof headers.location === 'string') headers.location = headers.location.replace(upstream.host, `127.0.0.1:${port}`);
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', () => connections++);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    max: () => max,
    connections: () => connections,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('transfer limits (--registry-connections, --blob-concurrency)', function () {
  this.timeout(60_000);
  let src: TestRegistry;
  let dst: TestRegistry;
  let dir: string;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    const client = new RegistryClient(src.host);
    await pushImage(client.repository('app/web'), buildImage({ layers: [1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20] }), '1');
    await client.close();
    dir = await mkdtemp(join(tmpdir(), 'limits-'));
  });
  after(async () => {
    await Promise.all([src.stop(), dst.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps connections alive across HEADs: a no-op re-sync of 3 target tags uses one connection', async () => {
    const relay = await inFlightCounter(dst);
    try {
      const file = join(dir, 'keepalive.yaml');
      await writeFile(file, `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: keepalive}\nspec:\n  source: {repository: ${src.host}/app/web, tags: ["1"]}\n  targets: [{repository: ${relay.host}/ka/web, tags: [a, b, c]}]\n`);
      const first = await runSync({ files: [file], stdout: sink(), stderr: sink(), dockerConfig: '/nonexistent' });
      assert.equal(first.exitCode, 0);
      const before = { connections: relay.connections(), requests: relay.requests() };
      // One connection allowed: without keep-alive after HEAD (undici's default) each HEAD would open its own.
      const again = await runSync({ files: [file], stdout: sink(), stderr: sink(), dockerConfig: '/nonexistent', registryConnections: 1 });
      assert.deepEqual(again.mirrors[0]?.targets.map((t) => t.action), ['UpToDate', 'UpToDate', 'UpToDate']);
      assert.equal(relay.requests() - before.requests, 3, 'one HEAD per target tag');
      assert.equal(relay.connections() - before.connections, 1, 'the three HEADs share one connection');
    } finally {
      await relay.close();
    }
  });

  async function syncThrough(name: string, flags: { blobConcurrency?: number; registryConnections?: number }): Promise<number> {
    const relay = await inFlightCounter(dst);
    try {
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}}\nspec:\n  source: {repository: ${src.host}/app/web, tags: ["1"]}\n  targets: [{repository: ${relay.host}/${name}/web}]\n`);
      const r = await runSync({ files: [file], stdout: sink(), stderr: sink(), dockerConfig: '/nonexistent', ...flags });
      assert.equal(r.exitCode, 0, r.mirrors[0]?.message);
      assert.equal(r.mirrors[0]?.targets[0]?.blobs.upload, 7);
      return relay.max();
    } finally {
      await relay.close();
    }
  }

  it('uploads blobs in parallel by default', async () => {
    assert.ok((await syncThrough('parallel', {})) >= 2);
  });

  it('--registry-connections 1 keeps one request in flight to the registry', async () => {
    assert.equal(await syncThrough('one-conn', { registryConnections: 1 }), 1);
  });

  it('--blob-concurrency 1 moves one blob at a time', async () => {
    assert.equal(await syncThrough('one-blob', { blobConcurrency: 1 }), 1);
  });
});
