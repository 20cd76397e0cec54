/**
 * The copy engine against the memory backend: the engine's decisions (what to mount, upload,
 * tag, which referrers to carry) without the wire, in milliseconds. The same backend contract is
 * checked against a real registry in test/backends/conformance.test.ts.
 */
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/backends/memory/index.js';
import { CopyEngine, type CopyImageRequest } from '../../src/copy/engine.js';
import type { Repository } from '../../src/oci/content.js';
import { buildImage, buildIndex, buildReferrer, fallbackTagOf, pushBlobs, pushImage, pushIndex, pushReferrer } from '../support/images.js';

/** Every test here must stay far below this: the point of the backend is speed. */
const FAST_MS = 1000;

function req(source: Repository, reference: string, targets: Array<[Repository, string[]]>, extra: Partial<CopyImageRequest> = {}): CopyImageRequest {
  return { source, reference, targets: targets.map(([repository, tags]) => ({ repository, tags })), referrers: false, overwrite: true, ...extra };
}

/** Counts the calls made to a repository, by method name. */
function counted(repo: Repository): Repository & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  return new Proxy(repo, {
    get(target, prop, receiver) {
      if (prop === 'calls') return calls;
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Repository & { calls: Map<string, number> };
}

describe('copy engine (memory backend)', function () {
  this.timeout(FAST_MS);

  it('copies a 3-platform index with a referrer between two stores, byte-exact, through the referrers API', async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const src = a.repository('team/app');
    const idx = await pushIndex(src, buildIndex({ layers: [300, 200] }), 'v1');
    const { artifact, blobs } = buildReferrer(idx.descriptor);
    await pushBlobs(src, blobs);
    await src.putManifest(artifact.digest, { mediaType: artifact.mediaType, bytes: artifact.bytes });
    const dst = b.repository('mirror/app');
    const started = performance.now();
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]], { referrers: true }));
    const ms = performance.now() - started;
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    // The image's blobs and the referrer's (an empty config and a payload).
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: 0, upload: idx.blobs.length + blobs.length });
    assert.deepEqual(Buffer.from((await dst.getManifest('v1')).bytes), idx.bytes);
    for (const c of idx.children) assert.deepEqual(Buffer.from((await dst.getManifest(c.digest)).bytes), c.bytes);
    for (const bl of idx.blobs) assert.equal(await dst.headBlob(bl.descriptor.digest), bl.descriptor.size);
    // The referrer came through the API (no fallback tag on the source) and is listed on the target.
    assert.deepEqual((await dst.referrers(idx.digest))?.map((d) => d.digest), [artifact.digest]);
    assert.deepEqual(Buffer.from((await dst.getManifest(artifact.digest)).bytes), artifact.bytes);
    assert.ok(ms < FAST_MS, `${ms} ms`);
  });

  it('within one store mounts every blob through mountBlob and uploads none', async () => {
    const s = new MemoryStore();
    const src = s.repository('team/app');
    const img = await pushImage(src, buildImage({ layers: [1000, 2000] }), 'v1');
    const dst = counted(s.repository('team/copy'));
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]]));
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: img.blobs.length, upload: 0 });
    assert.equal(dst.calls.get('mountBlob'), img.blobs.length);
    assert.equal(dst.calls.get('putBlob') ?? 0, 0);
    assert.deepEqual(Buffer.from((await dst.getManifest('v1')).bytes), img.bytes);
  });

  it('a store that cannot mount gets uploads, and is never asked to mount', async () => {
    const s = new MemoryStore({ mount: false });
    const src = s.repository('team/app');
    const img = await pushImage(src, buildImage(), 'v1');
    const dst = counted(s.repository('team/copy'));
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]]));
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: 0, upload: img.blobs.length });
    assert.equal(dst.calls.get('mountBlob') ?? 0, 0);
    // The plan says so too: nothing would be mounted.
    const plan = await new CopyEngine().copyImage(req(src, 'v1', [[s.repository('team/planned'), ['v1']]], { dryRun: true }));
    assert.deepEqual(plan.targets[0]!.blobs, { exists: 0, mount: 0, upload: img.blobs.length });
  });

  it('a source declaring no referrers API is never asked; its fallback tag is carried to a target declaring none', async () => {
    const a = new MemoryStore({ referrersApi: false });
    const b = new MemoryStore({ referrersApi: false });
    const src = counted(a.repository('team/app'));
    const img = await pushImage(src, buildImage(), 'v1');
    const sig = await pushReferrer(src, img.descriptor, { cosignTag: false });
    const dst = counted(b.repository('mirror/app'));
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]], { referrers: true }));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.equal(src.calls.get('referrers') ?? 0, 0);
    assert.equal(dst.calls.get('referrers') ?? 0, 0);
    assert.deepEqual(Buffer.from((await dst.getManifest(fallbackTagOf(img.digest))).bytes), sig.fallbackIndex.bytes);
    assert.deepEqual(Buffer.from((await dst.getManifest(sig.digest)).bytes), sig.bytes);
  });

  it('a dry run writes nothing and reports the plan', async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const src = a.repository('team/app');
    const img = await pushImage(src, buildImage({ layers: [1000, 2000] }), 'v1');
    const same = counted(a.repository('team/same'));
    const other = counted(b.repository('mirror/other'));
    await pushBlobs(b.repository('mirror/other'), [img.layers[0]!]);
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[same, ['v1', 'latest']], [other, ['v1']]], { dryRun: true }));
    assert.deepEqual(res.targets.map((t) => t.action), ['Copied', 'Retagged', 'Copied']);
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: 3, upload: 0 });
    assert.deepEqual(res.targets[2]!.blobs, { exists: 1, mount: 0, upload: 2 });
    for (const r of [same, other]) {
      for (const verb of ['putBlob', 'mountBlob', 'putManifest']) assert.equal(r.calls.get(verb) ?? 0, 0, verb);
    }
    assert.equal(await same.headManifest('v1'), undefined);
    assert.deepEqual(await other.listTags(), []);
  });

  it('an abort stops new work and never tags over missing content', async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const src = a.repository('team/app');
    await pushImage(src, buildImage({ layers: [4000, 4000, 4000, 4000] }), 'v1');
    const dst = counted(b.repository('mirror/app'));
    const ac = new AbortController();
    const res = await new CopyEngine({ blobConcurrency: 1 }).copyImage(req(src, 'v1', [[dst, ['v1']]], { signal: ac.signal, onProgress: () => ac.abort() }));
    assert.equal(res.targets[0]!.action, 'Failed');
    assert.equal(res.targets[0]!.errorCode, 'CANCELLED');
    assert.equal(dst.calls.get('putManifest') ?? 0, 0);
    assert.equal(await dst.headManifest('v1'), undefined);
  });
});
