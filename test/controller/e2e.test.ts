/**
 * Issue 4 end to end, in process: runController + the REAL reconciler (createReconciler) against
 * real docker-registry processes and the fake API server. Child-process scenarios (leader election,
 * SIGTERM, CLI) are in e2e-process.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { runController, type ControllerHandle, type ControllerOptions } from '../../src/controller/controller.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { Reconciler } from '../../src/mirror/reconciler.js';
import { Metrics } from '../../src/metrics.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { mirrorKey, type Condition, type ImageMirror, type ImageMirrorSpec } from '../../src/mirror/types.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { projectCrdPath } from '../support/fake-apiserver/sample-crd.js';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../support/images.js';
import { parseMetric } from '../support/controller-process.js';

const API = 'imagemirror.dev/v1alpha1';
type Stored = ImageMirror & KObject & { metadata: { generation: number } };

function mirrorObject(name: string, namespace: string, spec: ImageMirrorSpec): KObject {
  return { apiVersion: API, kind: 'ImageMirror', metadata: { name, namespace }, spec };
}

function pullSecret(name: string, namespace: string, registry: string, username: string, password: string, type = 'kubernetes.io/dockerconfigjson'): KObject {
  const cfg = JSON.stringify({ auths: { [registry]: { username, password } } });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type,
    data: type === 'kubernetes.io/dockerconfigjson' ? { '.dockerconfigjson': Buffer.from(cfg).toString('base64') } : { config: Buffer.from(cfg).toString('base64') },
  };
}

const cond = (m: ImageMirror | undefined, type: string): Condition | undefined => m?.status?.conditions?.find((c) => c.type === type);

/** HEAD a manifest on a registry: its digest, or undefined on 404. */
async function headTag(reg: TestRegistry, repo: string, ref: string, auth?: { user: string; password: string }): Promise<string | undefined> {
  const headers: Record<string, string> = {
    accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json',
  };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers });
  if (r.status === 404) return undefined;
  assert.equal(r.status, 200, `HEAD ${repo}:${ref}`);
  return r.headers.get('docker-content-digest') ?? undefined;
}

/**
 * A TCP proxy that is either up (pipes to the registry) or down (resets every connection), for a
 * registry that goes away and comes back on the same address.
 */
async function startSwitchProxy(target: TestRegistry): Promise<{ host: string; up: boolean; stop(): Promise<void> }> {
  const [thost, tport] = target.host.split(':') as [string, string];
  const sockets = new Set<Socket>();
  const state = { up: false };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (!state.up) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(Number(tport), thost);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get up() {
      return state.up;
    },
    set up(v: boolean) {
      state.up = v;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Running {
  handle: ControllerHandle;
  real: MirrorReconciler;
  metrics: Metrics;
  /** Start time (performance.now()) of every reconcile, by mirror key. */
  calls: Array<{ key: string; t: number }>;
  count(key: string): number;
  stop(): Promise<void>;
}

describe('controller end to end (real reconciler, real registries, fake API server)', function () {
  this.timeout(60_000);
  let A: TestRegistry; // source
  let B: TestRegistry; // target
  let C: TestRegistry; // target with htpasswd
  let image: BuiltImage;
  let fake: FakeApiServer;
  const running: Running[] = [];

  before(async () => {
    [A, B, C] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ auth: 'htpasswd', users: { bob: 'right' } })]);
    const client = new RegistryClient(A.host);
    image = await pushImage(client.repository('src/app'), buildImage({ layers: [4096, 8192] }), '1.0');
    await client.close();
  });
  after(async () => Promise.all([A, B, C].map((r) => r?.stop())));

  beforeEach(async () => {
    const crd = projectCrdPath();
    assert.ok(crd, 'crds/imagemirror.yaml not found');
    fake = await startFakeApiServer({ crds: [crd], namespaces: ['team-a', 'team-b'] });
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
    await fake.stop();
  });

  /** runController + createReconciler, wired as `image-mirror controller` wires them. */
  async function start(extra: Partial<ControllerOptions> = {}): Promise<Running> {
    const metrics = new Metrics();
    // One try per registry request: the retries under test are the controller's, not the client's.
    const real = createReconciler({ metrics, client: { retry: { attempts: 1 } } });
    const calls: Running['calls'] = [];
    const reconciler: Reconciler = {
      reconcile: (m, ctx) => {
        calls.push({ key: mirrorKey(m), t: performance.now() });
        return real.reconcile(m, ctx);
      },
    };
    const handle = await runController({
      kubeconfig: fake.kubeconfig(),
      reconciler,
      metrics,
      concurrency: 2,
      backoff: { baseMs: 100, maxMs: 2000, jitter: 0 },
      shutdownGraceMs: 5000,
      onImageLocation: (registry, repository, digest) => real.locations.recordImage(registry, repository, digest),
      ...extra,
    });
    const r: Running = {
      handle,
      real,
      metrics,
      calls,
      count: (key) => calls.filter((c) => c.key === key).length,
      stop: async () => {
        await handle.stop();
        await real.close();
      },
    };
    running.push(r);
    await handle.waitForSync();
    return r;
  }

  const get = (ns: string, name: string): Stored | undefined => fake.get<Stored>(API, 'imagemirrors', ns, name);

  /** Waits until Ready has `status` (and `reason`) for the current generation. */
  function waitReady(ns: string, name: string, status: 'True' | 'False', reason?: string, timeoutMs = 15_000): Promise<Stored> {
    return fake.waitFor(
      () => {
        const m = get(ns, name);
        const ready = cond(m, 'Ready');
        if (!m || !ready || ready.status !== status || (reason && ready.reason !== reason)) return undefined;
        if (m.status?.observedGeneration !== m.metadata.generation || ready.observedGeneration !== m.metadata.generation) return undefined;
        return m;
      },
      timeoutMs,
      `${ns}/${name} Ready=${status}${reason ? ` ${reason}` : ''} (now: ${JSON.stringify(cond(get(ns, name), 'Ready') ?? null)})`,
    );
  }

  async function patchSpec(ns: string, name: string, spec: Partial<ImageMirrorSpec>): Promise<void> {
    const co = fake.kubeconfig().makeApiClient(CustomObjectsApi);
    await co.patchNamespacedCustomObject(
      { group: 'imagemirror.dev', version: 'v1alpha1', plural: 'imagemirrors', namespace: ns, name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  const spec = (targets: ImageMirrorSpec['targets'], extra: Partial<ImageMirrorSpec> = {}): ImageMirrorSpec => ({
    source: { repository: `${A.host}/src/app`, tags: ['1.0'] },
    targets,
    ...extra,
  });

  it('create → Ready=True with rows and summary, the tag really on the target; a spec edit re-syncs; status-only writes do not reconcile', async () => {
    const ctl = await start({ concurrency: 1 });
    await fake.create(mirrorObject('web', 'team-a', spec([{ repository: `${B.host}/e2e1/dst/app` }])));
    const m1 = await waitReady('team-a', 'web', 'True', 'Synced');
    assert.equal(m1.metadata.generation, 1);
    assert.equal(m1.status?.summary, '1/1 in sync');
    assert.deepEqual(m1.status?.sourceDigests, { '1.0': image.digest });
    assert.deepEqual(
      m1.status?.targets?.map((t) => [t.reference, t.digest, t.action]),
      [[`${B.host}/e2e1/dst/app:1.0`, image.digest, 'Copied']],
    );
    assert.equal(await headTag(B, 'e2e1/dst/app', '1.0'), image.digest);

    // Edit: add a target with its own tag → generation 2, both targets in the status.
    await patchSpec('team-a', 'web', { targets: [{ repository: `${B.host}/e2e1/dst/app` }, { repository: `${B.host}/e2e1/prod/app`, tags: ['stable'] }] });
    const m2 = await waitReady('team-a', 'web', 'True', 'Synced');
    assert.equal(m2.metadata.generation, 2);
    assert.equal(m2.status?.summary, '2/2 in sync');
    assert.deepEqual(
      m2.status?.targets?.map((t) => [t.reference, t.action]).sort(),
      [[`${B.host}/e2e1/dst/app:1.0`, 'UpToDate'], [`${B.host}/e2e1/prod/app:stable`, 'Copied']].sort(),
    );
    assert.equal(await headTag(B, 'e2e1/prod/app', 'stable'), image.digest);
    assert.equal(ctl.count('team-a/web'), 2);

    // A status-only write by someone else (through /status): no reconcile, no registry traffic.
    await fake.waitFor(() => (ctl.handle.mirrors().find((m) => m.metadata.name === 'web')?.status?.observedGeneration === 2 ? true : undefined), 5000, 'cache at generation 2');
    const before = parseMetric(await ctl.metrics.exposition(), 'imagemirror_reconcile_total') ?? 0;
    await B.resetLog();
    const co = fake.kubeconfig().makeApiClient(CustomObjectsApi);
    await co.patchNamespacedCustomObjectStatus(
      { group: 'imagemirror.dev', version: 'v1alpha1', plural: 'imagemirrors', namespace: 'team-a', name: 'web', body: { status: { summary: 'edited by hand' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await fake.waitFor(() => (ctl.handle.mirrors().some((m) => m.status?.summary === 'edited by hand') ? true : undefined), 5000, 'status edit in the cache');
    // One worker, FIFO: a reconcile queued by the status edit would run before this marker's.
    await fake.create(mirrorObject('marker', 'team-a', spec([{ repository: `${B.host}/e2e1/marker/app` }])));
    await waitReady('team-a', 'marker', 'True');
    assert.equal(ctl.count('team-a/web'), 2, 'the status-only write caused a reconcile');
    // The counter moves just after the status write the wait above saw.
    const reconciles = async (): Promise<number> => (parseMetric(await ctl.metrics.exposition(), 'imagemirror_reconcile_total') ?? 0) - before;
    for (const deadline = Date.now() + 5000; (await reconciles()) < 1 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await reconciles(), 1, 'only the marker reconciled');
    const touched = (await B.accessLog()).filter((e) => !e.path.includes('/e2e1/marker/'));
    assert.deepEqual(touched, [], 'registry traffic for the mirror whose status was edited');
    assert.equal(get('team-a', 'web')?.status?.summary, 'edited by hand');
  });

  it('a dropped watch and a 410 Gone lose no event: mirrors created meanwhile are reconciled', async () => {
    const ctl = await start();
    await fake.create(mirrorObject('first', 'team-a', spec([{ repository: `${B.host}/e2e2/first/app` }])));
    await waitReady('team-a', 'first', 'True');

    // Created while the watch is half-open (silenced), then the connection drops: replayed on re-watch.
    fake.silenceWatches();
    await fake.create(mirrorObject('during-drop', 'team-a', spec([{ repository: `${B.host}/e2e2/drop/app` }])));
    fake.dropWatches();
    await waitReady('team-a', 'during-drop', 'True');

    // Created while silenced, then history compacted and the watch dropped: 410 on re-watch → relist.
    for (const form of ['http', 'event'] as const) {
      fake.options.expiredWatch = form;
      const relists = parseMetric(await ctl.metrics.exposition(), 'imagemirror_watch_relists_total') ?? 0;
      fake.silenceWatches();
      await fake.create(mirrorObject(`during-gone-${form}`, 'team-b', spec([{ repository: `${B.host}/e2e2/gone-${form}/app` }])));
      fake.compactHistory();
      fake.dropWatches();
      const m = await waitReady('team-b', `during-gone-${form}`, 'True');
      assert.equal(m.status?.summary, '1/1 in sync');
      assert.ok((parseMetric(await ctl.metrics.exposition(), 'imagemirror_watch_relists_total') ?? 0) > relists, `no relist after 410 (${form})`);
      assert.equal(await headTag(B, `e2e2/gone-${form}/app`, '1.0'), image.digest);
      if (form === 'http') assert.ok(fake.requests.some((r) => r.resource === 'imagemirrors' && r.status === 410), 'no watch was refused with 410');
    }
  });

  it('failing registry → Ready=False RegistryError, retries spaced exponentially, then recovery to Ready=True', async () => {
    const proxy = await startSwitchProxy(B);
    try {
      const ctl = await start();
      await fake.create(mirrorObject('flaky', 'team-a', spec([{ repository: `${proxy.host}/e2e3/app` }])));
      const failed = await waitReady('team-a', 'flaky', 'False', 'RegistryError');
      assert.match(cond(failed, 'Ready')!.message, new RegExp(`${proxy.host.replace(/\./g, '\\.')}/e2e3/app:1\\.0`));
      assert.equal(cond(failed, 'Reconciling')?.status, 'True');
      assert.equal(cond(failed, 'Stalled'), undefined, 'a registry error is retryable, not stalled');
      await fake.waitFor(() => (ctl.count('team-a/flaky') >= 5 ? true : undefined), 10_000, '5 attempts');
      const times = ctl.calls.filter((c) => c.key === 'team-a/flaky').map((c) => c.t);
      const gaps = times.slice(1, 5).map((t, i) => t - times[i]!);
      // Backoff 100, 200, 400, 800 ms; a gap also holds the failed attempt itself and its status
      // write (tens of ms on a busy machine), so each gap is checked against its own doubling slot.
      const shown = gaps.map(Math.round).join(', ');
      gaps.forEach((g, i) => {
        const want = 100 * 2 ** i;
        assert.ok(g >= 0.95 * want && g <= want + 300, `gap ${i + 1} is ${Math.round(g)} ms, want ${want} ms (+ attempt time): ${shown}`);
        // Growth is judged two slots apart: neighbours may swap under attempt-time noise (262, 228
        // was seen on a loaded machine), a doubling twice over cannot.
        if (i > 1) assert.ok(g > gaps[i - 2]!, `gaps not growing: ${shown} ms`);
      });

      proxy.up = true;
      const ok = await waitReady('team-a', 'flaky', 'True', 'Synced', 10_000);
      assert.equal(cond(ok, 'Reconciling'), undefined);
      assert.equal(await headTag(B, 'e2e3/app', '1.0'), image.digest);
      const attempts = ctl.count('team-a/flaky');
      // Success resets the backoff and requeues after the interval (10m), not sooner.
      await fake.create(mirrorObject('marker', 'team-a', spec([{ repository: `${B.host}/e2e3/marker/app` }])));
      await waitReady('team-a', 'marker', 'True');
      assert.equal(ctl.count('team-a/flaky'), attempts);
    } finally {
      await proxy.stop();
    }
  });

  it('Secrets: wrong password → AuthFailed, rotated → Ready without restart; missing, Opaque, or in another namespace → CredentialsNotFound', async () => {
    const ctl = await start({ backoff: { baseMs: 100, maxMs: 400, jitter: 0 } });
    const target = (name: string) => [{ repository: `${C.host}/e2e4/${name}/app`, credentials: { secretName: name === 'rotate' ? 'push' : name } }];
    await fake.create(pullSecret('push', 'team-a', C.host, 'bob', 'wrong'));
    await fake.create(mirrorObject('rotate', 'team-a', spec(target('rotate'))));
    const denied = await waitReady('team-a', 'rotate', 'False', 'AuthFailed');
    assert.doesNotMatch(JSON.stringify(denied.status), /wrong|right/, 'a password leaked into the status');
    assert.equal(await headTag(C, 'e2e4/rotate/app', '1.0', { user: 'bob', password: 'right' }), undefined);

    // Rotate the Secret in place; the same controller picks it up.
    const cur = fake.get<KObject>('v1', 'secrets', 'team-a', 'push')!;
    fake.putObject({ ...pullSecret('push', 'team-a', C.host, 'bob', 'right'), metadata: cur.metadata });
    await waitReady('team-a', 'rotate', 'True', 'Synced');
    assert.equal(await headTag(C, 'e2e4/rotate/app', '1.0', { user: 'bob', password: 'right' }), image.digest);

    await fake.create(mirrorObject('absent', 'team-a', spec(target('absent'))));
    const absent = await waitReady('team-a', 'absent', 'False', 'CredentialsNotFound');
    assert.match(cond(absent, 'Ready')!.message, /secret team-a\/absent not found/);

    await fake.create(pullSecret('opaque', 'team-a', C.host, 'bob', 'right', 'Opaque'));
    await fake.create(mirrorObject('opaque', 'team-a', spec(target('opaque'))));
    const opaque = await waitReady('team-a', 'opaque', 'False', 'CredentialsNotFound');
    assert.match(cond(opaque, 'Ready')!.message, /secret team-a\/opaque is of type Opaque, want kubernetes\.io\/dockerconfigjson/);

    // The right Secret, but in team-b: never used for a team-a mirror, even after it changes.
    await fake.create(pullSecret('elsewhere', 'team-b', C.host, 'bob', 'right'));
    await fake.create(mirrorObject('elsewhere', 'team-a', spec(target('elsewhere'))));
    await waitReady('team-a', 'elsewhere', 'False', 'CredentialsNotFound');
    const n = ctl.count('team-a/elsewhere');
    const other = fake.get<KObject>('v1', 'secrets', 'team-b', 'elsewhere')!;
    fake.putObject({ ...other, metadata: { ...other.metadata, labels: { touched: 'yes' } } });
    await fake.waitFor(() => (ctl.count('team-a/elsewhere') >= n + 3 ? true : undefined), 10_000, 'more retries');
    const still = get('team-a', 'elsewhere');
    assert.equal(cond(still, 'Ready')?.reason, 'CredentialsNotFound');
    assert.match(cond(still, 'Ready')!.message, /secret team-a\/elsewhere not found/);
    const cLog = await C.accessLog();
    assert.deepEqual(cLog.filter((e) => e.path.includes('/e2e4/elsewhere/') || e.path.includes('/e2e4/absent/') || e.path.includes('/e2e4/opaque/')), []);
  });

  it('mounts across mirrors on one target registry, and after a restart from locations learned from statuses', async () => {
    let ctl = await start({ concurrency: 1 });
    await fake.create(mirrorObject('one', 'team-a', spec([{ repository: `${B.host}/e2e7/one/app` }])));
    await waitReady('team-a', 'one', 'True');
    await B.resetLog();
    await fake.create(mirrorObject('two', 'team-b', spec([{ repository: `${B.host}/e2e7/two/app` }])));
    const two = await waitReady('team-b', 'two', 'True');
    assert.equal(two.status?.targets?.[0]?.digest, image.digest);
    const blobs = image.blobs.map((b) => b.descriptor.digest).sort();
    const mountsInto = (log: AccessLogEntry[], repo: string): Array<{ from: string; mount: string }> =>
      log
        .filter((e) => e.method === 'POST' && e.status === 201 && e.path.startsWith(`/v2/${repo}/blobs/uploads/`))
        .map((e) => new URL(e.path, 'http://x').searchParams)
        .map((q) => ({ from: q.get('from') ?? '', mount: q.get('mount') ?? '' }));
    const uploads = (log: AccessLogEntry[], repo: string): AccessLogEntry[] =>
      log.filter((e) => (e.method === 'PUT' || e.method === 'PATCH') && e.path.startsWith(`/v2/${repo}/blobs/`));
    let log = await B.accessLog();
    assert.deepEqual(mountsInto(log, 'e2e7/two/app').map((m) => m.mount).sort(), blobs);
    assert.ok(mountsInto(log, 'e2e7/two/app').every((m) => m.from === 'e2e7/one/app'), JSON.stringify(mountsInto(log, 'e2e7/two/app')));
    assert.deepEqual(uploads(log, 'e2e7/two/app'), []);

    // Restart with an empty in-memory cache. The old mirrors are suspended so no resync of theirs can
    // teach the new process anything: what it knows comes from their statuses alone.
    await patchSpec('team-a', 'one', { suspend: true });
    await patchSpec('team-b', 'two', { suspend: true });
    await running.splice(running.indexOf(ctl), 1)[0]!.stop();
    ctl = await start({ concurrency: 1 });
    assert.ok(ctl.real.locations.candidates(B.host, blobs[0]!, { imageDigests: [image.digest] }).length > 0, 'nothing learned from statuses');
    await B.resetLog();
    await fake.create(mirrorObject('three', 'team-a', spec([{ repository: `${B.host}/e2e7/three/app` }])));
    await waitReady('team-a', 'three', 'True');
    log = await B.accessLog();
    const mounts = mountsInto(log, 'e2e7/three/app');
    assert.deepEqual(mounts.map((m) => m.mount).sort(), blobs);
    assert.ok(mounts.every((m) => m.from === 'e2e7/one/app' || m.from === 'e2e7/two/app'), JSON.stringify(mounts));
    assert.deepEqual(uploads(log, 'e2e7/three/app'), []);
    assert.deepEqual(log.filter((e) => !e.path.startsWith('/v2/e2e7/three/app/') && e.path !== '/v2/'), [], 'the new process touched the old repos');
  });
});

