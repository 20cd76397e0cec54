/**
 * The OCI image layout backend against skopeo and a real registry: what our engine writes into a
 * layout skopeo reads back byte-exact, what skopeo writes our engine copies out byte-exact, a
 * corrupted blob in a layout is caught before any tag is written, and index.json keeps every
 * concurrent writer's entry.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, realpath, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MAX_INDEX_JSON_BYTES, MAX_REFERRER_SCAN, REF_NAME_ANNOTATION } from '../../src/backends/layout/index.js';
import { openRepository } from '../../src/backends/open.js';
import { RegistryPool } from '../../src/backends/registry/pool.js';
import { CopyEngine, type CopyImageRequest } from '../../src/copy/engine.js';
import type { Repository } from '../../src/oci/content.js';
import { anonymous } from '../../src/oci/credentials.js';
import { isOciError } from '../../src/oci/errors.js';
import { buildImage, buildIndex, opener, pushIndex, pushReferrer, randomBlob } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const run = promisify(execFile);

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

function req(source: Repository, reference: string, target: Repository, tag: string, referrers = false): CopyImageRequest {
  return { source, reference, targets: [{ repository: target, tags: [tag] }], referrers, overwrite: true };
}

describe('OCI image layout backend (interop with skopeo and a registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let pool: RegistryPool;
  let dir: string;

  const registryRepo = (name: string): Promise<Repository> => openRepository(`${reg.host}/${name}`, anonymous, { pool, insecure: true });
  const layout = (name: string): Promise<Repository> => openRepository(`oci:${join(dir, name)}`, anonymous, { pool });

  before(async () => {
    reg = await startRegistry();
    pool = new RegistryPool();
    dir = await realpath(await mkdtemp(join(tmpdir(), 'layout-interop-')));
  });
  after(async () => {
    await pool.close();
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('our engine copies a multi-arch index with a referrer into oci:DIR; skopeo pushes it on with the same digest', async () => {
    const src = await registryRepo('interop/src');
    const idx = await pushIndex(src, buildIndex({ layers: [400, 300] }), 'v1');
    const ref = await pushReferrer(src, idx.descriptor);
    const dst = await layout('out-engine');
    const res = await new CopyEngine().copyImage(req(src, 'v1', dst, 'v1', true));
    assert.equal(res.sourceDigest, idx.digest);

    const index = JSON.parse(await readFile(join(dir, 'out-engine', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
    assert.deepEqual(index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === 'v1').map((d) => d.digest), [idx.digest]);
    // The referrer is kept by index.json (without a name) and found by its subject.
    assert.ok(index.manifests.some((d) => d.digest === ref.digest && d.annotations?.[REF_NAME_ANNOTATION] === undefined));
    assert.deepEqual((await dst.referrers(idx.digest))?.map((d) => d.digest), [ref.digest]);
    assert.equal(JSON.parse(await readFile(join(dir, 'out-engine', 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');

    await skopeo('copy', '--all', '--preserve-digests', `oci:${join(dir, 'out-engine')}:v1`, `docker://${reg.host}/interop/from-layout:v1`, '--dest-tls-verify=false');
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/from-layout:v1`);
    assert.deepEqual(Buffer.from(raw), idx.bytes);
    assert.equal((await (await registryRepo('interop/from-layout')).headManifest('v1'))?.digest, idx.digest);
  });

  it('a layout skopeo wrote is read by our backend and copied into a registry with identical digests', async () => {
    const src = await registryRepo('interop/skopeo-src');
    const idx = await pushIndex(src, buildIndex({ layers: [500] }), 'v2');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/interop/skopeo-src:v2`, `oci:${join(dir, 'by-skopeo')}:v2`);

    const lay = await layout('by-skopeo');
    assert.deepEqual(await lay.listTags(), ['v2']);
    assert.equal((await lay.headManifest('v2'))?.digest, idx.digest);
    const dst = await registryRepo('interop/from-skopeo-layout');
    const res = await new CopyEngine().copyImage(req(lay, 'v2', dst, 'v2'));
    assert.equal(res.sourceDigest, idx.digest);
    const got = await dst.getManifest('v2');
    assert.equal(got.digest, idx.digest);
    assert.deepEqual(Buffer.from(got.bytes), idx.bytes);
    for (const c of idx.children) assert.equal((await dst.headManifest(c.digest))?.digest, c.digest);
  });

  it('a corrupted blob in the layout fails the copy naming that blob, and no tag is written on the target', async () => {
    const src = await registryRepo('interop/corrupt-src');
    const idx = await pushIndex(src, buildIndex({ layers: [600] }), 'v3');
    const good = join(dir, 'good');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/interop/corrupt-src:v3`, `oci:${good}:v3`);
    const bad = join(dir, 'corrupt');
    await cp(good, bad, { recursive: true });
    const layer = idx.children[0]!.blobs.find((b) => b.descriptor.size === 600)!.descriptor.digest;
    const file = join(bad, 'blobs', 'sha256', layer.slice('sha256:'.length));
    const bytes = await readFile(file);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(file, bytes);

    const dst = await registryRepo('interop/corrupt-dst');
    // The engine reports a failed target (one line, naming the blob) rather than throwing.
    const res = await new CopyEngine().copyImage(req(await layout('corrupt'), 'v3', dst, 'v3'));
    const t = res.targets[0]!;
    assert.equal(t.action, 'Failed');
    assert.equal(t.errorCode, 'DIGEST_INVALID');
    assert.ok(t.message?.includes(layer) && !t.message.includes('\n'), t.message);
    assert.equal(await dst.headManifest('v3'), undefined);
    assert.deepEqual(await dst.listTags(), []);
    // The same copy from the intact layout goes through: the failure was the flipped byte.
    await new CopyEngine().copyImage(req(await layout('good'), 'v3', dst, 'v3'));
    assert.equal((await dst.headManifest('v3'))?.digest, idx.digest);
  });

  it('keeps every tag when many writers update one index.json at once (one lock per layout)', async () => {
    const img = buildImage();
    const a = await layout('concurrent');
    const b = await openRepository(`oci:${join(dir, '.', 'concurrent')}`, anonymous, { pool });
    for (const blob of img.blobs) await a.putBlob(blob.descriptor, opener(blob.bytes));
    const tags = Array.from({ length: 24 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    await Promise.all(tags.map((t, i) => (i % 2 ? a : b).putManifest(t, { mediaType: img.mediaType, bytes: img.bytes })));
    assert.deepEqual(await a.listTags(), tags);
    // Re-tagging replaces the entry rather than adding a second one under the same name.
    await a.putManifest('t00', { mediaType: img.mediaType, bytes: img.bytes });
    const index = JSON.parse(await readFile(join(dir, 'concurrent', 'index.json'), 'utf8')) as { manifests: unknown[] };
    assert.equal(index.manifests.length, tags.length);
  });

  it('leaves no partial file behind when an upload does not hash to its digest', async () => {
    const lay = await layout('partial');
    const good = randomBlob(4096);
    await assert.rejects(lay.putBlob(good.descriptor, opener(randomBlob(4096).bytes)), (e: unknown) => isOciError(e) && e.code === 'DIGEST_INVALID' && e.message.includes(good.descriptor.digest));
    assert.deepEqual(await readdir(join(dir, 'partial', 'blobs', 'sha256')), []);
  });
});

describe('OCI image layout backend (bounds and malformed layouts)', function () {
  this.timeout(30_000);
  let dir: string;
  const pool = new RegistryPool();
  const layout = (name: string): Promise<Repository> => openRepository(`oci:${join(dir, name)}`, anonymous, { pool });
  const hex = (i: number): string => i.toString(16).padStart(64, '0');

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'layout-bounds-')));
  });
  after(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function writeLayout(name: string, index: string, version = '1.0.0'): Promise<void> {
    await mkdir(join(dir, name, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, name, 'oci-layout'), JSON.stringify({ imageLayoutVersion: version }));
    await writeFile(join(dir, name, 'index.json'), index);
  }

  it(`refuses an index.json over MAX_INDEX_JSON_BYTES (${MAX_INDEX_JSON_BYTES}) without reading it`, async () => {
    await writeLayout('huge', '');
    // Sparse: the size check is on the file's size, so the test writes nothing.
    await truncate(join(dir, 'huge', 'index.json'), MAX_INDEX_JSON_BYTES + 1);
    await assert.rejects((await layout('huge')).listTags(), (e: unknown) => isOciError(e) && e.code === 'MANIFEST_TOO_LARGE' && e.message.includes(String(MAX_INDEX_JSON_BYTES)));
    await truncate(join(dir, 'huge', 'index.json'), MAX_INDEX_JSON_BYTES);
    await assert.rejects((await layout('huge')).listTags(), (e: unknown) => isOciError(e) && e.code === 'PROTOCOL');
  });

  it(`stops a referrers scan past MAX_REFERRER_SCAN (${MAX_REFERRER_SCAN}) manifests`, async () => {
    const entries = (n: number): string => JSON.stringify({ schemaVersion: 2, manifests: Array.from({ length: n }, (_, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${hex(i + 1)}`, size: 10 })) });
    await writeLayout('many', entries(MAX_REFERRER_SCAN));
    assert.deepEqual(await (await layout('many')).referrers(`sha256:${hex(0)}`), []);
    await writeLayout('many', entries(MAX_REFERRER_SCAN + 1));
    await assert.rejects((await layout('many')).referrers(`sha256:${hex(0)}`), (e: unknown) => isOciError(e) && e.code === 'MANIFEST_TOO_LARGE' && e.message.includes(String(MAX_REFERRER_SCAN)));
  });

  it('refuses a malformed index.json and an unknown layout version, in one line', async () => {
    await writeLayout('not-json', '{');
    await assert.rejects((await layout('not-json')).listTags(), (e: unknown) => isOciError(e) && e.code === 'PROTOCOL' && !e.message.includes('\n'));
    await writeLayout('bad-digest', JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'x/y', digest: 'sha256:zz', size: 1 }] }));
    await assert.rejects((await layout('bad-digest')).headManifest('v1'), (e: unknown) => isOciError(e) && e.code === 'PROTOCOL');
    await writeLayout('v2', JSON.stringify({ schemaVersion: 2, manifests: [] }), '2.0.0');
    await assert.rejects((await layout('v2')).listTags(), (e: unknown) => isOciError(e) && e.code === 'UNSUPPORTED' && e.message.includes('2.0.0'));
  });

  it('refuses a manifest whose layers or manifests are not lists, and commits nothing', async () => {
    const lay = await layout('not-lists');
    for (const body of ['{"schemaVersion":2,"layers":5}', '{"schemaVersion":2,"manifests":{}}', '[]']) {
      const bytes = Buffer.from(body);
      await assert.rejects(lay.putManifest('v1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes }), (e: unknown) => isOciError(e) && e.code === 'MANIFEST_INVALID');
    }
    assert.deepEqual(await lay.listTags(), []);
  });

  it('a manifest blob that does not hash to its name is refused on read, naming it', async () => {
    const lay = await layout('bad-manifest');
    const img = buildImage();
    for (const b of img.blobs) await lay.putBlob(b.descriptor, opener(b.bytes));
    await lay.putManifest('v1', { mediaType: img.mediaType, bytes: img.bytes });
    const file = join(dir, 'bad-manifest', 'blobs', 'sha256', img.digest.slice('sha256:'.length));
    // Still valid JSON, still the same size class: only the hash tells it apart.
    await writeFile(file, Buffer.concat([img.bytes, Buffer.from(' ')]));
    await assert.rejects(lay.getManifest('v1'), (e: unknown) => isOciError(e) && e.code === 'DIGEST_INVALID' && e.message.includes(img.digest));
  });
});

describe('OCI image layout backend (engine between layouts)', function () {
  this.timeout(30_000);
  let dir: string;
  const pool = new RegistryPool();
  const layout = (name: string): Promise<Repository> => openRepository(`oci:${join(dir, name)}`, anonymous, { pool });

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'layout-engine-')));
  });
  after(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retags within one layout without copying a byte, and uploads into another layout', async () => {
    const a = await layout('a');
    const idx = buildIndex({ layers: [700] });
    await pushIndex(a, idx, 'v1');
    const same = await new CopyEngine().copyImage(req(await layout('a'), 'v1', a, 'v1-copy'));
    assert.equal(same.targets[0]?.digest, idx.digest);
    assert.equal(same.targets[0]?.bytesCopied, 0);
    assert.deepEqual(await a.listTags(), ['v1', 'v1-copy']);

    const b = await layout('b');
    const other = await new CopyEngine().copyImage(req(a, 'v1', b, 'v1'));
    assert.equal(other.targets[0]?.blobs.upload, idx.blobs.length);
    const got = await b.getManifest('v1');
    assert.deepEqual(Buffer.from(got.bytes), idx.bytes);
    for (const blob of idx.blobs) assert.equal(await b.headBlob(blob.descriptor.digest), blob.descriptor.size);
  });
});

describe('OCI image layout backend (damaged manifest rewritten)', function () {
  this.timeout(10_000);
  let dir: string;
  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'layout-rewrite-')));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('a manifest put again over a damaged copy of the same size replaces it', async () => {
    const pool = new RegistryPool();
    const lay = await openRepository(`oci:${join(dir, 'l')}`, anonymous, { pool });
    const img = buildImage();
    for (const b of img.blobs) await lay.putBlob(b.descriptor, opener(b.bytes));
    await lay.putManifest('v1', { mediaType: img.mediaType, bytes: img.bytes });
    const file = join(dir, 'l', 'blobs', 'sha256', img.digest.slice('sha256:'.length));
    const damaged = Buffer.from(img.bytes);
    damaged[damaged.length - 2] = damaged[damaged.length - 2]! ^ 0x01;
    await writeFile(file, damaged);
    await assert.rejects(lay.getManifest('v1'), (e: unknown) => isOciError(e) && e.code === 'DIGEST_INVALID');
    await lay.putManifest('v1', { mediaType: img.mediaType, bytes: img.bytes });
    assert.deepEqual(Buffer.from((await lay.getManifest('v1')).bytes), img.bytes);
    await pool.close();
  });
});
