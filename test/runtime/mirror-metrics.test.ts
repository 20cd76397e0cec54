/**
 * Per-mirror series in `image-mirror run` (the same work loop as the controller): read from run's
 * own /metrics against a real registry, they appear with the Ready reason, follow a change of it
 * with one series per mirror, and go when the mirror's file goes. `run` and `sync` export no
 * controller-only gauge; build_info and the zero-valued counters are there before any event.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CONTROLLER_METRIC_NAMES, Metrics } from '../../src/metrics.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createWorkLoop, NOT_RECONCILED_REASON } from '../../src/runtime/loop.js';
import { API_VERSION, KIND, type ImageMirror, type ImageMirrorStatus } from '../../src/mirror/types.js';
import { startRun, type RunHandle } from '../../src/standalone/run.js';
import { runSync } from '../../src/standalone/sync.js';
import { buildImage, pushImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { declares, samples, seriesOf } from '../support/exposition.js';

const READY = 'imagemirror_mirror_ready';
const LAST = 'imagemirror_mirror_last_success_timestamp_seconds';

function spec(name: string, repository: string, target: string, tag: string): string {
  return `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${name}, namespace: team}
spec:
  source: {repository: ${repository}, tags: ['${tag}']}
  targets: [{repository: ${target}}]
  interval: 1h
`;
}

describe('per-mirror metrics in image-mirror run (real registry, its /metrics)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let root: string;
  let specs: string;
  let run: RunHandle | undefined;

  before(async () => {
    reg = await startRegistry();
    await pushImage(new RegistryClient(reg.host).repository('team/app'), buildImage(), '1.0');
    root = await mkdtemp(join(tmpdir(), 'mirror-metrics-'));
    specs = join(root, 'specs');
    await mkdir(specs);
  });
  after(async () => {
    await run?.stop();
    await reg?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const scrape = async (): Promise<string> => (await fetch(`http://${run!.address}/metrics`)).text();
  const settled = async (key: string): Promise<void> => {
    // reload() queues changed mirrors; each is done when it is neither queued nor being reconciled.
    await run!.reload();
    while (run!.pending(key).queued) await new Promise((r) => setTimeout(r, 5));
  };

  it('a series per mirror with its Ready reason, replaced when the reason changes, removed with the mirror; no controller-only gauge', async () => {
    await writeFile(join(specs, 'app.yaml'), spec('app', `${reg.host}/team/app`, `${reg.host}/mirror/app`, '1.0'));
    await writeFile(join(specs, 'other.yaml'), spec('other', `${reg.host}/team/app`, `${reg.host}/mirror/other`, '9.9'));
    const before = Date.now();
    // No metrics object passed: what `image-mirror run` itself exports.
    run = await startRun({ specsDir: specs, metricsAddr: '127.0.0.1:0', debounceMs: 3600_000, backoff: { baseMs: 3600_000, maxMs: 3600_000 } });
    await settled('team/app');
    await settled('team/other');

    let text = await scrape();
    assert.deepEqual(seriesOf(text, READY, ['namespace', 'name', 'reason']), {
      'namespace=team,name=app,reason=Synced': 1,
      'namespace=team,name=other,reason=SourceNotFound': 0,
    });
    const last = samples(text, LAST);
    assert.deepEqual(last.map((s) => s.labels), [{ namespace: 'team', name: 'app' }], 'a mirror that never synced has no last-success time');
    const synced = Date.parse(run.statuses()['team/app']!.status.lastSyncTime!) / 1000;
    assert.equal(last[0]!.value, synced);
    assert.ok(synced >= Math.floor(before / 1000) - 1);
    for (const name of CONTROLLER_METRIC_NAMES) assert.ok(!declares(text, name), `run exports ${name}`);
    assert.equal(samples(text, 'imagemirror_build_info').length, 1);

    // The missing tag now exists: the same mirror, another reason, still one series.
    await writeFile(join(specs, 'other.yaml'), spec('other', `${reg.host}/team/app`, `${reg.host}/mirror/other`, '1.0'));
    await settled('team/other');
    text = await scrape();
    assert.deepEqual(seriesOf(text, READY, ['namespace', 'name', 'reason']), {
      'namespace=team,name=app,reason=Synced': 1,
      'namespace=team,name=other,reason=Synced': 1,
    });

    await rm(join(specs, 'app.yaml'));
    await run.reload();
    text = await scrape();
    assert.deepEqual(seriesOf(text, READY, ['namespace', 'name', 'reason']), { 'namespace=team,name=other,reason=Synced': 1 });
    assert.deepEqual(samples(text, LAST).map((s) => s.labels.name), ['other']);
  });

  it('sync --metrics-file: no controller-only gauge, build_info present', async () => {
    const file = join(root, 'once.yaml');
    await writeFile(file, spec('once', `${reg.host}/team/app`, `${reg.host}/mirror/once`, '1.0'));
    const metricsFile = join(root, 'sync.prom');
    const r = await runSync({ files: [file], metricsFile, stdout: new PassThrough(), stderr: new PassThrough() });
    assert.equal(r.exitCode, 0);
    const text = await readFile(metricsFile, 'utf8');
    assert.ok(declares(text, 'imagemirror_reconcile_total') || declares(text, 'imagemirror_target_syncs_total'), 'the file holds our metrics');
    for (const name of CONTROLLER_METRIC_NAMES) assert.ok(!declares(text, name), `sync exports ${name}`);
    assert.equal(samples(text, 'imagemirror_build_info').length, 1);
  });
});

describe('Metrics: zero-valued counters, build_info, controller-only gauges', () => {
  it('labelled counters and the Ready gauge export every known label value at zero before any event', async () => {
    const text = await new Metrics().exposition();
    assert.deepEqual(seriesOf(text, 'imagemirror_reconcile_total', ['result']), { 'result=error': 0, 'result=requeue': 0, 'result=success': 0 });
    assert.deepEqual(seriesOf(text, 'imagemirror_target_syncs_total', ['result']), {
      'result=conflict': 0,
      'result=copied': 0,
      'result=failed': 0,
      'result=not_pruned': 0,
      'result=pruned': 0,
      'result=retagged': 0,
      'result=up_to_date': 0,
    });
    assert.deepEqual(seriesOf(text, 'imagemirror_verifications_total', ['result']), { 'result=failed': 0, 'result=verified': 0 });
    assert.deepEqual(seriesOf(text, 'imagemirror_blobs_total', ['action']), { 'action=exists': 0, 'action=mount': 0, 'action=upload': 0 });
    assert.deepEqual(seriesOf(text, 'imagemirror_bytes_saved_total', ['method']), { 'method=exists': 0, 'method=mount': 0, 'method=retag': 0 });
    assert.deepEqual(seriesOf(text, 'imagemirror_mirrors', ['ready']), { 'ready=False': 0, 'ready=True': 0, 'ready=Unknown': 0 });
  });

  it('build_info: version, commit and node as labels, value 1', async () => {
    const text = await new Metrics({ buildInfo: { version: '1.2.3', commit: 'abc1234', node: 'v20.20.0' } }).exposition();
    assert.deepEqual(samples(text, 'imagemirror_build_info'), [{ labels: { version: '1.2.3', commit: 'abc1234', node: 'v20.20.0' }, value: 1 }]);
    // Without an override: this checkout's package version and the running Node.
    const own = samples(await new Metrics().exposition(), 'imagemirror_build_info');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(own.length, 1);
    assert.equal(own[0]!.labels.version, pkg.version);
    assert.equal(own[0]!.labels.node, process.version);
    assert.match(own[0]!.labels.commit ?? '', /^([0-9a-f]{7,64}|unknown)$/);
  });

  it('controller-only gauges are exported only with { controller: true } (or once runController registers them)', async () => {
    const plain = new Metrics();
    for (const name of CONTROLLER_METRIC_NAMES) assert.ok(!declares(await plain.exposition(), name), name);
    const ctl = new Metrics({ controller: true });
    for (const name of CONTROLLER_METRIC_NAMES) assert.ok(declares(await ctl.exposition(), name), name);
    plain.registerControllerMetrics();
    plain.registerControllerMetrics(); // idempotent: a second registration would throw
    for (const name of CONTROLLER_METRIC_NAMES) assert.ok(declares(await plain.exposition(), name), name);
  });

  it(`the loop: a mirror with no Ready condition yet reads ${NOT_RECONCILED_REASON}, 0`, async () => {
    const mirror: ImageMirror = { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'm', namespace: 'ns' }, spec: { source: { repository: 'r.example/a', tags: ['1'] }, targets: [{ repository: 'r.example/b' }] } };
    let status: ImageMirrorStatus | undefined;
    const metrics = new Metrics();
    const loop = createWorkLoop({
      metrics,
      reconciler: { reconcile: async () => assert.fail('not started') },
      store: {
        get: () => ({ ...mirror, status }),
        list: () => [mirror],
        statuses: () => [status],
        context: (_m, signal) => ({ credentials: async () => ({ get: async () => undefined }), signal }),
        writeStatus: async () => 'written',
      },
    });
    loop.refreshReadyGauge();
    assert.deepEqual(seriesOf(await metrics.exposition(), READY, ['namespace', 'name', 'reason']), { [`namespace=ns,name=m,reason=${NOT_RECONCILED_REASON}`]: 0 });
    status = { conditions: [{ type: 'Ready', status: 'False', reason: 'AuthFailed', message: 'x', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    loop.refreshReadyGauge();
    assert.deepEqual(seriesOf(await metrics.exposition(), READY, ['namespace', 'name', 'reason']), { 'namespace=ns,name=m,reason=AuthFailed': 0 });
  });
});
