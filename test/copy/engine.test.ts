/**
 * The copy engine against real registries (Debian's docker-registry), counting requests from the
 * registries' own access logs and checking bytes with skopeo as an independent reader.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { CopyEngine, type CopyImageRequest } from '../../src/copy/engine.js';
import { BlobLocations } from '../../src/copy/blob-locations.js';
import { Metrics } from '../../src/metrics.js';
import type { Repository } from '../../src/oci/content.js';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import {
  STARGZ_TOC,
  buildEstargzImage,
  buildImage,
  buildIndex,
  buildReferrer,
  fallbackTagOf,
  pushBlobs,
  pushImage,
  pushIndex,
  pushReferrer,
  type BuiltImage,
} from '../support/images.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../support/registry.js';

const execFileP = promisify(execFile);

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const isBlobPath = (e: AccessLogEntry): boolean => /\/blobs\//.test(e.path);
const writes = (log: AccessLogEntry[]): AccessLogEntry[] => log.filter((e) => WRITES.has(e.method));
const v2 = (log: AccessLogEntry[]): AccessLogEntry[] => log.filter((e) => e.path.startsWith('/v2/') && e.path !== '/v2/');
let seq = 0;
const uniq = (name: string): string => `${name}-${++seq}-${process.pid}`;

async function skopeoRaw(host: string, ref: string): Promise<Buffer> {
  const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${ref}`], { encoding: 'buffer', maxBuffer: 8 << 20 });
  return stdout;
}

function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function blobBytes(img: { blobs: Array<{ descriptor: { size: number } }> }): number {
  return img.blobs.reduce((s, b) => s + b.descriptor.size, 0);
}

describe('copy engine (real registries)', function () {
  this.timeout(60000);
  let a: TestRegistry;
  let b: TestRegistry;
  let locked: TestRegistry;
  let ca: RegistryClient;
  let cb: RegistryClient;
  let clocked: RegistryClient;

  before(async () => {
    [a, b, locked] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ auth: 'htpasswd' })]);
    ca = new RegistryClient(a.host);
    cb = new RegistryClient(b.host);
    clocked = new RegistryClient(locked.host); // no credentials: every request is refused
  });

  after(async () => {
    await Promise.all([ca?.close(), cb?.close(), clocked?.close()]);
    await Promise.all([a?.stop(), b?.stop(), locked?.stop()]);
  });

  function req(source: Repository, reference: string, targets: Array<[Repository, string[]]>, extra: Partial<CopyImageRequest> = {}): CopyImageRequest {
    return { source, reference, targets: targets.map(([repository, tags]) => ({ repository, tags })), referrers: false, overwrite: true, ...extra };
  }

  it('same-registry copy to a new repository mounts every blob and uploads none', async () => {
    const src = ca.repository(uniq('same/src'));
    const dst = ca.repository(uniq('same/dst'));
    const img = await pushImage(src, buildImage({ layers: [3000, 5000, 7000] }), 'v1');
    await a.resetLog();
    const metrics = new Metrics();
    const res = await new CopyEngine({ metrics }).copyImage(req(src, 'v1', [[dst, ['v1']]]));
    assert.equal(res.sourceDigest, img.digest);
    const [r] = res.targets;
    assert.equal(r!.action, 'Copied', r!.message);
    assert.deepEqual(r!.blobs, { exists: 0, mount: img.blobs.length, upload: 0 });
    assert.equal(r!.bytesCopied, 0);
    assert.equal(r!.bytesSaved, blobBytes(img));
    const log = await a.accessLog();
    assert.equal(log.filter((e) => e.method === 'PATCH').length, 0, 'no PATCH');
    assert.equal(log.filter((e) => e.method === 'PUT' && isBlobPath(e)).length, 0, 'no blob PUT');
    const mounts = log.filter((e) => e.method === 'POST' && e.path.includes('mount='));
    assert.equal(mounts.length, img.blobs.length);
    assert.ok(mounts.every((e) => e.status === 201), JSON.stringify(mounts));
    assert.equal((await dst.headManifest('v1'))?.digest, img.digest);
    assert.match(await metrics.exposition(), new RegExp(`imagemirror_blobs_total\\{action="mount"\\} ${img.blobs.length}\n`));
    assert.match(await metrics.exposition(), /imagemirror_target_syncs_total\{result="copied"\} 1/);
  });

  it('retag in the same repository sends no blob request and one manifest PUT', async () => {
    const src = ca.repository(uniq('retag'));
    const img = await pushImage(src, buildImage(), 'v1');
    await a.resetLog();
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[src, ['v1-copy', 'stable']]]));
    assert.deepEqual(res.targets.map((t) => t.action), ['Retagged', 'Retagged']);
    assert.equal(res.targets[0]!.bytesSaved, blobBytes(img));
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: 0, upload: 0 });
    const log = v2(await a.accessLog());
    assert.equal(log.filter(isBlobPath).length, 0, JSON.stringify(log));
    assert.equal(writes(log).length, 2);
    assert.equal((await src.headManifest('stable'))?.digest, img.digest);
  });

  it('a target repository already holding the manifest gets exactly one manifest PUT', async () => {
    const src = ca.repository(uniq('held/src'));
    const img = await pushImage(src, buildImage(), 'v1');
    const dst = cb.repository(uniq('held/dst'));
    await pushImage(dst, img); // by digest only
    await b.resetLog();
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]]));
    assert.equal(res.targets[0]!.action, 'Retagged');
    const log = v2(await b.accessLog());
    assert.deepEqual(writes(log).map((e) => `${e.method} ${e.path}`), [`PUT /v2/${dst.repository}/manifests/v1`]);
    assert.equal(log.filter(isBlobPath).length, 0);
  });

  it('fans one image out to 10 repositories of another registry reading each source blob once', async () => {
    const src = ca.repository(uniq('fan/src'));
    const img = await pushImage(src, buildImage({ layers: [20000, 30000, 40000, 50000] }), 'v1');
    const targets = Array.from({ length: 10 }, (_, i) => cb.repository(uniq(`fan/dst${i}`)));
    await a.resetLog();
    await b.resetLog();
    const progress: number[] = [];
    const res = await new CopyEngine().copyImage(
      req(src, 'v1', targets.map((t) => [t, ['v1']]), { onProgress: (p) => progress.push(p.bytes) }),
    );
    assert.ok(res.targets.every((t) => t.action === 'Copied'), JSON.stringify(res.targets));
    const srcGets = (await a.accessLog()).filter((e) => e.method === 'GET' && isBlobPath(e));
    const perBlob = new Map<string, number>();
    for (const e of srcGets) perBlob.set(e.path, (perBlob.get(e.path) ?? 0) + 1);
    assert.equal(perBlob.size, img.blobs.length);
    assert.ok([...perBlob.values()].every((n) => n === 1), JSON.stringify([...perBlob]));
    const uploads = res.targets.reduce((s, t) => s + t.blobs.upload, 0);
    const mounts = res.targets.reduce((s, t) => s + t.blobs.mount, 0);
    assert.equal(uploads, img.blobs.length);
    assert.equal(mounts, img.blobs.length * 9);
    assert.equal(res.targets.reduce((s, t) => s + t.bytesCopied, 0), blobBytes(img));
    assert.equal(progress.at(-1), blobBytes(img));
    for (const t of targets) assert.equal((await t.headManifest('v1'))?.digest, img.digest);
  });

  it('a re-sync with nothing changed writes nothing: one HEAD per target tag, plus one per referrer tag and target repository', async () => {
    const src = ca.repository(uniq('noop/src'));
    const idx = await pushIndex(src, buildIndex(), 'v1');
    const ref = await pushReferrer(src, idx.descriptor);
    const sourceTags = await src.listTags();
    const t1 = cb.repository(uniq('noop/dst1'));
    const t2 = ca.repository(uniq('noop/dst2'));
    const targets: Array<[Repository, string[]]> = [[t1, ['v1', 'stable']], [t2, ['v1']]];
    const engine = new CopyEngine();
    const first = await engine.copyImage(req(src, 'v1', targets, { referrers: true, sourceTags }));
    assert.ok(first.targets.every((t) => t.action === 'Copied' || t.action === 'Retagged'), JSON.stringify(first.targets));
    assert.equal((await t1.headManifest(ref.cosignTag))?.digest, ref.digest);
    await a.resetLog();
    await b.resetLog();
    const again = await new CopyEngine().copyImage(req(src, 'v1', targets, { referrers: true, sourceTags }));
    assert.deepEqual(again.targets.map((t) => t.action), ['UpToDate', 'UpToDate', 'UpToDate']);
    assert.ok(again.targets.every((t) => t.bytesSaved === 0 && t.bytesCopied === 0));
    const la = v2(await a.accessLog());
    const lb = v2(await b.accessLog());
    assert.deepEqual(writes([...la, ...lb]), []);
    const onTargets = [...lb, ...la.filter((e) => e.path.includes(t2.repository))];
    // One HEAD per target tag, plus per target repository one HEAD of the referrers fallback tag
    // and one per cosign tag: 3 tags + 2 repos × 2 = 7. (≤ 2 per target tag holds when a repository's
    // referrer tags are no more than its target tags; the README says so.)
    assert.equal(onTargets.length, 3 + 2 * 2, JSON.stringify(onTargets));
    assert.ok(onTargets.every((e) => e.method === 'HEAD'), JSON.stringify(onTargets));
    // Without referrers: exactly one HEAD per target tag.
    await a.resetLog();
    await b.resetLog();
    await new CopyEngine().copyImage(req(src, idx.digest, targets));
    const plain = [...v2(await b.accessLog()), ...v2(await a.accessLog())];
    assert.equal(plain.length, 3, JSON.stringify(plain));
  });

  it('copies a 3-platform index with eStargz layers byte-identically and merges its referrer into the fallback index', async () => {
    const src = ca.repository(uniq('multi/src'));
    const platforms = buildIndex();
    // eStargz annotations ride on the layer descriptors: swap one child for an eStargz image.
    const estargz = buildEstargzImage();
    const children = [{ ...estargz, descriptor: { ...estargz.descriptor, platform: platforms.children[0]!.descriptor.platform! } }, ...platforms.children.slice(1)];
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: children.map((c) => c.descriptor) }, null, 3));
    for (const c of children) await pushImage(src, c as BuiltImage);
    await src.putManifest('v1', { mediaType: MediaType.OciIndex, bytes: indexBytes });
    const indexDigest = sha256(indexBytes);
    const subject = { mediaType: MediaType.OciIndex, digest: indexDigest, size: indexBytes.length };
    const sig = await pushReferrer(src, subject);

    const dst = cb.repository(uniq('multi/dst'));
    // Another tool's referrer of the same subject is already listed on the target.
    const foreign = buildReferrer(subject, { artifactType: 'application/spdx+json' });
    await pushBlobs(dst, foreign.blobs);
    await dst.putManifest(foreign.artifact.digest, { mediaType: foreign.artifact.mediaType, bytes: foreign.artifact.bytes });
    const foreignIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [foreign.artifact.descriptor] }));
    await dst.putManifest(fallbackTagOf(indexDigest), { mediaType: MediaType.OciIndex, bytes: foreignIndex });

    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]], { referrers: true, sourceTags: await src.listTags() }));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.equal(res.sourceDigest, indexDigest);

    const raw = await skopeoRaw(b.host, `${dst.repository}:v1`);
    assert.ok(raw.equals(indexBytes), 'index bytes differ');
    assert.equal(sha256(raw), indexDigest);
    for (const c of children) {
      const childRaw = await skopeoRaw(b.host, `${dst.repository}@${c.digest}`);
      assert.ok(childRaw.equals(c.bytes), `child ${c.digest} bytes differ`);
    }
    const stargzChild = JSON.parse((await skopeoRaw(b.host, `${dst.repository}@${estargz.digest}`)).toString()) as { layers: Array<{ annotations?: Record<string, string> }> };
    assert.ok(stargzChild.layers.every((l) => l.annotations?.[STARGZ_TOC]));

    const fallback = JSON.parse((await skopeoRaw(b.host, `${dst.repository}:${fallbackTagOf(indexDigest)}`)).toString()) as { manifests: Array<{ digest: string }> };
    const listed = fallback.manifests.map((m) => m.digest);
    assert.ok(listed.includes(sig.digest), 'our referrer is listed');
    assert.ok(listed.includes(foreign.artifact.digest), 'the foreign referrer survived the merge');
    assert.equal(new Set(listed).size, listed.length, 'no duplicates');
    assert.ok((await skopeoRaw(b.host, `${dst.repository}@${sig.digest}`)).equals(sig.bytes));
    assert.equal((await dst.headManifest(sig.cosignTag))?.digest, sig.digest);

    // A second run finds the merged index complete and writes nothing.
    await b.resetLog();
    const again = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]], { referrers: true, sourceTags: await src.listTags() }));
    assert.equal(again.targets[0]!.action, 'UpToDate');
    assert.deepEqual(writes(await b.accessLog()), []);
  });

  it('without the fallback tag on the target, writes the source fallback index byte-exact', async () => {
    const src = ca.repository(uniq('fb/src'));
    const img = await pushImage(src, buildImage(), 'v1');
    const sig = await pushReferrer(src, img.descriptor, { cosignTag: false });
    const dst = cb.repository(uniq('fb/dst'));
    const res = await new CopyEngine().copyImage(req(src, img.digest, [[dst, ['v1']]], { referrers: true }));
    assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
    assert.ok((await skopeoRaw(b.host, `${dst.repository}:${sig.fallbackTag}`)).equals(sig.fallbackIndex.bytes));
  });

  it('overwrite false leaves a tag pointing elsewhere untouched and reports Conflict', async () => {
    const src = ca.repository(uniq('conf/src'));
    const img = await pushImage(src, buildImage(), 'v1');
    const dst = cb.repository(uniq('conf/dst'));
    const other = await pushImage(dst, buildImage(), 'v1');
    await b.resetLog();
    const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1', 'new']]], { overwrite: false }));
    assert.equal(res.targets[0]!.action, 'Conflict');
    assert.equal(res.targets[0]!.digest, other.digest);
    assert.match(res.targets[0]!.message ?? '', /overwrite/);
    assert.equal(res.targets[1]!.action, 'Copied');
    assert.equal((await dst.headManifest('v1'))?.digest, other.digest);
    assert.equal((await dst.headManifest('new'))?.digest, img.digest);
    assert.ok(!writes(await b.accessLog()).some((e) => e.path.endsWith('/manifests/v1')));
  });

  it('a failing target is Failed with a one-line message while the others are copied', async () => {
    const src = ca.repository(uniq('fail/src'));
    await pushImage(src, buildImage(), 'v1');
    const good = cb.repository(uniq('fail/good'));
    const bad = clocked.repository(uniq('fail/bad'));
    const metrics = new Metrics();
    const res = await new CopyEngine({ metrics }).copyImage(req(src, 'v1', [[bad, ['v1']], [good, ['v1']]]));
    const [rb, rg] = res.targets;
    assert.equal(rb!.action, 'Failed');
    assert.equal(rb!.errorCode, 'UNAUTHORIZED');
    assert.ok(rb!.message && !rb!.message.includes('\n'));
    assert.equal(rg!.action, 'Copied');
    assert.match(await metrics.exposition(), /imagemirror_target_syncs_total\{result="failed"\} 1/);
  });

  it('a dry run writes nothing and reports the plan', async () => {
    const src = ca.repository(uniq('dry/src'));
    const img = await pushImage(src, buildImage({ layers: [1000, 2000] }), 'v1');
    const same = ca.repository(uniq('dry/same'));
    const other = cb.repository(uniq('dry/other'));
    await pushBlobs(other, [img.layers[0]!]);
    // On the source's registry: a target of `other`'s registry holding the image would (rightly) be a mount source.
    const uptodate = ca.repository(uniq('dry/ok'));
    await pushImage(uptodate, img, 'v1');
    await a.resetLog();
    await b.resetLog();
    const res = await new CopyEngine().copyImage(
      req(src, 'v1', [[same, ['v1', 'latest']], [other, ['v1']], [uptodate, ['v1']]], { dryRun: true, referrers: true }),
    );
    assert.deepEqual(res.targets.map((t) => t.action), ['Copied', 'Retagged', 'Copied', 'UpToDate']);
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: 3, upload: 0 });
    assert.deepEqual(res.targets[2]!.blobs, { exists: 1, mount: 0, upload: 2 });
    assert.equal(res.targets[2]!.bytesCopied, img.config.descriptor.size + 2000);
    assert.equal(res.targets[2]!.bytesSaved, 1000);
    assert.deepEqual(writes([...(await a.accessLog()), ...(await b.accessLog())]), []);
    assert.equal(await same.headManifest('v1'), undefined);
  });

  it('an abort stops new work and never tags over missing content', async () => {
    const src = ca.repository(uniq('abort/src'));
    await pushImage(src, buildImage({ layers: [4000, 4000, 4000, 4000] }), 'v1');
    const dst = cb.repository(uniq('abort/dst'));
    const ac = new AbortController();
    await b.resetLog();
    const res = await new CopyEngine({ blobConcurrency: 1 }).copyImage(
      req(src, 'v1', [[dst, ['v1']]], { signal: ac.signal, onProgress: () => ac.abort() }),
    );
    assert.equal(res.targets[0]!.action, 'Failed');
    assert.equal(res.targets[0]!.errorCode, 'CANCELLED');
    const log = await b.accessLog();
    assert.ok(!log.some((e) => e.method === 'PUT' && e.path.includes('/manifests/')), JSON.stringify(log));
    assert.equal(await dst.headManifest('v1'), undefined);
  });

  it('mounts from another repository the locations know holds the image (fed from outside)', async () => {
    const src = ca.repository(uniq('loc/src'));
    const img = await pushImage(src, buildImage(), 'v1');
    const elsewhere = cb.repository(uniq('loc/elsewhere'));
    await pushImage(elsewhere, img, 'v1');
    const locations = new BlobLocations();
    // What the controller would feed from another ImageMirror's status: repo + image digest only.
    locations.recordImage(b.host, elsewhere.repository, img.digest);
    const dst = cb.repository(uniq('loc/dst'));
    await a.resetLog();
    const res = await new CopyEngine({ locations }).copyImage(req(src, 'v1', [[dst, ['v1']]]));
    assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: img.blobs.length, upload: 0 });
    assert.equal((await a.accessLog()).filter((e) => e.method === 'GET' && isBlobPath(e)).length, 0);
  });

  it('lists source referrers through the referrers API and writes a fallback index on a target without it', async () => {
    const proxy = await startFaultProxy(a, { referrers: true });
    const viaProxy = new RegistryClient(proxy.host);
    try {
      const name = uniq('api/src');
      const img = await pushImage(ca.repository(name), buildImage(), 'v1');
      const sig = await pushReferrer(ca.repository(name), img.descriptor, { cosignTag: false });
      const src = viaProxy.repository(name);
      const dst = cb.repository(uniq('api/dst'));
      const engine = new CopyEngine();
      // With the API the fallback tag is never read, even though the source has one.
      const res = await engine.copyImage(req(src, 'v1', [[dst, ['v1']]], { referrers: true, sourceTags: ['v1'] }));
      assert.equal(res.targets[0]!.action, 'Copied', res.targets[0]!.message);
      assert.equal(engine.referrersApiOf(proxy.host), true);
      assert.equal(engine.referrersApiOf(b.host), false);
      assert.ok(proxy.log.some((e) => e.path.includes('/referrers/')));
      assert.ok(!proxy.log.some((e) => e.path.includes(`/manifests/${sig.fallbackTag}`)));
      const fallback = JSON.parse((await skopeoRaw(b.host, `${dst.repository}:${sig.fallbackTag}`)).toString()) as { manifests: Array<{ digest: string; artifactType?: string }> };
      assert.deepEqual(fallback.manifests.map((m) => [m.digest, m.artifactType]), [[sig.digest, sig.descriptor.artifactType]]);
      assert.ok((await skopeoRaw(b.host, `${dst.repository}@${sig.digest}`)).equals(sig.bytes));
    } finally {
      await viaProxy.close();
      await proxy.stop();
    }
  });

  it('mounts within a token-auth registry (one token for push on the target and pull on the source)', async () => {
    const tok = await startRegistry({ auth: 'token' });
    const [user, password] = Object.entries(tok.users)[0]!;
    const client = new RegistryClient(tok.host, { credentials: { get: async () => ({ kind: 'basic', username: user, password }) } });
    try {
      const src = client.repository(uniq('tok/src'));
      const img = await pushImage(src, buildImage(), 'v1');
      const dst = client.repository(uniq('tok/dst'));
      await tok.resetLog();
      const res = await new CopyEngine().copyImage(req(src, 'v1', [[dst, ['v1']]]));
      assert.deepEqual(res.targets[0]!.blobs, { exists: 0, mount: img.blobs.length, upload: 0 });
      const log = await tok.accessLog();
      assert.equal(log.filter((e) => e.method === 'PATCH' || (e.method === 'PUT' && isBlobPath(e))).length, 0);
    } finally {
      await client.close();
      await tok.stop();
    }
  });
});
