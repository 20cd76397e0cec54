/**
 * The OCI archive backend (oci-archive:) against skopeo and a real registry: what our engine writes
 * skopeo reads back byte-exact and pushes on; what skopeo writes our engine reads without
 * extracting it; the file appears only on close, whole; an existing archive is rewritten with its
 * old content kept; a cut-short or altered archive is refused naming the blob, with no tag written.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, realpath, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openRepository } from '../../src/backends/open.js';
import { RegistryPool } from '../../src/backends/registry/pool.js';
import { MemoryStore } from '../../src/backends/memory/index.js';
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

/** `tar tf`: the entry names, in order. */
async function tarNames(file: string): Promise<string[]> {
  const { stdout } = await run('tar', ['tf', file]);
  return stdout.split('\n').filter(Boolean);
}

function req(source: Repository, reference: string, target: Repository, tags: string[], referrers = false): CopyImageRequest {
  return { source, reference, targets: [{ repository: target, tags }], referrers, overwrite: true };
}

describe('OCI archive backend (interop with skopeo and a registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let pool: RegistryPool;
  let dir: string;

  const registryRepo = (name: string): Promise<Repository> => openRepository(`${reg.host}/${name}`, anonymous, { pool, insecure: true });
  const archive = (name: string): Promise<Repository> => openRepository(`oci-archive:${join(dir, name)}`, anonymous, { pool });

  before(async () => {
    reg = await startRegistry();
    pool = new RegistryPool();
    dir = await realpath(await mkdtemp(join(tmpdir(), 'archive-interop-')));
  });
  after(async () => {
    await pool.close();
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('our engine writes a multi-arch index with a referrer into oci-archive:FILE; skopeo reads it byte-exact and pushes it on', async () => {
    const src = await registryRepo('arc/src');
    const idx = await pushIndex(src, buildIndex({ layers: [400, 300] }), 'v1');
    const ref = await pushReferrer(src, idx.descriptor, { cosignTag: false });
    const file = join(dir, 'engine.tar');
    const dst = await archive('engine.tar');
    const res = await new CopyEngine().copyImage(req(src, 'v1', dst, ['v1'], true));
    assert.equal(res.targets[0]?.action, 'Copied');
    // Nothing under the name until close: a run that dies here leaves no archive.
    await assert.rejects(stat(file), { code: 'ENOENT' });
    await dst.close?.();
    // Only the archive itself is left in the directory: the temporary file was renamed.
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('engine')), ['engine.tar']);

    const names = await tarNames(file);
    assert.ok(names.includes('index.json') && names.includes('oci-layout'), names.join(' '));
    const back = await archive('engine.tar');
    assert.deepEqual(await back.listTags(), ['v1']);
    assert.deepEqual((await back.referrers(idx.digest))?.map((d) => d.digest), [ref.digest]);
    await back.close?.();

    const raw = await skopeo('inspect', '--raw', `oci-archive:${file}:v1`);
    assert.deepEqual(Buffer.from(raw), idx.bytes);
    await skopeo('copy', '--all', '--preserve-digests', `oci-archive:${file}:v1`, `docker://${reg.host}/arc/from-archive:v1`, '--dest-tls-verify=false');
    const pushed = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/arc/from-archive:v1`);
    assert.deepEqual(Buffer.from(pushed), idx.bytes);
  });

  it('an archive skopeo wrote is read in place (not extracted) and copied into a registry with identical digests', async () => {
    const src = await registryRepo('arc/skopeo-src');
    const idx = await pushIndex(src, buildIndex({ layers: [500] }), 'v2');
    const file = join(dir, 'by-skopeo.tar');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/arc/skopeo-src:v2`, `oci-archive:${file}:v2`);

    const before = await readdir(dir);
    const arc = await archive('by-skopeo.tar');
    assert.deepEqual(await arc.listTags(), ['v2']);
    const dst = await registryRepo('arc/from-skopeo-archive');
    const res = await new CopyEngine().copyImage(req(arc, 'v2', dst, ['v2']));
    await arc.close?.();
    assert.equal(res.sourceDigest, idx.digest);
    const got = await dst.getManifest('v2');
    assert.deepEqual(Buffer.from(got.bytes), idx.bytes);
    for (const c of idx.children) assert.equal((await dst.headManifest(c.digest))?.digest, c.digest);
    // Read in place: nothing was unpacked next to it.
    assert.deepEqual(await readdir(dir), before);
  });

  it('a cut-short archive is refused naming the blob it cuts, and nothing is tagged on the target', async () => {
    const store = new MemoryStore();
    const src = store.repository('cut/src');
    const idx = await pushIndex(src, buildIndex({ platforms: [{ architecture: 'amd64', os: 'linux' }], layers: [70_000] }), 'v1');
    const file = join(dir, 'cut.tar');
    const w = await archive('cut.tar');
    await new CopyEngine().copyImage(req(src, 'v1', w, ['v1']));
    await w.close?.();
    // Cut inside the big layer, whatever its place in the file.
    const layer = idx.children[0]!.blobs.find((b) => b.descriptor.size === 70_000)!.descriptor.digest;
    const { stdout } = await run('tar', ['tvf', file]);
    assert.ok(stdout.includes(layer.slice(7)));
    const bytes = await readFile(file);
    const at = bytes.indexOf(Buffer.from(`blobs/sha256/${layer.slice(7)}`));
    await truncate(file, at + 512 + 1000);

    const dst = await registryRepo('arc/cut-dst');
    await assert.rejects(new CopyEngine().copyImage(req(await archive('cut.tar'), 'v1', dst, ['v1'])), (e: unknown) => isOciError(e) && e.message.includes(`blob ${layer}`) && /cut short/.test(e.message) && !e.message.includes('\n'));
    assert.deepEqual(await dst.listTags(), []);
  });

  it('one flipped byte in a layer fails the import naming the blob, and no tag is written', async () => {
    const src = await registryRepo('arc/flip-src');
    const idx = await pushIndex(src, buildIndex({ layers: [600] }), 'v3');
    const file = join(dir, 'flip.tar');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/arc/flip-src:v3`, `oci-archive:${file}:v3`);
    const layer = idx.children[0]!.blobs.find((b) => b.descriptor.size === 600)!;
    const bytes = await readFile(file);
    const at = bytes.indexOf(layer.bytes);
    assert.ok(at > 0);
    bytes[at + 100] = bytes[at + 100]! ^ 0xff;
    await writeFile(file, bytes);

    const dst = await registryRepo('arc/flip-dst');
    const arc = await archive('flip.tar');
    const res = await new CopyEngine().copyImage(req(arc, 'v3', dst, ['v3']));
    await arc.close?.();
    const t = res.targets[0]!;
    assert.equal(t.action, 'Failed');
    assert.equal(t.errorCode, 'DIGEST_INVALID');
    assert.ok(t.message?.includes(layer.descriptor.digest) && !t.message.includes('\n'), t.message);
    assert.equal(await dst.headManifest('v3'), undefined);
    assert.deepEqual(await dst.listTags(), []);
  });
});

describe('OCI archive backend (writing)', function () {
  this.timeout(30_000);
  let dir: string;
  const pool = new RegistryPool();
  const archive = (name: string): Promise<Repository> => openRepository(`oci-archive:${join(dir, name)}`, anonymous, { pool });

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'archive-write-')));
  });
  after(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writing to an existing archive rewrites it whole: old tags and blobs kept, the new tag added', async () => {
    const store = new MemoryStore();
    const src = store.repository('upd/src');
    const a = await pushIndex(src, buildIndex({ layers: [300] }), 'a');
    const b = await pushIndex(src, buildIndex({ layers: [301] }), 'b');
    const w1 = await archive('upd.tar');
    await new CopyEngine().copyImage(req(src, 'a', w1, ['a']));
    await w1.close?.();
    const first = await stat(join(dir, 'upd.tar'));

    const w2 = await archive('upd.tar');
    const res = await new CopyEngine().copyImage(req(src, 'b', w2, ['b']));
    assert.equal(res.targets[0]?.action, 'Copied');
    // The old file is untouched until the new one replaces it.
    assert.equal((await stat(join(dir, 'upd.tar'))).ino, first.ino);
    await w2.close?.();

    const r = await archive('upd.tar');
    assert.deepEqual(await r.listTags(), ['a', 'b']);
    for (const [tag, img] of [['a', a], ['b', b]] as const) {
      assert.equal((await r.headManifest(tag))?.digest, img.digest);
      for (const blob of img.blobs) assert.equal(await r.headBlob(blob.descriptor.digest), blob.descriptor.size);
    }
    await r.close?.();
    // Each blob once, though the archive was written twice.
    const names = await tarNames(join(dir, 'upd.tar'));
    assert.equal(new Set(names).size, names.length);
  });

  it('a blob that does not match is taken back; the archive goes on and closes whole', async () => {
    const w = await archive('takeback.tar');
    const good = randomBlob(5000);
    await assert.rejects(w.putBlob(good.descriptor, opener(randomBlob(5000).bytes)), (e: unknown) => isOciError(e) && e.code === 'DIGEST_INVALID' && e.message.includes(good.descriptor.digest));
    await assert.rejects(w.putBlob(good.descriptor, opener(good.bytes.subarray(0, 4000))), (e: unknown) => isOciError(e) && e.code === 'SIZE_INVALID');
    assert.equal(await w.headBlob(good.descriptor.digest), undefined);
    const img = buildImage();
    for (const b of img.blobs) await w.putBlob(b.descriptor, opener(b.bytes));
    await w.putBlob(good.descriptor, opener(good.bytes));
    await w.putManifest('v1', { mediaType: img.mediaType, bytes: img.bytes });
    await w.close?.();
    // tar reads every entry back in order, none of the failed attempts among them.
    const names = await tarNames(join(dir, 'takeback.tar'));
    assert.equal(names.filter((n) => n.endsWith(good.descriptor.digest.slice(7))).length, 1);
    const raw = await skopeo('inspect', '--raw', `oci-archive:${join(dir, 'takeback.tar')}:v1`);
    assert.deepEqual(Buffer.from(raw), img.bytes);
  });

  it('a run whose source fails leaves no archive and no temporary file behind', async () => {
    const w = await archive('never.tar');
    const blob = randomBlob(4096);
    const failing = async (): Promise<never> => {
      throw new Error('source went away');
    };
    await assert.rejects(w.putBlob(blob.descriptor, failing));
    await w.close?.();
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('never')), []);
  });

  it('two writers of one archive path share it: the last close writes both tags', async () => {
    const store = new MemoryStore();
    const src = store.repository('two/src');
    await pushIndex(src, buildIndex({ layers: [200] }), 'x');
    await pushIndex(src, buildIndex({ layers: [201] }), 'y');
    const w1 = await archive('shared.tar');
    const w2 = await openRepository(`oci-archive:${join(dir, '.', 'shared.tar')}`, anonymous, { pool });
    await Promise.all([new CopyEngine().copyImage(req(src, 'x', w1, ['x'])), new CopyEngine().copyImage(req(src, 'y', w2, ['y']))]);
    await w1.close?.();
    await assert.rejects(stat(join(dir, 'shared.tar')), { code: 'ENOENT' });
    await w2.close?.();
    const r = await archive('shared.tar');
    assert.deepEqual(await r.listTags(), ['x', 'y']);
    await r.close?.();
  });

  it('scoped views of one archive keep their tags apart as ref names REPOSITORY:TAG', async () => {
    const store = new MemoryStore();
    const src = store.repository('scope/src');
    const img = await pushIndex(src, buildIndex({ layers: [100] }), 'v1');
    const web = await archive('scoped.tar#team/web');
    const api = await archive('scoped.tar#team/api');
    await new CopyEngine().copyImage(req(src, 'v1', web, ['v1']));
    const res = await new CopyEngine().copyImage(req(src, 'v1', api, ['v1', 'v2']));
    // The second view finds the blobs already in the file: nothing is written twice.
    assert.equal(res.targets[0]?.action, 'Retagged');
    await web.close?.();
    await api.close?.();
    const index = JSON.parse(await run('tar', ['xOf', join(dir, 'scoped.tar'), 'index.json']).then((r) => r.stdout)) as { manifests: Array<{ annotations?: Record<string, string> }> };
    assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort(), ['team/api:v1', 'team/api:v2', 'team/web:v1']);
    assert.deepEqual(await (await archive('scoped.tar#team/api')).listTags(), ['v1', 'v2']);
    assert.deepEqual(await (await archive('scoped.tar')).listTags(), []);
    const raw = await skopeo('inspect', '--raw', `oci-archive:${join(dir, 'scoped.tar')}:team/web:v1`);
    assert.deepEqual(Buffer.from(raw), img.bytes);
  });
});
