import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RegistryClient, type RequestEvent } from '../../src/oci/registry.js';
import { OciError, isNotFound } from '../../src/oci/errors.js';
import { MediaType, MAX_MANIFEST_BYTES } from '../../src/oci/media-types.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { startRegistry, storeManifestDirectly, type TestRegistry } from '../support/registry.js';
import { buildImage, buildIndex, buildEstargzImage, opener, pushImage, pushIndex, pushReferrer, randomBlob, STARGZ_TOC } from '../support/images.js';

const execFileP = promisify(execFile);

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected ${code}`);
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('registry client against docker-registry (no auth)', function () {
  let reg: TestRegistry;
  let client: RegistryClient;
  let events: RequestEvent[];

  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });
  beforeEach(() => {
    events = [];
    client = new RegistryClient(reg.host, { onRequest: (e) => events.push(e) });
  });
  afterEach(async () => {
    await client.close();
  });

  it('pushes an image and reads back the exact bytes by tag and digest (skopeo agrees)', async () => {
    const repo = client.repository('app/one');
    const img = await pushImage(repo, buildImage(), 'v1');
    const byTag = await repo.getManifest('v1');
    assert.equal(byTag.digest, img.digest);
    assert.equal(byTag.mediaType, MediaType.OciManifest);
    assert.deepEqual(Buffer.from(byTag.bytes), img.bytes);
    const byDigest = await repo.getManifest(img.digest);
    assert.deepEqual(Buffer.from(byDigest.bytes), img.bytes);
    const head = await repo.headManifest('v1');
    assert.deepEqual(head, { digest: img.digest, mediaType: MediaType.OciManifest, size: img.size });
    const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/one:v1`], { encoding: 'buffer' });
    assert.equal(sha256Digest(stdout), img.digest);
    assert.ok(events.length > 0 && events.every((e) => e.registry === reg.host));
  });

  it('sends the full Accept list on HEAD and GET (an index tag is not down-converted)', async () => {
    const repo = client.repository('app/index');
    const idx = await pushIndex(repo, buildIndex(), 'multi');
    assert.equal(idx.children.length, 3);
    const head = await repo.headManifest('multi');
    assert.equal(head?.digest, idx.digest);
    assert.equal(head?.mediaType, MediaType.OciIndex);
    const got = await repo.getManifest('multi');
    assert.equal(got.digest, idx.digest);
    for (const c of idx.children) assert.equal((await repo.headManifest(c.digest))?.digest, c.digest);
  });

  it('keeps eStargz layer annotations byte-for-byte', async () => {
    const repo = client.repository('app/stargz');
    const img = await pushImage(repo, buildEstargzImage(), 'lazy');
    const got = await repo.getManifest('lazy');
    const layers = (JSON.parse(Buffer.from(got.bytes).toString()) as { layers: Array<{ annotations: Record<string, string> }> }).layers;
    assert.equal(layers[0]!.annotations[STARGZ_TOC], img.layers[0]!.descriptor.annotations![STARGZ_TOC]);
  });

  it('heads and streams blobs, with an offset for resume', async () => {
    const repo = client.repository('app/blobs');
    const b = randomBlob(100_000);
    assert.equal(await repo.headBlob(b.descriptor.digest), undefined);
    const r = await repo.putBlob(b.descriptor, opener(b.bytes));
    assert.deepEqual(r, { transfer: 'upload' });
    assert.equal(await repo.headBlob(b.descriptor.digest), b.bytes.length);
    const whole = await repo.getBlob(b.descriptor.digest);
    assert.equal(whole.size, b.bytes.length);
    assert.deepEqual(await readAll(whole.stream), b.bytes);
    const tail = await repo.getBlob(b.descriptor.digest, 60_000);
    assert.equal(tail.size, b.bytes.length);
    assert.deepEqual(await readAll(tail.stream), b.bytes.subarray(60_000));
  });

  it('uploads in chunks when a chunk size is set', async () => {
    const chunked = new RegistryClient(reg.host, { chunkSize: 30_000, onRequest: (e) => events.push(e) });
    try {
      const repo = chunked.repository('app/chunked');
      const b = randomBlob(100_000);
      await repo.putBlob(b.descriptor, opener(b.bytes));
      assert.equal(events.filter((e) => e.method === 'PATCH').length, 4);
      const back = await readAll((await repo.getBlob(b.descriptor.digest)).stream);
      assert.deepEqual(back, b.bytes);
    } finally {
      await chunked.close();
    }
  });

  it('refuses an upload whose source bytes do not match the digest, committing nothing', async () => {
    const repo = client.repository('app/bad');
    const b = randomBlob(50_000);
    const wrong = Buffer.from(b.bytes);
    wrong[10] = wrong[10]! ^ 1;
    await rejectsWith(repo.putBlob(b.descriptor, opener(wrong)), 'DIGEST_INVALID');
    assert.equal(await repo.headBlob(b.descriptor.digest), undefined);
    await rejectsWith(repo.putBlob(b.descriptor, opener(b.bytes.subarray(0, 49_000))), 'SIZE_INVALID');
    assert.equal(await repo.headBlob(b.descriptor.digest), undefined);
  });

  it('mounts across repositories and learns that the registry mounts', async () => {
    const caps: Array<[string, boolean]> = [];
    const c = new RegistryClient(reg.host, { onCapability: (k, v) => caps.push([k, v]), onRequest: (e) => events.push(e) });
    try {
      const src = c.repository('mount/src');
      const dst = c.repository('mount/dst');
      const b = randomBlob(4096);
      await src.putBlob(b.descriptor, opener(b.bytes));
      events = [];
      const open = opener(b.bytes);
      const r = await dst.putBlob(b.descriptor, open, { mountFrom: ['mount/dst', 'mount/src'] });
      assert.deepEqual(r, { transfer: 'mount', mountedFrom: 'mount/src' });
      assert.equal(open.calls, 0);
      assert.equal(await dst.headBlob(b.descriptor.digest), 4096);
      // The target itself is not a candidate: one POST, answered 201.
      assert.deepEqual(events.map((e) => `${e.method} ${e.status}`), ['POST 201', 'HEAD 200']);
      assert.deepEqual(caps, [['mount', true]]);
    } finally {
      await c.close();
    }
  });

  it('after a mount worked, a 202 from a non-last candidate cancels that session and tries the next', async () => {
    const src = client.repository('mount2/src');
    const dst = client.repository('mount2/dst');
    const dst2 = client.repository('mount2/dst2');
    const a = randomBlob(2048);
    const b = randomBlob(2048);
    await src.putBlob(a.descriptor, opener(a.bytes));
    await src.putBlob(b.descriptor, opener(b.bytes));
    assert.equal((await dst.putBlob(a.descriptor, opener(a.bytes), { mountFrom: ['mount2/src'] })).transfer, 'mount');
    assert.equal(client.capabilities.mount, true);
    await reg.resetLog();
    const open = opener(b.bytes);
    const r = await dst2.putBlob(b.descriptor, open, { mountFrom: ['mount2/empty', 'mount2/src'] });
    assert.deepEqual(r, { transfer: 'mount', mountedFrom: 'mount2/src' });
    const log = await reg.accessLog();
    assert.deepEqual(
      log.map((e) => `${e.method} ${e.status}`),
      ['POST 202', 'DELETE 204', 'POST 201'],
    );
  });

  it('uploads into the session a last-candidate 202 opened (no extra POST)', async () => {
    const dst = client.repository('mount3/dst');
    const b = randomBlob(2048);
    await reg.resetLog();
    const open = opener(b.bytes);
    const r = await dst.putBlob(b.descriptor, open, { mountFrom: ['mount3/none'] });
    assert.deepEqual(r, { transfer: 'upload' });
    assert.equal(open.calls, 1);
    const log = await reg.accessLog();
    assert.deepEqual(log.map((e) => `${e.method} ${e.status}`), ['POST 202', 'PUT 201']);
    assert.equal(await dst.headBlob(b.descriptor.digest), 2048);
  });

  it('skips mount attempts once the registry refused three in a row and never mounted', async () => {
    const dst = client.repository('mount4/dst');
    const b = randomBlob(1000);
    for (let i = 0; i < 3; i++) {
      // One refusal may be a stale location: the registry is only given up on after three.
      assert.notEqual(client.capabilities.mount, false, `given up after ${i} refusal(s)`);
      const a = randomBlob(1000);
      await dst.putBlob(a.descriptor, opener(a.bytes), { mountFrom: ['mount4/none'] });
    }
    assert.equal(client.capabilities.mount, false);
    await reg.resetLog();
    await dst.putBlob(b.descriptor, opener(b.bytes), { mountFrom: ['mount4/none'] });
    const log = await reg.accessLog();
    assert.deepEqual(log.map((e) => `${e.method} ${e.path.split('?')[0]}`), ['POST /v2/mount4/dst/blobs/uploads/', `PUT ${log[1]!.path.split('?')[0]}`]);
    assert.ok(!log[0]!.path.includes('mount='));
  });

  it('lists tags; an absent repository lists as []', async () => {
    const repo = client.repository('tags/repo');
    const img = buildImage();
    await pushImage(repo, img, 'a');
    for (const t of ['b', 'c']) await repo.putManifest(t, { mediaType: img.mediaType, bytes: img.bytes });
    assert.deepEqual((await repo.listTags()).sort(), ['a', 'b', 'c']);
    assert.deepEqual(await client.repository('tags/absent').listTags(), []);
  });

  it('reports unknown repository, unknown tag and unknown blob as typed errors', async () => {
    // 2.8.2 says MANIFEST_UNKNOWN (not NAME_UNKNOWN) for a manifest of an absent repository.
    const absent = await rejectsWith(client.repository('nope/nothing').getManifest('latest'), 'MANIFEST_UNKNOWN', /nope\/nothing:latest/);
    assert.ok(isNotFound(absent));
    assert.equal(absent.repository, 'nope/nothing');
    await rejectsWith(client.repository('nope/nothing').getBlob(randomBlob(10).descriptor.digest), 'BLOB_UNKNOWN');
    const repo = client.repository('app/one');
    await rejectsWith(repo.getManifest('no-such-tag'), 'MANIFEST_UNKNOWN', /404/);
    assert.equal(await repo.headManifest('no-such-tag'), undefined);
    const e = await rejectsWith(repo.getBlob(randomBlob(10).descriptor.digest), 'BLOB_UNKNOWN');
    assert.equal(e.status, 404);
    assert.equal(e.registry, reg.host);
    assert.equal(e.retryable, false);
  });

  it('refuses a schema1 manifest with a clear message', async () => {
    // 2.8.2 refuses schema1 pushes but still serves stored ones, so plant a signed-format one.
    const b64 = (x: string): string => Buffer.from(x).toString('base64url');
    const body = '{\n   "schemaVersion": 1,\n   "name": "old/app",\n   "tag": "v1",\n   "architecture": "amd64",\n   "fsLayers": [],\n   "history": []\n}';
    const at = body.lastIndexOf('\n}');
    const prot = b64(JSON.stringify({ formatLength: at, formatTail: b64(body.slice(at)), time: '2026-01-01T00:00:00Z' }));
    const signed = body.slice(0, at) + `,\n   "signatures": [{"header":{"alg":"ES256"},"signature":"AAAA","protected":"${prot}"}]` + body.slice(at);
    const digest = await storeManifestDirectly(reg, 'old/app', 'v1', Buffer.from(signed));
    await rejectsWith(client.repository('old/app').getManifest('v1'), 'UNSUPPORTED_SCHEMA1', /old\/app:v1: Docker schema1 manifests are not supported/);
    await rejectsWith(client.repository('old/app').getManifest(digest), 'UNSUPPORTED_SCHEMA1');
  });

  it('refuses oversized manifests before sending them and when the registry rejects them', async () => {
    const repo = client.repository('app/large');
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    await rejectsWith(repo.putManifest('big', { mediaType: MediaType.OciManifest, bytes: big }), 'MANIFEST_TOO_LARGE');
  });

  it('verifies the digest of a manifest PUT by digest', async () => {
    const repo = client.repository('app/put');
    const img = buildImage();
    await rejectsWith(repo.putManifest(buildImage().digest, { mediaType: img.mediaType, bytes: img.bytes }), 'DIGEST_INVALID');
    // The registry refuses a manifest whose blobs are missing.
    await rejectsWith(repo.putManifest('x', { mediaType: img.mediaType, bytes: img.bytes }), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('pushes a referrer with fallback and cosign tags; no referrers API on 2.8.2 is learned once', async () => {
    const caps: Array<[string, boolean]> = [];
    const c = new RegistryClient(reg.host, { onCapability: (k, v) => caps.push([k, v]) });
    try {
      const repo = c.repository('app/signed');
      const img = await pushImage(repo, buildImage(), 'v1');
      const ref = await pushReferrer(repo, img.descriptor);
      const tags = await repo.listTags();
      assert.ok(tags.includes(ref.fallbackTag) && tags.includes(ref.cosignTag));
      assert.equal(await repo.referrers(img.digest), undefined);
      await reg.resetLog();
      assert.equal(await repo.referrers(img.digest), undefined);
      assert.deepEqual(await reg.accessLog(), []);
      assert.deepEqual(caps, [['referrers_api', false]]);
      const fallback = await repo.getManifest(ref.fallbackTag);
      assert.deepEqual(Buffer.from(fallback.bytes), ref.fallbackIndex.bytes);
    } finally {
      await c.close();
    }
  });

  it('counts every request in the access log', async () => {
    await reg.resetLog();
    const before = events.length;
    const repo = client.repository('app/one');
    await repo.headManifest('v1');
    await repo.listTags();
    const log = await reg.accessLog();
    assert.equal(log.length, events.length - before);
    assert.deepEqual(log.map((e) => e.method), ['HEAD', 'GET']);
  });
});
