/**
 * Per-mirror series in the controller, against the fake API server: imagemirror_mirror_ready
 * names each mirror with its Ready reason, follows a change of reason with one series per mirror,
 * and goes when the mirror is deleted; the last-success time follows status.lastSyncTime. The
 * controller exports its watch and lease gauges. A suspended mirror (the real reconciler) still
 * records the generation it saw, keeping its conditions.
 */
import assert from 'node:assert/strict';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { runController, type ControllerHandle } from '../../src/controller/controller.js';
import { CONTROLLER_METRIC_NAMES, Metrics } from '../../src/metrics.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileResult, Reconciler } from '../../src/mirror/reconciler.js';
import { mirrorKey, type ImageMirror, type ImageMirrorStatus } from '../../src/mirror/types.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath } from '../support/fake-apiserver/sample-crd.js';
import { declares, samples, seriesOf } from '../support/exposition.js';

const API = 'imagemirror.dev/v1alpha1';
const READY = 'imagemirror_mirror_ready';
const LAST = 'imagemirror_mirror_last_success_timestamp_seconds';

function mirror(name: string, extra: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: API,
    kind: 'ImageMirror',
    metadata: { name, namespace: 'team-a' },
    spec: { source: { repository: 'localhost:5000/src', tags: ['1.0'] }, targets: [{ repository: `localhost:5000/${name}` }], ...extra },
  };
}

/** Answers each mirror with the Ready reason set for it in `reasons` (Synced = Ready). */
class ScriptedReconciler implements Reconciler {
  reasons = new Map<string, string>();
  async reconcile(m: ImageMirror): Promise<ReconcileResult> {
    const reason = this.reasons.get(mirrorKey(m)) ?? 'Synced';
    const ok = reason === 'Synced';
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status: ImageMirrorStatus = {
      ...(m.status ?? {}),
      observedGeneration: m.metadata.generation,
      conditions: [{ type: 'Ready', status: ok ? 'True' : 'False', reason, message: reason, observedGeneration: m.metadata.generation, lastTransitionTime: now }],
      ...(ok ? { lastSyncTime: now } : {}),
    };
    return ok
      ? { outcome: 'synced', reason, message: 'in sync', status, targets: [], requeueAfterMs: 3600_000 }
      : { outcome: 'stalled', reason, message: reason, status, targets: [] };
  }
}

describe('controller: per-mirror metrics and suspended mirrors (fake API server)', function () {
  this.timeout(30_000);
  let fake: FakeApiServer;
  let handle: ControllerHandle | undefined;
  let metrics: Metrics;

  beforeEach(async () => {
    fake = await startFakeApiServer({ crds: [await crdPath()], namespaces: ['team-a'] });
    metrics = new Metrics();
  });
  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    await fake.stop();
  });

  async function start(reconciler: Reconciler): Promise<ControllerHandle> {
    handle = await runController({ kubeconfig: fake.kubeconfig(), reconciler, metrics, concurrency: 1, events: false, backoff: { baseMs: 3600_000, maxMs: 3600_000 } });
    await handle.waitForSync();
    return handle;
  }

  /** Resolves once the exposition satisfies check (the watch delivers status writes asynchronously). */
  async function exposition(check: (text: string) => boolean, what: string): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const text = await metrics.exposition();
      if (check(text)) return text;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last exposition:\n${samples(text, READY).map((s) => JSON.stringify(s)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const ready = (text: string): Record<string, number> => seriesOf(text, READY, ['namespace', 'name', 'reason']);

  it('one series per mirror named by namespace/name with its reason; a changed reason replaces it; a deleted mirror loses it', async () => {
    const reconciler = new ScriptedReconciler();
    reconciler.reasons.set('team-a/b', 'AuthFailed');
    await fake.create(mirror('a'));
    await fake.create(mirror('b'));
    await start(reconciler);

    let text = await exposition((t) => Object.keys(ready(t)).length === 2 && !Object.keys(ready(t)).some((k) => k.endsWith('NotReconciled')), 'both reconciled');
    assert.deepEqual(ready(text), { 'namespace=team-a,name=a,reason=Synced': 1, 'namespace=team-a,name=b,reason=AuthFailed': 0 });
    const stored = fake.get<KObject & { status: ImageMirrorStatus }>(API, 'imagemirrors', 'team-a', 'a')!;
    assert.deepEqual(samples(text, LAST), [{ labels: { namespace: 'team-a', name: 'a' }, value: Date.parse(stored.status.lastSyncTime!) / 1000 }]);
    for (const name of CONTROLLER_METRIC_NAMES) assert.ok(declares(text, name), `the controller does not export ${name}`);

    // b is fixed: its next generation syncs, and the AuthFailed series goes.
    reconciler.reasons.delete('team-a/b');
    const co = fake.kubeconfig().makeApiClient(CustomObjectsApi);
    await co.patchNamespacedCustomObject(
      { group: 'imagemirror.dev', version: 'v1alpha1', plural: 'imagemirrors', namespace: 'team-a', name: 'b', body: { spec: { referrers: false } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    text = await exposition((t) => ready(t)['namespace=team-a,name=b,reason=Synced'] === 1, 'b synced');
    assert.deepEqual(ready(text), { 'namespace=team-a,name=a,reason=Synced': 1, 'namespace=team-a,name=b,reason=Synced': 1 });
    assert.deepEqual(samples(text, LAST).map((s) => s.labels.name).sort(), ['a', 'b']);

    await co.deleteNamespacedCustomObject({ group: 'imagemirror.dev', version: 'v1alpha1', plural: 'imagemirrors', namespace: 'team-a', name: 'a' });
    text = await exposition((t) => !('namespace=team-a,name=a,reason=Synced' in ready(t)), 'a removed');
    assert.deepEqual(ready(text), { 'namespace=team-a,name=b,reason=Synced': 1 });
    assert.deepEqual(samples(text, LAST).map((s) => s.labels.name), ['b']);
  });

  it('a suspended mirror: observedGeneration follows each spec change, conditions stay as they were', async () => {
    const conditions = [{ type: 'Ready', status: 'True', reason: 'Synced', message: '1 image in sync', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }];
    await fake.create(mirror('held', { suspend: true }));
    // Synced once before it was suspended (status is not taken on create: written as the controller would).
    fake.putObject({ ...fake.get<KObject>(API, 'imagemirrors', 'team-a', 'held')!, status: { observedGeneration: 1, conditions } });
    const generation = (): number => (fake.get<KObject & { metadata: { generation: number } }>(API, 'imagemirrors', 'team-a', 'held')!).metadata.generation;
    const observed = (): number | undefined => fake.get<KObject & { status?: ImageMirrorStatus }>(API, 'imagemirrors', 'team-a', 'held')?.status?.observedGeneration;
    // The real reconciler: a suspended mirror touches no registry, so none is needed.
    await start(createReconciler({ metrics }));
    const until = async (fn: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!fn()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(() => observed() === generation(), 'observedGeneration of the created mirror');

    const co = fake.kubeconfig().makeApiClient(CustomObjectsApi);
    await co.patchNamespacedCustomObject(
      { group: 'imagemirror.dev', version: 'v1alpha1', plural: 'imagemirrors', namespace: 'team-a', name: 'held', body: { spec: { interval: '1h' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const gen = generation();
    assert.ok(gen > 1);
    await until(() => observed() === gen, `observedGeneration ${gen}`);
    const stored = fake.get<KObject & { status: ImageMirrorStatus }>(API, 'imagemirrors', 'team-a', 'held')!;
    assert.deepEqual(stored.status.conditions, conditions, 'suspend leaves the conditions as they were');
  });
});
