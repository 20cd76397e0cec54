import assert from 'node:assert/strict';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { runController, type ControllerHandle, type ControllerOptions } from '../../src/controller/controller.js';
import { CONTROLLER_API_CALLS } from '../../src/controller/rbac.js';
import { Metrics } from '../../src/metrics.js';
import { CredentialsNotFoundError, type ReconcileContext, type ReconcileResult, type Reconciler } from '../../src/mirror/reconciler.js';
import { mirrorKey, type ImageMirror, type ImageMirrorStatus } from '../../src/mirror/types.js';
import { TargetAction } from '../../src/copy/actions.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath } from '../support/fake-apiserver/sample-crd.js';

async function until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const API = 'imagemirror.dev/v1alpha1';

function mirror(name: string, namespace = 'team-a', extra: { sourceSecret?: string; targetSecret?: string; status?: ImageMirrorStatus } = {}): KObject {
  return {
    apiVersion: API,
    kind: 'ImageMirror',
    metadata: { name, namespace },
    spec: {
      source: { repository: 'localhost:5000/src', tags: ['1.0'], ...(extra.sourceSecret ? { credentials: { secretName: extra.sourceSecret } } : {}) },
      targets: [{ repository: 'localhost:5000/dst', ...(extra.targetSecret ? { credentials: { secretName: extra.targetSecret } } : {}) }],
    },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

function pullSecret(name: string, namespace: string, password: string, type = 'kubernetes.io/dockerconfigjson'): KObject {
  const cfg = JSON.stringify({ auths: { 'localhost:5000': { username: 'u', password } } });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type,
    data: type === 'kubernetes.io/dockerconfigjson' ? { '.dockerconfigjson': Buffer.from(cfg).toString('base64') } : { token: Buffer.from('x').toString('base64') },
  };
}

interface Call {
  key: string;
  generation?: number;
  /** What ctx.credentials gave for the source: a password, or the error message. */
  credential?: string;
  credentialError?: string;
}

/**
 * A minimal real Reconciler for tests of the controller machinery: it records each call and
 * resolves the mirror's source credentials through ctx, then reports what `respond` says.
 */
class CountingReconciler implements Reconciler {
  calls: Call[] = [];
  respond: (m: ImageMirror, ctx: ReconcileContext) => Promise<Partial<ReconcileResult>> | Partial<ReconcileResult> = () => ({});

  count(key: string): number {
    return this.calls.filter((c) => c.key === key).length;
  }

  async reconcile(m: ImageMirror, ctx: ReconcileContext): Promise<ReconcileResult> {
    const call: Call = { key: mirrorKey(m), generation: m.metadata.generation };
    const ref = m.spec.source.credentials;
    if (ref && 'secretName' in ref) {
      try {
        const provider = await ctx.credentials(m.metadata.namespace ?? 'default', ref);
        const c = await provider.get('localhost:5000');
        call.credential = c?.kind === 'basic' ? c.password : 'none';
      } catch (err) {
        call.credentialError = `${(err as Error).name}: ${(err as Error).message}`;
      }
    }
    const r = await this.respond(m, ctx);
    this.calls.push(call);
    const now = new Date().toISOString();
    return {
      outcome: 'synced',
      reason: 'Synced',
      message: '1 image in sync',
      requeueAfterMs: 3600_000,
      targets: [],
      status: {
        ...(m.status ?? {}),
        observedGeneration: m.metadata.generation,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: '1 image in sync', observedGeneration: m.metadata.generation, lastTransitionTime: now }],
      },
      ...r,
    };
  }
}

describe('runController (fake API server, counting reconciler)', function () {
  this.timeout(30_000);
  let fake: FakeApiServer;
  let reconciler: CountingReconciler;
  let metrics: Metrics;
  const handles: ControllerHandle[] = [];

  beforeEach(async () => {
    fake = await startFakeApiServer({ crds: [await crdPath()], namespaces: ['team-a', 'team-b', 'image-mirror'] });
    reconciler = new CountingReconciler();
    metrics = new Metrics();
  });
  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.stop()));
    await fake.stop();
  });

  async function start(extra: Partial<ControllerOptions> = {}): Promise<ControllerHandle> {
    const h = await runController({
      kubeconfig: fake.kubeconfig(),
      reconciler,
      metrics,
      concurrency: 1,
      backoff: { baseMs: 50, maxMs: 1000 },
      shutdownGraceMs: 2000,
      ...extra,
    });
    handles.push(h);
    await h.waitForSync();
    return h;
  }

  async function patchSpec(name: string, spec: Record<string, unknown>, namespace = 'team-a'): Promise<void> {
    const co = fake.kubeconfig().makeApiClient(CustomObjectsApi);
    await co.patchNamespacedCustomObject(
      { group: 'imagemirror.dev', version: 'v1alpha1', plural: 'imagemirrors', namespace, name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  it('reconciles each mirror once, writes status by merge patch on /status, and ignores its own status writes', async () => {
    await fake.create(mirror('a'));
    const h = await start();
    assert.ok(h.ready());
    await until(() => fake.count('patch', 'imagemirrors', 'status') === 1, 5000, 'status write');
    const patch = fake.requests.find((r) => r.verb === 'patch' && r.subresource === 'status')!;
    assert.equal(patch.contentType, 'application/merge-patch+json');
    const stored = fake.get<KObject & { status: ImageMirrorStatus; metadata: { generation: number } }>(API, 'imagemirrors', 'team-a', 'a')!;
    assert.equal(stored.status.observedGeneration, stored.metadata.generation);
    assert.equal(stored.status.conditions?.[0]?.status, 'True');
    // The MODIFIED event of our own status write must not cause another reconcile: a marker mirror
    // created afterwards is reconciled after anything queued before it (one worker, FIFO).
    await until(() => h.mirrors().some((m) => m.metadata.name === 'a' && m.status?.observedGeneration !== undefined), 5000, 'status in cache');
    await fake.create(mirror('marker'));
    await until(() => reconciler.count('team-a/marker') === 1, 5000, 'marker reconcile');
    assert.equal(reconciler.count('team-a/a'), 1);
    assert.equal(fake.count('list', 'imagemirrors'), 1);
  });

  it('the workers-started line counts every mirror handed over, not what is left after workers took some', async () => {
    for (const n of ['a', 'b', 'c']) await fake.create(mirror(n));
    const lines: string[] = [];
    const log = { error: () => {}, warn: () => {}, debug: () => {}, info: (msg: string) => void lines.push(msg), child: () => log };
    await start({ log, concurrency: 4 });
    await until(() => lines.some((l) => l.startsWith('workers started')), 5000, 'workers started line');
    assert.ok(lines.includes('workers started (4) for 3 ImageMirrors'), lines.join(' | '));
  });

  it('status-only updates do not cause reconciles; a generation change does', async () => {
    await fake.create(mirror('a'));
    const h = await start();
    await until(() => reconciler.count('team-a/a') === 1, 5000, 'first reconcile');
    await until(() => h.mirrors().some((m) => m.metadata.name === 'a' && m.status?.observedGeneration !== undefined), 5000, 'status in cache');
    // Someone else writes status only (generation unchanged).
    const cur = fake.get<KObject & { status: ImageMirrorStatus }>(API, 'imagemirrors', 'team-a', 'a')!;
    fake.putObject({ ...cur, status: { ...cur.status, summary: 'edited by hand' } });
    await until(() => h.mirrors().some((m) => m.status?.summary === 'edited by hand'), 5000, 'status-only update seen');
    await fake.create(mirror('marker1'));
    await until(() => reconciler.count('team-a/marker1') === 1, 5000, 'marker reconcile');
    assert.equal(reconciler.count('team-a/a'), 1, 'a status-only update caused a reconcile');
    // A spec change bumps the generation: reconciled again, seeing the new generation.
    await patchSpec('a', { suspend: false, referrers: false });
    await until(() => reconciler.count('team-a/a') === 2, 5000, 'reconcile after generation change');
    const gens = reconciler.calls.filter((c) => c.key === 'team-a/a').map((c) => c.generation);
    assert.equal(gens[1], (gens[0] ?? 0) + 1);
    await fake.create(mirror('marker2'));
    await until(() => reconciler.count('team-a/marker2') === 1, 5000, 'marker reconcile');
    assert.equal(reconciler.count('team-a/a'), 2);
  });

  it('skips the status write when nothing changed and keeps lastTransitionTime', async () => {
    await fake.create(mirror('a'));
    let n = 0;
    reconciler.respond = (m) => {
      n++;
      // Same status every time, but a fresh lastTransitionTime each call.
      return {
        status: {
          observedGeneration: m.metadata.generation,
          summary: '1/1 in sync',
          conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: 'ok', observedGeneration: m.metadata.generation, lastTransitionTime: new Date(Date.now() + n * 1000).toISOString() }],
        },
        requeueAfterMs: 50,
      };
    };
    const h = await start({ resyncJitter: 0 });
    await until(() => reconciler.count('team-a/a') >= 4, 5000, 'several resyncs');
    assert.ok(h.isLeader());
    assert.equal(fake.count('patch', 'imagemirrors', 'status'), 1, 'unchanged status must not be written again');
    const stored = fake.get<KObject & { status: ImageMirrorStatus }>(API, 'imagemirrors', 'team-a', 'a')!;
    const first = stored.status.conditions![0]!.lastTransitionTime;
    // A real change (message) is written, lastTransitionTime kept because status stayed True.
    reconciler.respond = (m) => ({
      status: {
        observedGeneration: m.metadata.generation,
        summary: '1/1 in sync',
        conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: 'changed', observedGeneration: m.metadata.generation, lastTransitionTime: new Date(Date.now() + 99_000).toISOString() }],
      },
      requeueAfterMs: 3600_000,
    });
    await until(() => fake.count('patch', 'imagemirrors', 'status') === 2, 5000, 'second write');
    const after = fake.get<KObject & { status: ImageMirrorStatus }>(API, 'imagemirrors', 'team-a', 'a')!;
    assert.equal(after.status.conditions![0]!.message, 'changed');
    assert.equal(after.status.conditions![0]!.lastTransitionTime, first);
  });

  it('a rotated Secret re-queues exactly the mirrors that reference it, with the new credentials', async () => {
    await fake.create(pullSecret('pull', 'team-a', 'old'));
    await fake.create(mirror('uses', 'team-a', { sourceSecret: 'pull' }));
    await fake.create(mirror('other'));
    const h = await start();
    await until(() => reconciler.count('team-a/uses') === 1 && reconciler.count('team-a/other') === 1, 5000, 'first reconciles');
    assert.equal(reconciler.calls.find((c) => c.key === 'team-a/uses')!.credential, 'old');
    await until(() => h.mirrors().every((m) => m.status?.observedGeneration !== undefined), 5000, 'statuses in cache');
    const s = fake.get<KObject & { data: Record<string, string> }>('v1', 'secrets', 'team-a', 'pull')!;
    fake.putObject({ ...pullSecret('pull', 'team-a', 'new'), metadata: s.metadata });
    await until(() => reconciler.count('team-a/uses') === 2, 5000, 'reconcile after rotation');
    assert.equal(reconciler.calls.filter((c) => c.key === 'team-a/uses')[1]!.credential, 'new');
    await fake.create(mirror('marker'));
    await until(() => reconciler.count('team-a/marker') === 1, 5000, 'marker');
    assert.equal(reconciler.count('team-a/other'), 1, 'a mirror not using the Secret was re-queued');
  });

  it('missing or wrong-type Secrets → CredentialsNotFoundError with a clear message; other namespaces are out of reach', async () => {
    await fake.create(pullSecret('opaque', 'team-a', 'x', 'Opaque'));
    await fake.create(pullSecret('shared', 'team-b', 'b-secret'));
    await fake.create(mirror('missing', 'team-a', { sourceSecret: 'dev-pull' }));
    await fake.create(mirror('wrongtype', 'team-a', { sourceSecret: 'opaque' }));
    await fake.create(mirror('elsewhere', 'team-a', { sourceSecret: 'shared' }));
    let crossNamespace = '';
    reconciler.respond = async (m, ctx) => {
      if (m.metadata.name === 'elsewhere') {
        // A reconciler asking for another namespace's Secret is refused too.
        try {
          await ctx.credentials('team-b', { secretName: 'shared' });
          crossNamespace = 'allowed';
        } catch (err) {
          crossNamespace = `${(err as Error).name}: ${(err as Error).message}`;
        }
      }
      return {};
    };
    await start();
    await until(() => reconciler.calls.length >= 3, 5000, 'three reconciles');
    const err = (name: string): string | undefined => reconciler.calls.find((c) => c.key === `team-a/${name}`)?.credentialError;
    assert.equal(err('missing'), 'CredentialsNotFoundError: secret team-a/dev-pull not found');
    assert.equal(err('wrongtype'), 'CredentialsNotFoundError: secret team-a/opaque is of type Opaque, want kubernetes.io/dockerconfigjson');
    assert.equal(err('elsewhere'), 'CredentialsNotFoundError: secret team-a/shared not found');
    assert.match(crossNamespace, /^CredentialsNotFoundError: .*team-b\/shared.*namespace/);
    assert.ok(new CredentialsNotFoundError('x') instanceof Error);
  });

  it('requeues by outcome: retry backs off, stalled stops, and a Warning event aggregates repeats', async () => {
    await fake.create(mirror('flaky'));
    await fake.create(mirror('stuck'));
    reconciler.respond = (m) =>
      m.metadata.name === 'flaky'
        ? { outcome: 'retry', reason: 'RegistryError', message: 'registry localhost:5000 answered 503' }
        : { outcome: 'stalled', reason: 'InvalidSpec', message: 'spec.source: exactly one selector' };
    await start({ backoff: { baseMs: 100, maxMs: 400, jitter: 0 } });
    await until(() => reconciler.count('team-a/flaky') >= 4, 8000, 'retries');
    assert.equal(reconciler.count('team-a/stuck'), 1, 'a stalled mirror is not retried');
    const ts = reconciler.calls.filter((c) => c.key === 'team-a/flaky');
    assert.ok(ts.length >= 4);
    const events = fake.list<KObject & { reason: string; type: string; count: number; involvedObject: { name: string } }>('v1', 'events', 'team-a');
    const flaky = events.filter((e) => e.involvedObject.name === 'flaky');
    assert.equal(flaky.length, 1, 'repeats aggregate into one Event');
    assert.equal(flaky[0]!.type, 'Warning');
    assert.equal(flaky[0]!.reason, 'RegistryError');
    await until(() => (fake.list<KObject & { count: number; involvedObject: { name: string } }>('v1', 'events', 'team-a').find((e) => e.involvedObject.name === 'flaky')?.count ?? 0) >= 2, 5000, 'event count');
    const stuck = events.filter((e) => e.involvedObject.name === 'stuck');
    assert.equal(stuck.length, 1);
    assert.equal(stuck[0]!.reason, 'InvalidSpec');
    const text = await metrics.exposition();
    assert.match(text, /imagemirror_reconcile_total\{result="error"\} [4-9]|imagemirror_reconcile_total\{result="error"\} \d\d/);
  });

  it('Normal Synced events carry bytes moved and saved; no event for a no-op resync', async () => {
    await fake.create(mirror('a'));
    await fake.create(mirror('noop'));
    reconciler.respond = (m) => ({
      targets:
        m.metadata.name === 'a'
          ? [{ reference: 'localhost:5000/dst:1.0', digest: 'sha256:' + 'a'.repeat(64), action: TargetAction.Copied, bytesCopied: 1234, bytesSaved: 5678, blobs: { exists: 1, mount: 0, upload: 2 } }]
          : [{ reference: 'localhost:5000/dst:1.0', digest: 'sha256:' + 'a'.repeat(64), action: TargetAction.UpToDate, bytesCopied: 0, bytesSaved: 0, blobs: { exists: 0, mount: 0, upload: 0 } }],
    });
    await start();
    await until(() => reconciler.count('team-a/a') === 1 && reconciler.count('team-a/noop') === 1, 5000, 'reconciles');
    await until(() => fake.list('v1', 'events', 'team-a').length >= 1, 5000, 'event');
    const evs = fake.list<KObject & { reason: string; type: string; message: string; involvedObject: { name: string; kind: string } }>('v1', 'events', 'team-a');
    assert.equal(evs.length, 1);
    assert.equal(evs[0]!.type, 'Normal');
    assert.equal(evs[0]!.reason, 'Synced');
    assert.equal(evs[0]!.involvedObject.kind, 'ImageMirror');
    assert.match(evs[0]!.message, /1\.2 KiB copied, 5\.5 KiB saved/);
  });

  it('tells onImageLocation about every target row in statuses seen, and counts mirrors by readiness', async () => {
    const d1 = 'sha256:' + '1'.repeat(64);
    const d2 = 'sha256:' + '2'.repeat(64);
    const rows = (digest: string) => ({
      conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Synced', message: '', lastTransitionTime: new Date().toISOString() }],
      targets: [
        { reference: 'registry.example.com:8221/prod/web:stable', digest, action: TargetAction.Retagged, lastSyncTime: new Date().toISOString() },
        { reference: 'localhost:5000/x/y:1', digest, action: TargetAction.Failed, lastSyncTime: new Date().toISOString() },
      ],
    });
    const seeded = fake.putObject({ ...mirror('known'), metadata: { name: 'known', namespace: 'team-a', generation: 1 }, status: { observedGeneration: 1, ...rows(d1) } });
    const seen: string[] = [];
    reconciler.respond = (m) => ({ status: { ...m.status, observedGeneration: m.metadata.generation } });
    await start({ onImageLocation: (registry, repository, digest) => seen.push(`${registry} ${repository} ${digest}`) });
    assert.deepEqual(seen, [`registry.example.com:8221 prod/web ${d1}`]);
    const g = await metrics.mirrors.get();
    assert.equal(g.values.find((v) => v.labels.ready === 'True')?.value, 1);
    // A later status change teaches the new digest.
    const cur = fake.get<KObject>(API, 'imagemirrors', 'team-a', 'known')!;
    fake.putObject({ ...cur, metadata: { ...cur.metadata!, generation: seeded.metadata!.generation }, status: { observedGeneration: 1, ...rows(d2) } });
    await until(() => seen.length === 2, 5000, 'second location');
    assert.equal(seen[1], `registry.example.com:8221 prod/web ${d2}`);
  });

  it('with leader election only the leader reconciles; when it stops, the other takes over', async () => {
    await fake.create(mirror('a'));
    const le = { leaderElect: true, leaseNamespace: 'image-mirror', leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };
    const r1 = new CountingReconciler();
    const r2 = new CountingReconciler();
    const c1 = await start({ ...le, reconciler: r1, identity: 'one', metrics: new Metrics() });
    await until(() => c1.isLeader(), 5000, 'first leads');
    const c2 = await start({ ...le, reconciler: r2, identity: 'two', metrics: new Metrics() });
    assert.ok(c2.ready(), 'a follower is ready (caches synced) without leading');
    await until(() => r1.count('team-a/a') === 1, 5000, 'leader reconciles');
    await fake.create(mirror('b'));
    await until(() => r1.count('team-a/b') === 1, 5000, 'leader reconciles b');
    assert.equal(r2.calls.length, 0, 'a follower reconciled');
    assert.ok(!c2.isLeader());
    await c1.stop();
    await until(() => c2.isLeader(), 3000, 'takeover after release');
    await until(() => r2.count('team-a/a') === 1 && r2.count('team-a/b') === 1, 5000, 'new leader reconciles everything');
    const lease = fake.get<KObject & { spec: { holderIdentity: string } }>('coordination.k8s.io/v1', 'leases', 'image-mirror', 'image-mirror-controller')!;
    assert.equal(lease.spec.holderIdentity, 'two');
  });

  it('stop() lets an in-flight reconcile finish within the grace period, then aborts it', async () => {
    await fake.create(mirror('slow'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    let sawAbort: boolean | undefined;
    reconciler.respond = async (_m, ctx) => {
      started = true;
      await Promise.race([gate, new Promise((r) => ctx.signal?.addEventListener('abort', r))]);
      sawAbort = ctx.signal?.aborted;
      return {};
    };
    const h = await start({ shutdownGraceMs: 300 });
    await until(() => started, 5000, 'reconcile started');
    const t = Date.now();
    await h.stop();
    assert.ok(Date.now() - t >= 250, 'stop returned before the grace period');
    assert.equal(sawAbort, true);
    assert.equal(h.healthy(), false);
    release();
    // Finishing in time: no abort.
    await fake.create(mirror('quick'));
    const r2 = new CountingReconciler();
    let aborted: boolean | undefined;
    let go!: () => void;
    const gate2 = new Promise<void>((r) => (go = r));
    let started2 = false;
    r2.respond = async (_m, ctx) => {
      started2 = true;
      await gate2;
      aborted = ctx.signal?.aborted;
      return {};
    };
    const h2 = await start({ reconciler: r2, shutdownGraceMs: 5000 });
    await until(() => started2, 5000, 'second reconcile started');
    const stopping = h2.stop();
    setTimeout(go, 50);
    await stopping;
    assert.equal(aborted, false);
    assert.ok(r2.calls.length >= 1, 'the in-flight reconcile completed');
  });

  it('lists every API call it makes in CONTROLLER_API_CALLS', async () => {
    await fake.create(pullSecret('pull', 'team-a', 'p'));
    await fake.create(mirror('a', 'team-a', { sourceSecret: 'missing' }));
    reconciler.respond = () => ({ outcome: 'retry', reason: 'CredentialsNotFound', message: 'secret team-a/missing not found' });
    const h = await start({ leaderElect: true, leaseNamespace: 'image-mirror', leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200, backoff: { baseMs: 50, maxMs: 100, jitter: 0 } });
    await until(() => reconciler.count('team-a/a') >= 3, 5000, 'retries');
    await h.stop();
    const allowed = new Set(CONTROLLER_API_CALLS.flatMap((c) => c.verbs.map((v) => `${c.group}|${c.resource}|${v}`)));
    const groupOf = (path: string): string => (path.startsWith('/api/') ? '' : path.split('/')[2] ?? '');
    const used = new Set(
      fake.requests
        .filter((r) => r.resource)
        .map((r) => `${groupOf(r.path)}|${r.resource}${r.subresource ? `/${r.subresource}` : ''}|${r.verb}`),
    );
    for (const u of used) assert.ok(allowed.has(u), `API call ${u} missing from CONTROLLER_API_CALLS`);
    for (const need of ['imagemirror.dev|imagemirrors|watch', 'imagemirror.dev|imagemirrors/status|patch', '|secrets|get', '|events|create', '|events|patch', 'coordination.k8s.io|leases|update'])
      assert.ok(used.has(need), `expected the controller to call ${need}`);
  });
});
