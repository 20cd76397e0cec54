/** The copy engine's small parts: blob locations, single flight, semaphore, referrer index merge. */
import assert from 'node:assert/strict';
import { BlobLocations } from '../../src/copy/blob-locations.js';
import { buildFallbackIndex, cosignTags, fallbackTag, mergeFallbackIndex } from '../../src/copy/referrers.js';
import { KeyedLock } from '../../src/util/keyed-lock.js';
import { Semaphore, mapLimit } from '../../src/copy/semaphore.js';
import { MediaType } from '../../src/oci/media-types.js';

const d = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

describe('BlobLocations', () => {
  it('knows blobs recorded directly, most recent repository first, per registry', () => {
    const l = new BlobLocations();
    l.recordBlob('r1', 'a', d(1));
    l.recordBlob('r1', 'b', d(1));
    l.recordBlob('r2', 'c', d(1));
    assert.deepEqual(l.candidates('r1', d(1)), ['b', 'a']);
    assert.deepEqual(l.candidates('r2', d(1)), ['c']);
    assert.deepEqual(l.candidates('r3', d(1)), []);
  });

  it('an image in a repository implies its blobs, whether blobs are learned before or after', () => {
    const l = new BlobLocations();
    l.recordImage('r1', 'mirror-a', d(100)); // from another mirror's status: no blob list
    assert.deepEqual(l.candidates('r1', d(1)), []);
    assert.deepEqual(l.candidates('r1', d(1), { imageDigests: [d(100)] }), ['mirror-a']);
    l.learnImageBlobs(d(100), [d(1), d(2)]); // later, the engine reads the image at its source
    assert.deepEqual(l.candidates('r1', d(2)), ['mirror-a']);
    l.recordImage('r1', 'mirror-b', d(200), [d(2), d(3)]);
    assert.deepEqual(new Set(l.candidates('r1', d(2))), new Set(['mirror-a', 'mirror-b']));
  });

  it('is bounded and forgets the least recently used', () => {
    const l = new BlobLocations({ maxEntries: 2, maxReposPerEntry: 2, maxImages: 1 });
    l.recordBlob('r', 'x', d(1));
    l.recordBlob('r', 'x', d(2));
    l.candidates('r', d(1)); // touch 1, so 2 is the oldest
    l.recordBlob('r', 'x', d(3));
    assert.equal(l.size, 2);
    assert.deepEqual(l.candidates('r', d(2)), []);
    assert.deepEqual(l.candidates('r', d(1)), ['x']);
    for (const repo of ['p', 'q', 's']) l.recordBlob('r', repo, d(1));
    assert.deepEqual(l.candidates('r', d(1)), ['s', 'q']);
    l.recordImage('r', 'img', d(10), [d(7)]);
    l.learnImageBlobs(d(20), [d(8)]); // evicts d(10)'s blob list
    assert.deepEqual(l.candidates('r', d(7)).includes('img'), false);
  });
});

describe('KeyedLock', () => {
  it('runs work on one key one at a time in order, other keys in parallel', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    let releaseFirst!: () => void;
    const gate = new Promise<void>((r) => (releaseFirst = r));
    const first = lock.run('k', async () => {
      events.push('k1 start');
      await gate;
      events.push('k1 end');
    });
    const second = lock.run('k', async () => {
      events.push('k2');
    });
    const other = lock.run('other', async () => {
      events.push('other');
    });
    await other;
    assert.deepEqual(events, ['k1 start', 'other']);
    releaseFirst();
    await Promise.all([first, second]);
    assert.deepEqual(events, ['k1 start', 'other', 'k1 end', 'k2']);
    assert.equal(lock.size, 0);
  });

  it('a failure releases the key for the next holder', async () => {
    const lock = new KeyedLock();
    await assert.rejects(lock.run('k', async () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await lock.run('k', async () => 42), 42);
  });
});

describe('Semaphore and mapLimit', () => {
  it('never runs more than the limit at once', async () => {
    const s = new Semaphore(2);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        s.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setImmediate(r));
          active--;
        }),
      ),
    );
    assert.equal(peak, 2);
    assert.equal(s.inUse, 0);
  });

  it('mapLimit keeps order, bounds concurrency and stops starting work after a failure', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5], 2, async (x) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setImmediate(r));
      active--;
      return x * 10;
    });
    assert.deepEqual(out, [10, 20, 30, 40, 50]);
    assert.equal(peak, 2);
    const started: number[] = [];
    await assert.rejects(
      mapLimit([1, 2, 3, 4, 5, 6], 1, async (x) => {
        started.push(x);
        if (x === 2) throw new Error('stop');
      }),
      /stop/,
    );
    assert.deepEqual(started, [1, 2]);
  });
});

describe('referrers helpers', () => {
  const subject = `sha256:${'ab'.repeat(32)}`;

  it('names the fallback and cosign tags of a subject', () => {
    assert.equal(fallbackTag(subject), `sha256-${'ab'.repeat(32)}`);
    const tags = ['v1', `sha256-${'ab'.repeat(32)}`, `sha256-${'ab'.repeat(32)}.sig`, `sha256-${'ab'.repeat(32)}.att`, `sha256-${'cd'.repeat(32)}.sig`];
    assert.deepEqual(cosignTags(subject, tags), [`sha256-${'ab'.repeat(32)}.sig`, `sha256-${'ab'.repeat(32)}.att`]);
  });

  it('merges without duplicates and keeps every foreign entry as it was', () => {
    const foreign = { mediaType: MediaType.OciManifest, digest: d(1), size: 10, artifactType: 'x/sbom', annotations: { who: 'them' } };
    const ours = { mediaType: MediaType.OciManifest, digest: d(2), size: 20, artifactType: 'x/sig' };
    const existing = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [foreign], annotations: { keep: 'me' } };
    const merged = mergeFallbackIndex(existing, [ours, foreign, ours]);
    assert.ok(merged);
    assert.deepEqual(merged.json.manifests, [foreign, ours]);
    assert.deepEqual(merged.json.annotations, { keep: 'me' });
    assert.deepEqual(merged.added, [ours]);
    assert.equal(mergeFallbackIndex(merged.json, [ours, foreign]), undefined);
  });

  it('builds an index whose digest matches its bytes', () => {
    const idx = buildFallbackIndex([{ mediaType: MediaType.OciManifest, digest: d(3), size: 5, platform: { architecture: 'amd64', os: 'linux' } }]);
    const json = JSON.parse(Buffer.from(idx.bytes).toString()) as { manifests: Array<Record<string, unknown>> };
    assert.equal(json.manifests[0]!.platform, undefined);
    assert.match(idx.digest, /^sha256:[0-9a-f]{64}$/);
  });
});
