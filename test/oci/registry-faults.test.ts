/**
 * Paths docker-registry 2.8.2 cannot exercise on its own, through a thin proxy in front of it
 * that adds exactly one behaviour each.
 */
import assert from 'node:assert/strict';
import { RegistryClient, type RequestEvent } from '../../src/oci/registry.js';
import { OciError } from '../../src/oci/errors.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import type { BlobReader } from '../../src/oci/content.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { buildImage, opener, pushImage, pushReferrer, randomBlob, SIGNATURE_ARTIFACT } from '../support/images.js';

const creds: CredentialProvider = { get: async () => ({ kind: 'basic', username: 'alice', password: 'alice-pw' }) };

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('registry client through a fault proxy', function () {
  let reg: TestRegistry;
  let direct: RegistryClient;
  const proxies: FaultProxy[] = [];
  const clients: RegistryClient[] = [];

  async function proxy(o: Parameters<typeof startFaultProxy>[1]): Promise<FaultProxy> {
    const p = await startFaultProxy(reg, o);
    proxies.push(p);
    return p;
  }
  function client(host: string, o: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient {
    const c = new RegistryClient(host, { credentials: creds, retry: { baseDelayMs: 10, maxDelayMs: 2000 }, ...o });
    clients.push(c);
    return c;
  }

  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: { alice: 'alice-pw' } });
    direct = new RegistryClient(reg.host, { credentials: creds });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const p of proxies.splice(0)) await p.stop();
  });
  after(async () => {
    await direct?.close();
    await reg?.stop();
  });

  it('follows Link pagination of tags/list', async () => {
    const img = await pushImage(direct.repository('page/app'), buildImage(), 't0');
    const want = ['t0'];
    for (let i = 1; i < 7; i++) {
      await direct.repository('page/app').putManifest(`t${i}`, { mediaType: img.mediaType, bytes: img.bytes });
      want.push(`t${i}`);
    }
    const p = await proxy({ paginateTags: 3 });
    const tags = await client(p.host).repository('page/app').listTags();
    assert.deepEqual(tags, want);
    const pages = p.log.filter((e) => e.path.includes('/tags/list') && e.status === 200);
    assert.equal(pages.length, 3);
    assert.match(pages[1]!.path, /last=t2/);
  });

  it('uses the referrers API when there is one, and remembers that it exists', async () => {
    const repo = direct.repository('refs/app');
    const img = await pushImage(repo, buildImage(), 'v1');
    const ref = await pushReferrer(repo, img.descriptor);
    const p = await proxy({ referrers: true });
    const caps: Array<[string, boolean]> = [];
    const c = client(p.host, { onCapability: (k, v) => caps.push([k, v]) });
    const got = await c.repository('refs/app').referrers(img.digest);
    assert.deepEqual(got, [{ ...ref.descriptor, artifactType: SIGNATURE_ARTIFACT }]);
    assert.deepEqual(caps, [['referrers_api', true]]);
    assert.deepEqual(await c.repository('refs/app').referrers(buildImage().digest), []);
  });

  it('follows a blob redirect to another host without sending Authorization there', async () => {
    const b = randomBlob(20_000);
    await direct.repository('redir/app').putBlob(b.descriptor, opener(b.bytes));
    const p = await proxy({ redirectBlobs: true });
    const c = client(p.host);
    const r = await c.repository('redir/app').getBlob(b.descriptor.digest);
    assert.deepEqual(await readAll(r.stream), b.bytes);
    const toProxy = p.log.filter((e) => e.path.includes('/blobs/') && e.status === 307);
    assert.equal(toProxy.length, 1);
    assert.equal(toProxy[0]!.authorization, true, 'the registry itself got the credentials');
    assert.equal(p.blobHost!.log.length, 1);
    assert.equal(p.blobHost!.log[0]!.status, 200);
    assert.equal(p.blobHost!.log[0]!.authorization, false, 'Authorization must not cross to another host');
  });

  it('a HEAD without Docker-Content-Digest falls back to GET and hashes the body', async () => {
    const img = await pushImage(direct.repository('nodigest/app'), buildImage(), 'v1');
    const p = await proxy({ stripManifestDigest: true });
    const c = client(p.host);
    assert.deepEqual(await c.repository('nodigest/app').headManifest('v1'), { digest: img.digest, mediaType: img.mediaType, size: img.size });
    assert.deepEqual(
      p.log.filter((e) => e.status === 200).map((e) => e.method),
      ['HEAD', 'GET'],
    );
  });

  it('retries 429 honouring Retry-After', async () => {
    const img = await pushImage(direct.repository('retry/app'), buildImage(), 'v1');
    const p = await proxy({ failFirst: { count: 1, status: 429, retryAfter: '1', pathIncludes: '/manifests/' } });
    const events: RequestEvent[] = [];
    const c = client(p.host, { onRequest: (e) => events.push(e) });
    const t0 = Date.now();
    const head = await c.repository('retry/app').headManifest('v1');
    const elapsed = Date.now() - t0;
    assert.equal(head?.digest, img.digest);
    assert.ok(elapsed >= 900, `waited ${elapsed} ms`);
    assert.deepEqual(events.map((e) => e.status), [429, 401, 200]);
  });

  it('retries 503 with backoff and gives up after the configured attempts', async () => {
    const img = await pushImage(direct.repository('retry/app2'), buildImage(), 'v1');
    const p = await proxy({ failFirst: { count: 2, status: 503, pathIncludes: '/manifests/' } });
    const c = client(p.host, { retry: { attempts: 3, baseDelayMs: 5 } });
    assert.equal((await c.repository('retry/app2').getManifest('v1')).digest, img.digest);
    const p2 = await proxy({ failFirst: { count: 10, status: 503, pathIncludes: '/manifests/' } });
    const c2 = client(p2.host, { retry: { attempts: 2, baseDelayMs: 5 } });
    await assert.rejects(c2.repository('retry/app2').getManifest('v1'), (e: unknown) => {
      assert.ok(e instanceof OciError);
      assert.equal(e.code, 'SERVER_ERROR');
      assert.equal(e.status, 503);
      assert.equal(e.retryable, true);
      return true;
    });
    assert.equal(p2.log.filter((e) => e.status === 503).length, 2);
  });

  it('aborts an upload whose source is corrupted in transit; nothing is committed under the digest', async () => {
    const b = randomBlob(200_000);
    await direct.repository('corrupt/src').putBlob(b.descriptor, opener(b.bytes));
    const p = await proxy({ corruptBlobs: true });
    const source = client(p.host).repository('corrupt/src');
    const target = client(reg.host, { retry: { attempts: 1 } }).repository('corrupt/dst');
    let opens = 0;
    const open = async (offset: number): Promise<BlobReader> => {
      opens++;
      return source.getBlob(b.descriptor.digest, offset);
    };
    await assert.rejects(target.putBlob(b.descriptor, open), (e: unknown) => {
      assert.ok(e instanceof OciError);
      assert.equal(e.code, 'DIGEST_INVALID');
      assert.match(e.message, /corrupt\/dst/);
      return true;
    });
    assert.equal(opens, 1);
    assert.equal(await direct.repository('corrupt/dst').headBlob(b.descriptor.digest), undefined);
    const puts = (await reg.accessLog()).filter((e) => e.method === 'PUT' && e.path.startsWith('/v2/corrupt/dst/'));
    assert.ok(puts.every((e) => e.status !== 201), 'no PUT was committed');
  });

  for (const chunked of [false, true]) {
    it(`refuses a manifest over 4 MiB without reading it all (${chunked ? 'no Content-Length' : 'Content-Length'})`, async () => {
      await pushImage(direct.repository('big/app'), buildImage(), 'v1');
      const p = await proxy({ padManifests: { bytes: 64 * 1024 * 1024, chunked } });
      await assert.rejects(client(p.host).repository('big/app').getManifest('v1'), (e: unknown) => {
        assert.ok(e instanceof OciError);
        assert.equal(e.code, 'MANIFEST_TOO_LARGE');
        assert.match(e.message, /big\/app:v1/);
        return true;
      });
      const sent = p.padded.at(-1)!;
      // Wait for the proxy to notice the hang-up (an event, polled with a deadline).
      const until = Date.now() + 5000;
      while (!sent.clientClosedEarly && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(sent.clientClosedEarly, 'the client hung up');
      assert.ok(sent.written < 32 * 1024 * 1024, `proxy wrote ${sent.written} of ${sent.total} bytes`);
    });
  }

  it('resumes a chunked upload after a 416 from the upload status', async () => {
    const b = randomBlob(100_000);
    const p = await proxy({ rangeInvalidOnPatch: 2 });
    const events: RequestEvent[] = [];
    const c = client(p.host, { chunkSize: 25_000, onRequest: (e) => events.push(e) });
    const open = opener(b.bytes);
    assert.deepEqual(await c.repository('chunk/app').putBlob(b.descriptor, open), { transfer: 'upload' });
    assert.equal(open.calls, 1);
    assert.deepEqual(await readAll((await direct.repository('chunk/app').getBlob(b.descriptor.digest)).stream), b.bytes);
    const patches = events.filter((e) => e.method === 'PATCH').map((e) => e.status);
    assert.deepEqual(patches, [202, 416, 202, 202, 202]);
    assert.ok(events.some((e) => e.method === 'GET' && e.status === 204), 'asked the session where it stands');
  });
});
