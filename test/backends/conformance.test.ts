/**
 * One suite, every backend: the same cases run against the registry backend (a real
 * docker-registry 2.8), the memory backend (with and without the referrers API), the OCI image
 * layout backend and the OCI archive backend (before it is closed: reads see what was written), so the engine can rely on the Repository contract whichever backend serves it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { MemoryStore } from '../../src/backends/memory/index.js';
import { RegistryPool } from '../../src/backends/registry/pool.js';
import { openRepository, splitLayoutImage } from '../../src/backends/open.js';
import { anonymous } from '../../src/oci/credentials.js';
import type { BlobReader, Repository } from '../../src/oci/content.js';
import { isOciError } from '../../src/oci/errors.js';
import { buildImage, buildReferrer, pushBlobs, pushImage, opener, randomBlob } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

interface Backend {
  name: string;
  /** A repository of the backend's one store under test. */
  repo(name: string): Promise<Repository>;
  /** What the capability declarations must be. */
  expect: { mount: string; referrersApi: string; tagListing: boolean };
  /** What referrers() answers for a subject with one referrer: the list, or undefined (no API). */
  referrersApi: boolean;
  /**
   * Each repository is its own blob store (an OCI layout directory holds one repository): mounts
   * succeed only from the repository itself, when it already holds the blob.
   */
  storePerRepository?: boolean;
  before?(): Promise<void>;
  after?(): Promise<void>;
}

let seq = 0;
const uniq = (name: string): string => `${name}-${++seq}-${process.pid}`;

let reg: TestRegistry | undefined;
let pool: RegistryPool | undefined;
const registryBackend: Backend = {
  name: 'registry (docker-registry 2.8)',
  repo: async (name) => openRepository(`${reg!.host}/${name}`, anonymous, { pool: pool!, insecure: true }),
  expect: { mount: 'learn', referrersApi: 'learn', tagListing: true },
  // distribution 2.8 has no referrers API: the backend answers undefined and the caller falls back.
  referrersApi: false,
  before: async () => {
    reg = await startRegistry();
    pool = new RegistryPool();
  },
  after: async () => {
    await pool?.close();
    await reg?.stop();
  },
};

function memoryBackend(referrersApi: boolean): Backend {
  let store = new MemoryStore({ referrersApi });
  return {
    name: `memory (referrers API ${referrersApi ? 'on' : 'off'})`,
    repo: async (name) => store.repository(name),
    expect: { mount: 'yes', referrersApi: referrersApi ? 'yes' : 'no', tagListing: true },
    referrersApi,
    before: async () => {
      store = new MemoryStore({ referrersApi });
    },
  };
}

function layoutBackend(): Backend {
  let root = '';
  // Layouts need no registry client; openRepository takes a pool for the registry form only.
  const layoutPool = new RegistryPool();
  return {
    name: 'OCI image layout (oci:)',
    repo: async (name) => openRepository(`oci:${join(root, name)}`, anonymous, { pool: layoutPool }),
    expect: { mount: 'yes', referrersApi: 'yes', tagListing: true },
    referrersApi: true,
    storePerRepository: true,
    before: async () => {
      root = await realpath(await mkdtemp(join(tmpdir(), 'layout-conformance-')));
    },
    after: async () => {
      assert.equal(layoutPool.size, 0);
      await layoutPool.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

function archiveBackend(): Backend {
  let root = '';
  const archivePool = new RegistryPool();
  const opened: Repository[] = [];
  return {
    name: 'OCI image archive (oci-archive:)',
    repo: async (name) => {
      const r = await openRepository(`oci-archive:${join(root, name.endsWith('.tar') ? name : `${name}.tar`)}`, anonymous, { pool: archivePool });
      opened.push(r);
      return r;
    },
    expect: { mount: 'yes', referrersApi: 'yes', tagListing: true },
    referrersApi: true,
    storePerRepository: true,
    before: async () => {
      root = await realpath(await mkdtemp(join(tmpdir(), 'archive-conformance-')));
    },
    after: async () => {
      // Every archive written is finished and renamed into place by its last close.
      for (const r of opened) await r.close?.();
      assert.equal(archivePool.size, 0);
      await archivePool.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

const isOci = (code: string) => (e: unknown) => isOciError(e) && e.code === code;

for (const b of [registryBackend, memoryBackend(true), memoryBackend(false), layoutBackend(), archiveBackend()]) {
  describe(`backend conformance: ${b.name}`, function () {
    this.timeout(30_000);
    before(async () => b.before?.());
    after(async () => b.after?.());

    it('declares its capabilities', async () => {
      const r = await b.repo(uniq('caps'));
      assert.deepEqual({ ...r.capabilities }, b.expect);
      if (b.storePerRepository) {
        // Two repositories are two blob stores; the same repository opened twice is one.
        assert.notEqual(r.blobStore, (await b.repo(uniq('caps'))).blobStore);
        assert.equal(r.blobStore, (await b.repo(r.repository.split('/').pop()!)).blobStore);
      } else {
        // Repositories of one store share one blob store key.
        assert.equal(r.blobStore, (await b.repo(uniq('caps'))).blobStore);
      }
    });

    it('puts and gets a manifest by tag and by digest, byte-exact; HEAD agrees', async () => {
      const r = await b.repo(uniq('manifests'));
      const img = await pushImage(r, buildImage(), 'v1');
      for (const ref of ['v1', img.digest]) {
        const got = await r.getManifest(ref);
        assert.equal(got.digest, img.digest);
        assert.equal(got.mediaType, img.mediaType);
        assert.deepEqual(Buffer.from(got.bytes), img.bytes);
        assert.deepEqual(await r.headManifest(ref), { digest: img.digest, mediaType: img.mediaType, size: img.size });
      }
      assert.equal(await r.headManifest('absent'), undefined);
      await assert.rejects(r.getManifest('absent'), isOci('MANIFEST_UNKNOWN'));
      // A GET by tag holding other content than a HEAD promised is refused.
      await assert.rejects(r.getManifest('v1', { expectDigest: buildImage().digest }), isOci('DIGEST_INVALID'));
    });

    it('refuses a manifest naming a blob it does not hold', async () => {
      const r = await b.repo(uniq('dangling'));
      const img = buildImage();
      await assert.rejects(r.putManifest('v1', { mediaType: img.mediaType, bytes: img.bytes }), (e: unknown) => isOciError(e) && /MANIFEST_BLOB_UNKNOWN|MANIFEST_INVALID/.test(e.code));
      assert.equal(await r.headManifest('v1'), undefined);
    });

    it('puts a blob verified: wrong bytes are refused and nothing is committed', async () => {
      const r = await b.repo(uniq('blobs'));
      const good = randomBlob(3000);
      const bad = randomBlob(3000);
      await assert.rejects(r.putBlob(good.descriptor, opener(bad.bytes)), (e: unknown) => isOciError(e) && /DIGEST_INVALID|SIZE_INVALID/.test(e.code));
      assert.equal(await r.headBlob(good.descriptor.digest), undefined);
      const res = await r.putBlob(good.descriptor, opener(good.bytes));
      assert.equal(res.transfer, 'upload');
      assert.equal(await r.headBlob(good.descriptor.digest), 3000);
    });

    it('gets a blob whole and from an offset', async () => {
      const r = await b.repo(uniq('ranges'));
      const blob = randomBlob(5000);
      await pushBlobs(r, [blob]);
      const whole: BlobReader = await r.getBlob(blob.descriptor.digest);
      assert.deepEqual(await buffer(whole.stream as Readable), blob.bytes);
      const tail = await r.getBlob(blob.descriptor.digest, 1234);
      assert.deepEqual(await buffer(tail.stream as Readable), blob.bytes.subarray(1234));
      await assert.rejects(r.getBlob(randomBlob(10).descriptor.digest), isOci('BLOB_UNKNOWN'));
    });

    it('lists tags; an absent repository lists as []', async () => {
      const r = await b.repo(uniq('tags'));
      const img = await pushImage(r, buildImage(), 'b');
      await r.putManifest('a', { mediaType: img.mediaType, bytes: img.bytes });
      assert.deepEqual((await r.listTags()).sort(), ['a', 'b']);
      assert.deepEqual(await (await b.repo(uniq('never-pushed'))).listTags(), []);
    });

    it('answers referrers as its declaration says', async () => {
      const r = await b.repo(uniq('referrers'));
      const img = await pushImage(r, buildImage(), 'v1');
      const { artifact, blobs } = buildReferrer(img.descriptor);
      await pushBlobs(r, blobs);
      await r.putManifest(artifact.digest, { mediaType: artifact.mediaType, bytes: artifact.bytes });
      const list = await r.referrers(img.digest);
      if (b.referrersApi) {
        assert.deepEqual(list?.map((d) => d.digest), [artifact.digest]);
        assert.equal(list?.[0]?.artifactType, artifact.descriptor.artifactType);
      } else {
        assert.equal(list, undefined);
        assert.notEqual(r.capabilities.referrersApi, 'yes');
      }
    });

    if (b.storePerRepository) {
      it('mounts only from itself, and only a blob it holds; never from another store', async () => {
        const a = await b.repo(uniq('mount-a'));
        const c = await b.repo(uniq('mount-b'));
        const blob = randomBlob(2048);
        await pushBlobs(a, [blob]);
        assert.equal(await c.mountBlob(blob.descriptor, a.repository), false);
        assert.equal(await c.headBlob(blob.descriptor.digest), undefined);
        assert.equal(await a.mountBlob(blob.descriptor, a.repository), true);
        assert.equal(await a.mountBlob(randomBlob(16).descriptor, a.repository), false);
        const open = opener(blob.bytes);
        assert.deepEqual(await a.putBlob(blob.descriptor, open, { mountFrom: [a.repository] }), { transfer: 'mount', mountedFrom: a.repository });
        assert.equal(open.calls, 0);
        // From another store the bytes are uploaded, verified.
        const open2 = opener(blob.bytes);
        assert.deepEqual(await c.putBlob(blob.descriptor, open2, { mountFrom: [a.repository] }), { transfer: 'upload' });
        assert.equal(open2.calls, 1);
        assert.equal(await c.headBlob(blob.descriptor.digest), 2048);
      });
      return;
    }

    it('mounts a blob between repositories of one store; refuses when the source lacks it', async () => {
      const a = await b.repo(uniq('mount-a'));
      const c = await b.repo(uniq('mount-b'));
      const blob = randomBlob(2048);
      await pushBlobs(a, [blob]);
      const absent = randomBlob(16);
      assert.equal(await c.mountBlob(absent.descriptor, a.repository), false);
      assert.equal(await c.headBlob(absent.descriptor.digest), undefined);
      assert.equal(await c.mountBlob(blob.descriptor, a.repository), true);
      assert.equal(await c.headBlob(blob.descriptor.digest), 2048);
      // putBlob with a candidate mounts without opening the source.
      const d = await b.repo(uniq('mount-c'));
      const open = opener(blob.bytes);
      assert.deepEqual(await d.putBlob(blob.descriptor, open, { mountFrom: [a.repository] }), { transfer: 'mount', mountedFrom: a.repository });
      assert.equal(open.calls, 0);
    });
  });
}

describe('openRepository dispatch', () => {
  const pool = new RegistryPool();
  after(() => pool.close());

  it('opens oci-archive:PATH[#REPOSITORY] as the archive at PATH, without a registry client', async () => {
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'archive-open-')));
    try {
      const r = await openRepository(`oci-archive:${dir}/./app.tar`, anonymous, { pool });
      const scoped = await openRepository(`oci-archive:${dir}/app.tar#team/web`, anonymous, { pool });
      assert.equal(r.repository, join(dir, 'app.tar'));
      assert.equal(scoped.repository, `${join(dir, 'app.tar')}#team/web`);
      // One file, one blob store.
      assert.equal(r.blobStore, `oci-archive:${join(dir, 'app.tar')}`);
      assert.equal(scoped.blobStore, r.blobStore);
      assert.deepEqual(await r.listTags(), []);
      await r.close?.();
      await scoped.close?.();
      assert.equal(pool.size, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const ref of ['oci-archive:./app.tar:v1', 'oci-archive:', 'oci-archive:#team/web', 'oci-archive:a.tar#Team//x']) {
    it(`refuses ${ref} as an archive repository reference`, async () => {
      await assert.rejects(openRepository(ref, anonymous, { pool }), (e: unknown) => isOciError(e) && e.code === 'INVALID_REFERENCE' && !e.message.includes('\n'));
      assert.equal(pool.size, 0);
    });
  }

  it('opens oci:PATH as the layout at PATH (absolute, resolved), without a registry client', async () => {
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'layout-open-')));
    try {
      const r = await openRepository(`oci:${dir}/./app`, anonymous, { pool });
      assert.equal(r.repository, join(dir, 'app'));
      assert.equal(r.blobStore, `oci:${join(dir, 'app')}`);
      assert.deepEqual(await r.listTags(), []);
      assert.equal(pool.size, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const ref of ['oci:./layout:v1', 'oci:']) {
    it(`refuses ${ref} as a layout repository reference (no tag, a path is needed)`, async () => {
      await assert.rejects(openRepository(ref, anonymous, { pool }), (e: unknown) => isOciError(e) && e.code === 'INVALID_REFERENCE' && !e.message.includes('\n'));
      assert.equal(pool.size, 0);
    });
  }

  it("splits skopeo's oci:PATH:TAG at the first ':' after the prefix", () => {
    assert.deepEqual(splitLayoutImage('oci:/srv/layout:v1.2'), { repository: 'oci:/srv/layout', tag: 'v1.2' });
    assert.deepEqual(splitLayoutImage('oci:/srv/layout'), { repository: 'oci:/srv/layout' });
    assert.deepEqual(splitLayoutImage('oci:rel/dir:latest'), { repository: 'oci:rel/dir', tag: 'latest' });
    assert.throws(() => splitLayoutImage('oci::v1'), (e: unknown) => isOciError(e) && e.code === 'INVALID_REFERENCE');
  });

  it('a registry host named oci with a port is a registry reference', async () => {
    const r = await openRepository('oci:5000/team/app', anonymous, { pool });
    assert.equal(r.registry, 'oci:5000');
    assert.equal(r.blobStore, 'oci:5000');
    assert.equal(r.repository, 'team/app');
  });

  it('reuses one pooled client per registry and credential identity', async () => {
    const before = pool.size;
    const a = await openRepository('registry.example/team/a', anonymous, { pool });
    const b = await openRepository('registry.example/team/b', anonymous, { pool });
    assert.equal(pool.size, before + 1);
    assert.equal(a.identity.split('/')[0], b.identity.split('/')[0]);
  });
});
