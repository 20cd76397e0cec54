/**
 * ACR credentials from Entra Workload ID, through the real @azure/identity (MSAL) pointed at a
 * loopback Entra over TLS by AZURE_AUTHORITY_HOST, then ACR's `/oauth2/exchange` served by the
 * registry's own (HTTPS) front, which accepts only unexpired refresh tokens it issued, as the
 * password of the all-zero user. How ACR authenticates: Azure/acr docs/AAD-OAuth.md and
 * fluxcd/pkg auth/azure (Resource Manager scope, refresh token as password, expiry from `exp`).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACR_REFRESH_TOKEN_USER, acrScope, jwtExpiry } from '../../src/auth/azure.js';
import { cloudCredentials } from '../../src/auth/index.js';
import { TargetAction } from '../../src/copy/actions.js';
import { OciError } from '../../src/oci/errors.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { ARM_SCOPE, acrExchange, startFakeEntra, type AcrExchange, type FakeEntra } from '../support/cloud/azure.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startCloudFront, type CloudFront } from '../support/cloud/front.js';
import { mirrorThroughFront, skopeoDigest, startMirrorScene, type MirrorScene } from '../support/cloud/mirror.js';
import { makeTestPki, type TestPki } from '../support/cloud/tls.js';
import { TestClock, TokenLedger, fakeJwt } from '../support/cloud/tokens.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '5b8e6f6a-0b1c-4d2e-9f3a-6c7d8e9f0a1b';
const SA_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1jOmNvbnRyb2xsZXIifQ.sa-signature';
const REFRESH_LIFETIME_MS = 3 * 3600_000;

describe('auth: azure (ACR through @azure/identity, a TLS Entra fake and the registry token exchange)', function () {
  this.timeout(30000);
  let scene: MirrorScene;
  let clock: TestClock;
  let ledger: TokenLedger;
  let pki: TestPki;
  let entra: FakeEntra;
  let exchange: AcrExchange;
  let front: CloudFront;
  let env: CloudEnv;
  let onAuthorized: ((n: number) => void) | undefined;

  before(async () => {
    clock = new TestClock();
    ledger = new TokenLedger(clock.now);
    [scene, pki] = await Promise.all([startMirrorScene(), makeTestPki()]);
    entra = await startFakeEntra({ ledger, tls: pki, tenantId: TENANT, clientId: CLIENT, assertion: SA_TOKEN });
    exchange = acrExchange({ ledger, tenantId: TENANT, lifetimeMs: REFRESH_LIFETIME_MS });
    front = await startCloudFront(scene.target, { ledger, username: ACR_REFRESH_TOKEN_USER, kinds: ['acr-refresh'], tls: pki, route: exchange.route, onAuthorized: (e) => onAuthorized?.(e.n) });
  });
  after(async () => {
    await front?.stop();
    await entra?.stop();
    await scene?.stop();
  });

  async function workloadIdentityEnv(token = SA_TOKEN): Promise<void> {
    const file = join(env.dir, `sa-token-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, token);
    env.set({ AZURE_AUTHORITY_HOST: entra.url, AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT, AZURE_FEDERATED_TOKEN_FILE: file });
  }

  beforeEach(() => {
    env = cloudEnv();
    onAuthorized = undefined;
  });
  afterEach(() => env.restore());

  it('asks Entra for the Resource Manager audience of the registry\'s cloud; reads exp from a JWT', () => {
    assert.equal(acrScope('myregistry.azurecr.io'), ARM_SCOPE);
    assert.equal(acrScope('myregistry.azurecr.cn'), 'https://management.chinacloudapi.cn/.default');
    assert.equal(acrScope('myregistry.azurecr.us'), 'https://management.usgovcloudapi.net/.default');
    assert.equal(jwtExpiry(fakeJwt({ exp: 1_900_000_000 })), 1_900_000_000_000);
    assert.equal(jwtExpiry('opaque-refresh-token'), undefined);
    assert.equal(jwtExpiry(fakeJwt({ sub: 'no-exp' })), undefined);
  });

  it('Workload ID: mirrors an image with no Secret (federated token → Entra → /oauth2/exchange), and renews the refresh token that expires mid-copy', async () => {
    await workloadIdentityEnv();
    const provider = await cloudCredentials('azure', front.host, { now: clock.now, ca: pki.ca });
    assert.equal(provider.identity, `azure:${front.host}:${CLIENT}@${TENANT}`);
    const before = ledger.issued('acr-refresh').length;
    onAuthorized = (n) => {
      if (n === 3) clock.advance(REFRESH_LIFETIME_MS + 1000);
    };
    // insecure: the registry client speaks plain HTTP to loopback unless told the host is TLS.
    const result = await mirrorThroughFront(scene, { registry: front.host, credentials: provider, repository: 'aks/app', tag: 'v1', insecure: true, sequential: true });
    assert.equal(result.targets[0]!.action, TargetAction.Copied, result.targets[0]!.message);
    assert.equal(await skopeoDigest(scene.target, 'aks/app:v1'), scene.image.digest);

    const tokens = ledger.issued('acr-refresh').slice(before);
    assert.equal(tokens.length, 2, 'one refresh token, then one renewal after it expired');
    assert.ok(tokens[0]!.uses >= 3 && tokens[1]!.uses >= 1, `uses: ${tokens.map((t) => t.uses).join(', ')}`);
    assert.equal(front.refused.expired, 0);
    assert.equal(front.maxInFlight, 1, 'sequential copy: no request was in flight when the clock moved');

    assert.ok(entra.tokenRequests.length >= 1);
    for (const r of entra.tokenRequests) assert.deepEqual(r, { clientId: CLIENT, scope: ARM_SCOPE, grantType: 'client_credentials', assertionAccepted: true });
    const calls = exchange.calls.slice(-2);
    assert.equal(calls.length, 2);
    for (const c of calls) assert.deepEqual(c, { service: front.host, tenant: TENANT, grantType: 'access_token', accepted: true });
  });

  it('Entra refusing the federated token: a one-line UNAUTHORIZED error naming the registry, without the token', async () => {
    await workloadIdentityEnv('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvdGhlciJ9.not-the-federated-one');
    const provider = await cloudCredentials('azure', front.host, { now: clock.now, ca: pki.ca });
    const e = await provider.get(front.host).then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof OciError, String(e));
    assert.equal(e.code, 'UNAUTHORIZED');
    assert.ok(e.message.startsWith(`azure credentials for ${front.host}: `), e.message);
    assert.match(e.message, /AADSTS700213/);
    assert.ok(!e.message.includes('\n') && !e.message.includes('not-the-federated-one') && !e.message.includes(SA_TOKEN), e.message);
  });

  it('a refused token exchange that echoes the Entra token: one line with the registry\'s error, the token redacted; the next request recovers', async () => {
    await workloadIdentityEnv();
    const provider = await cloudCredentials('azure', front.host, { now: clock.now, ca: pki.ca });
    exchange.refuseNext = 401;
    const client = new RegistryClient(front.host, { credentials: provider, insecure: true });
    try {
      const e = await client.repository('aks/app').headManifest('v1').then(() => undefined, (err: unknown) => err);
      assert.ok(e instanceof OciError, String(e));
      assert.equal(e.code, 'UNAUTHORIZED');
      assert.equal(e.message, `azure credentials for ${front.host}: token exchange refused (401): UNAUTHORIZED: invalid access token <redacted>`);
      assert.ok(!ledger.issued('entra').some((t) => e.message.includes(t.token)));
      assert.ok((await client.repository('aks/app').headManifest('v1')) !== undefined);
    } finally {
      await client.close();
    }
  });

  it('the identity names the client id and tenant, or the managed identity when there is no client id', async () => {
    env.set({ AZURE_AUTHORITY_HOST: entra.url });
    const p = await cloudCredentials('azure', 'myregistry.azurecr.io', { now: clock.now });
    assert.equal(p.identity, 'azure:myregistry.azurecr.io:managed-identity');
  });
});
