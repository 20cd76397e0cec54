/**
 * Tenancy in the controller: ImageMirrorPolicies watched cluster-wide and applied to every mirror,
 * --require-policy, target-tag ownership across a restart and a delete, and the per-reconcile
 * deadline wired from the command options. Real reconciler, real registry, fake API server.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runController, type ControllerHandle } from '../../src/controller/controller.js';
import { startControllerCommand } from '../../src/controller/command.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import { Metrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { Condition, ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath, policyCrdPath } from '../support/fake-apiserver/sample-crd.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const API = 'imagemirror.dev/v1alpha1';
type Stored = ImageMirror & KObject;
const cond = (m: ImageMirror | undefined, type: string): Condition | undefined => m?.status?.conditions?.find((c) => c.type === type);

/** A registry that accepts connections and never says a word. */
async function startSilentServer(): Promise<{ host: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('controller tenancy (policies, tag ownership, deadline)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let one: string;
  let two: string;
  let fake: FakeApiServer;
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    reg = await startRegistry();
    const client = new RegistryClient(reg.host);
    one = (await pushImage(client.repository('src/one'), buildImage(), '1.0')).digest;
    two = (await pushImage(client.repository('src/two'), buildImage(), '1.0')).digest;
    await client.close();
  });
  after(() => reg.stop());
  beforeEach(async () => {
    fake = await startFakeApiServer({ crds: [await crdPath(), policyCrdPath()], namespaces: ['team-a', 'team-b'] });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await fake.stop();
  });

  const mirrorObject = (namespace: string, name: string, spec: ImageMirrorSpec): KObject => ({ apiVersion: API, kind: 'ImageMirror', metadata: { name, namespace }, spec });
  const policyObject = (name: string, namespaces: string[], sources: string[], targets: string[]): KObject => ({
    apiVersion: API,
    kind: 'ImageMirrorPolicy',
    metadata: { name },
    spec: { namespaces, sources, targets },
  });
  const get = (ns: string, name: string): Stored | undefined => fake.get<Stored>(API, 'imagemirrors', ns, name);
  const digestOf = async (repo: string): Promise<string | undefined> => {
    const c = new RegistryClient(reg.host);
    try {
      return (await c.repository(repo).headManifest('1.0'))?.digest;
    } finally {
      await c.close();
    }
  };

  function waitReady(ns: string, name: string, status: 'True' | 'False', reason?: string, timeoutMs = 15_000): Promise<Stored> {
    return fake.waitFor(
      () => {
        const m = get(ns, name);
        const ready = cond(m, 'Ready');
        if (!m || !ready || ready.status !== status || (reason && ready.reason !== reason)) return undefined;
        return m.status?.observedGeneration === m.metadata.generation ? m : undefined;
      },
      timeoutMs,
      `${ns}/${name} Ready=${status} ${reason ?? ''} (now: ${JSON.stringify(cond(get(ns, name), 'Ready') ?? null)})`,
    );
  }

  async function startInProcess(): Promise<{ handle: ControllerHandle; real: MirrorReconciler; stop(): Promise<void> }> {
    const metrics = new Metrics();
    const real = createReconciler({ metrics, client: { retry: { attempts: 1 } } });
    const handle = await runController({
      kubeconfig: fake.kubeconfig(),
      reconciler: real,
      metrics,
      concurrency: 1,
      backoff: { baseMs: 100, maxMs: 500, jitter: 0 },
      shutdownGraceMs: 2000,
      events: false,
    });
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await handle.stop();
      await real.close();
    };
    cleanups.push(stop);
    await handle.waitForSync();
    return { handle, real, stop };
  }

  it('tag ownership seeded from statuses survives a restart; a deleted owner hands the tag over', async () => {
    const target = { repository: `${reg.host}/shared/app` };
    // The owner lives in team-b so that, listed by namespace/name, the later claimant comes first
    // after the restart: without seeding it would win the tag.
    await fake.create(mirrorObject('team-b', 'owner', { source: { repository: `${reg.host}/src/one`, tags: ['1.0'] }, targets: [target] }));
    const first = await startInProcess();
    await waitReady('team-b', 'owner', 'True', 'Synced');
    await first.stop();
    assert.equal(await digestOf('shared/app'), one);

    await fake.create(mirrorObject('team-a', 'late', { source: { repository: `${reg.host}/src/two`, tags: ['1.0'] }, targets: [target] }));
    await reg.resetLog();
    const ownerPatches = (): number => fake.requests.filter((r) => r.verb === 'patch' && r.subresource === 'status' && r.name === 'owner').length;
    const patchedBefore = ownerPatches();
    const second = await startInProcess();
    const late = await waitReady('team-a', 'late', 'False', 'TargetClaimed');
    assert.match(cond(late, 'Ready')!.message, new RegExp(`${reg.host}/shared/app:1\\.0 is owned by ImageMirror team-b/owner`));
    assert.equal(await digestOf('shared/app'), one, 'the owner\'s image stays');
    const puts = (await reg.accessLog()).filter((e) => e.method === 'PUT' && e.path.startsWith('/v2/shared/app/manifests/'));
    assert.deepEqual(puts, [], 'the later claimant wrote nothing to the tag');
    assert.equal(second.real.claims.owner(`${reg.host}/shared/app:1.0`), 'team-b/owner');

    // The owner is deleted once this controller has reconciled it (so nothing queued for it is
    // left to notice): the delete event releases its claims, and the retrying claimant takes over.
    await fake.waitFor(() => (ownerPatches() > patchedBefore ? true : undefined), 15_000, 'the owner reconciled after the restart');
    fake.deleteObject(API, 'imagemirrors', 'team-b', 'owner');
    await waitReady('team-a', 'late', 'True', 'Synced');
    assert.equal(await digestOf('shared/app'), two);
  });

  it('policies from the API server apply to every mirror; --require-policy; a policy change re-checks Forbidden mirrors; --reconcile-timeout', async () => {
    const silent = await startSilentServer();
    await fake.create(policyObject('team-a', ['team-a'], [`${reg.host}/src/**`, `${silent.host}/**`], [`${reg.host}/staging/team-a/**`]));
    const src = { repository: `${reg.host}/src/one`, tags: ['1.0'] };
    await fake.create(mirrorObject('team-a', 'inside', { source: src, targets: [{ repository: `${reg.host}/staging/team-a/app` }] }));
    await fake.create(mirrorObject('team-a', 'outside', { source: src, targets: [{ repository: `${reg.host}/prod/app` }] }));
    await fake.create(mirrorObject('team-b', 'unnamed', { source: src, targets: [{ repository: `${reg.host}/team-b/app` }] }));
    await fake.create(mirrorObject('team-a', 'hung', { source: { repository: `${silent.host}/x/app`, tags: ['1.0'] }, targets: [{ repository: `${reg.host}/staging/team-a/hung` }] }));

    const cmd = await startControllerCommand({
      kubeConfigObject: fake.kubeconfig(),
      namespace: [],
      concurrency: 2,
      leaderElect: false,
      leaseDuration: '15s',
      renewDeadline: '10s',
      retryPeriod: '2s',
      metricsAddr: '127.0.0.1:0',
      shutdownGrace: '2s',
      requirePolicy: true,
      reconcileTimeout: '500ms',
      log: silentLogger,
      env: {},
    });
    cleanups.push(() => cmd.stop());
    // Cleanups run last-first: drop the silent connections first, so the request the deadline
    // abandoned fails and the registry clients close at once.
    cleanups.push(() => silent.stop());

    await waitReady('team-a', 'inside', 'True', 'Synced');
    const outside = await waitReady('team-a', 'outside', 'False', 'Forbidden');
    assert.equal(cond(outside, 'Stalled')?.status, 'True');
    assert.match(cond(outside, 'Ready')!.message, /target .*\/prod\/app matches none of ImageMirrorPolicy team-a spec\.targets/);
    const unnamed = await waitReady('team-b', 'unnamed', 'False', 'Forbidden');
    assert.match(cond(unnamed, 'Ready')!.message, /namespace team-b is named by no ImageMirrorPolicy and the controller runs with --require-policy/);
    const hung = await waitReady('team-a', 'hung', 'False', 'RegistryError');
    assert.equal(cond(hung, 'Ready')!.message, 'reconcile took longer than 500ms; will retry with backoff');
    assert.equal(await digestOf('prod/app'), undefined, 'nothing written outside the policy');
    assert.deepEqual(cmd.controller.policies().map((p) => p.metadata.name), ['team-a']);

    // Widen the policy: the stalled mirror is re-checked without any change to it.
    const p = fake.get<KObject & { spec: { targets: string[] } }>(API, 'imagemirrorpolicies', undefined, 'team-a')!;
    fake.putObject({ ...p, spec: { ...p.spec, targets: [...p.spec.targets, `${reg.host}/prod/**`] } });
    await waitReady('team-a', 'outside', 'True', 'Synced');
    assert.equal(await digestOf('prod/app'), one);
  });

  it('refuses a bad --reconcile-timeout before connecting', async () => {
    await assert.rejects(
      startControllerCommand({
        kubeConfigObject: fake.kubeconfig(),
        namespace: [],
        concurrency: 1,
        leaseDuration: '15s',
        renewDeadline: '10s',
        retryPeriod: '2s',
        metricsAddr: '127.0.0.1:0',
        shutdownGrace: '2s',
        reconcileTimeout: 'soon',
        log: silentLogger,
        env: {},
      }),
      /^Error: --reconcile-timeout: invalid duration "soon"/,
    );
    assert.equal(fake.requests.length, 0);
  });
});
