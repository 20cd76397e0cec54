/**
 * The copy engine meeting big registries' documented quirks, each reproduced by a proxy in front of
 * a real docker-registry 2.8.2 (test/support/quirk-proxy.ts, fault-proxy.ts). Each test names the
 * public source of the behaviour.
 */
import assert from 'node:assert/strict';
import { CopyEngine, type CopyImageRequest } from '../../src/copy/engine.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext } from '../../src/mirror/reconciler.js';
import type { ImageMirror } from '../../src/mirror/types.js';
import type { Repository } from '../../src/oci/content.js';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildImage, buildIndex, buildReferrer, fallbackTagOf, pushBlobs, pushImage, pushIndex, pushReferrer, SIGNATURE_ARTIFACT } from '../support/images.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { ManualClock, startQuirkProxy, type QuirkProxy, type QuirkProxyOptions } from '../support/quirk-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

let seq = 0;
const uniq = (name: string): string => `${name}-${++seq}-${process.pid}`;
const anonymousCtx: ReconcileContext = { credentials: async () => ({ get: async () => undefined }) };

describe('copy engine meeting registry quirks (proxies in front of real registries)', function () {
  let a: TestRegistry;
  let b: TestRegistry;
  let ca: RegistryClient;
  let cb: RegistryClient;
  const stops: Array<() => Promise<void>> = [];

  async function quirk(reg: TestRegistry, o: QuirkProxyOptions): Promise<{ proxy: QuirkProxy; client: RegistryClient }> {
    const proxy = await startQuirkProxy(reg, o);
    const client = new RegistryClient(proxy.host, { retry: { baseDelayMs: 5, maxDelayMs: 50 } });
    stops.push(() => client.close(), () => proxy.stop());
    return { proxy, client };
  }

  function req(source: Repository, reference: string, targets: Array<[Repository, string[]]>, extra: Partial<CopyImageRequest> = {}): CopyImageRequest {
    return { source, reference, targets: targets.map(([repository, tags]) => ({ repository, tags })), referrers: false, overwrite: true, ...extra };
  }

  before(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    ca = new RegistryClient(a.host);
    cb = new RegistryClient(b.host);
  });
  afterEach(async () => {
    for (const s of stops.splice(0)) await s();
  });
  after(async () => {
    await Promise.all([ca?.close(), cb?.close()]);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  describe('referrers endpoint answering something other than the API', () => {
    for (const answer of [303, 302, 400, 401, 403, 'html'] as const) {
      it(`${answer} on both sides (GHCR 303, artifacthub/hub#4785; older Artifact Registry login page): the fallback tag is used and every tag is copied`, async () => {
        const name = uniq('refapi/src');
        const img = await pushImage(ca.repository(name), buildImage(), 'v1');
        const sig = await pushReferrer(ca.repository(name), img.descriptor, { cosignTag: false });
        const src = (await quirk(a, { referrersAnswer: answer })).client.repository(name);
        const dstName = uniq('refapi/dst');
        const dst = (await quirk(b, { referrersAnswer: answer })).client.repository(dstName);
        const engine = new CopyEngine();
        const res = await engine.copyImage(req(src, 'v1', [[dst, ['v1', 'stable']]], { referrers: true }));
        assert.deepEqual(res.targets.map((t) => [t.action, t.message]), [['Copied', undefined], ['Retagged', undefined]]);
        assert.equal(engine.referrersApiOf(src.registry), false);
        assert.equal(engine.referrersApiOf(dst.registry), false);
        const index = await cb.repository(dstName).getManifest(sig.fallbackTag);
        assert.ok(Buffer.from(index.bytes).equals(sig.fallbackIndex.bytes), 'the source fallback index, byte-exact');
        assert.equal((await cb.repository(dstName).headManifest(sig.digest))?.digest, sig.digest);
      });
    }
  });

  it('a referrer the target refuses (Quay allows only listed artifact types, quay/quay#2597) leaves the tags synced and says so on the rows', async () => {
    const name = uniq('quay/src');
    const img = await pushImage(ca.repository(name), buildImage(), 'v1');
    const allowed = await pushReferrer(ca.repository(name), img.descriptor, { cosignTag: false });
    const refused = buildReferrer(img.descriptor, { artifactType: 'application/vnd.example.unlisted+json' });
    await pushBlobs(ca.repository(name), refused.blobs);
    await ca.repository(name).putManifest(refused.artifact.digest, { mediaType: refused.artifact.mediaType, bytes: refused.artifact.bytes });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [allowed.descriptor, refused.artifact.descriptor] }));
    await ca.repository(name).putManifest(allowed.fallbackTag, { mediaType: MediaType.OciIndex, bytes: index });
    const dstName = uniq('quay/dst');
    const { proxy, client } = await quirk(b, { allowedArtifactTypes: [SIGNATURE_ARTIFACT] });
    const res = await new CopyEngine().copyImage(req(ca.repository(name), 'v1', [[client.repository(dstName), ['v1', 'latest']]], { referrers: true }));
    assert.deepEqual(res.targets.map((t) => t.action), ['Copied', 'Retagged']);
    for (const t of res.targets) {
      assert.equal(t.message, undefined);
      assert.equal(t.errorCode, undefined);
      assert.match(t.warning ?? '', new RegExp(`^referrer ${refused.artifact.digest} \\(application/vnd.example.unlisted\\+json\\) not copied: .*400 MANIFEST_INVALID`));
    }
    assert.ok(proxy.log.some((e) => e.method === 'PUT' && e.status === 400));
    // The allowed referrer is there and listed; the fallback index names only what the target holds.
    assert.equal((await cb.repository(dstName).headManifest(allowed.digest))?.digest, allowed.digest);
    const listed = JSON.parse(Buffer.from((await cb.repository(dstName).getManifest(allowed.fallbackTag)).bytes).toString()) as { manifests: Array<{ digest: string }> };
    assert.deepEqual(listed.manifests.map((m) => m.digest), [allowed.digest]);
  });

  it('through the reconciler, a refused referrer keeps the mirror Synced and is the row\'s message', async () => {
    const name = uniq('quay-rec/src');
    const img = await pushImage(ca.repository(name), buildImage(), '1.0');
    await pushReferrer(ca.repository(name), img.descriptor, { artifactType: 'application/vnd.example.unlisted+json', cosignTag: false });
    const { proxy } = await quirk(b, { allowedArtifactTypes: [SIGNATURE_ARTIFACT] });
    const reconciler = createReconciler();
    try {
      const m: ImageMirror = {
        apiVersion: 'imagemirror.dev/v1alpha1',
        kind: 'ImageMirror',
        metadata: { name: 'q', namespace: 'team-a', generation: 1 },
        spec: { source: { repository: `${a.host}/${name}`, tags: ['1.0'] }, targets: [{ repository: `${proxy.host}/${uniq('quay-rec/dst')}` }] },
      };
      const r = await reconciler.reconcile(m, anonymousCtx);
      assert.equal(r.outcome, 'synced', r.message);
      assert.equal(r.status.summary, '1/1 in sync');
      assert.match(r.status.targets?.[0]?.message ?? '', /^referrer sha256:[a-f0-9]{64} \(application\/vnd\.example\.unlisted\+json\) not copied/);
    } finally {
      await reconciler.close();
    }
  });

  it('a source fallback tag that resolves to the image itself (GitLab, oras-project/oras-go#1396) lists no referrers and is never copied as an index', async () => {
    const name = uniq('gitlab/src');
    const idx = await pushIndex(ca.repository(name), buildIndex(), 'v1');
    // A real fallback index exists (so the tag is listed), but reads of `sha256-<hex>` resolve to the subject.
    await pushReferrer(ca.repository(name), idx.descriptor, { cosignTag: false });
    const src = (await quirk(a, { digestTagAliases: true })).client.repository(name);
    const dstName = uniq('gitlab/dst');
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[cb.repository(dstName), ['v1']]], { referrers: true }));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.equal(res.targets[0]!.warning, undefined);
    assert.equal(await cb.repository(dstName).headManifest(fallbackTagOf(idx.digest)), undefined, 'the subject index was not written as the fallback tag');
  });

  it('a target fallback tag that resolves to the image itself (GitLab) is never merged into or replaced; the rows say why', async () => {
    const name = uniq('gitlab-t/src');
    const img = await pushImage(ca.repository(name), buildImage(), 'v1');
    const sig = await pushReferrer(ca.repository(name), img.descriptor, { cosignTag: false });
    const dstName = uniq('gitlab-t/dst');
    const { proxy, client } = await quirk(b, { digestTagAliases: true });
    const res = await new CopyEngine().copyImage(req(ca.repository(name), 'v1', [[client.repository(dstName), ['v1']]], { referrers: true }));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.match(res.targets[0]!.warning ?? '', new RegExp(`referrers not copied: .*:${sig.fallbackTag} is the image itself, not an index of referrers`));
    assert.ok(!proxy.log.some((e) => e.method === 'PUT' && e.path.endsWith(`/manifests/${sig.fallbackTag}`)), JSON.stringify(proxy.log.filter((e) => e.method === 'PUT')));
    assert.equal(await cb.repository(dstName).headManifest(sig.fallbackTag), undefined);
  });

  it('a blob HEAD answering 200 at another size (zot deduplication stub, project-zot/zot#4427) is not "exists": the blob is uploaded', async () => {
    const name = uniq('zot/src');
    const img = await pushImage(ca.repository(name), buildImage({ layers: [3000, 4000] }), 'v1');
    const dstName = uniq('zot/dst');
    const { client } = await quirk(b, { blobHeadStubs: true });
    const res = await new CopyEngine().copyImage(req(ca.repository(name), 'v1', [[client.repository(dstName), ['v1']]]));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: 0, upload: img.blobs.length });
    for (const blob of img.blobs) assert.equal(await cb.repository(dstName).headBlob(blob.descriptor.digest), blob.descriptor.size);
  });

  it('ECR mounts only referenced blobs (aws/containers-roadmap#2860): once learned, a fan-out writes one repository first and mounts into the rest', async () => {
    const { proxy, client } = await quirk(b, { ecrMounts: true, holdManifestPuts: true });
    const engine = new CopyEngine();
    const name = uniq('ecr/src');
    const repos = [uniq('ecr/r1'), uniq('ecr/r2'), uniq('ecr/r3')];
    const first = await pushImage(ca.repository(name), buildImage({ layers: [2000, 3000] }), 'v1');
    // The first fan-out in parallel: r1's manifest is held until a mount from r1 has been refused.
    const firstRun = engine.copyImage(req(ca.repository(name), 'v1', repos.map((r) => [client.repository(r), ['v1']])));
    await proxy.answered((e) => e.path.includes('mount=') && e.status === 202);
    proxy.releaseManifests();
    const r1 = await firstRun;
    assert.ok(r1.targets.every((t) => t.action === 'Copied'), JSON.stringify(r1.targets));
    assert.equal(engine.mountsNeedManifestOf(proxy.host), true, 'learned from a refused mount of a just-uploaded blob');
    assert.notEqual(client.capabilities.mount, false, 'those refusals do not give mounting up');
    // First time: the repository whose mount was refused uploaded too (later ones may mount from r1 once its manifest is in).
    const uploads = r1.targets.reduce((n, t) => n + t.blobs.upload, 0);
    assert.ok(uploads >= first.blobs.length * 2, `${uploads} uploads`);
    assert.equal(uploads + r1.targets.reduce((n, t) => n + t.blobs.mount, 0), first.blobs.length * 3);

    const second = await pushImage(ca.repository(name), buildImage({ layers: [2500, 3500] }), 'v2');
    proxy.log.length = 0;
    const r2 = await engine.copyImage(req(ca.repository(name), 'v2', repos.map((r) => [client.repository(r), ['v2']])));
    assert.ok(r2.targets.every((t) => t.action === 'Copied'), JSON.stringify(r2.targets));
    assert.deepEqual(r2.targets.map((t) => t.blobs), [
      { exists: 0, mount: 0, upload: second.blobs.length },
      { exists: 0, mount: second.blobs.length, upload: 0 },
      { exists: 0, mount: second.blobs.length, upload: 0 },
    ]);
    // r1's manifest went in before the first mount was asked for, and every mount was taken.
    const tagPut = proxy.log.findIndex((e) => e.method === 'PUT' && e.path === `/v2/${repos[0]}/manifests/v2`);
    const mounts = proxy.log.map((e, i) => ({ e, i })).filter(({ e }) => e.path.includes('mount='));
    assert.ok(tagPut >= 0 && mounts.length === second.blobs.length * 2, JSON.stringify(proxy.log));
    assert.ok(mounts.every(({ e, i }) => i > tagPut && e.status === 201), JSON.stringify(mounts));
    assert.equal(client.capabilities.mount, true);
  });

  it('a registry that mounts fine keeps the parallel fan-out (nothing learned, every other repository mounts)', async () => {
    const name = uniq('par/src');
    const img = await pushImage(ca.repository(name), buildImage({ layers: [2000] }), 'v1');
    const engine = new CopyEngine();
    const res = await engine.copyImage(req(ca.repository(name), 'v1', [1, 2, 3].map(() => [cb.repository(uniq('par/dst')), ['v1']])));
    assert.equal(engine.mountsNeedManifestOf(b.host), false);
    assert.equal(res.targets.reduce((n, t) => n + t.blobs.mount, 0), img.blobs.length * 2);
  });

  it('ECR TAG_INVALID on an immutable tag is a Conflict with a clear message (aws/containers-roadmap#862)', async () => {
    const name = uniq('immut/src');
    await pushImage(ca.repository(name), buildImage(), 'v1');
    const dstName = uniq('immut/dst');
    const existing = await pushImage(cb.repository(dstName), buildImage(), 'v1');
    const { client } = await quirk(b, { immutableTags: true });
    const res = await new CopyEngine().copyImage(req(ca.repository(name), 'v1', [[client.repository(dstName), ['v1', 'new']]]));
    const [old, fresh] = res.targets;
    assert.equal(old!.action, 'Conflict');
    assert.equal(old!.digest, existing.digest);
    assert.equal(old!.errorCode, 'TAG_INVALID');
    assert.match(old!.message ?? '', /tag points to sha256:[a-f0-9]{64}, source is sha256:[a-f0-9]{64}; the registry refuses to move it \(immutable tags\): .*cannot be overwritten because the repository is immutable/);
    assert.equal(fresh!.action, 'Copied');
    assert.equal((await cb.repository(dstName).headManifest('v1'))?.digest, existing.digest);
  });

  it('ECR NAME_UNKNOWN on a push (no create-on-push, aws/containers-roadmap#853): Failed, saying the repository must exist', async () => {
    const name = uniq('noname/src');
    await pushImage(ca.repository(name), buildImage(), 'v1');
    const { client } = await quirk(b, { existingRepositories: [] });
    const res = await new CopyEngine().copyImage(req(ca.repository(name), 'v1', [[client.repository(uniq('noname/dst')), ['v1']]]));
    assert.equal(res.targets[0]!.action, 'Failed');
    assert.equal(res.targets[0]!.errorCode, 'NAME_UNKNOWN');
    assert.match(res.targets[0]!.message ?? '', /does not exist in the registry with id .*the repository must exist before pushing: create it, or set up create-on-push/);
  });

  it('a mirror to registry B completes while registry A is in a 5-minute Retry-After, even with one blob slot (Docker Hub 429)', async () => {
    const name = uniq('pause/src');
    const img = await pushImage(ca.repository(name), buildImage({ layers: [1500, 2500] }), 'v1');
    const paused = await startFaultProxy(b, { failFirst: { count: 1, status: 429, retryAfter: '300', method: 'HEAD', pathIncludes: '/blobs/' } });
    const clock = new ManualClock();
    const clientA = new RegistryClient(paused.host, { clock });
    stops.push(() => clientA.close(), () => paused.stop());
    const engine = new CopyEngine({ blobConcurrency: 1 });
    let settledA = false;
    const copyA = engine.copyImage(req(ca.repository(name), 'v1', [[clientA.repository(uniq('pause/a')), ['v1']]])).finally(() => (settledA = true));
    await clock.sleeping();
    const sentToA = paused.log.length;
    const resB = await engine.copyImage(req(ca.repository(name), 'v1', [[cb.repository(uniq('pause/b')), ['v1']]]));
    assert.equal(resB.targets[0]!.action, 'Copied', resB.targets[0]!.message);
    assert.equal(settledA, false, 'A is still waiting');
    assert.equal(paused.log.length, sentToA, 'nothing sent to A meanwhile');
    const waiting = clock.pending;
    clock.advance(299_999);
    assert.equal(clock.pending, waiting, 'every wait lasts the full 5 minutes');
    clock.advance(1);
    const resA = await copyA;
    assert.equal(resA.targets[0]!.action, 'Copied', resA.targets[0]!.message);
    assert.deepEqual(resA.targets[0]!.blobs, { exists: 0, mount: 0, upload: img.blobs.length });
  });

  it('the reconciler\'s client options reach every registry client: a quota floor set there holds (createReconciler({ client: { rateLimit } }))', async () => {
    const name = uniq('floor-rec/src');
    await pushImage(ca.repository(name), buildImage(), '1.0');
    const { proxy } = await quirk(a, { dockerHubQuota: { limit: 100, remaining: 3 } });
    const reconciler = createReconciler({ client: { rateLimit: { floor: 3 } } });
    try {
      const m: ImageMirror = {
        apiVersion: 'imagemirror.dev/v1alpha1',
        kind: 'ImageMirror',
        metadata: { name: 'f', namespace: 'team-a', generation: 1 },
        spec: { source: { repository: `${proxy.host}/${name}`, tags: ['1.0'] }, targets: [{ repository: `${b.host}/${uniq('floor-rec/dst')}` }], referrers: false },
      };
      const r = await reconciler.reconcile(m, anonymousCtx);
      assert.equal(r.outcome, 'retry');
      assert.match(r.message, /reports 3 of 100 pulls left, and the last 3 are kept for others/);
      assert.ok(!proxy.log.some((e) => e.method === 'GET' && e.path.includes('/manifests/')), 'no pull spent');
    } finally {
      await reconciler.close();
    }
  });
});
