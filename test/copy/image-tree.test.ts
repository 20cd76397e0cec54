/**
 * Reading an image tree stays bounded whatever the source serves: an index listing an index 2,500
 * times that lists one image 2,500 times (a few hundred KB) is three manifests, not 6.25 million
 * nodes; distinct manifests, their bytes, distinct blobs and index nesting each have a bound that
 * is a typed error when crossed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CopyEngine } from '../../src/copy/engine.js';
import {
  ImageReader,
  MAX_IMAGE_BLOBS,
  MAX_IMAGE_MANIFESTS,
  MAX_IMAGE_MANIFEST_BYTES,
  MAX_INDEX_DEPTH,
  ManifestCache,
  allBlobs,
  allNodes,
} from '../../src/copy/image-tree.js';
import type { Descriptor } from '../../src/oci/content.js';
import { OciError } from '../../src/oci/errors.js';
import { MAX_MANIFEST_BYTES, MediaType } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildImage, pushImage } from '../support/images.js';
import { digestOf, startHostileRegistry, type HostileRegistry } from '../support/hostile-registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

interface Doc {
  bytes: Buffer;
  digest: string;
  descriptor: Descriptor;
}

function doc(value: unknown, mediaType: string): Doc {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = digestOf(bytes);
  return { bytes, digest, descriptor: { mediaType, digest, size: bytes.length } };
}

function index(children: Descriptor[], annotations?: Record<string, string>): Doc {
  return doc({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: children, ...(annotations ? { annotations } : {}) }, MediaType.OciIndex);
}

const fakeBlob = (): Descriptor => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(randomBytes(16)), size: 1 });

function image(o: { layers?: Descriptor[]; pad?: number; note?: string } = {}): Doc {
  return doc(
    {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(Buffer.from('{}')), size: 2 },
      layers: o.layers ?? [fakeBlob()],
      annotations: { note: o.note ?? randomBytes(8).toString('hex'), ...(o.pad ? { pad: 'x'.repeat(o.pad) } : {}) },
    },
    MediaType.OciManifest,
  );
}

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'));
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('image tree bounds', function () {
  this.timeout(60_000);

  describe('a fan-out index against a real registry', () => {
    let reg: TestRegistry;
    let client: RegistryClient;
    before(async () => {
      reg = await startRegistry();
      client = new RegistryClient(reg.host);
    });
    after(async () => {
      await client.close();
      await reg.stop();
    });

    it('an index listing an index 2,500 times that lists an image 2,500 times is 3 manifests: read once each, copied, in seconds', async () => {
      const src = client.repository('fan/out');
      const img = await pushImage(src, buildImage({ layers: [64] }));
      const inner = index(Array.from({ length: 2500 }, () => img.descriptor));
      const outer = index(Array.from({ length: 2500 }, () => inner.descriptor));
      assert.ok(outer.bytes.length + inner.bytes.length < 1024 * 1024, 'well under a megabyte of JSON');
      for (const d of [inner, outer]) await src.putManifest(d.digest, { mediaType: MediaType.OciIndex, bytes: d.bytes });
      await src.putManifest('fan', { mediaType: MediaType.OciIndex, bytes: outer.bytes });

      const reader = new ImageReader(new ManifestCache());
      const tree = await reader.tree(src, outer.digest);
      assert.deepEqual(allNodes(tree).map((n) => n.digest), [outer.digest, inner.digest, img.digest]);
      assert.equal(tree.children.length, 1, 'an index listing one child 2,500 times has one child node');
      assert.equal(allBlobs(tree).length, img.blobs.length);

      await reg.resetLog();
      const heapBefore = process.memoryUsage().heapUsed;
      const started = performance.now();
      const engine = new CopyEngine();
      const res = await engine.copyImage({ source: src, reference: 'fan', targets: [{ repository: client.repository('fan/copy'), tags: ['fan'] }], referrers: false, overwrite: true });
      const ms = performance.now() - started;
      assert.equal(res.targets[0]?.action, 'Copied', res.targets[0]?.message);
      assert.ok(ms < 10_000, `copied in ${Math.round(ms)} ms`);
      assert.ok(process.memoryUsage().heapUsed - heapBefore < 200 * 1024 * 1024, 'heap stays small');
      const log = await reg.accessLog();
      const sourceReads = log.filter((e) => e.method === 'GET' && e.path.startsWith('/v2/fan/out/manifests/'));
      assert.equal(sourceReads.length, 3, 'each distinct source manifest read once');
      const pushes = log.filter((e) => e.method === 'PUT' && e.path.startsWith('/v2/fan/copy/manifests/'));
      assert.equal(pushes.length, 3, 'image and inner index by digest, outer index by tag');
      assert.equal((await client.repository('fan/copy').headManifest('fan'))?.digest, outer.digest);
    });
  });

  describe('bounds on what a source serves', () => {
    let hostile: HostileRegistry;
    let client: RegistryClient;
    before(async () => {
      hostile = await startHostileRegistry();
      client = new RegistryClient(hostile.host);
    });
    beforeEach(() => hostile.reset());
    after(async () => {
      await client.close();
      await hostile.stop();
    });

    const serve = (...docs: Doc[]): void => {
      for (const d of docs) hostile.manifest('t/app', d.digest, d.bytes, d.descriptor.mediaType);
    };
    const read = (digest: string, reader = new ImageReader(new ManifestCache())): ReturnType<ImageReader['tree']> => reader.tree(client.repository('t/app'), digest);
    const manifestGets = (): number => hostile.log.filter((e) => e.method === 'GET' && e.path.includes('/manifests/')).length;

    it(`MAX_IMAGE_MANIFESTS (${MAX_IMAGE_MANIFESTS}) distinct manifests are read; one more is refused before it is fetched`, async () => {
      const children = Array.from({ length: MAX_IMAGE_MANIFESTS }, () => image());
      serve(...children);
      const atBound = index(children.slice(0, MAX_IMAGE_MANIFESTS - 1).map((c) => c.descriptor));
      const over = index(children.map((c) => c.descriptor));
      serve(atBound, over);
      // One reader (one cache): the second tree finds the children it shares with the first cached.
      const reader = new ImageReader(new ManifestCache());
      assert.equal(allNodes(await read(atBound.digest, reader)).length, MAX_IMAGE_MANIFESTS);
      assert.equal(manifestGets(), MAX_IMAGE_MANIFESTS);
      await rejects(read(over.digest, reader), 'MANIFEST_INVALID', new RegExp(`^${hostile.host}/t/app@${over.digest}: more than ${MAX_IMAGE_MANIFESTS} distinct manifests$`));
      assert.equal(manifestGets(), MAX_IMAGE_MANIFESTS + 1, 'only the top index was read: the last child is refused before it is fetched');
    });

    it(`MAX_INDEX_DEPTH (${MAX_INDEX_DEPTH}) levels of index nesting are read; one more is refused, also when a shared child is reached again deeper`, async () => {
      const leaf = image();
      const chain: Doc[] = [leaf];
      for (let i = 0; i < MAX_INDEX_DEPTH + 1; i++) chain.push(index([chain[chain.length - 1]!.descriptor]));
      serve(...chain);
      assert.equal((await read(chain[MAX_INDEX_DEPTH]!.digest)).height, MAX_INDEX_DEPTH);
      await rejects(read(chain[MAX_INDEX_DEPTH + 1]!.digest), 'MANIFEST_INVALID', new RegExp(`index nesting deeper than ${MAX_INDEX_DEPTH}`));
      // X (an index of height 1) is listed at the top, and again at the end of a chain of indexes:
      // read once at depth 1, it must still count at the depth of the longer chain.
      const x = chain[1]!;
      const links: Doc[] = [];
      let d = x;
      for (let i = 0; i < MAX_INDEX_DEPTH - 1; i++) {
        d = index([d.descriptor], { i: String(i) });
        links.push(d);
      }
      const top = index([x.descriptor, d.descriptor]);
      serve(...links, top);
      await rejects(read(top.digest), 'MANIFEST_INVALID', new RegExp(`index nesting deeper than ${MAX_INDEX_DEPTH} at ${x.digest}`));
    });

    it(`MAX_IMAGE_MANIFEST_BYTES (${MAX_IMAGE_MANIFEST_BYTES}) of manifests in one tree: more is refused`, async () => {
      const pad = MAX_MANIFEST_BYTES - 1024;
      const count = Math.floor(MAX_IMAGE_MANIFEST_BYTES / pad) + 1;
      const children = Array.from({ length: count }, () => image({ pad }));
      const top = index(children.map((c) => c.descriptor));
      serve(...children, top);
      const reader = new ImageReader(new ManifestCache());
      await rejects(read(top.digest, reader), 'MANIFEST_INVALID', new RegExp(`manifests larger than ${MAX_IMAGE_MANIFEST_BYTES} bytes in total`));
      assert.equal(manifestGets(), count + 1, 'refused on the manifest that crosses the bound');
      const fits = index(children.slice(0, count - 1).map((c) => c.descriptor));
      serve(fits);
      assert.equal(allNodes(await read(fits.digest, reader)).length, count);
    });

    it(`MAX_IMAGE_BLOBS (${MAX_IMAGE_BLOBS}) distinct blobs in one tree: more is refused`, async () => {
      const layers = Array.from({ length: MAX_IMAGE_BLOBS }, () => fakeBlob());
      // The config is one blob too.
      const fits = image({ layers: layers.slice(0, MAX_IMAGE_BLOBS - 1) });
      const over = image({ layers });
      serve(fits, over);
      assert.equal(allBlobs(await read(fits.digest)).length, MAX_IMAGE_BLOBS);
      await rejects(read(over.digest), 'MANIFEST_INVALID', new RegExp(`more than ${MAX_IMAGE_BLOBS} distinct blobs`));
    });
  });
});
