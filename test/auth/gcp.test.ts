/**
 * Artifact Registry / GCR credentials from Google application default credentials, through the
 * real google-auth-library pointed at a loopback metadata server by GCE_METADATA_HOST (GKE
 * Workload Identity serves the same endpoint). Images are mirrored by the real copy engine into
 * a docker-registry behind a front that accepts only unexpired access tokens the fake issued, as
 * the password of `oauth2accesstoken` (fluxcd/pkg auth/gcp).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GCP_SCOPE, GCP_USERNAME } from '../../src/auth/gcp.js';
import { cloudCredentials } from '../../src/auth/index.js';
import { TargetAction } from '../../src/copy/actions.js';
import { OciError } from '../../src/oci/errors.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startCloudFront, type CloudFront } from '../support/cloud/front.js';
import { METADATA_TOKEN_PATH, startFakeMetadata, type FakeMetadata } from '../support/cloud/gcp.js';
import { mirrorThroughFront, skopeoDigest, startMirrorScene, type MirrorScene } from '../support/cloud/mirror.js';
import { TestClock, TokenLedger } from '../support/cloud/tokens.js';

const LIFETIME_S = 3599;

describe('auth: gcp (Artifact Registry through google-auth-library and a loopback metadata server)', function () {
  this.timeout(30000);
  let scene: MirrorScene;
  let clock: TestClock;
  let ledger: TokenLedger;
  let metadata: FakeMetadata;
  let front: CloudFront;
  let env: CloudEnv;
  let onAuthorized: ((n: number) => void) | undefined;

  before(async () => {
    clock = new TestClock();
    ledger = new TokenLedger(clock.now);
    scene = await startMirrorScene();
    metadata = await startFakeMetadata({ ledger, lifetimeS: LIFETIME_S });
    front = await startCloudFront(scene.target, { ledger, username: GCP_USERNAME, kinds: ['gcp'], onAuthorized: (e) => onAuthorized?.(e.n) });
  });
  after(async () => {
    await front?.stop();
    await metadata?.stop();
    await scene?.stop();
  });
  beforeEach(() => {
    env = cloudEnv();
    // What GKE sets; without it the library shells out to gcloud to find a project it does not need here.
    env.set({ GCE_METADATA_HOST: metadata.host, GOOGLE_CLOUD_PROJECT: 'imc-test-project' });
    onAuthorized = undefined;
    metadata.refuseTokens = undefined;
  });
  afterEach(() => env.restore());

  it('metadata server: mirrors an image with no Secret, and renews the 1 h access token that expires mid-copy', async () => {
    const provider = await cloudCredentials('gcp', front.host, { now: clock.now });
    assert.equal(provider.identity, `gcp:${front.host}:application-default`);
    const before = ledger.issued('gcp').length;
    onAuthorized = (n) => {
      if (n === 3) clock.advance(LIFETIME_S * 1000 + 1000);
    };
    const result = await mirrorThroughFront(scene, { registry: front.host, credentials: provider, repository: 'gke/app', tag: 'v1', sequential: true });
    assert.equal(result.targets[0]!.action, TargetAction.Copied, result.targets[0]!.message);
    assert.equal(await skopeoDigest(scene.target, 'gke/app:v1'), scene.image.digest);

    const tokens = ledger.issued('gcp').slice(before);
    assert.equal(tokens.length, 2, 'one token, then one renewal after it expired');
    assert.ok(tokens[0]!.uses >= 3 && tokens[1]!.uses >= 1, `uses: ${tokens.map((t) => t.uses).join(', ')}`);
    assert.equal(front.refused.expired, 0);
    assert.equal(front.maxInFlight, 1, 'sequential copy: no request was in flight when the clock moved');

    const tokenRequests = metadata.requests.filter((r) => r.path.startsWith(METADATA_TOKEN_PATH));
    assert.ok(tokenRequests.length >= 2);
    for (const r of metadata.requests) assert.ok(r.flavor, `${r.path} without Metadata-Flavor: Google`);
    for (const r of tokenRequests) assert.equal(new URL(r.path, 'http://x').searchParams.get('scopes'), GCP_SCOPE);
  });

  it('a service-account key or a federation file in GOOGLE_APPLICATION_CREDENTIALS names the identity (the account, never the key)', async () => {
    const key = join(env.dir, 'key.json');
    await writeFile(key, JSON.stringify({ type: 'service_account', client_email: 'mirror@proj.iam.gserviceaccount.com', private_key: '-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n' }));
    env.set({ GOOGLE_APPLICATION_CREDENTIALS: key });
    const p1 = await cloudCredentials('gcp', 'europe-docker.pkg.dev', { now: clock.now });
    assert.equal(p1.identity, 'gcp:europe-docker.pkg.dev:mirror@proj.iam.gserviceaccount.com');
    const wif = join(env.dir, 'wif.json');
    await writeFile(
      wif,
      JSON.stringify({
        type: 'external_account',
        audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/eks',
        service_account_impersonation_url: 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/pusher@proj.iam.gserviceaccount.com:generateAccessToken',
      }),
    );
    env.set({ GOOGLE_APPLICATION_CREDENTIALS: wif });
    const p2 = await cloudCredentials('gcp', 'gcr.io', { now: clock.now });
    assert.equal(p2.identity, 'gcp:gcr.io:pusher@proj.iam.gserviceaccount.com');
  });

  it('a metadata server refusing tokens: a one-line UNAUTHORIZED error naming the registry, with no token, and the next request recovers', async () => {
    const provider = await cloudCredentials('gcp', front.host, { now: clock.now });
    metadata.refuseTokens = { status: 403, body: 'token ya29.leaked-0123456789 was revoked\nsecond line' };
    const client = new RegistryClient(front.host, { credentials: provider });
    try {
      const e = await client.repository('gke/app').headManifest('v1').then(() => undefined, (err: unknown) => err);
      assert.ok(e instanceof OciError, String(e));
      assert.equal(e.code, 'UNAUTHORIZED');
      assert.match(e.message, new RegExp(`^gcp credentials for ${front.host.replace(/\./g, '\\.')}: A Forbidden error was returned while attempting to retrieve an access token`));
      assert.ok(!e.message.includes('\n'), e.message);
      assert.ok(!e.message.includes('ya29.') && e.message.includes('token <redacted> was revoked'), e.message);
      metadata.refuseTokens = undefined;
      assert.ok((await client.repository('gke/app').headManifest('v1')) !== undefined);
    } finally {
      await client.close();
    }
  });
});
