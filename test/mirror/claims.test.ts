import assert from 'node:assert/strict';
import { TargetClaims, claimKey } from '../../src/mirror/claims.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext, ReconcileResult } from '../../src/mirror/reconciler.js';
import type { ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

describe('TargetClaims', () => {
  it('first claimant wins; the owner keeps the tag until it lets go', () => {
    const c = new TargetClaims();
    assert.equal(c.claim('r.io/app:1', 'ns/a'), 'ns/a');
    assert.equal(c.claim('r.io/app:1', 'ns/b'), 'ns/a');
    assert.equal(c.claim('r.io/app:1', 'ns/a'), 'ns/a');
    assert.equal(c.owner('r.io/app:1'), 'ns/a');
    c.claim('r.io/app:2', 'ns/a');
    c.retain('ns/a', new Set(['r.io/app:2']));
    assert.equal(c.owner('r.io/app:1'), undefined);
    assert.equal(c.claim('r.io/app:1', 'ns/b'), 'ns/b');
    c.release('ns/a');
    assert.deepEqual(c.claimsOf('ns/a'), []);
    assert.deepEqual(c.claimsOf('ns/b'), ['r.io/app:1']);
    assert.equal(c.size, 1);
  });

  it('seeding from statuses: the older mirror wins a tag two statuses hold, then namespace/name', () => {
    const c = new TargetClaims();
    c.seed('r.io/app:1', 'ns/young', '2026-02-01T00:00:00Z');
    c.seed('r.io/app:1', 'ns/old', '2026-01-01T00:00:00Z');
    assert.equal(c.owner('r.io/app:1'), 'ns/old');
    c.seed('r.io/app:1', 'ns/younger', '2026-03-01T00:00:00Z');
    assert.equal(c.owner('r.io/app:1'), 'ns/old');
    assert.deepEqual(c.claimsOf('ns/young'), []);
    // Same age: namespace/name order decides, whichever status is seen first.
    c.seed('r.io/app:2', 'ns/b', '2026-01-01T00:00:00Z');
    c.seed('r.io/app:2', 'ns/a', '2026-01-01T00:00:00Z');
    assert.equal(c.owner('r.io/app:2'), 'ns/a');
    // An unknown age never beats a known one.
    c.seed('r.io/app:3', 'ns/a', undefined);
    c.seed('r.io/app:3', 'ns/z', '2026-01-01T00:00:00Z');
    assert.equal(c.owner('r.io/app:3'), 'ns/z');
  });

  it('keys are canonical tag references', () => {
    assert.equal(claimKey('Registry.Example.com:443/team/app:1.0'), 'registry.example.com/team/app:1.0');
    assert.equal(claimKey('nginx:1'), 'docker.io/library/nginx:1');
    assert.equal(claimKey(`r.io/app@sha256:${'a'.repeat(64)}`), undefined);
    assert.equal(claimKey('not a reference'), undefined);
  });
});

describe('one tag, one owner (real reconciler, real registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let one: string;
  let two: string;
  let reconciler: MirrorReconciler;
  const ctx: ReconcileContext = { credentials: async () => ({ get: async () => undefined }) };
  let n = 0;

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    one = (await pushImage(client.repository('src/one'), buildImage(), '1.0')).digest;
    two = (await pushImage(client.repository('src/two'), buildImage(), '1.0')).digest;
    assert.notEqual(one, two);
  });
  beforeEach(() => {
    reconciler = createReconciler();
    n++;
  });
  afterEach(() => reconciler.close());
  after(async () => {
    await client.close();
    await reg.stop();
  });

  const mk = (namespace: string, name: string, spec: ImageMirrorSpec, created: string, status?: ImageMirror['status']): ImageMirror => ({
    apiVersion: 'imagemirror.dev/v1alpha1',
    kind: 'ImageMirror',
    metadata: { name, namespace, generation: 1, creationTimestamp: created },
    spec,
    ...(status ? { status } : {}),
  });
  const shared = () => `shared${n}/app`;
  const first = (target = shared(), status?: ImageMirror['status']) =>
    mk('team-a', 'first', { source: { repository: `${reg.host}/src/one`, tags: ['1.0'] }, targets: [{ repository: `${reg.host}/${target}` }] }, '2026-01-01T00:00:00Z', status);
  const second = () =>
    mk('team-b', 'second', { source: { repository: `${reg.host}/src/two`, tags: ['1.0'] }, targets: [{ repository: `${reg.host}/${shared()}` }, { repository: `${reg.host}/own${n}/app` }] }, '2026-02-01T00:00:00Z');
  const digestOf = async (repo: string) => (await client.repository(repo).headManifest('1.0'))?.digest;
  const manifestPuts = async (repo: string) => (await reg.accessLog()).filter((e) => e.method === 'PUT' && e.path.startsWith(`/v2/${repo}/manifests/`));

  function assertClaimed(r: ReconcileResult): void {
    assert.equal(r.outcome, 'retry', r.message);
    assert.equal(r.reason, 'TargetClaimed');
    assert.match(r.message, new RegExp(`${reg.host}/${shared()}:1\\.0 is owned by ImageMirror team-a/first`));
    const ready = r.status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['False', 'TargetClaimed']);
    const row = r.status.targets?.find((t) => t.reference === `${reg.host}/${shared()}:1.0`);
    assert.equal(row?.action, 'Conflict');
    assert.match(row?.message ?? '', /owned by ImageMirror team-a\/first/);
  }

  it('the later claimant gets TargetClaimed naming the owner, writes nothing there, and still syncs its other tags', async () => {
    assert.equal((await reconciler.reconcile(first(), ctx)).outcome, 'synced');
    assert.equal(await digestOf(shared()), one);
    await reg.resetLog();
    const r = await reconciler.reconcile(second(), ctx);
    assertClaimed(r);
    assert.equal(await digestOf(shared()), one, 'the owner\'s image is still there');
    assert.deepEqual(await manifestPuts(shared()), [], 'no manifest written to the claimed tag');
    assert.equal(await digestOf(`own${n}/app`), two, 'its unclaimed target still synced');
    assert.equal(r.status.summary, '1/2 in sync');
  });

  it('takes the tag over once the owner stops selecting it, or is deleted (forget)', async () => {
    await reconciler.reconcile(first(), ctx);
    assertClaimed(await reconciler.reconcile(second(), ctx));
    // The owner moves to another target: at the end of its reconcile the old tag is free.
    assert.equal((await reconciler.reconcile(first(`moved${n}/app`), ctx)).outcome, 'synced');
    const taken = await reconciler.reconcile(second(), ctx);
    assert.equal(taken.outcome, 'synced', taken.message);
    assert.equal(await digestOf(shared()), two);
    assert.equal(reconciler.claims.owner(`${reg.host}/${shared()}:1.0`), 'team-b/second');

    // Deleted owner: forget releases everything it held.
    const third = mk('team-c', 'third', { source: { repository: `${reg.host}/src/one`, tags: ['1.0'] }, targets: [{ repository: `${reg.host}/${shared()}` }] }, '2026-03-01T00:00:00Z');
    assert.equal((await reconciler.reconcile(third, ctx)).reason, 'TargetClaimed');
    reconciler.forget('team-b/second');
    assert.equal((await reconciler.reconcile(third, ctx)).outcome, 'synced');
    assert.equal(await digestOf(shared()), one);
  });

  it('ownership seeded from a stored status holds in a fresh reconciler (a restart)', async () => {
    const r1 = await reconciler.reconcile(first(), ctx);
    assert.equal(r1.outcome, 'synced');
    const restarted = createReconciler();
    try {
      restarted.seedClaims(first(shared(), r1.status));
      await reg.resetLog();
      assertClaimed(await restarted.reconcile(second(), ctx));
      assert.equal(await digestOf(shared()), one);
      assert.deepEqual(await manifestPuts(shared()), []);
    } finally {
      await restarted.close();
    }
  });

  it('a dry run reports a claimed tag but claims nothing itself', async () => {
    const dry = await reconciler.reconcile(second(), { ...ctx, dryRun: true });
    assert.equal(dry.outcome, 'synced', dry.message);
    assert.equal(reconciler.claims.size, 0);
    await reconciler.reconcile(first(), ctx);
    assertClaimed(await reconciler.reconcile(second(), { ...ctx, dryRun: true }));
  });
});
