/**
 * `credentials: {provider: aws|gcp|azure}` end to end, through the real reconciler: an ImageMirror
 * whose target names a cloud provider (no Secret anywhere) is mirrored into a docker-registry
 * behind a cloud front that accepts only unexpired tokens the fake cloud issued. The token expires
 * in the middle of the copy and again between two reconciles; every request must carry a valid one
 * (the front refuses none), and the reconciler must keep the same registry client across the
 * renewals: a new client would open new connections to the front and start with an
 * unauthenticated request (a 401 the front counts as `missing`).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACR_REFRESH_TOKEN_USER } from '../../src/auth/azure.js';
import { ECR_TOKEN_LIFETIME_MS } from '../../src/auth/aws.js';
import { GCP_USERNAME } from '../../src/auth/gcp.js';
import { createReconciler, type ReconcilerOptions } from '../../src/mirror/reconcile.js';
import type { ReconcileResult } from '../../src/mirror/reconciler.js';
import { API_VERSION, KIND, type CloudProvider, type ImageMirror } from '../../src/mirror/types.js';
import { fileCredentials } from '../../src/standalone/file-credentials.js';
import { startFakeAws, type FakeAws } from '../support/cloud/aws.js';
import { ARM_SCOPE, acrExchange, startFakeEntra, type FakeEntra } from '../support/cloud/azure.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startCloudFront, type CloudFront } from '../support/cloud/front.js';
import { startFakeMetadata, type FakeMetadata } from '../support/cloud/gcp.js';
import { skopeoDigest, startMirrorScene, type MirrorScene } from '../support/cloud/mirror.js';
import { makeTestPki, type TestPki } from '../support/cloud/tls.js';
import { TestClock, TokenLedger, fakeJwt } from '../support/cloud/tokens.js';

const GCP_LIFETIME_S = 3599;
const ACR_REFRESH_LIFETIME_MS = 3 * 3600_000;
const ROLE = 'arn:aws:iam::123456789012:role/image-mirror';
const SA_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1jOmNvbnRyb2xsZXIifQ.c2ln';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '5b8e6f6a-0b1c-4d2e-9f3a-6c7d8e9f0a1b';

function mirrorOf(name: string, source: string, target: string, provider: CloudProvider): ImageMirror {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: 'team-a', generation: 1 },
    spec: { source: { repository: source, tags: ['v1'] }, targets: [{ repository: target, credentials: { provider } }], referrers: false },
  };
}

interface Case {
  provider: CloudProvider;
  kind: string;
  lifetimeMs: number;
  front: CloudFront;
  options: ReconcilerOptions;
}

describe('credentials.provider through the reconciler: a cloud-fronted registry, tokens renewed mid-copy and between reconciles, one registry client', function () {
  this.timeout(60_000);
  let scene: MirrorScene;
  let clock: TestClock;
  let ledger: TokenLedger;
  let pki: TestPki;
  let env: CloudEnv;
  let metadata: FakeMetadata;
  let aws: FakeAws;
  let entra: FakeEntra;
  let dir: string;
  const fronts: CloudFront[] = [];
  let onAuthorized: ((n: number) => void) | undefined;
  const hook = (e: { n: number }): void => onAuthorized?.(e.n);

  before(async () => {
    clock = new TestClock();
    ledger = new TokenLedger(clock.now);
    [scene, pki] = await Promise.all([startMirrorScene(), makeTestPki()]);
    dir = await mkdtemp(join(tmpdir(), 'imc-reconcile-cloud-'));
    [metadata, aws, entra] = await Promise.all([
      startFakeMetadata({ ledger, lifetimeS: GCP_LIFETIME_S }),
      startFakeAws({ ledger, webIdentity: { token: SA_TOKEN, roleArn: ROLE } }),
      startFakeEntra({ ledger, tls: pki, tenantId: TENANT, clientId: CLIENT, assertion: SA_TOKEN }),
    ]);
  });
  after(async () => {
    await Promise.all(fronts.map((f) => f.stop()));
    await Promise.all([metadata?.stop(), aws?.stop(), entra?.stop()]);
    await scene?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    env = cloudEnv();
    onAuthorized = undefined;
  });
  afterEach(() => env.restore());

  async function gcpCase(): Promise<Case> {
    env.set({ GCE_METADATA_HOST: metadata.host, GOOGLE_CLOUD_PROJECT: 'imc-test-project' });
    const front = await startCloudFront(scene.target, { ledger, username: GCP_USERNAME, kinds: ['gcp'], onAuthorized: hook });
    fronts.push(front);
    return { provider: 'gcp', kind: 'gcp', lifetimeMs: GCP_LIFETIME_S * 1000, front, options: { certsDirs: [] } };
  }

  async function awsCase(): Promise<Case> {
    const file = join(env.dir, 'token');
    await writeFile(file, SA_TOKEN);
    // IRSA, as EKS injects it; the registry name is the front's, so the region comes from AWS_REGION.
    env.set({ AWS_ENDPOINT_URL_STS: aws.url, AWS_ENDPOINT_URL_ECR: aws.url, AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: file, AWS_REGION: 'eu-west-1' });
    const front = await startCloudFront(scene.target, { ledger, username: 'AWS', kinds: ['ecr'], onAuthorized: hook });
    fronts.push(front);
    return { provider: 'aws', kind: 'ecr', lifetimeMs: ECR_TOKEN_LIFETIME_MS, front, options: { certsDirs: [] } };
  }

  async function azureCase(): Promise<Case> {
    const file = join(env.dir, 'sa-token');
    await writeFile(file, SA_TOKEN);
    env.set({ AZURE_AUTHORITY_HOST: entra.url, AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT, AZURE_FEDERATED_TOKEN_FILE: file });
    const exchange = acrExchange({ ledger, tenantId: TENANT, lifetimeMs: ACR_REFRESH_LIFETIME_MS });
    const front = await startCloudFront(scene.target, { ledger, username: ACR_REFRESH_TOKEN_USER, kinds: ['acr-refresh'], tls: pki, route: exchange.route, onAuthorized: hook });
    fronts.push(front);
    // The registry's CA in a certs.d directory, as a pod mounts it: the registry client and the
    // token exchange on the same host both verify with it. `ca` is for the Entra authority.
    const certs = join(dir, 'certs.d');
    await mkdir(join(certs, front.host), { recursive: true });
    await writeFile(join(certs, front.host, 'ca.crt'), pki.ca);
    return { provider: 'azure', kind: 'acr-refresh', lifetimeMs: ACR_REFRESH_LIFETIME_MS, front, options: { certsDirs: [certs], cloud: { ca: pki.ca } } };
  }

  it('azure on an operator\'s host or CI runner (hostTools, as sync and run): the Azure CLI\'s login, which the controller never runs', async () => {
    const c = await azureCase();
    const bin = join(dir, 'az-bin');
    const calls = join(dir, 'az-calls');
    await mkdir(bin, { recursive: true });
    // What `az login` (or GitHub's azure/login with OIDC) leaves behind: an az that hands out an
    // Entra token for Resource Manager. This one records how it was asked.
    const entraToken = ledger.issue('entra', 24 * 3600_000, fakeJwt({ aud: ARM_SCOPE.replace(/\/\.default$/, ''), tid: TENANT, exp: Math.floor(Date.now() / 1000) + 86400 })).token;
    const expiresOn = Math.floor(Date.now() / 1000) + 3600;
    await writeFile(join(bin, 'az'), `#!/bin/sh\necho "$@" >> '${calls}'\necho '{"accessToken":"${entraToken}","expires_on":${expiresOn},"expiresOn":"2099-01-01 00:00:00.000000","tokenType":"Bearer","tenant":"${TENANT}"}'\n`);
    await chmod(join(bin, 'az'), 0o755);
    env.set({
      AZURE_FEDERATED_TOKEN_FILE: undefined,
      AZURE_CLIENT_ID: undefined,
      AZURE_AUTHORITY_HOST: undefined,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      // No managed identity here: its endpoint refuses at once.
      IDENTITY_ENDPOINT: 'http://127.0.0.1:9/msi/token',
      IDENTITY_HEADER: 'x',
    });
    const ctx = { credentials: fileCredentials([], undefined) };
    const mirror = mirrorOf('azure-cli', `${scene.source.host}/app`, `${c.front.host}/cli/app`, 'azure');

    // The managed identity retries a refused endpoint; the renewal deadline ends that sooner.
    const pod = createReconciler({ ...c.options, cloud: { now: clock.now, timeoutMs: 500 } });
    try {
      const r = await pod.reconcile(mirror, ctx);
      assert.deepEqual([r.outcome, r.reason], ['retry', 'CredentialsNotFound'], r.message);
      assert.match(r.message, /^azure credentials for 127\.0\.0\.1:\d+: /);
      await assert.rejects(readFile(calls, 'utf8'), { code: 'ENOENT' }, 'the controller ran az');
    } finally {
      await pod.close();
    }

    const host = createReconciler({ ...c.options, cloud: { now: clock.now, hostTools: true } });
    try {
      const r = await host.reconcile(mirror, ctx);
      assert.equal(r.outcome, 'synced', r.message);
      assert.equal(await skopeoDigest(scene.target, 'cli/app:v1'), scene.image.digest);
      assert.match(await readFile(calls, 'utf8'), /^account get-access-token .*--resource https:\/\/management\.azure\.com/);
    } finally {
      await host.close();
    }
  });

  for (const [name, make] of [['gcp', gcpCase], ['aws', awsCase], ['azure', azureCase]] as const) {
    it(`${name}: an ImageMirror with credentials.provider on its target, no Secret`, async () => {
      const c = await make();
      const { front } = c;
      // One request at a time, so no request holds an old token while the clock moves.
      const reconciler = createReconciler({ ...c.options, cloud: { ...c.options.cloud, now: clock.now }, blobConcurrency: 1 });
      const ctx = { credentials: fileCredentials([], undefined) };
      const mirror = mirrorOf(name, `${scene.source.host}/app`, `${front.host}/${name}/app`, c.provider);
      const issuedBefore = ledger.issued(c.kind).length;
      try {
        // After the third request the front let through, the token's lifetime passes.
        onAuthorized = (n) => {
          if (n === 3) clock.advance(c.lifetimeMs + 1000);
        };
        const first: ReconcileResult = await reconciler.reconcile(mirror, ctx);
        assert.equal(first.outcome, 'synced', first.message);
        assert.equal(first.targets[0]!.action, 'Copied');
        assert.equal(await skopeoDigest(scene.target, `${name}/app:v1`), scene.image.digest);
        const afterFirst = ledger.issued(c.kind).slice(issuedBefore);
        assert.equal(afterFirst.length, 2, 'one token, then one renewal after it expired mid-copy');
        assert.ok(afterFirst.every((t) => t.uses >= 1), `uses: ${afterFirst.map((t) => t.uses).join(', ')}`);
        assert.equal(front.maxInFlight, 1, 'one request at a time: none was in flight when the clock moved');
        const missing = front.refused.missing;
        const connections = front.connections;
        assert.ok(missing >= 1 && connections >= 1, 'the client learned the challenge with one unauthenticated request');

        // Expired again before the next reconcile: renewed again, by the same client.
        onAuthorized = undefined;
        clock.advance(c.lifetimeMs + 1000);
        const second = await reconciler.reconcile(mirror, ctx);
        assert.equal(second.outcome, 'synced', second.message);
        assert.equal(second.targets[0]!.action, 'UpToDate');
        const tokens = ledger.issued(c.kind).slice(issuedBefore);
        assert.equal(tokens.length, 3);
        assert.ok(tokens[2]!.uses >= 1, 'the second reconcile used the renewed token');
        assert.equal(new Set(front.log.filter((e) => e.token).map((e) => e.token)).size, 3, 'three distinct tokens went to the registry');
        assert.deepEqual(front.refused, { missing, wrongUser: 0, unknown: 0, expired: 0 }, 'no token refused, and no new client starting unauthenticated');
        assert.equal(front.connections, connections, 'the kept client reused its connection: no new client');
      } finally {
        await reconciler.close();
      }
    });
  }
});
