/**
 * One controller process serves many teams through one reconciler, hence one copy engine and one
 * manifest cache. Knowing another team's digest must not be enough to receive its content: team B's
 * "source" is a hostile registry that answers HEAD with team A's private digest, and B's reconcile
 * must fail without A's manifests reaching B's target. Team A's own mirrors still share the cache.
 */
import assert from 'node:assert/strict';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext } from '../../src/mirror/reconciler.js';
import type { ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import type { Credential, CredentialProvider } from '../../src/oci/credentials.js';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildImage, buildIndex, pushBlobs, pushIndex, type BuiltIndex } from '../support/images.js';
import { is, json, manifestAnswer, startHostileRegistry, type HostileRegistry } from '../support/hostile-registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const USERS = { alice: 'alice-tenancy-pw-7f3k', bob: 'bob-tenancy-pw-9q2z' };
const basic = (username: keyof typeof USERS): Credential => ({ kind: 'basic', username, password: USERS[username] });
const provider = (c: Credential | undefined): CredentialProvider => ({ get: async () => c });

/** Team A's Secret is `a-creds` in team-a, team B's is `b-creds` in team-b: nobody reads another namespace. */
const ctx: ReconcileContext = {
  credentials: async (namespace, ref) => {
    if (!ref) return provider(undefined);
    if (namespace === 'team-a' && ref.secretName === 'a-creds') return provider(basic('alice'));
    if (namespace === 'team-b' && ref.secretName === 'b-creds') return provider(basic('bob'));
    throw new Error(`no Secret ${ref.secretName} in ${namespace}`);
  },
};

function mirror(namespace: string, name: string, spec: ImageMirrorSpec): ImageMirror {
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name, namespace, generation: 1 }, spec };
}

describe('tenancy: one engine shared by mirrors of different teams', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let hostile: HostileRegistry;
  let alice: RegistryClient;
  let bob: RegistryClient;
  let reconciler: MirrorReconciler;
  let privateImage: BuiltIndex;

  before(async () => {
    [reg, hostile] = await Promise.all([
      startRegistry({
        auth: 'token',
        users: USERS,
        rules: [
          { account: 'alice', repository: 'team-a/*', actions: ['push', 'pull'] },
          { account: 'bob', repository: 'team-b/*', actions: ['push', 'pull'] },
        ],
      }),
      startHostileRegistry(),
    ]);
    alice = new RegistryClient(reg.host, { credentials: provider(basic('alice')) });
    bob = new RegistryClient(reg.host, { credentials: provider(basic('bob')) });
    privateImage = await pushIndex(alice.repository('team-a/private'), buildIndex({ layers: [256] }), '1.0');
    // B already holds every blob of A's image (think public base layers): all B lacks, and must
    // not get, is A's manifests. Without this the leak would only show as a failed blob copy.
    await pushBlobs(bob.repository('team-b/mirror'), privateImage.blobs);
    reconciler = createReconciler();
  });
  after(async () => {
    await reconciler.close();
    await Promise.all([alice.close(), bob.close()]);
    await Promise.all([reg.stop(), hostile.stop()]);
  });

  it("team B's source naming team A's private digest gets B nothing of A's: not Synced, no manifest in B's target", async () => {
    const a = await reconciler.reconcile(
      mirror('team-a', 'a', {
        source: { repository: `${reg.host}/team-a/private`, tags: ['1.0'], credentials: { secretName: 'a-creds' } },
        targets: [{ repository: `${reg.host}/team-a/mirror`, credentials: { secretName: 'a-creds' } }],
      }),
      ctx,
    );
    assert.equal(a.outcome, 'synced', a.message);

    // Team A's second mirror of the same source, same credentials: the cache serves it.
    await reg.resetLog();
    const a2 = await reconciler.reconcile(
      mirror('team-a', 'a2', {
        source: { repository: `${reg.host}/team-a/private`, tags: ['1.0'], credentials: { secretName: 'a-creds' } },
        targets: [{ repository: `${reg.host}/team-a/copy`, credentials: { secretName: 'a-creds' } }],
      }),
      ctx,
    );
    assert.equal(a2.outcome, 'synced', a2.message);
    const reads = (await reg.accessLog()).filter((e) => e.method === 'GET' && e.path.startsWith('/v2/team-a/private/manifests/'));
    assert.deepEqual(reads, [], 'a mirror reading with the same credentials gets the cached manifests');

    // The hostile source: HEAD 200 with A's digest; GET 404 (first) or other bytes (second).
    const other = buildImage();
    let getAnswer: 'missing' | 'other' = 'missing';
    hostile.routes.push((req) => (is(req, 'GET', 'evil/app', 'tags/list') ? json({ name: 'evil/app', tags: ['1.0'] }) : undefined));
    hostile.routes.push((req) => {
      if (!req.url.pathname.startsWith('/v2/evil/app/manifests/')) return undefined;
      if (req.method === 'HEAD') return { status: 200, headers: { 'content-type': MediaType.OciIndex, 'content-length': privateImage.size, 'docker-content-digest': privateImage.digest } };
      return getAnswer === 'other' ? manifestAnswer(other.bytes, other.mediaType) : undefined;
    });
    for (const answer of ['missing', 'other'] as const) {
      getAnswer = answer;
      hostile.log.length = 0;
      const b = await reconciler.reconcile(
        mirror('team-b', 'b', {
          source: { repository: `${hostile.host}/evil/app`, tags: ['1.0'] },
          targets: [{ repository: `${reg.host}/team-b/mirror`, credentials: { secretName: 'b-creds' } }],
        }),
        ctx,
      );
      assert.notEqual(b.outcome, 'synced', `${answer}: ${b.message}`);
      const row = b.targets[0];
      assert.equal(row?.action, 'Failed', answer);
      assert.equal(row?.errorCode, answer === 'missing' ? 'MANIFEST_UNKNOWN' : 'DIGEST_INVALID', row?.message);
      assert.match(row?.message ?? '', new RegExp(`GET manifest ${hostile.host}/evil/app@${privateImage.digest}`));
      assert.ok(
        hostile.log.some((e) => e.method === 'GET' && e.path === `/v2/evil/app/manifests/${privateImage.digest}`),
        "B's manifest was asked of B's own source",
      );
    }
    const bTarget = bob.repository('team-b/mirror');
    assert.deepEqual(await bTarget.listTags(), []);
    for (const d of [privateImage.digest, ...privateImage.children.map((c) => c.digest)]) {
      assert.equal(await bTarget.headManifest(d), undefined, `${d} must not reach team B`);
    }
  });
});
