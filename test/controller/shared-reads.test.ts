/**
 * Shared source reads through the controller: a burst of new ImageMirrors of one source — listed
 * at start, or created while the controller runs — makes one tags/list and one manifest HEAD per
 * sharing window, counted in the source registry's own access log. The sharing clock is frozen, so
 * the whole run is one window however slow the machine is.
 */
import assert from 'node:assert/strict';
import { runController, type ControllerHandle } from '../../src/controller/controller.js';
import { Metrics } from '../../src/metrics.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import { LISTING_TTL_MS } from '../../src/mirror/shared-reads.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath } from '../support/fake-apiserver/sample-crd.js';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const API = 'imagemirror.dev/v1alpha1';
const NS = 'team-a';

type Stored = KObject & { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } };

const tagLists = (log: AccessLogEntry[]): number => log.filter((e) => e.method === 'GET' && e.path.startsWith('/v2/src/app/tags/list')).length;
const heads = (log: AccessLogEntry[]): number => log.filter((e) => e.method === 'HEAD' && e.path === '/v2/src/app/manifests/1.0.0').length;

describe('controller: a burst of new mirrors of one source shares its reads', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  let fake: FakeApiServer;
  let reconciler: MirrorReconciler;
  let handle: ControllerHandle | undefined;
  let now = 1_000_000;

  before(async () => {
    registry = await startRegistry();
    const client = new RegistryClient(registry.host);
    await pushImage(client.repository('src/app'), buildImage(), '1.0.0');
    await client.close();
  });
  beforeEach(async () => {
    fake = await startFakeApiServer({ crds: [await crdPath()], namespaces: [NS] });
    reconciler = createReconciler({ sharedReads: { now: () => now } });
  });
  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    await reconciler.close();
    await fake.stop();
  });
  after(async () => registry.stop());

  async function createMirrors(from: number, count: number): Promise<void> {
    for (let i = from; i < from + count; i++) {
      await fake.create({
        apiVersion: API,
        kind: 'ImageMirror',
        metadata: { name: `m${i}`, namespace: NS },
        spec: { source: { repository: `${registry.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${registry.host}/dst/m${i}` }] },
      });
    }
  }

  function allReady(count: number): true | undefined {
    const mirrors = fake.list<Stored>(API, 'imagemirrors', NS);
    const ready = mirrors.filter((m) => m.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
    const failed = mirrors.find((m) => m.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'False');
    if (failed) throw new Error(`${failed.metadata?.name} not Ready: ${failed.status?.conditions?.find((c) => c.type === 'Ready')?.message}`);
    return ready.length >= count ? true : undefined;
  }

  async function start(): Promise<void> {
    handle = await runController({ kubeconfig: fake.kubeconfig(), namespaces: [NS], reconciler, metrics: new Metrics(), concurrency: 16, events: false });
  }

  it('100 mirrors listed at start (their first reconcile, with no client pooled yet) make 1 tags/list and 1 HEAD', async () => {
    await createMirrors(0, 100);
    await registry.resetLog();
    await start();
    await fake.waitFor(() => allReady(100), 50_000, '100 mirrors Ready');
    const log = await registry.accessLog();
    // Without sharing: 100 of each.
    assert.equal(tagLists(log), 1);
    assert.equal(heads(log), 1);
  });

  it('30 mirrors created while it runs, after the window of earlier reads ended, make 1 more tags/list and 1 more HEAD', async () => {
    await createMirrors(0, 1);
    await start();
    await fake.waitFor(() => allReady(1), 20_000, 'the first mirror Ready');
    now += LISTING_TTL_MS;
    await registry.resetLog();
    await createMirrors(1, 30);
    await fake.waitFor(() => allReady(31), 50_000, '31 mirrors Ready');
    const log = await registry.accessLog();
    assert.equal(tagLists(log), 1);
    assert.equal(heads(log), 1);
  });
});
