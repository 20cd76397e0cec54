/**
 * pruneTags over the memory store's three kinds of deletion: OCI distribution 1.1 tag deletion
 * (the manifest stays for the other tags), distribution 2.x (tags refused: by digest only when no
 * other tag holds the manifest) and none at all.
 */
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/backends/memory/index.js';
import { pruneTags } from '../../src/mirror/prune.js';
import { buildImage, pushImage } from '../support/images.js';

async function repoWith(deletion: 'tags' | 'digests' | 'none') {
  const repo = new MemoryStore({ deletion }).repository('t/app');
  const shared = await pushImage(repo, buildImage({ layers: [32] }), 'old');
  await repo.putManifest('keep', { mediaType: shared.mediaType, bytes: shared.bytes });
  const alone = await pushImage(repo, buildImage({ layers: [32] }), 'alone');
  return { repo, shared, alone };
}

/** A digest no manifest here has: what a tag deleted meanwhile was recorded with. */
const ELSEWHERE = `sha256:${'0'.repeat(64)}`;

describe('pruneTags', () => {
  it('with tag deletion: deletes the tags only; the manifest another tag points at stays', async () => {
    const { repo, shared, alone } = await repoWith('tags');
    const r = await pruneTags(repo, new Map([['old', shared.digest], ['alone', alone.digest], ['gone', ELSEWHERE]]));
    assert.deepEqual(r.map((x) => [x.tag, x.outcome]), [['alone', 'Pruned'], ['gone', 'Gone'], ['old', 'Pruned']]);
    assert.deepEqual(await repo.listTags(), ['keep']);
    assert.equal((await repo.headManifest('keep'))?.digest, shared.digest);
  });

  it('without tag deletion: by digest when nothing else holds it, NotPruned naming the tag that does', async () => {
    const { repo, alone, shared } = await repoWith('digests');
    const r = await pruneTags(repo, new Map([['old', shared.digest], ['alone', alone.digest]]));
    const by = Object.fromEntries(r.map((x) => [x.tag, x]));
    assert.equal(by.alone?.outcome, 'Pruned');
    assert.equal(by.alone?.digest, alone.digest);
    assert.equal(by.old?.outcome, 'NotPruned');
    assert.equal(by.old?.digest, shared.digest);
    assert.match(by.old?.message ?? '', /^the registry has no tag deletion and tag keep points at the same manifest/);
    assert.deepEqual(await repo.listTags(), ['keep', 'old']);
    assert.equal(await repo.headManifest(alone.digest), undefined, 'the manifest went by digest');
  });

  it('without tag deletion: two candidates on one manifest go together when no other tag holds it', async () => {
    const { repo, shared } = await repoWith('digests');
    const r = await pruneTags(repo, new Map([['old', shared.digest], ['keep', shared.digest]]));
    assert.deepEqual(r.map((x) => [x.tag, x.outcome]), [['keep', 'Pruned'], ['old', 'Pruned']]);
    assert.deepEqual(await repo.listTags(), ['alone']);
  });

  it('no deletion at all: NotPruned, nothing deleted', async () => {
    const { repo, alone } = await repoWith('none');
    const r = await pruneTags(repo, new Map([['alone', alone.digest]]));
    assert.deepEqual(r.map((x) => [x.outcome, x.message]), [['NotPruned', 'this registry does not allow deletion (405 UNSUPPORTED; distribution: storage.delete.enabled: true)']]);
    assert.deepEqual(await repo.listTags(), ['alone', 'keep', 'old']);
  });

  it('dry run: lists what would go, deletes nothing', async () => {
    const { repo, shared, alone } = await repoWith('tags');
    const r = await pruneTags(repo, new Map([['old', shared.digest], ['alone', alone.digest]]), { dryRun: true });
    assert.deepEqual(r.map((x) => [x.tag, x.outcome, x.message]), [
      ['alone', 'Pruned', 'would prune: left the selection'],
      ['old', 'Pruned', 'would prune: left the selection'],
    ]);
    assert.deepEqual(await repo.listTags(), ['alone', 'keep', 'old']);
  });

  it('a tag pushed over since the mirror wrote it is not deleted, whatever the kind of deletion, and the dry run says the same', async () => {
    for (const deletion of ['tags', 'digests'] as const) {
      for (const dryRun of [false, true]) {
        const { repo, shared, alone } = await repoWith(deletion);
        // The record says the mirror wrote `alone` to `old` and `keep`; since then `old` was pushed over.
        const r = await pruneTags(repo, new Map([['old', alone.digest]]), { dryRun });
        assert.deepEqual(
          r.map((x) => [x.tag, x.outcome, x.digest, x.message]),
          [['old', 'Disowned', shared.digest, `not pruned: overwritten since: now ${shared.digest}, the mirror wrote ${alone.digest}; no longer this mirror's tag, ${dryRun ? 'would be forgotten' : 'forgotten'}, not deleted`]],
          `${deletion}${dryRun ? ' dry run' : ''}`,
        );
        assert.deepEqual(await repo.listTags(), ['alone', 'keep', 'old']);
        assert.equal((await repo.headManifest('old'))?.digest, shared.digest);
      }
    }
  });

  it('without tag deletion: a tag pushed over to a candidate\'s manifest holds it (deleting by digest would take the foreign tag along)', async () => {
    const { repo, alone, shared } = await repoWith('digests');
    // `keep` was the mirror's (recorded with shared) and now points at `alone`'s manifest, which the mirror also wrote to `alone`.
    await repo.putManifest('keep', { mediaType: alone.mediaType, bytes: alone.bytes });
    const r = await pruneTags(repo, new Map([['alone', alone.digest], ['keep', shared.digest]]));
    const by = Object.fromEntries(r.map((x) => [x.tag, x]));
    assert.equal(by.keep?.outcome, 'Disowned');
    assert.equal(by.alone?.outcome, 'NotPruned');
    assert.match(by.alone?.message ?? '', /^the registry has no tag deletion and tag keep points at the same manifest/);
    assert.deepEqual(await repo.listTags(), ['alone', 'keep', 'old']);
    assert.equal((await repo.headManifest('keep'))?.digest, alone.digest);
  });
});
