/**
 * Copying chosen platforms of a multi-platform image: the matching rules, the new index (only the
 * kept children and their attestations, every other field kept, the same bytes every time), and a
 * copy between two real registries that skopeo pulls for arm64 with nothing of amd64 uploaded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CopyEngine, type CopyImageRequest } from '../../src/copy/engine.js';
import { filterIndex, parsePlatform, platformMatches } from '../../src/copy/platforms.js';
import { ImageReader, ManifestCache, parseManifest } from '../../src/copy/image-tree.js';
import { MemoryStore } from '../../src/backends/memory/index.js';
import type { Descriptor, Platform, Repository } from '../../src/oci/content.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import type { ImageMirror } from '../../src/mirror/types.js';
import { buildImage, buildIndex, fallbackTagOf, pushImage, pushIndex, pushReferrer, type BuiltImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const execFileP = promisify(execFile);
let seq = 0;
const uniq = (name: string): string => `${name}-${++seq}-${process.pid}`;

const ATTESTATION = { 'vnd.docker.reference.type': 'attestation-manifest' };
const UNKNOWN: Platform = { architecture: 'unknown', os: 'unknown' };

/** A buildkit-style index: three platforms, an attestation manifest for each, annotations on the index. */
function buildkitIndex(): { bytes: Buffer; digest: string; children: BuiltImage[]; attestations: BuiltImage[]; descriptor: Descriptor } {
  const idx = buildIndex();
  const attestations = idx.children.map((c) => {
    const a = buildImage({ platform: UNKNOWN, layers: [64] });
    return { ...a, descriptor: { ...a.descriptor, annotations: { ...ATTESTATION, 'vnd.docker.reference.digest': c.digest } } };
  });
  const json = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [...idx.children.map((c) => c.descriptor), ...attestations.map((a) => a.descriptor)],
    annotations: { 'org.opencontainers.image.source': 'https://example.com/app' },
  };
  // Indented like buildkit's output: the new index is written compactly, so its digest must differ.
  const bytes = Buffer.from(JSON.stringify(json, null, 2));
  const digest = sha256Digest(bytes);
  return { bytes, digest, children: idx.children, attestations, descriptor: { mediaType: MediaType.OciIndex, digest, size: bytes.length } };
}

function req(source: Repository, reference: string, target: Repository, extra: Partial<CopyImageRequest> = {}): CopyImageRequest {
  return { source, reference, targets: [{ repository: target, tags: [reference] }], referrers: false, overwrite: true, ...extra };
}

describe('platforms: copying chosen children of an index', function () {
  describe('matching and the new index', () => {
    it('parses os/arch[/variant] and refuses anything else', () => {
      assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
      assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
      for (const bad of ['linux', 'linux/', 'Linux/amd64', 'linux/arm/v7/x', '']) assert.throws(() => parsePlatform(bad), /expected os\/arch or os\/arch\/variant/, bad);
    });

    const table: Array<[string, Platform | undefined, boolean]> = [
      ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
      ['linux/arm64', { os: 'linux', architecture: 'arm64' }, true],
      ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }, true], // arm64 without a variant is v8
      ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v9' }, false],
      ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v6' }, true], // no variant: any
      ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
      ['linux/arm/v7', { os: 'linux', architecture: 'arm' }, false], // only arm64 implies a variant
      ['linux/amd64', { os: 'windows', architecture: 'amd64' }, false],
      ['linux/amd64', undefined, false],
    ];
    for (const [want, have, ok] of table) {
      it(`${want} ${ok ? 'takes' : 'does not take'} ${have ? JSON.stringify(have) : 'a descriptor without platform'}`, () => {
        assert.equal(platformMatches(parsePlatform(want), have), ok);
      });
    }

    it('keeps only the matching children and their attestations, every other field, in source order; the same bytes every time; the source itself when all match', async () => {
      const store = new MemoryStore();
      const repo = store.repository('team/app');
      const idx = buildkitIndex();
      for (const c of [...idx.children, ...idx.attestations]) await pushImage(repo, c);
      await repo.putManifest(idx.digest, { mediaType: MediaType.OciIndex, bytes: idx.bytes });
      const read = async () => {
        const raw = await new ImageReader(new ManifestCache()).manifest(repo, idx.digest);
        return { raw, json: parseManifest(raw, 'test') };
      };
      const { raw, json: parsed } = await read();
      const wanted = [parsePlatform('linux/arm64'), parsePlatform('linux/ppc64le')];
      const kept = filterIndex(raw, parsed, wanted)!;
      const json = JSON.parse(Buffer.from(kept.bytes).toString()) as { manifests: Descriptor[]; annotations: Record<string, string>; schemaVersion: number; mediaType: string };
      assert.deepEqual(json.manifests, [idx.children[1]!.descriptor, idx.children[2]!.descriptor, idx.attestations[1]!.descriptor, idx.attestations[2]!.descriptor]);
      assert.deepEqual(json.annotations, { 'org.opencontainers.image.source': 'https://example.com/app' });
      assert.equal(json.mediaType, MediaType.OciIndex);
      assert.equal(json.schemaVersion, 2);
      assert.equal(kept.digest, sha256Digest(kept.bytes));
      assert.equal(kept.mediaType, MediaType.OciIndex);
      // Deterministic: a second read of the same source (no cache) gives the same bytes.
      const again = await read();
      assert.deepEqual(Buffer.from(filterIndex(again.raw, again.json, wanted)!.bytes), Buffer.from(kept.bytes));
      assert.equal(filterIndex(raw, parsed, [parsePlatform('linux/s390x')]), undefined);
      const all = ['linux/amd64', 'linux/arm64', 'linux/ppc64le'].map((p) => parsePlatform(p));
      assert.equal(filterIndex(raw, parsed, all), raw);
    });
  });

  describe('between real registries', function () {
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

    it('[linux/arm64] of a 3-platform index: a one-child index on the target, pullable for arm64, no amd64 blob uploaded, index signatures left behind and said so, child signatures copied; a re-sync is a no-op', async () => {
      const src = ca.repository(uniq('plat/src'));
      const idx = buildkitIndex();
      for (const c of [...idx.children, ...idx.attestations]) await pushImage(src, c);
      await src.putManifest('v1', { mediaType: MediaType.OciIndex, bytes: idx.bytes });
      const indexSig = await pushReferrer(src, idx.descriptor);
      const [amd64, arm64, ppc64le] = idx.children as [BuiltImage, BuiltImage, BuiltImage];
      const childSig = await pushReferrer(src, arm64.descriptor);
      const dst = cb.repository(uniq('plat/dst'));
      const sourceTags = await src.listTags();

      await a.resetLog();
      const res = await new CopyEngine().copyImage(req(src, 'v1', dst, { platforms: ['linux/arm64'], referrers: true, sourceTags }));
      // Nothing of the dropped platforms was even read from the source.
      const sourceLog = await a.accessLog();
      for (const other of [amd64, ppc64le]) {
        assert.ok(!sourceLog.some((e) => e.path.endsWith(other.digest) || other.blobs.some((bl) => e.path.endsWith(bl.descriptor.digest))), `read ${other.digest}`);
      }
      const [row] = res.targets;
      assert.equal(row!.action, 'Copied', row!.message);
      assert.equal(res.sourceDigest, idx.digest);
      assert.notEqual(res.digest, idx.digest);
      assert.equal(row!.digest, res.digest);
      assert.equal(row!.sourceDigest, idx.digest);
      assert.match(row!.warning ?? '', new RegExp(`^signatures of the source index ${idx.digest} not copied \\(1 referrer; cosign tag ${indexSig.cosignTag}\\): they sign the unfiltered index`));

      // The target index: exactly the arm64 child and its attestation, annotations kept.
      const { stdout: raw } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/${dst.repository}:v1`], { encoding: 'buffer' });
      assert.equal(sha256Digest(raw), res.digest);
      const written = JSON.parse(raw.toString()) as { manifests: Descriptor[]; annotations?: Record<string, string> };
      assert.deepEqual(written.manifests, [arm64.descriptor, idx.attestations[1]!.descriptor]);
      assert.deepEqual(written.annotations, { 'org.opencontainers.image.source': 'https://example.com/app' });

      // Pullable for arm64 by an independent client.
      const dir = await mkdtemp(join(tmpdir(), 'plat-oci-'));
      try {
        await execFileP('skopeo', ['copy', '--preserve-digests', '--override-arch', 'arm64', '--override-os', 'linux', '--src-tls-verify=false', `docker://${b.host}/${dst.repository}:v1`, `oci:${dir}:pulled`]);
        const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
        assert.equal(index.manifests[0]!.digest, arm64.digest, 'skopeo picked the arm64 child');
        for (const blob of arm64.blobs) await readFile(join(dir, 'blobs', 'sha256', blob.descriptor.digest.slice(7)));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }

      // Nothing of the other platforms (or their attestations) reached the target.
      for (const other of [amd64, ppc64le, idx.attestations[0]!, idx.attestations[2]!]) {
        assert.equal(await dst.headManifest(other.digest), undefined, other.digest);
        for (const blob of other.blobs) assert.equal(await dst.headBlob(blob.descriptor.digest), undefined, `${blob.descriptor.digest} of ${other.digest}`);
      }
      // The source index's signatures are not on the target; the kept child's are.
      assert.equal(await dst.headManifest(indexSig.digest), undefined);
      assert.equal(await dst.headManifest(fallbackTagOf(idx.digest)), undefined);
      assert.equal(await dst.headManifest(indexSig.cosignTag), undefined);
      assert.equal((await dst.headManifest(childSig.digest))?.digest, childSig.digest);
      assert.equal((await dst.headManifest(childSig.cosignTag))?.digest, childSig.digest);

      // A re-sync by a fresh engine: the target shows the digest it would write, nothing moves.
      await b.resetLog();
      const again = await new CopyEngine().copyImage(req(src, 'v1', dst, { platforms: ['linux/arm64'], referrers: true, sourceTags }));
      assert.equal(again.targets[0]!.action, 'UpToDate', again.targets[0]!.message);
      assert.equal(again.digest, res.digest);
      assert.equal(again.targets[0]!.bytesCopied, 0);
      const writes = (await b.accessLog()).filter((e) => !['GET', 'HEAD'].includes(e.method) && !e.path.startsWith('/v2/?'));
      assert.deepEqual(writes, []);
    });

    it('without platforms, or with every platform of the index, the index is copied byte for byte', async () => {
      const src = ca.repository(uniq('plat-all/src'));
      const idx = buildkitIndex();
      for (const c of [...idx.children, ...idx.attestations]) await pushImage(src, c);
      await src.putManifest('v1', { mediaType: MediaType.OciIndex, bytes: idx.bytes });
      for (const platforms of [undefined, ['linux/amd64', 'linux/arm64', 'linux/ppc64le']]) {
        const dst = cb.repository(uniq('plat-all/dst'));
        const res = await new CopyEngine().copyImage(req(src, 'v1', dst, platforms ? { platforms } : {}));
        assert.equal(res.digest, idx.digest);
        assert.equal(res.targets[0]!.sourceDigest, undefined);
        assert.deepEqual(Buffer.from((await dst.getManifest('v1')).bytes), idx.bytes);
      }
    });

    it('a single-platform image: copied as it is when it matches, a one-line error naming its platform when not', async () => {
      const src = ca.repository(uniq('plat-one/src'));
      const img = await pushImage(src, buildImage({ platform: { os: 'linux', architecture: 'amd64' } }), 'v1');
      const ok = await new CopyEngine().copyImage(req(src, 'v1', cb.repository(uniq('plat-one/dst')), { platforms: ['linux/arm64', 'linux/amd64'] }));
      assert.equal(ok.digest, img.digest);
      assert.equal(ok.targets[0]!.action, 'Copied');
      const dst = cb.repository(uniq('plat-one/dst'));
      await assert.rejects(new CopyEngine().copyImage(req(src, 'v1', dst, { platforms: ['linux/arm64'] })), (e: Error) => {
        assert.equal(e.message, `${a.host}/${src.repository}:v1: a single-platform image for linux/amd64, not one of platforms linux/arm64`);
        return true;
      });
      assert.equal(await dst.headManifest('v1'), undefined);
    });

    it('an index with no matching child: a one-line error naming what it holds', async () => {
      const src = ca.repository(uniq('plat-none/src'));
      await pushIndex(src, buildIndex(), 'v1');
      await assert.rejects(new CopyEngine().copyImage(req(src, 'v1', cb.repository(uniq('plat-none/dst')), { platforms: ['linux/s390x'] })), (e: Error) => {
        assert.equal(e.message, `${a.host}/${src.repository}:v1: no child of the index matches platforms linux/s390x (it holds linux/amd64, linux/arm64/v8, linux/ppc64le)`);
        return true;
      });
    });

    it('through the reconciler: spec.source.platforms reaches the copy, and the status row shows both digests', async () => {
      const name = uniq('plat-rec/src');
      const idx = await pushIndex(ca.repository(name), buildIndex(), '1.0');
      const dstName = uniq('plat-rec/dst');
      const reconciler = createReconciler();
      try {
        const m: ImageMirror = {
          apiVersion: 'imagemirror.dev/v1alpha1',
          kind: 'ImageMirror',
          metadata: { name: 'p', namespace: 'team-a', generation: 1 },
          spec: { source: { repository: `${a.host}/${name}`, tags: ['1.0'], platforms: ['linux/arm64/v8'] }, targets: [{ repository: `${b.host}/${dstName}` }], referrers: false },
        };
        const r = await reconciler.reconcile(m, { credentials: async () => ({ get: async () => undefined }) });
        assert.equal(r.outcome, 'synced', r.message);
        const row = r.status.targets?.[0];
        const written = (await cb.repository(dstName).headManifest('1.0'))?.digest;
        assert.equal(row?.digest, written);
        assert.notEqual(written, idx.digest);
        assert.equal(row?.sourceDigest, idx.digest);
        assert.deepEqual(r.status.sourceDigests, { '1.0': idx.digest });
        const json = JSON.parse(Buffer.from((await cb.repository(dstName).getManifest('1.0')).bytes).toString()) as { manifests: Descriptor[] };
        assert.deepEqual(json.manifests.map((d) => d.digest), [idx.children[1]!.digest]);
      } finally {
        await reconciler.close();
      }
    });

    it('a dry run plans the filtered index: its digest, and only the kept blobs', async () => {
      const src = ca.repository(uniq('plat-dry/src'));
      const idx = await pushIndex(src, buildIndex(), 'v1');
      const dst = cb.repository(uniq('plat-dry/dst'));
      const real = await new CopyEngine().copyImage(req(src, 'v1', cb.repository(uniq('plat-dry/real')), { platforms: ['linux/arm64'] }));
      const plan = await new CopyEngine().copyImage(req(src, 'v1', dst, { platforms: ['linux/arm64'], dryRun: true }));
      assert.equal(plan.targets[0]!.action, 'Copied');
      assert.equal(plan.digest, real.digest);
      assert.equal(plan.targets[0]!.sourceDigest, idx.digest);
      const arm = idx.children[1]!;
      assert.equal(plan.targets[0]!.blobs.upload + plan.targets[0]!.blobs.mount, arm.blobs.length);
      assert.equal(await dst.headManifest('v1'), undefined);
    });
  });
});
