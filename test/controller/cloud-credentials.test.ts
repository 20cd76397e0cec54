/**
 * The controller lends its own cloud identity to a mirror's `credentials.provider` only for the
 * providers its --cloud-credentials option names. Without it a provider mirror is Stalled
 * (Forbidden) before any request; with it the same mirror syncs through a registry that takes
 * only tokens the (fake) GKE metadata server issued. Real command, reconciler and registries,
 * fake API server.
 */
import assert from 'node:assert/strict';
import { startControllerCommand } from '../../src/controller/command.js';
import { GCP_USERNAME } from '../../src/auth/gcp.js';
import { silentLogger } from '../../src/log.js';
import type { Condition, ImageMirror } from '../../src/mirror/types.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startCloudFront, type CloudFront } from '../support/cloud/front.js';
import { METADATA_TOKEN_PATH, startFakeMetadata, type FakeMetadata } from '../support/cloud/gcp.js';
import { skopeoDigest, startMirrorScene, type MirrorScene } from '../support/cloud/mirror.js';
import { TokenLedger } from '../support/cloud/tokens.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath, policyCrdPath } from '../support/fake-apiserver/sample-crd.js';

const API = 'imagemirror.dev/v1alpha1';
type Stored = ImageMirror & KObject;
const cond = (m: ImageMirror | undefined, type: string): Condition | undefined => m?.status?.conditions?.find((c) => c.type === type);

describe('controller: --cloud-credentials gates credentials.provider', function () {
  this.timeout(60_000);
  let scene: MirrorScene;
  let ledger: TokenLedger;
  let metadata: FakeMetadata;
  let front: CloudFront;
  let fake: FakeApiServer;
  let env: CloudEnv;
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    ledger = new TokenLedger();
    scene = await startMirrorScene();
    metadata = await startFakeMetadata({ ledger });
    front = await startCloudFront(scene.target, { ledger, username: GCP_USERNAME, kinds: ['gcp'] });
  });
  after(async () => {
    await front?.stop();
    await metadata?.stop();
    await scene?.stop();
  });
  beforeEach(async () => {
    env = cloudEnv();
    env.set({ GCE_METADATA_HOST: metadata.host, GOOGLE_CLOUD_PROJECT: 'imc-test-project' });
    fake = await startFakeApiServer({ crds: [await crdPath(), policyCrdPath()], namespaces: ['team-a'] });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await fake.stop();
    env.restore();
  });

  const get = (name: string): Stored | undefined => fake.get<Stored>(API, 'imagemirrors', 'team-a', name);
  function waitReady(name: string, status: 'True' | 'False', reason: string): Promise<Stored> {
    return fake.waitFor(
      () => {
        const m = get(name);
        const ready = cond(m, 'Ready');
        return m && ready?.status === status && ready.reason === reason && m.status?.observedGeneration === m.metadata.generation ? m : undefined;
      },
      20_000,
      `team-a/${name} Ready=${status} ${reason} (now: ${JSON.stringify(cond(get(name), 'Ready') ?? null)})`,
    );
  }

  async function start(cloudCredentials?: string[]): Promise<() => Promise<void>> {
    const cmd = await startControllerCommand({
      kubeConfigObject: fake.kubeconfig(),
      namespace: [],
      concurrency: 1,
      leaderElect: false,
      leaseDuration: '15s',
      renewDeadline: '10s',
      retryPeriod: '2s',
      metricsAddr: '127.0.0.1:0',
      shutdownGrace: '2s',
      log: silentLogger,
      env: {},
      ...(cloudCredentials ? { cloudCredentials } : {}),
    });
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await cmd.stop();
    };
    cleanups.push(stop);
    return stop;
  }

  it('refused (Stalled, Forbidden, naming the flag) without --cloud-credentials and before any request; synced once started with --cloud-credentials=gcp', async () => {
    await fake.create({
      apiVersion: API,
      kind: 'ImageMirror',
      metadata: { name: 'gke', namespace: 'team-a' },
      spec: { source: { repository: `${scene.source.host}/app`, tags: ['v1'] }, targets: [{ repository: `${front.host}/gke/app`, credentials: { provider: 'gcp' } }], referrers: false },
    });

    const stop = await start();
    const refused = await waitReady('gke', 'False', 'Forbidden');
    assert.equal(cond(refused, 'Stalled')?.status, 'True');
    const message = cond(refused, 'Ready')!.message;
    assert.match(message, /^credentials\.provider gcp is not allowed: .*start it with --cloud-credentials=gcp/);
    assert.match(message, /ImageMirrorPolicy/);
    assert.equal(front.log.length, 0, 'nothing was sent to the target registry');
    assert.equal(metadata.requests.filter((r) => r.path.startsWith(METADATA_TOKEN_PATH)).length, 0, 'no cloud token was asked for');
    await stop();

    await start(['gcp']);
    const synced = await waitReady('gke', 'True', 'Synced');
    assert.equal(cond(synced, 'Stalled'), undefined);
    assert.equal(await skopeoDigest(scene.target, 'gke/app:v1'), scene.image.digest);
    assert.ok(ledger.issued('gcp').some((t) => t.uses > 0), 'pushed with a token from the metadata server');
  });

  it('an unknown provider in --cloud-credentials is refused before connecting', async () => {
    await assert.rejects(start(['gcp,oracle']), /^Error: --cloud-credentials: unknown provider "oracle" \(expected aws, gcp, azure\)$/);
    assert.equal(fake.requests.length, 0);
  });
});
