// The fake API server held to client-node 1.4, unmodified: the behaviours controllers break on.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObject,
  PatchStrategy,
  V1MicroTime,
  Watch,
  makeInformer,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { SAMPLE_CRD_YAML } from '../support/fake-apiserver/sample-crd.js';

const G = 'imagemirror.dev';
const V = 'v1alpha1';
const P = 'imagemirrors';
const NS = 'team-a';

function mirror(name: string, labels: Record<string, string> = {}, repo = 'reg.example:5000/dev/web'): KObject {
  return {
    apiVersion: `${G}/${V}`,
    kind: 'ImageMirror',
    metadata: { name, namespace: NS, labels },
    spec: { source: { repository: repo, tags: ['1.0'] }, targets: [{ repository: 'reg.example:5000/prod/web' }] },
  };
}

async function apiError(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiException, `expected ApiException, got ${String(e)}`);
    const ex = e as ApiException<string>;
    return { code: ex.code, body: JSON.parse(ex.body) as Record<string, unknown> };
  }
  assert.fail('expected the request to fail');
}

type Meta = { name: string; resourceVersion: string; generation?: number; deletionTimestamp?: string; finalizers?: string[] };
type Mirror = KObject & { metadata: Meta; spec: Record<string, unknown>; status?: Record<string, unknown> };

describe('fake API server with client-node 1.4', function () {
  let dir: string;
  let api: FakeApiServer;
  let co: CustomObjectsApi;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fake-apiserver-'));
    await writeFile(join(dir, 'crd.yaml'), SAMPLE_CRD_YAML);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    api = await startFakeApiServer({ crds: [join(dir, 'crd.yaml')], namespaces: [NS] });
    co = api.kubeconfig().makeApiClient(CustomObjectsApi);
  });
  afterEach(async () => {
    await api.stop();
  });

  const create = (o: KObject): Promise<Mirror> => co.createNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, body: o }) as Promise<Mirror>;
  const get = (name: string): Promise<Mirror> => co.getNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name }) as Promise<Mirror>;

  it('creates with defaults, generation 1 and no status; gets and lists with selectors', async () => {
    const created = await create({ ...mirror('a', { app: 'web', env: 'dev' }), status: { summary: 'ignored on create' } });
    assert.equal(created.metadata.generation, 1);
    assert.equal(created.status, undefined);
    assert.deepEqual([created.spec.referrers, created.spec.overwrite, created.spec.interval, created.spec.suspend], [true, true, '10m', false]);
    assert.match(String(created.metadata.resourceVersion), /^\d+$/);
    await create(mirror('b', { app: 'api', env: 'prod' }));
    await create(mirror('c', { app: 'db' }));
    assert.equal((await get('a')).metadata.name, 'a');
    const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> => {
      const l = (await co.listNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, labelSelector, fieldSelector })) as { items: Mirror[]; metadata: { resourceVersion: string } };
      assert.match(l.metadata.resourceVersion, /^\d+$/);
      return l.items.map((i) => i.metadata.name);
    };
    assert.deepEqual(await names(), ['a', 'b', 'c']);
    assert.deepEqual(await names('app=web'), ['a']);
    assert.deepEqual(await names('env!=prod'), ['a', 'c']);
    assert.deepEqual(await names('app in (web,api)'), ['a', 'b']);
    assert.deepEqual(await names('app notin (web,api)'), ['c']);
    assert.deepEqual(await names('env'), ['a', 'b']);
    assert.deepEqual(await names('!env'), ['c']);
    assert.deepEqual(await names('app,env=dev'), ['a']);
    assert.deepEqual(await names(undefined, 'metadata.name=b'), ['b']);
    const all = (await co.listClusterCustomObject({ group: G, version: V, plural: P })) as { items: Mirror[] };
    assert.equal(all.items.length, 3);
    const unsupported = await apiError(co.listNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, fieldSelector: 'spec.suspend=true' }));
    assert.equal(unsupported.code, 400);
    const missing = await apiError(get('nope'));
    assert.equal(missing.code, 404);
    assert.equal(missing.body.reason, 'NotFound');
  });

  it('status subresource: merge patch changes only status, keeps generation; main writes ignore status', async () => {
    const c = await create(mirror('a'));
    const patched = (await co.patchNamespacedCustomObjectStatus(
      { group: G, version: V, namespace: NS, plural: P, name: 'a', body: { spec: { suspend: true }, status: { observedGeneration: 1, summary: '1/1 in sync' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as Mirror;
    assert.equal(patched.status?.summary, '1/1 in sync');
    assert.equal(patched.spec.suspend, false, 'a status write must not change spec');
    assert.equal(patched.metadata.generation, 1);
    assert.ok(Number(patched.metadata.resourceVersion) > Number(c.metadata.resourceVersion));
    const viaMain = (await co.patchNamespacedCustomObject(
      { group: G, version: V, namespace: NS, plural: P, name: 'a', body: { status: { summary: 'from main' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as Mirror;
    assert.equal(viaMain.status?.summary, '1/1 in sync', 'main-resource writes must ignore .status');
    assert.equal(viaMain.metadata.resourceVersion, patched.metadata.resourceVersion, 'a no-op write does not bump resourceVersion');
    assert.equal(api.count('patch', P, 'status'), 1);
    assert.equal(api.count('patch', P), 1);
  });

  it('a merge-style body sent with the default json-patch content type fails to decode (400)', async () => {
    await create(mirror('a'));
    const e = await apiError(co.patchNamespacedCustomObjectStatus({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: { status: { summary: 'x' } } }));
    assert.equal(e.code, 400);
    assert.match(String(e.body.message), /cannot unmarshal object into Go value of type jsonpatch.Patch/);
    assert.equal(api.requests.at(-1)?.contentType, 'application/json-patch+json');
    // A real RFC 6902 patch with that content type works.
    const ok = (await co.patchNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: [{ op: 'replace', path: '/spec/interval', value: '5m' }] })) as Mirror;
    assert.equal(ok.spec.interval, '5m');
    assert.equal(ok.metadata.generation, 2);
    const failedTest = await apiError(co.patchNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: [{ op: 'test', path: '/spec/interval', value: '1m' }] }));
    assert.equal(failedTest.code, 422);
    const smp = await apiError(
      co.patchNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: { spec: { suspend: true } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)),
    );
    assert.equal(smp.code, 415);
  });

  it('generation bumps only on spec change; stale update and stale merge patch get 409 with a Status body', async () => {
    const c = await create(mirror('a'));
    const labelled = (await co.replaceNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: { ...c, metadata: { ...c.metadata, labels: { x: 'y' } } } })) as Mirror;
    assert.equal(labelled.metadata.generation, 1, 'metadata-only change keeps generation');
    const changed = (await co.replaceNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: { ...labelled, spec: { ...labelled.spec, interval: '1h' } } })) as Mirror;
    assert.equal(changed.metadata.generation, 2);
    const stale = await apiError(co.replaceNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: { ...c, spec: { ...c.spec, interval: '2h' } } }));
    assert.equal(stale.code, 409);
    assert.equal(stale.body.kind, 'Status');
    assert.equal(stale.body.reason, 'Conflict');
    assert.match(String(stale.body.message), /the object has been modified/);
    const stalePatch = await apiError(
      co.patchNamespacedCustomObjectStatus(
        { group: G, version: V, namespace: NS, plural: P, name: 'a', body: { metadata: { resourceVersion: c.metadata.resourceVersion }, status: { summary: 'x' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    assert.equal(stalePatch.code, 409);
    const noRv = await apiError(co.replaceNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a', body: { ...mirror('a') } }));
    assert.equal(noRv.code, 422, 'custom resources require resourceVersion on update');
  });

  it('validates against the CRD schema (422 with causes) and prunes unknown fields', async () => {
    const bad = mirror('bad');
    (bad.spec as Record<string, unknown>).targets = [];
    ((bad.spec as Record<string, unknown>).source as Record<string, unknown>).latest = 'five';
    const e = await apiError(create(bad));
    assert.equal(e.code, 422);
    assert.equal(e.body.reason, 'Invalid');
    const causes = (e.body.details as { causes: { field: string }[] }).causes.map((c) => c.field).sort();
    assert.deepEqual(causes, ['spec.source.latest', 'spec.targets']);
    const extra = mirror('extra');
    (extra.spec as Record<string, unknown>).unknownField = 1;
    const created = await create(extra);
    assert.equal(created.spec.unknownField, undefined);
    const badStatus = await apiError(
      co.patchNamespacedCustomObjectStatus(
        { group: G, version: V, namespace: NS, plural: P, name: 'extra', body: { status: { conditions: [{ type: 'Ready', status: 'Maybe' }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    assert.equal(badStatus.code, 422);
  });

  it('finalizers: delete sets deletionTimestamp, removing the last finalizer deletes', async () => {
    await create({ ...mirror('f'), metadata: { name: 'f', namespace: NS, finalizers: ['example.com/keep'] } });
    await co.deleteNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'f' });
    const pending = await get('f');
    assert.ok(pending.metadata.deletionTimestamp);
    assert.equal(pending.metadata.generation, 2);
    await co.patchNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'f', body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    assert.equal((await apiError(get('f'))).code, 404);
    assert.deepEqual(api.emitted(`${G}/${V}`, P).map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('informer: list + watch, update on status writes, a dropped watch stops ListWatch with an error', async () => {
    await create(mirror('a'));
    const inf = makeInformer<KubernetesObject>(api.kubeconfig(), `/apis/${G}/${V}/namespaces/${NS}/${P}`, () => co.listNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P }));
    const seen: string[] = [];
    const errors: unknown[] = [];
    inf.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    inf.on('update', (o) => seen.push(`update ${o.metadata?.name}`));
    inf.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    inf.on('error', (e) => errors.push(e));
    await inf.start();
    await api.waitFor(() => (api.activeWatches() === 1 ? true : undefined), 5000, 'the informer watch');
    await create(mirror('b'));
    await co.patchNamespacedCustomObjectStatus({ group: G, version: V, namespace: NS, plural: P, name: 'b', body: { status: { summary: 's' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await co.deleteNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a' });
    await api.waitFor(() => (seen.length >= 4 ? true : undefined), 5000, 'informer events');
    assert.deepEqual(seen, ['add a', 'add b', 'update b', 'delete a']);
    assert.equal(inf.get('b', NS)?.metadata?.name, 'b');

    api.dropWatches();
    await api.waitFor(() => (errors.length > 0 ? true : undefined), 5000, 'the informer error');
    const watches = api.count('watch', P);
    await create(mirror('c'));
    // Give a (wrong) reconnect every chance to happen: one more round trip through the server.
    await get('c');
    assert.equal(api.count('watch', P), watches, 'ListWatch in client-node 1.4 does not re-watch after an error');
    assert.equal(inf.get('c', NS), undefined);
    await inf.stop();
  });

  for (const form of ['http', 'event'] as const) {
    it(`informer: a watch from a compacted resourceVersion (410, ${form} form) relists with synthesized deletes`, async () => {
      api.options.expiredWatch = form;
      await create(mirror('a'));
      const inf = makeInformer<KubernetesObject>(api.kubeconfig(), `/apis/${G}/${V}/namespaces/${NS}/${P}`, () => co.listNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P }));
      const seen: string[] = [];
      const errors: unknown[] = [];
      inf.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
      inf.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
      inf.on('error', (e) => errors.push(e));
      await inf.start();
      await api.waitFor(() => (api.activeWatches() === 1 ? true : undefined), 5000, 'the informer watch');
      assert.deepEqual(seen, ['add a']);
      api.silenceWatches();
      await create(mirror('b'));
      await co.deleteNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a' });
      assert.deepEqual(seen, ['add a'], 'a silenced watch delivers nothing');
      api.compactHistory();
      api.closeWatches();
      await api.waitFor(() => (seen.length >= 3 ? true : undefined), 5000, 'relist events');
      assert.deepEqual(seen.slice(1).sort(), ['add b', 'delete a']);
      assert.equal(api.count('list', P), 2);
      assert.deepEqual(errors, []);
      const expired = api.requests.filter((r) => r.verb === 'watch' && r.resource === P);
      assert.equal(expired[1]?.status, form === 'http' ? 410 : 200);
      await inf.stop();
    });
  }

  it('watch: bookmarks only when allowed, timeoutSeconds closes the stream, resourceVersion replay', async () => {
    const c = await create(mirror('a'));
    await create(mirror('b'));
    const watch = new Watch(api.kubeconfig());
    const events: { type: string; name?: string; rv?: string }[] = [];
    let done: ((e: unknown) => void) | undefined;
    const closed = new Promise((r) => (done = r));
    const req = await watch.watch(
      `/apis/${G}/${V}/namespaces/${NS}/${P}`,
      { resourceVersion: c.metadata.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 1 },
      (type, obj: KObject) => events.push({ type, name: obj.metadata?.name, rv: obj.metadata?.resourceVersion }),
      (e) => done!(e),
    );
    await api.waitFor(() => (events.length >= 1 ? true : undefined), 5000, 'replayed event');
    api.sendBookmarks();
    await api.waitFor(() => (events.length >= 2 ? true : undefined), 5000, 'bookmark');
    assert.deepEqual(events.map((e) => [e.type, e.name]), [['ADDED', 'b'], ['BOOKMARK', undefined]]);
    assert.equal(events[1]!.rv, api.resourceVersion());
    assert.equal(await closed, null, 'the server closes the watch cleanly at timeoutSeconds');
    req.abort();

    const plain: string[] = [];
    const r2 = await watch.watch(`/apis/${G}/${V}/namespaces/${NS}/${P}`, { resourceVersion: api.resourceVersion() }, (type) => plain.push(type), () => undefined);
    await api.waitFor(() => (api.activeWatches() === 1 ? true : undefined), 5000, 'watch');
    api.sendBookmarks();
    await co.deleteNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P, name: 'a' });
    await api.waitFor(() => (plain.length >= 1 ? true : undefined), 5000, 'delete event');
    assert.deepEqual(plain, ['DELETED'], 'no BOOKMARK without allowWatchBookmarks');
    r2.abort();
  });

  it('failNext injects one failure for a matching request; the request log counts it', async () => {
    await create(mirror('a'));
    api.failNext({ verb: 'get', resource: P, name: 'a' }, 500);
    assert.equal((await apiError(get('a'))).code, 500);
    assert.equal((await get('a')).metadata.name, 'a');
    api.failNext({ verb: 'list', resource: P }, 403, { message: 'forbidden by test' });
    const e = await apiError(co.listNamespacedCustomObject({ group: G, version: V, namespace: NS, plural: P }));
    assert.equal(e.code, 403);
    assert.equal(e.body.message, 'forbidden by test');
    assert.deepEqual(api.requests.filter((r) => r.resource === P).map((r) => `${r.verb} ${r.status}`), ['create 201', 'get 500', 'get 200', 'list 403']);
  });

  it('leases: V1MicroTime accepted, a plain Date (3 fractional digits) is a 400, stale replace a 409', async () => {
    const coord = api.kubeconfig().makeApiClient(CoordinationV1Api);
    const now = new V1MicroTime();
    const lease = await coord.createNamespacedLease({ namespace: NS, body: { metadata: { name: 'leader' }, spec: { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 0 } } });
    const stored = api.get<KObject & { spec: { renewTime: string } }>('coordination.k8s.io/v1', 'Lease', NS, 'leader');
    assert.match(stored!.spec.renewTime, /\.\d{6}Z$/);
    const bad = await apiError(coord.createNamespacedLease({ namespace: NS, body: { metadata: { name: 'other' }, spec: { holderIdentity: 'me', renewTime: new Date() as V1MicroTime } } }));
    assert.equal(bad.code, 400);
    const renewed = await coord.replaceNamespacedLease({ namespace: NS, name: 'leader', body: { ...lease, spec: { ...lease.spec, renewTime: new V1MicroTime() } } });
    assert.notEqual(renewed.metadata?.resourceVersion, lease.metadata?.resourceVersion);
    const stale = await apiError(coord.replaceNamespacedLease({ namespace: NS, name: 'leader', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'thief' } } }));
    assert.equal(stale.code, 409);
  });

  it('secrets and events (core/v1): stringData becomes data, events filter by involvedObject', async () => {
    const core = api.kubeconfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'pull' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': '{"auths":{}}' } } });
    const s = await core.readNamespacedSecret({ namespace: NS, name: 'pull' });
    assert.equal(Buffer.from(s.data!['.dockerconfigjson']!, 'base64').toString(), '{"auths":{}}');
    assert.equal(s.stringData, undefined);
    const invalidSecret = await apiError(core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'broken' }, type: 'kubernetes.io/dockerconfigjson', data: {} } }));
    assert.equal(invalidSecret.code, 422);
    const noNs = await apiError(core.createNamespacedSecret({ namespace: 'missing', body: { metadata: { name: 'x' } } }));
    assert.equal(noNs.code, 404);
    const m = await create(mirror('a'));
    for (const [name, obj] of [['e1', 'a'], ['e2', 'other']] as const) {
      await core.createNamespacedEvent({
        namespace: NS,
        body: {
          metadata: { name },
          involvedObject: { apiVersion: `${G}/${V}`, kind: 'ImageMirror', name: obj, namespace: NS, uid: m.metadata.uid as string | undefined },
          reason: 'Synced', message: 'ok', type: 'Normal', count: 1,
          firstTimestamp: new Date(), lastTimestamp: new Date(), source: { component: 'image-mirror-controller' },
        },
      });
    }
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=a,involvedObject.kind=ImageMirror' });
    assert.deepEqual(list.items.map((e) => e.metadata?.name), ['e1']);
    assert.equal(list.items[0]!.kind, undefined, 'built-in list items carry no kind, as on a real server');
  });

  it('waitFor resolves on a store change, putObject emits a watch event', async () => {
    const pending = api.waitFor(() => api.get<Mirror>(`${G}/${V}`, P, NS, 'later')?.metadata.name);
    api.putObject({ ...mirror('later'), status: { summary: 'set by test' } });
    assert.equal(await pending, 'later');
    assert.equal(api.emitted(`${G}/${V}`, 'ImageMirror').at(-1)?.type, 'ADDED');
    await assert.rejects(api.waitFor(() => undefined, 50, 'nothing'), /timed out after 50 ms waiting for nothing/);
  });
});
