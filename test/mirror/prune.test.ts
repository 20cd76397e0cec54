/**
 * targets[].prune against the real docker-registry (distribution 2.8.2): it has no tag deletion
 * (a DELETE of a tag answers 400 DIGEST_INVALID), so prune deletes the manifest by digest when no
 * other tag holds it, and reports NotPruned otherwise; with storage.delete.enabled false every
 * DELETE answers 405 UNSUPPORTED. Ownership lives in status.owned, carried from one reconcile to
 * the next as a front end would store it.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/registry.js';
import type { Repository } from '../../src/oci/content.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext, ReconcileResult } from '../../src/mirror/reconciler.js';
import type { ImageMirror, ImageMirrorSpec, ImageMirrorStatus } from '../../src/mirror/types.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, buildIndex, pushImage, pushIndex } from '../support/images.js';

// fresh: every reconcile sees the tags just pushed (not a listing shared a moment ago).
const ctx: ReconcileContext = { credentials: async () => ({ get: async () => undefined }), fresh: true };

function mirror(name: string, spec: ImageMirrorSpec, status?: ImageMirrorStatus): ImageMirror {
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name, namespace: 'team-a', generation: 1 }, spec, ...(status ? { status } : {}) };
}

function rows(r: ReconcileResult): Array<[string, string]> {
  return r.targets.map((t) => [t.reference.slice(t.reference.lastIndexOf(':') + 1), t.action]);
}

describe('prune (real registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let noDelete: TestRegistry;
  let client: RegistryClient;
  let noDeleteClient: RegistryClient;
  let reconciler: MirrorReconciler;

  before(async () => {
    [reg, noDelete] = await Promise.all([startRegistry(), startRegistry({ deleteEnabled: false })]);
    client = new RegistryClient(reg.host);
    noDeleteClient = new RegistryClient(noDelete.host);
  });
  beforeEach(() => {
    reconciler = createReconciler();
  });
  afterEach(async () => reconciler.close());
  after(async () => {
    await Promise.all([client.close(), noDeleteClient.close()]);
    await Promise.all([reg.stop(), noDelete.stop()]);
  });

  async function tags(repo: Repository): Promise<string[]> {
    return (await repo.listTags()).sort();
  }

  /** The digest each tag of `repo` points at now, as status.owned records it. */
  async function digestsOf(repo: Repository, tagList: string[]): Promise<string[]> {
    return Promise.all(tagList.map(async (t) => (await repo.headManifest(t))?.digest ?? `(no tag ${t})`));
  }

  it('deletes exactly the tags it wrote that left the selection; a foreign tag and a tag that was already there survive; the dry run lists them first', async () => {
    const src = client.repository('p1/src');
    const dst = client.repository('p1/dst');
    for (const t of ['1.0', '1.1']) await pushImage(src, buildImage({ layers: [256] }), t);
    const img12 = await pushImage(src, buildImage({ layers: [256] }), '1.2');
    // On the target before the mirror ran: a foreign tag, and 1.2 with the source's content (so
    // the mirror finds it up to date and did not write it).
    await pushImage(dst, buildImage({ layers: [300] }), 'foreign-0.9');
    await pushImage(dst, img12, '1.2');
    const spec: ImageMirrorSpec = { source: { repository: `${reg.host}/p1/src`, tagPattern: '^1\\.', latest: 2 }, targets: [{ repository: `${reg.host}/p1/dst`, prune: true }] };

    const first = await reconciler.reconcile(mirror('m', spec), ctx);
    assert.equal(first.outcome, 'synced', first.message);
    assert.deepEqual(rows(first), [['1.2', 'UpToDate'], ['1.1', 'Copied']]);
    assert.deepEqual(first.status.owned, [{ repository: `${reg.host}/p1/dst`, tags: ['1.1'], digests: await digestsOf(dst, ['1.1']) }], 'only what it wrote is recorded, with the digest written');

    for (const t of ['1.3', '1.4']) await pushImage(src, buildImage({ layers: [256] }), t);
    // Now 1.3 and 1.4 are selected: 1.1 (written) and 1.2 (already there) left the selection.
    const dry = await reconciler.reconcile(mirror('m', spec, first.status), { ...ctx, dryRun: true });
    assert.equal(dry.outcome, 'synced', dry.message);
    const wouldPrune = dry.targets.filter((t) => t.action === 'Pruned');
    assert.deepEqual(wouldPrune.map((t) => [t.reference, t.message]), [[`${reg.host}/p1/dst:1.1`, 'would prune: left the selection']]);
    assert.match(dry.message, /would prune 1/);
    assert.deepEqual(await tags(dst), ['1.1', '1.2', 'foreign-0.9'], 'the dry run deleted nothing');

    const second = await reconciler.reconcile(mirror('m', spec, first.status), ctx);
    assert.equal(second.outcome, 'synced', second.message);
    assert.deepEqual(rows(second), [['1.4', 'Copied'], ['1.3', 'Copied'], ['1.1', 'Pruned']]);
    assert.match(second.message, /; 1 tag pruned$/);
    assert.deepEqual(await tags(dst), ['1.2', '1.3', '1.4', 'foreign-0.9']);
    assert.deepEqual(second.status.owned, [{ repository: `${reg.host}/p1/dst`, tags: ['1.3', '1.4'], digests: await digestsOf(dst, ['1.3', '1.4']) }]);
    assert.equal(second.status.targets?.find((t) => t.action === 'Pruned')?.reference, `${reg.host}/p1/dst:1.1`);

    // Nothing left to prune: a no-op.
    const third = await reconciler.reconcile(mirror('m', spec, second.status), ctx);
    assert.deepEqual(rows(third), [['1.4', 'UpToDate'], ['1.3', 'UpToDate']]);
    assert.deepEqual(third.status.owned, second.status.owned);
  });

  it('NotPruned when another tag points at the manifest, or at an index holding it (no tag deletion here); the tag stays recorded', async () => {
    const src = client.repository('p2/src');
    const dst = client.repository('p2/dst');
    const idx = await pushIndex(src, buildIndex({ layers: [128] }), 'multi');
    const amd64 = idx.children[0]!;
    await src.putManifest('amd64', { mediaType: amd64.mediaType, bytes: amd64.bytes });
    await pushImage(src, buildImage({ layers: [128] }), 'solo');
    const spec = (tagsSel: string[]): ImageMirrorSpec => ({ source: { repository: `${reg.host}/p2/src`, tags: tagsSel }, targets: [{ repository: `${reg.host}/p2/dst`, prune: true }] });

    const first = await reconciler.reconcile(mirror('m2', spec(['amd64', 'solo'])), ctx);
    assert.equal(first.outcome, 'synced', first.message);
    // Someone else tags the same image, and pushes an index holding the amd64 child.
    const solo = await dst.getManifest('solo');
    await dst.putManifest('pinned', solo);
    await pushIndex(dst, idx, 'someone-elses-multi');

    const second = await reconciler.reconcile(mirror('m2', spec(['multi']), first.status), ctx);
    assert.equal(second.outcome, 'synced', second.message);
    const by = Object.fromEntries(second.targets.map((t) => [t.reference.slice(t.reference.lastIndexOf(':') + 1), t]));
    assert.equal(by.amd64?.action, 'NotPruned');
    assert.match(by.amd64?.message ?? '', /no tag deletion and tag (multi|someone-elses-multi) \(an index holding it\) points at the same manifest/);
    assert.equal(by.solo?.action, 'NotPruned');
    assert.match(by.solo?.message ?? '', /no tag deletion and tag pinned points at the same manifest/);
    assert.match(second.message, /; 2 not pruned \(/);
    assert.deepEqual(await tags(dst), ['amd64', 'multi', 'pinned', 'solo', 'someone-elses-multi'], 'nothing deleted');
    assert.deepEqual(second.status.owned, [{ repository: `${reg.host}/p2/dst`, tags: ['amd64', 'multi', 'solo'], digests: await digestsOf(dst, ['amd64', 'multi', 'solo']) }], 'kept to try again');
  });

  it('a registry with OCI 1.1 tag deletion: the tag goes, the manifest stays for the other tag, no other tag is read', async () => {
    const proxy = await tagDeletingProxy(reg);
    try {
      const src = client.repository('p8/src');
      for (const t of ['x', 'z']) await pushImage(src, buildImage({ layers: [64] }), t);
      const spec = (t: string): ImageMirrorSpec => ({ source: { repository: `${proxy.host}/p8/src`, tags: [t] }, targets: [{ repository: `${proxy.host}/p8/dst`, prune: true }] });
      const first = await reconciler.reconcile(mirror('m8', spec('x')), ctx);
      assert.equal(first.outcome, 'synced', first.message);
      const dst = client.repository('p8/dst');
      const x = await dst.getManifest('x');
      await dst.putManifest('pinned', x);
      await reg.resetLog();
      const second = await reconciler.reconcile(mirror('m8', spec('z'), first.status), ctx);
      assert.equal(second.outcome, 'synced', second.message);
      assert.deepEqual(rows(second), [['z', 'Copied'], ['x', 'Pruned']]);
      assert.equal(second.targets[1]?.message, 'pruned: left the selection');
      assert.deepEqual((await reg.accessLog()).filter((e) => e.path.startsWith('/v2/p8/dst/tags/list')), []);
      assert.deepEqual(await tags(dst), ['pinned', 'z']);
      assert.equal((await dst.headManifest(x.digest))?.digest, x.digest, 'the manifest is still there');
    } finally {
      await proxy.close();
    }
  });

  it('a registry that allows no deletion (405 UNSUPPORTED): NotPruned, one line, and the mirror stays Ready', async () => {
    const src = noDeleteClient.repository('p3/src');
    const dst = noDeleteClient.repository('p3/dst');
    for (const t of ['a', 'b']) await pushImage(src, buildImage({ layers: [64] }), t);
    const spec = (t: string): ImageMirrorSpec => ({ source: { repository: `${noDelete.host}/p3/src`, tags: [t] }, targets: [{ repository: `${noDelete.host}/p3/dst`, prune: true }] });
    const first = await reconciler.reconcile(mirror('m3', spec('a')), ctx);
    const second = await reconciler.reconcile(mirror('m3', spec('b'), first.status), ctx);
    assert.equal(second.outcome, 'synced', second.message);
    const row = second.targets.find((t) => t.action === 'NotPruned');
    assert.equal(row?.reference, `${noDelete.host}/p3/dst:a`);
    assert.equal(row?.message, 'this registry does not allow deletion (405 UNSUPPORTED; distribution: storage.delete.enabled: true)');
    assert.deepEqual(await tags(dst), ['a', 'b']);
  });

  it('credentials without the delete action: NotPruned saying so', async () => {
    const tok = await startRegistry({ auth: 'token', rules: [{ account: 'alice', repository: '*', actions: ['push', 'pull'] }] });
    const alice = { get: async () => ({ kind: 'basic' as const, username: 'alice', password: 'alice-secret' }) };
    const tc = new RegistryClient(tok.host, { credentials: alice });
    try {
      for (const t of ['a', 'b']) await pushImage(tc.repository('p9/src'), buildImage({ layers: [64] }), t);
      const withAlice: ReconcileContext = { ...ctx, credentials: async () => alice };
      const spec = (t: string): ImageMirrorSpec => ({ source: { repository: `${tok.host}/p9/src`, tags: [t] }, targets: [{ repository: `${tok.host}/p9/dst`, prune: true }] });
      const first = await reconciler.reconcile(mirror('m9', spec('a')), withAlice);
      const second = await reconciler.reconcile(mirror('m9', spec('b'), first.status), withAlice);
      assert.equal(second.outcome, 'synced', second.message);
      const row = second.targets.find((t) => t.action === 'NotPruned');
      assert.match(row?.message ?? '', /^delete refused: DELETE manifest .*p9\/dst:a: access denied \(credentials for .* lack repository:p9\/dst:delete\)$/);
      assert.deepEqual(await tags(tc.repository('p9/dst')), ['a', 'b']);
    } finally {
      await tc.close();
      await tok.stop();
    }
  });

  it('without prune the record is kept, so turning prune on later deletes what left the selection meanwhile', async () => {
    const src = client.repository('p4/src');
    const dst = client.repository('p4/dst');
    for (const t of ['x', 'y']) await pushImage(src, buildImage({ layers: [64] }), t);
    const spec = (t: string, prune: boolean): ImageMirrorSpec => ({ source: { repository: `${reg.host}/p4/src`, tags: [t] }, targets: [{ repository: `${reg.host}/p4/dst`, prune }] });
    const first = await reconciler.reconcile(mirror('m4', spec('x', false)), ctx);
    const second = await reconciler.reconcile(mirror('m4', spec('y', false), first.status), ctx);
    assert.deepEqual(rows(second), [['y', 'Copied']]);
    assert.deepEqual(await tags(dst), ['x', 'y']);
    assert.deepEqual(second.status.owned?.[0]?.tags, ['x', 'y']);
    const third = await reconciler.reconcile(mirror('m4', spec('y', true), second.status), ctx);
    assert.deepEqual(rows(third), [['y', 'UpToDate'], ['x', 'Pruned']]);
    assert.deepEqual(await tags(dst), ['y']);
  });

  it('a target removed from the spec is forgotten, not pruned: its tags stay and the record drops them', async () => {
    const src = client.repository('p5/src');
    await pushImage(src, buildImage({ layers: [64] }), 'v1');
    const a = `${reg.host}/p5/a`;
    const b = `${reg.host}/p5/b`;
    const first = await reconciler.reconcile(mirror('m5', { source: { repository: `${reg.host}/p5/src`, tags: ['v1'] }, targets: [{ repository: a, prune: true }, { repository: b, prune: true }] }), ctx);
    assert.deepEqual(first.status.owned?.map((o) => o.repository), [a, b]);
    const second = await reconciler.reconcile(mirror('m5', { source: { repository: `${reg.host}/p5/src`, tags: ['v1'] }, targets: [{ repository: a, prune: true }] }, first.status), ctx);
    assert.equal(second.outcome, 'synced', second.message);
    assert.deepEqual(rows(second), [['v1', 'UpToDate']]);
    assert.deepEqual(second.status.owned, [{ repository: a, tags: ['v1'], digests: await digestsOf(client.repository('p5/a'), ['v1']) }]);
    assert.deepEqual(await tags(client.repository('p5/b')), ['v1']);
  });

  it('a tag it wrote that another mirror now writes is not touched, and leaves its record', async () => {
    const src = client.repository('p6/src');
    const dst = client.repository('p6/dst');
    for (const t of ['shared', 'own']) await pushImage(src, buildImage({ layers: [64] }), t);
    const one = (sel: string[], prune: boolean, status?: ImageMirrorStatus) =>
      mirror('first', { source: { repository: `${reg.host}/p6/src`, tags: sel }, targets: [{ repository: `${reg.host}/p6/dst`, prune }] }, status);
    const a1 = await reconciler.reconcile(one(['shared', 'own'], false), ctx);
    assert.deepEqual(a1.status.owned?.[0]?.tags, ['own', 'shared']);
    // `first` lets go of `shared` (no prune yet); `second` takes it over.
    const a2 = await reconciler.reconcile(one(['own'], false, a1.status), ctx);
    const b = await reconciler.reconcile(mirror('second', { source: { repository: `${reg.host}/p6/src`, tags: ['shared'] }, targets: [{ repository: `${reg.host}/p6/dst` }] }), ctx);
    assert.equal(b.outcome, 'synced', b.message);
    const a3 = await reconciler.reconcile(one(['own'], true, a2.status), ctx);
    assert.equal(a3.outcome, 'synced', a3.message);
    assert.deepEqual(rows(a3), [['own', 'UpToDate']], 'no prune row for a tag another mirror owns');
    assert.deepEqual(a3.status.owned?.[0]?.tags, ['own']);
    assert.deepEqual(await tags(dst), ['own', 'shared']);
  });

  it('a tag it wrote that another tool pushed over since is not its own any more: not deleted, the foreign image intact, forgotten with one NotPruned row (tag deletion or not)', async () => {
    const proxy = await tagDeletingProxy(reg);
    try {
      for (const [host, name] of [[reg.host, 'p10'], [proxy.host, 'p11']] as const) {
        const src = client.repository(`${name}/src`);
        const dst = client.repository(`${name}/dst`);
        for (const t of ['a', 'b']) await pushImage(src, buildImage({ layers: [64] }), t);
        const spec = (t: string): ImageMirrorSpec => ({ source: { repository: `${host}/${name}/src`, tags: [t] }, targets: [{ repository: `${host}/${name}/dst`, prune: true }] });
        const first = await reconciler.reconcile(mirror(name, spec('a')), ctx);
        assert.equal(first.outcome, 'synced', first.message);
        const wrote = (await dst.headManifest('a'))!.digest;
        // Another tool pushes its own image under the tag the mirror wrote.
        const foreign = await pushImage(dst, buildImage({ layers: [80] }), 'a');
        assert.notEqual(foreign.digest, wrote);

        const dry = await reconciler.reconcile(mirror(name, spec('b'), first.status), { ...ctx, dryRun: true });
        assert.deepEqual(rows(dry), [['b', 'Copied'], ['a', 'NotPruned']], `${host} dry run`);
        assert.doesNotMatch(dry.message, /would prune/);

        const second = await reconciler.reconcile(mirror(name, spec('b'), first.status), ctx);
        assert.equal(second.outcome, 'synced', second.message);
        assert.deepEqual(rows(second), [['b', 'Copied'], ['a', 'NotPruned']], host);
        const row = second.targets[1]!;
        assert.equal(row.digest, foreign.digest);
        assert.equal(row.message, `not pruned: overwritten since: now ${foreign.digest}, the mirror wrote ${wrote}; no longer this mirror's tag, forgotten, not deleted`);
        assert.deepEqual(await tags(dst), ['a', 'b']);
        assert.equal((await dst.headManifest('a'))?.digest, foreign.digest, 'the tag still points at the foreign image');
        for (const b of foreign.blobs) assert.equal(await dst.headBlob(b.descriptor.digest), b.bytes.length, 'its blobs are there');
        assert.deepEqual(second.status.owned, [{ repository: `${host}/${name}/dst`, tags: ['b'], digests: await digestsOf(dst, ['b']) }], 'forgotten');

        const third = await reconciler.reconcile(mirror(name, spec('b'), second.status), ctx);
        assert.deepEqual(rows(third), [['b', 'UpToDate']], 'reported once');
      }
    } finally {
      await proxy.close();
    }
  });

  it('a status of the earlier shape (owned without digests) prunes exactly what its rows prove: Copied and unchanged goes; pushed over, or no row, stays and is forgotten', async () => {
    const src = client.repository('p12/src');
    const dst = client.repository('p12/dst');
    for (const t of ['a', 'b', 'c', 'd']) await pushImage(src, buildImage({ layers: [64] }), t);
    const spec = (t: string[]): ImageMirrorSpec => ({ source: { repository: `${reg.host}/p12/src`, tags: t }, targets: [{ repository: `${reg.host}/p12/dst`, prune: true }] });
    const first = await reconciler.reconcile(mirror('m12', spec(['a', 'b', 'c'])), ctx);
    assert.equal(first.outcome, 'synced', first.message);
    // What the previous version stored: tags only, and here no row for c (rows are capped).
    const old: ImageMirrorStatus = {
      ...first.status,
      owned: [{ repository: `${reg.host}/p12/dst`, tags: ['a', 'b', 'c'] }],
      targets: first.status.targets!.filter((t) => !t.reference.endsWith(':c')),
    };
    assert.deepEqual(old.targets!.map((t) => t.action), ['Copied', 'Copied']);
    const foreign = await pushImage(dst, buildImage({ layers: [80] }), 'b');

    const second = await reconciler.reconcile(mirror('m12', spec(['d']), old), ctx);
    assert.equal(second.outcome, 'synced', second.message);
    const by = Object.fromEntries(second.targets.map((t) => [t.reference.slice(t.reference.lastIndexOf(':') + 1), t]));
    assert.deepEqual(rows(second), [['d', 'Copied'], ['a', 'Pruned'], ['b', 'NotPruned'], ['c', 'NotPruned']]);
    assert.match(by.b?.message ?? '', new RegExp(`^not pruned: overwritten since: now ${foreign.digest}`));
    assert.match(by.c?.message ?? '', /^not pruned: the ownership record \(from an earlier version\) has no digest for this tag/);
    assert.deepEqual(await tags(dst), ['b', 'c', 'd']);
    assert.equal((await dst.headManifest('b'))?.digest, foreign.digest);
    assert.deepEqual(second.status.owned, [{ repository: `${reg.host}/p12/dst`, tags: ['d'], digests: await digestsOf(dst, ['d']) }]);
  });

  it('an earlier-shape record is dated by an UpToDate row, and a re-sync records the digest', async () => {
    const src = client.repository('p13/src');
    const dst = client.repository('p13/dst');
    for (const t of ['a', 'b']) await pushImage(src, buildImage({ layers: [64] }), t);
    const spec = (t: string[]): ImageMirrorSpec => ({ source: { repository: `${reg.host}/p13/src`, tags: t }, targets: [{ repository: `${reg.host}/p13/dst`, prune: true }] });
    const first = await reconciler.reconcile(mirror('m13', spec(['a'])), ctx);
    const again = await reconciler.reconcile(mirror('m13', spec(['a']), { ...first.status, owned: [{ repository: `${reg.host}/p13/dst`, tags: ['a'] }] }), ctx);
    assert.deepEqual(rows(again), [['a', 'UpToDate']]);
    assert.deepEqual(again.status.owned, [{ repository: `${reg.host}/p13/dst`, tags: ['a'], digests: await digestsOf(dst, ['a']) }], 'the digest filled in');
    // The same old record, with only the UpToDate row to date it: pruned.
    const old: ImageMirrorStatus = { ...again.status, owned: [{ repository: `${reg.host}/p13/dst`, tags: ['a'] }] };
    const third = await reconciler.reconcile(mirror('m13', spec(['b']), old), ctx);
    assert.deepEqual(rows(third), [['b', 'Copied'], ['a', 'Pruned']]);
    assert.deepEqual(await tags(dst), ['b']);
  });

  it('a listed tag missing at the source: SourceNotFound, and nothing is pruned', async () => {
    const src = client.repository('p7/src');
    const dst = client.repository('p7/dst');
    await pushImage(src, buildImage({ layers: [64] }), 'old');
    const spec = (t: string[]): ImageMirrorSpec => ({ source: { repository: `${reg.host}/p7/src`, tags: t }, targets: [{ repository: `${reg.host}/p7/dst`, prune: true }] });
    const first = await reconciler.reconcile(mirror('m7', spec(['old'])), ctx);
    assert.equal(first.outcome, 'synced', first.message);
    const second = await reconciler.reconcile(mirror('m7', spec(['new']), first.status), ctx);
    assert.equal(second.reason, 'SourceNotFound');
    assert.deepEqual(await tags(dst), ['old']);
    assert.deepEqual(second.status.owned, first.status.owned);
  });
});

/**
 * The real registry with OCI distribution 1.1 tag deletion in front (distribution 2.8 has none): a
 * DELETE of a tag removes the tag's directory from the registry's storage, as distribution 3's
 * Untag does, and answers 202; everything else is forwarded unchanged (Host included).
 */
async function tagDeletingProxy(reg: TestRegistry): Promise<{ host: string; close(): Promise<void> }> {
  const port = Number(reg.host.slice(reg.host.lastIndexOf(':') + 1));
  const server = createServer((req, res) => {
    const m = /^\/v2\/(.+)\/manifests\/([\w][\w.-]{0,127})$/.exec(req.url ?? '');
    if (req.method === 'DELETE' && m) {
      const dir = join(reg.dir, 'data', 'docker', 'registry', 'v2', 'repositories', m[1]!, '_manifests', 'tags', m[2]!);
      rm(dir, { recursive: true }).then(
        () => res.writeHead(202).end(),
        () => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] })),
      );
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
