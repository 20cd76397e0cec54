import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import { CredentialsNotFoundError, type ReconcileContext } from '../../src/mirror/reconciler.js';
import type { ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import { Metrics } from '../../src/metrics.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';
import { fileCredentials } from '../../src/standalone/file-credentials.js';
import type { SecretDoc } from '../../src/standalone/spec-files.js';

const anonymousCtx: ReconcileContext = { credentials: async () => ({ get: async () => undefined }) };

function mirror(spec: ImageMirrorSpec, extra: Partial<ImageMirror['metadata']> = {}, status?: ImageMirror['status']): ImageMirror {
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'm', namespace: 'team-a', generation: 3, ...extra }, spec, ...(status ? { status } : {}) };
}

describe('reconcile(mirror) → status', function () {
  this.timeout(60_000);
  let open: TestRegistry;
  let locked: TestRegistry;
  let client: RegistryClient;
  let reconciler: MirrorReconciler;
  let metrics: Metrics;
  let digest: string;

  before(async () => {
    [open, locked] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd', users: { bob: 'right' } })]);
    client = new RegistryClient(open.host);
    digest = (await pushImage(client.repository('src/app'), buildImage(), '1.0.0')).digest;
    await pushImage(client.repository('other/app'), buildImage(), '1.0.0');
  });
  beforeEach(() => {
    metrics = new Metrics();
    reconciler = createReconciler({ metrics });
  });
  afterEach(async () => reconciler.close());
  after(async () => {
    await client.close();
    await Promise.all([open.stop(), locked.stop()]);
  });

  it('clamps the resync interval to 10s..30 days: 1ns and 999999h never hot-loop or overflow a timer', async () => {
    const spec = (interval: string): ImageMirrorSpec => ({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/interval/app` }], interval });
    const fast = await reconciler.reconcile(mirror(spec('1ns')), anonymousCtx);
    assert.equal(fast.outcome, 'synced', fast.message);
    assert.equal(fast.requeueAfterMs, 10_000);
    const slow = await reconciler.reconcile(mirror(spec('999999h')), anonymousCtx);
    assert.equal(slow.requeueAfterMs, 30 * 24 * 3600_000);
  });

  it('in sync: Ready=True Synced with observedGeneration, rows, summary, bytes, requeue after interval', async () => {
    const r = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/dst/app` }], interval: '90s' }), anonymousCtx);
    assert.equal(r.outcome, 'synced', r.message);
    assert.equal(r.requeueAfterMs, 90_000);
    const ready = r.status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason, ready?.observedGeneration], ['True', 'Synced', 3]);
    assert.equal(r.status.observedGeneration, 3);
    assert.equal(r.status.summary, '1/1 in sync');
    assert.deepEqual(r.status.sourceDigests, { '1.0.0': digest });
    assert.equal(r.status.targets?.[0]?.reference, `${open.host}/dst/app:1.0.0`);
    assert.ok((r.status.bytes?.saved ?? 0) > 0, 'mounted bytes are saved bytes');
    assert.equal(r.status.conditions?.some((c) => c.type === 'Reconciling' || c.type === 'Stalled'), false);
    // Cumulative bytes and a stable lastTransitionTime on the next, no-op, run.
    const again = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/dst/app` }] }, {}, r.status), { ...anonymousCtx, now: () => new Date(Date.now() + 60_000) });
    assert.equal(again.targets[0]?.action, 'UpToDate');
    assert.deepEqual(again.status.bytes, r.status.bytes);
    assert.equal(again.status.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime, ready?.lastTransitionTime);
  });

  it('invalid spec: Ready=False InvalidSpec and Stalled=True, no registry traffic', async () => {
    await open.resetLog();
    const r = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'], semver: '>=1' }, targets: [{ repository: `${open.host}/x/y` }] }), anonymousCtx);
    assert.equal(r.outcome, 'stalled');
    assert.equal(r.reason, 'InvalidSpec');
    assert.deepEqual(r.status.conditions?.map((c) => [c.type, c.status, c.reason]), [['Ready', 'False', 'InvalidSpec'], ['Stalled', 'True', 'InvalidSpec']]);
    assert.deepEqual(await open.accessLog(), []);
  });

  it('missing tag: SourceNotFound, retried (Reconciling=True)', async () => {
    const r = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['2.0.0'] }, targets: [{ repository: `${open.host}/x/y` }] }), anonymousCtx);
    assert.equal(r.outcome, 'retry');
    assert.equal(r.reason, 'SourceNotFound');
    assert.match(r.message, /2\.0\.0/);
    assert.equal(r.status.conditions?.find((c) => c.type === 'Reconciling')?.status, 'True');
  });

  it('wrong credentials on a target: AuthFailed naming the target, no secret in the message', async () => {
    const creds = (password: string): CredentialProvider => ({ get: async () => ({ kind: 'basic', username: 'bob', password }) });
    const ctx: ReconcileContext = { credentials: async (_ns, ref) => (ref ? creds('hunter2-wrong') : { get: async () => undefined }) };
    const r = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${locked.host}/dst/app`, credentials: { secretName: 'push' } }] }), ctx);
    assert.equal(r.outcome, 'retry');
    assert.equal(r.reason, 'AuthFailed', r.message);
    assert.match(r.message, new RegExp(locked.host.replace(/\./g, '\\.')));
    assert.doesNotMatch(JSON.stringify(r), /hunter2/);
    // The right password works with a fresh credential (rotation needs no restart).
    const ok = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${locked.host}/dst/app`, credentials: { secretName: 'push' } }] }), { credentials: async (_ns, ref) => (ref ? creds('right') : { get: async () => undefined }) });
    assert.equal(ok.outcome, 'synced', ok.message);
  });

  it('a dockerconfigjson Secret keeps its registry client while unchanged; rotated, it takes effect at once', async () => {
    const secret = (password: string): SecretDoc => ({
      namespace: 'team-a',
      name: 'push',
      type: 'kubernetes.io/dockerconfigjson',
      dockerConfigJson: JSON.stringify({ auths: { [locked.host]: { username: 'bob', password } } }),
      source: 'test',
    });
    const spec: ImageMirrorSpec = { source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${locked.host}/rotate/app`, credentials: { secretName: 'push' } }] };
    // A new client's first request carries no credentials (it has not seen the challenge yet): a 401.
    const unauthorized = async (): Promise<number> =>
      (await metrics.registryRequests.get()).values.filter((v) => v.labels.registry === locked.host && String(v.labels.code) === '401').reduce((n, v) => n + v.value, 0);

    const wrong = await reconciler.reconcile(mirror(spec), { credentials: fileCredentials([secret('hunter2-wrong')], undefined) });
    assert.equal(wrong.reason, 'AuthFailed', wrong.message);
    const right = await reconciler.reconcile(mirror(spec), { credentials: fileCredentials([secret('right')], undefined) });
    assert.equal(right.outcome, 'synced', right.message);
    const before = await unauthorized();
    // The same Secret content, read again (a new provider object): the client it made is kept.
    const again = await reconciler.reconcile(mirror(spec), { credentials: fileCredentials([secret('right')], undefined) });
    assert.equal(again.outcome, 'synced', again.message);
    assert.equal(await unauthorized(), before, 'no new client: no request without credentials');
  });

  it('missing Secret: CredentialsNotFound with the resolver\'s message', async () => {
    const ctx: ReconcileContext = {
      credentials: async (ns, ref) => {
        if (ref) throw new CredentialsNotFoundError(`secret ${ns}/${ref.secretName} not found`);
        return { get: async () => undefined };
      },
    };
    const r = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'], credentials: { secretName: 'nope' } }, targets: [{ repository: `${open.host}/x/y` }] }), ctx);
    assert.equal(r.reason, 'CredentialsNotFound');
    assert.equal(r.message, 'secret team-a/nope not found');
  });

  it('overwrite false and a tag pointing elsewhere: TagConflict, Stalled, target untouched', async () => {
    const other = await client.repository('other/app').headManifest('1.0.0');
    await pushImage(client.repository('taken/app'), buildImage(), '1.0.0');
    const before = await client.repository('taken/app').headManifest('1.0.0');
    assert.notEqual(before?.digest, other?.digest);
    const r = await reconciler.reconcile(mirror({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/taken/app` }], overwrite: false }), anonymousCtx);
    assert.equal(r.outcome, 'stalled');
    assert.equal(r.reason, 'TagConflict');
    assert.equal(r.message, `${open.host}/taken/app:1.0.0 already points to another image and overwrite is false`);
    assert.equal(r.status.conditions?.find((c) => c.type === 'Stalled')?.status, 'True');
    assert.equal((await client.repository('taken/app').headManifest('1.0.0'))?.digest, before?.digest);
  });

  it('suspend: nothing done, conditions left as they were, observedGeneration recorded', async () => {
    const prev = { observedGeneration: 2, conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Synced', message: 'x', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    await open.resetLog();
    const spec = { source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/x/y` }], suspend: true };
    const r = await reconciler.reconcile(mirror(spec, {}, prev), anonymousCtx);
    assert.equal(r.outcome, 'suspended');
    // The mirror was suspended in generation 3: the status now says it has seen generation 3.
    assert.deepEqual(r.status, { ...prev, observedGeneration: 3 });
    assert.deepEqual(r.status.conditions, prev.conditions);
    assert.deepEqual(await open.accessLog(), []);
    // Seen already: the very same status, so nothing is written.
    const again = await reconciler.reconcile(mirror(spec, {}, r.status), anonymousCtx);
    assert.equal(again.status, r.status);
  });

  it('an unreachable registry: RegistryError, one line, the loop survives', async () => {
    const r = await reconciler.reconcile(mirror({ source: { repository: '127.0.0.1:1/src/app', tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/x/y` }] }), anonymousCtx);
    assert.equal(r.outcome, 'retry');
    assert.equal(r.reason, 'RegistryError');
    assert.doesNotMatch(r.message, /\n/);
    assert.match(r.message, /127\.0\.0\.1:1/);
  });
});
