/**
 * Requests a new mirror costs on the target registry, counted from the registry's own access log
 * (Debian's docker-registry): with a known mount source, a mount answers "is it there" and "put it
 * there" at once, so no blob HEAD goes before it.
 */
import assert from 'node:assert/strict';
import { CopyEngine, type CopyImageRequest } from '../../src/copy/engine.js';
import { BlobLocations } from '../../src/copy/blob-locations.js';
import type { Repository } from '../../src/oci/content.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildImage, pushBlobs, pushImage } from '../support/images.js';
import { startQuirkProxy } from '../support/quirk-proxy.js';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../support/registry.js';

/** The budget per new mirror of a config + 2-layer image: tag HEAD, manifest HEAD, 3 mounts, the PUT. */
const NEW_MIRROR_REQUEST_BUDGET = 6;

let seq = 0;
const uniq = (name: string): string => `${name}-${++seq}-${process.pid}`;

/** Registry API requests (the version probe and the log helper's sentinel excluded), as `METHOD kind`. */
function shape(log: AccessLogEntry[]): string[] {
  return log
    .filter((e) => e.path.startsWith('/v2/') && e.path !== '/v2/' && !e.path.startsWith('/v2/?'))
    .map((e) => {
      const kind = e.path.includes('mount=') ? 'mount' : /\/blobs\/uploads\//.test(e.path) ? 'upload' : /\/blobs\//.test(e.path) ? 'blob' : /\/manifests\//.test(e.path) ? 'manifest' : e.path;
      return `${e.method} ${kind} ${e.status}`;
    })
    .sort();
}

describe('requests per new mirror on the target registry', function () {
  let a: TestRegistry;
  let b: TestRegistry;
  let ca: RegistryClient;
  let cb: RegistryClient;

  before(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    ca = new RegistryClient(a.host);
    cb = new RegistryClient(b.host);
  });
  after(async () => {
    await Promise.all([ca?.close(), cb?.close()]);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  function req(source: Repository, target: Repository): CopyImageRequest {
    return { source, reference: 'v1', targets: [{ repository: target, tags: ['v1'] }], referrers: false, overwrite: true };
  }

  it(`a config + 2-layer image whose blobs a known repository of the target registry holds: ≤ ${NEW_MIRROR_REQUEST_BUDGET} requests, no blob HEAD`, async () => {
    const src = ca.repository(uniq('req/src'));
    const img = await pushImage(src, buildImage({ layers: [1500, 2500] }), 'v1');
    const elsewhere = cb.repository(uniq('req/elsewhere'));
    await pushImage(elsewhere, img, 'v1');
    // What the controller feeds from another mirror's status: that repository holds the image.
    const locations = new BlobLocations();
    locations.recordImage(b.host, elsewhere.repository, img.digest);
    const dst = cb.repository(uniq('req/dst'));
    await b.resetLog();
    const res = await new CopyEngine({ locations }).copyImage(req(src, dst));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: img.blobs.length, upload: 0 });
    const onTarget = shape(await b.accessLog());
    assert.deepEqual(onTarget, ['HEAD manifest 404', 'HEAD manifest 404', 'POST mount 201', 'POST mount 201', 'POST mount 201', 'PUT manifest 201']);
    assert.ok(onTarget.length <= NEW_MIRROR_REQUEST_BUDGET, `${onTarget.length} requests: ${JSON.stringify(onTarget)}`);
    assert.equal((await dst.headManifest('v1'))?.digest, img.digest);
  });

  it(`a new mirror within the source's registry (the source repository is the mount source): ≤ ${NEW_MIRROR_REQUEST_BUDGET} requests`, async () => {
    const src = ca.repository(uniq('req-same/src'));
    const img = await pushImage(src, buildImage({ layers: [1500, 2500] }), 'v1');
    const dst = ca.repository(uniq('req-same/dst'));
    await a.resetLog();
    const res = await new CopyEngine().copyImage(req(src, dst));
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: img.blobs.length, upload: 0 });
    // The source's reads (its manifest GET) are on the same registry: count only the target repository.
    const onTarget = shape((await a.accessLog()).filter((e) => e.path.startsWith(`/v2/${dst.repository}/`)));
    assert.deepEqual(onTarget, ['HEAD manifest 404', 'HEAD manifest 404', 'POST mount 201', 'POST mount 201', 'POST mount 201', 'PUT manifest 201']);
  });

  it('10 new mirrors of one image to another registry at once: each blob is HEADed and uploaded once, every other mirror mounts it without a HEAD', async () => {
    const src = ca.repository(uniq('req-fan/src'));
    const img = await pushImage(src, buildImage({ layers: [1500, 2500] }), 'v1');
    const engine = new CopyEngine();
    await b.resetLog();
    const results = await Promise.all(Array.from({ length: 10 }, () => engine.copyImage(req(src, cb.repository(uniq('req-fan/dst'))))));
    assert.ok(results.every((r) => r.targets[0]!.action === 'Copied'), JSON.stringify(results.map((r) => r.targets)));
    const counts = new Map<string, number>();
    for (const k of shape(await b.accessLog())) counts.set(k, (counts.get(k) ?? 0) + 1);
    const n = img.blobs.length;
    // Per mirror: tag HEAD, manifest HEAD, PUT; per blob once: HEAD, upload (POST + PUT); else mounts.
    assert.deepEqual(Object.fromEntries(counts), {
      'HEAD manifest 404': 20,
      'HEAD blob 404': n,
      'POST upload 202': n,
      'PUT upload 201': n,
      'POST mount 201': n * 9,
      'PUT manifest 201': 10,
    });
  });

  it('without a known mount source the requests are as before: a HEAD per blob, then an upload of each missing one', async () => {
    const src = ca.repository(uniq('req-none/src'));
    const img = await pushImage(src, buildImage({ layers: [1500, 2500] }), 'v1');
    const dst = cb.repository(uniq('req-none/dst'));
    // One layer is already there: its HEAD saves an upload.
    await pushBlobs(dst, [img.layers[0]!]);
    await b.resetLog();
    const res = await new CopyEngine().copyImage(req(src, dst));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.deepEqual(res.targets[0]!.blobs, { exists: 1, mount: 0, upload: 2 });
    assert.deepEqual(shape(await b.accessLog()), [
      'HEAD blob 200',
      'HEAD blob 404',
      'HEAD blob 404',
      'HEAD manifest 404',
      'HEAD manifest 404',
      'POST upload 202',
      'POST upload 202',
      'PUT manifest 201',
      'PUT upload 201',
      'PUT upload 201',
    ]);
  });

  it('a registry that uploads instead of mounting (Artifactory-like) gets blob HEADs before mounts again: a blob it holds is not uploaded twice', async () => {
    const proxy = await startQuirkProxy(b, { refuseMounts: true });
    const client = new RegistryClient(proxy.host);
    try {
      const src = ca.repository(uniq('req-refuse/src'));
      const img = await pushImage(src, buildImage({ layers: [1500, 2500] }), 'v1');
      const elsewhere = uniq('req-refuse/elsewhere');
      await pushImage(cb.repository(elsewhere), img, 'v1');
      const locations = new BlobLocations();
      locations.recordImage(proxy.host, elsewhere, img.digest);
      const engine = new CopyEngine({ locations });
      // The first mirror trusts the known mount source: no HEAD, the refused mounts become uploads.
      const first = await engine.copyImage(req(src, client.repository(uniq('req-refuse/dst'))));
      assert.deepEqual(first.targets[0]!.blobs, { exists: 0, mount: 0, upload: img.blobs.length });
      assert.ok(!proxy.log.some((e) => e.method === 'HEAD' && e.path.includes('/blobs/')), JSON.stringify(proxy.log));
      // Learned: the next mirror HEADs first, so the layer its repository holds stays put.
      const dst2 = uniq('req-refuse/dst2');
      await pushBlobs(cb.repository(dst2), [img.layers[0]!]);
      const second = await engine.copyImage(req(src, client.repository(dst2)));
      assert.equal(second.targets[0]!.action, 'Copied', second.targets[0]!.message);
      assert.deepEqual(second.targets[0]!.blobs, { exists: 1, mount: 0, upload: 2 });
    } finally {
      await client.close();
      await proxy.stop();
    }
  });
});
