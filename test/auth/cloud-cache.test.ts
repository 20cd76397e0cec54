/**
 * The reconciler's cloud providers: one per (provider, registry, TLS mode) for the life of the
 * process, bounded, and not kept when it could not be made; and what a mirror's status says when
 * its provider is not allowed, cannot be made, or cannot get a token (one line, no token).
 */
import assert from 'node:assert/strict';
import { CloudCredentialCache, MAX_CLOUD_PROVIDERS } from '../../src/auth/cloud-cache.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import { API_VERSION, KIND, type CloudProvider, type ImageMirror } from '../../src/mirror/types.js';
import { fileCredentials } from '../../src/standalone/file-credentials.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { METADATA_TOKEN_PATH, startFakeMetadata, type FakeMetadata } from '../support/cloud/gcp.js';
import { TokenLedger } from '../support/cloud/tokens.js';

/** Nothing listens on port 9 (discard) on loopback: a test that reaches a registry fails loudly. */
const NOWHERE = '127.0.0.1:9';

function mirror(provider: CloudProvider, name = `uses-${provider}`): ImageMirror {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: 'team-a', generation: 1 },
    spec: { source: { repository: `${NOWHERE}/src/app`, tags: ['1.0'] }, targets: [{ repository: `${NOWHERE}/dst/app`, credentials: { provider } }] },
  };
}

describe('auth: cloud provider cache and mirror status for provider failures', function () {
  this.timeout(30000);
  let env: CloudEnv;
  let metadata: FakeMetadata;
  before(async () => {
    metadata = await startFakeMetadata({ ledger: new TokenLedger() });
  });
  after(async () => metadata?.stop());
  beforeEach(() => {
    env = cloudEnv();
    env.set({ GCE_METADATA_HOST: metadata.host, GOOGLE_CLOUD_PROJECT: 'imc-test-project' });
    metadata.refuseTokens = undefined;
  });
  afterEach(() => env.restore());

  it('one provider per (provider, registry, insecure), kept across calls', async () => {
    const cache = new CloudCredentialCache();
    const a = await cache.get({ provider: 'gcp', registry: 'europe-docker.pkg.dev' });
    assert.equal(await cache.get({ provider: 'gcp', registry: 'europe-docker.pkg.dev' }), a);
    assert.notEqual(await cache.get({ provider: 'gcp', registry: 'europe-docker.pkg.dev', insecure: true }), a);
    assert.notEqual(await cache.get({ provider: 'gcp', registry: 'gcr.io' }), a);
    assert.equal(cache.size, 3);
  });

  it(`holds at most MAX_CLOUD_PROVIDERS (${MAX_CLOUD_PROVIDERS}), dropping the least recently used`, async () => {
    const cache = new CloudCredentialCache();
    const first = await cache.get({ provider: 'gcp', registry: 'r0.example' });
    const second = await cache.get({ provider: 'gcp', registry: 'r1.example' });
    for (let i = 2; i < MAX_CLOUD_PROVIDERS; i++) await cache.get({ provider: 'gcp', registry: `r${i}.example` });
    assert.equal(cache.size, MAX_CLOUD_PROVIDERS);
    assert.equal(await cache.get({ provider: 'gcp', registry: 'r0.example' }), first, 'used again: now the most recent');
    await cache.get({ provider: 'gcp', registry: 'one-more.example' });
    assert.equal(cache.size, MAX_CLOUD_PROVIDERS);
    assert.equal(await cache.get({ provider: 'gcp', registry: 'r0.example' }), first, 'kept');
    assert.notEqual(await cache.get({ provider: 'gcp', registry: 'r1.example' }), second, 'dropped, then made anew');
  });

  it('a provider that could not be made is not kept: the next call tries again', async () => {
    const cache = new CloudCredentialCache();
    await assert.rejects(cache.get({ provider: 'aws', registry: NOWHERE }), /^OciError: aws credentials for 127\.0\.0\.1:9: the registry name carries no region/);
    assert.equal(cache.size, 0);
    env.set({ AWS_REGION: 'eu-west-1' });
    const p = await cache.get({ provider: 'aws', registry: NOWHERE });
    assert.equal(p.identity, `aws:${NOWHERE}:default-chain`);
  });

  it('a provider the context does not allow: Stalled, reason Forbidden, the hint in the message, nothing asked of the cloud', async () => {
    const reconciler = createReconciler({ certsDirs: [] });
    const asked = metadata.requests.length;
    try {
      const r = await reconciler.reconcile(mirror('gcp'), {
        credentials: fileCredentials([], undefined),
        cloudProviders: ['aws'],
        allowCloudProviderHint: (p) => `start it with --cloud-credentials=${p}`,
      });
      assert.deepEqual([r.outcome, r.reason, r.message], ['stalled', 'Forbidden', 'credentials.provider gcp is not allowed: start it with --cloud-credentials=gcp']);
      assert.equal(r.status.conditions?.find((c) => c.type === 'Stalled')?.status, 'True');
      assert.equal(metadata.requests.length, asked, 'the metadata server was not asked');
    } finally {
      await reconciler.close();
    }
  });

  it('no identity to be had (no region for aws) and a token refused by the metadata server (gcp): Ready=False CredentialsNotFound, retried, one line without the token', async () => {
    const reconciler = createReconciler({ certsDirs: [] });
    try {
      const ctx = { credentials: fileCredentials([], undefined) };
      const aws = await reconciler.reconcile(mirror('aws'), ctx);
      assert.deepEqual([aws.outcome, aws.reason], ['retry', 'CredentialsNotFound']);
      assert.match(aws.message, /^aws credentials for 127\.0\.0\.1:9: the registry name carries no region .* and AWS_REGION is not set$/);

      metadata.refuseTokens = { status: 403, body: 'token ya29.leaked-0123456789 was revoked\nsecond line' };
      const gcp = await reconciler.reconcile(mirror('gcp'), ctx);
      assert.deepEqual([gcp.outcome, gcp.reason], ['retry', 'CredentialsNotFound']);
      assert.match(gcp.message, /^gcp credentials for 127\.0\.0\.1:9: A Forbidden error was returned while attempting to retrieve an access token/);
      assert.ok(!gcp.message.includes('\n') && !gcp.message.includes('ya29.'), gcp.message);
      assert.equal(gcp.status.conditions?.find((c) => c.type === 'Ready')?.reason, 'CredentialsNotFound');
      assert.ok(metadata.requests.some((r) => r.path.startsWith(METADATA_TOKEN_PATH)), 'the token was asked for before any registry request');
    } finally {
      await reconciler.close();
    }
  });
});
