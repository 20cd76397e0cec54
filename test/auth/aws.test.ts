/**
 * ECR credentials from the pod's AWS identity, through the real AWS SDK v3 pointed at loopback
 * fakes by its own endpoint overrides (AWS_ENDPOINT_URL_STS / _ECR / _ECR_PUBLIC,
 * AWS_CONTAINER_CREDENTIALS_FULL_URI). Images are mirrored by the real copy engine into a
 * docker-registry behind a front that accepts only unexpired ECR tokens the fake issued.
 * How ECR authenticates (Basic `AWS:<token>`, 12 h, GetAuthorizationToken in the registry's
 * region; ECR Public from us-east-1): fluxcd/pkg auth/aws/provider.go, akuity/kargo pkg/credentials.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ECR_PUBLIC_REGION, ECR_TOKEN_LIFETIME_MS, decodeAuthorizationToken, parseEcrRegistry } from '../../src/auth/aws.js';
import { cloudCredentials } from '../../src/auth/index.js';
import { TargetAction } from '../../src/copy/actions.js';
import { OciError } from '../../src/oci/errors.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { POD_IDENTITY_PATH, startFakeAws, type FakeAws } from '../support/cloud/aws.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startCloudFront, type CloudFront } from '../support/cloud/front.js';
import { mirrorThroughFront, skopeoDigest, startMirrorScene, type MirrorScene } from '../support/cloud/mirror.js';
import { TestClock, TokenLedger } from '../support/cloud/tokens.js';

const ROLE = 'arn:aws:iam::123456789012:role/image-mirror';
const SA_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1jOmNvbnRyb2xsZXIifQ.c2ln';
const POD_TOKEN = 'pod-identity-agent-token-0123456789';

describe('auth: aws (ECR through the AWS SDK and loopback fakes)', function () {
  this.timeout(30000);
  let scene: MirrorScene;
  let clock: TestClock;
  let ledger: TokenLedger;
  let aws: FakeAws;
  let front: CloudFront;
  let env: CloudEnv;
  let onAuthorized: ((n: number) => void) | undefined;

  before(async () => {
    clock = new TestClock();
    ledger = new TokenLedger(clock.now);
    scene = await startMirrorScene();
    aws = await startFakeAws({ ledger, webIdentity: { token: SA_TOKEN, roleArn: ROLE }, podIdentityToken: POD_TOKEN });
    front = await startCloudFront(scene.target, { ledger, username: 'AWS', kinds: ['ecr'], onAuthorized: (e) => onAuthorized?.(e.n) });
  });
  after(async () => {
    await front?.stop();
    await aws?.stop();
    await scene?.stop();
  });

  /** IRSA: what EKS injects for a service account annotated with a role. */
  async function irsaEnv(extra: Record<string, string | undefined> = {}): Promise<void> {
    const file = join(env.dir, 'token');
    await writeFile(file, SA_TOKEN);
    env.set({
      AWS_ENDPOINT_URL_STS: aws.url,
      AWS_ENDPOINT_URL_ECR: aws.url,
      AWS_ENDPOINT_URL_ECR_PUBLIC: aws.url,
      AWS_ROLE_ARN: ROLE,
      AWS_WEB_IDENTITY_TOKEN_FILE: file,
      AWS_REGION: 'eu-west-1',
      ...extra,
    });
  }

  beforeEach(() => {
    env = cloudEnv();
    onAuthorized = undefined;
    aws.failEcr = undefined;
  });
  afterEach(() => env.restore());

  it('parses ECR host names: account, region, FIPS, China and dual-stack; public.ecr.aws; anything else is not ECR', () => {
    assert.deepEqual(parseEcrRegistry('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), { kind: 'private', account: '123456789012', region: 'eu-west-1', fips: false });
    assert.deepEqual(parseEcrRegistry('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com'), { kind: 'private', account: '123456789012', region: 'us-gov-west-1', fips: true });
    assert.deepEqual(parseEcrRegistry('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'), { kind: 'private', account: '123456789012', region: 'cn-north-1', fips: false });
    assert.deepEqual(parseEcrRegistry('123456789012.dkr-ecr.ap-southeast-2.on.aws'), { kind: 'private', account: '123456789012', region: 'ap-southeast-2', fips: false });
    assert.deepEqual(parseEcrRegistry('Public.ECR.aws'), { kind: 'public' });
    for (const h of ['12345.dkr.ecr.eu-west-1.amazonaws.com', '123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example', 'ghcr.io', '127.0.0.1:5000', '123456789012.dkr.ecr.eu-west-1.amazonaws.com:443']) {
      assert.equal(parseEcrRegistry(h), undefined, h);
    }
    assert.deepEqual(decodeAuthorizationToken(Buffer.from('AWS:pa:ss').toString('base64')), { username: 'AWS', password: 'pa:ss' });
    assert.throws(() => decodeAuthorizationToken(Buffer.from('no-colon').toString('base64')), /not base64 user:password/);
  });

  it('IRSA: mirrors an image with no Secret (STS web identity → signed GetAuthorizationToken), and renews the 12 h token that expires mid-copy', async () => {
    await irsaEnv();
    const provider = await cloudCredentials('aws', front.host, { now: clock.now });
    assert.equal(provider.identity, `aws:${front.host}:${ROLE}`);
    const issuedBefore = ledger.issued('ecr').length;
    const usedBefore = front.log.length;
    // After the third request the front let through, time jumps past the first token's expiry:
    // the next request must carry a new token, or the front refuses it.
    onAuthorized = (n) => {
      if (n === 3) clock.advance(ECR_TOKEN_LIFETIME_MS + 1000);
    };
    const result = await mirrorThroughFront(scene, { registry: front.host, credentials: provider, repository: 'irsa/app', tag: 'v1', sequential: true });
    assert.equal(result.targets[0]!.action, TargetAction.Copied, result.targets[0]!.message);
    assert.equal(await skopeoDigest(scene.target, 'irsa/app:v1'), scene.image.digest);

    const tokens = ledger.issued('ecr').slice(issuedBefore);
    assert.equal(tokens.length, 2, 'one token, then one renewal after it expired');
    assert.ok(tokens[0]!.uses >= 3 && tokens[1]!.uses >= 1, `uses: ${tokens.map((t) => t.uses).join(', ')}`);
    assert.equal(front.refused.expired, 0);
    assert.equal(front.maxInFlight, 1, 'sequential copy: no request was in flight when the clock moved');
    assert.ok(front.log.slice(usedBefore).some((e) => e.method === 'PUT' && /\/manifests\/v1$/.test(e.path) && e.token === tokens[1]!.token), 'the manifest went in with the renewed token');

    assert.equal(aws.stsCalls.length, 1, 'the STS credentials outlive the ECR token and are reused');
    assert.deepEqual(aws.stsCalls[0], { roleArn: ROLE, sessionName: aws.stsCalls[0]!.sessionName, tokenAccepted: true });
    const stsKey = [...aws.issued.entries()].find(([, v]) => v.via === 'sts')![0];
    const calls = aws.ecrCalls.slice(-2);
    for (const c of calls) {
      assert.deepEqual(c, { target: 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken', accessKeyId: stsKey, region: 'eu-west-1', service: 'ecr', signatureValid: true, sessionTokenMatches: true });
    }
  });

  it('asks ECR in the region the registry name carries, not AWS_REGION, and names the account and role as identity', async () => {
    await irsaEnv({ AWS_REGION: 'eu-west-1' });
    const registry = '210987654321.dkr.ecr.ap-southeast-2.amazonaws.com';
    const provider = await cloudCredentials('aws', registry, { now: clock.now });
    const cred = await provider.get(registry);
    assert.equal(cred?.kind, 'basic');
    assert.equal(cred.kind === 'basic' && cred.username, 'AWS');
    assert.equal(aws.ecrCalls.at(-1)!.region, 'ap-southeast-2');
    assert.equal(provider.identity, `aws:${registry}:210987654321/${ROLE}`);
    assert.ok(!provider.identity.includes(SA_TOKEN));
  });

  it('EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI over plain HTTP to loopback): mirrors an image with no Secret', async () => {
    const tokenFile = join(env.dir, 'pod-token');
    await writeFile(tokenFile, POD_TOKEN);
    env.set({
      AWS_ENDPOINT_URL_ECR: aws.url,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${aws.url}${POD_IDENTITY_PATH}`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
      AWS_REGION: 'eu-west-1',
    });
    const provider = await cloudCredentials('aws', front.host, { now: clock.now });
    assert.equal(provider.identity, `aws:${front.host}:pod-identity`);
    const podCalls = aws.podIdentityCalls;
    const result = await mirrorThroughFront(scene, { registry: front.host, credentials: provider, repository: 'pod/app', tag: 'v1' });
    assert.equal(result.targets[0]!.action, TargetAction.Copied, result.targets[0]!.message);
    assert.equal(await skopeoDigest(scene.target, 'pod/app:v1'), scene.image.digest);
    assert.equal(aws.podIdentityCalls, podCalls + 1);
    const key = [...aws.issued.entries()].filter(([, v]) => v.via === 'pod-identity').at(-1)![0];
    assert.equal(aws.ecrCalls.at(-1)!.accessKeyId, key);
    assert.ok(aws.ecrCalls.at(-1)!.signatureValid);
  });

  it('public.ecr.aws: a token from ECR Public in us-east-1, whatever AWS_REGION says', async () => {
    await irsaEnv({ AWS_REGION: 'eu-central-1' });
    const provider = await cloudCredentials('aws', 'public.ecr.aws', { now: clock.now });
    const cred = await provider.get('public.ecr.aws');
    const call = aws.ecrCalls.at(-1)!;
    assert.equal(call.target, 'SpencerFrontendService.GetAuthorizationToken');
    assert.equal(call.region, ECR_PUBLIC_REGION);
    assert.equal(call.service, 'ecr-public');
    assert.ok(call.signatureValid);
    assert.ok(cred?.kind === 'basic' && cred.username === 'AWS' && ledger.find(cred.password)?.kind === 'ecr-public');
  });

  it('errors are one line, typed UNAUTHORIZED, name the registry, and carry no token: STS refusal, a multi-line ECR error, and through the registry client', async () => {
    await irsaEnv({ AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/not-trusted' });
    const refused = await cloudCredentials('aws', front.host, { now: clock.now });
    const e1 = await refused.get(front.host).then(() => undefined, (e: unknown) => e);
    assert.ok(e1 instanceof OciError, String(e1));
    assert.equal(e1.code, 'UNAUTHORIZED');
    assert.match(e1.message, new RegExp(`^aws credentials for ${front.host}: .*Not authorized to perform sts:AssumeRoleWithWebIdentity`));
    assert.ok(!e1.message.includes('\n') && !e1.message.includes(SA_TOKEN));

    env.set({ AWS_ROLE_ARN: ROLE });
    const provider = await cloudCredentials('aws', front.host, { now: clock.now });
    aws.failEcr = { status: 400, type: 'AccessDeniedException', message: `User: ${ROLE} is not authorized to perform: ecr:GetAuthorizationToken\nbecause no identity-based policy allows it` };
    const client = new RegistryClient(front.host, { credentials: provider });
    try {
      const e2 = await client.repository('irsa/app').headManifest('v1').then(() => undefined, (e: unknown) => e);
      assert.ok(e2 instanceof OciError, String(e2));
      assert.equal(e2.code, 'UNAUTHORIZED');
      assert.equal(e2.message, `aws credentials for ${front.host}: User: ${ROLE} is not authorized to perform: ecr:GetAuthorizationToken`);
      // The next request renews and succeeds: a failure is not cached.
      assert.equal((await client.repository('irsa/app').headManifest('v1'))?.digest, scene.image.digest);
    } finally {
      await client.close();
    }
  });

  it('gives up on a GetAuthorizationToken that hangs (timeoutMs), with a one-line error', async () => {
    await irsaEnv();
    let release!: () => void;
    aws.holdEcr = new Promise<void>((r) => (release = r));
    try {
      const provider = await cloudCredentials('aws', front.host, { now: clock.now, timeoutMs: 300 });
      await assert.rejects(provider.get(front.host), (e: unknown) => e instanceof OciError && e.code === 'UNAUTHORIZED' && e.message === `aws credentials for ${front.host}: timed out after 0.3 s`);
    } finally {
      aws.holdEcr = undefined;
      release();
    }
  });

  it('a registry that is not ECR and no AWS_REGION: a one-line error when the provider is made', async () => {
    env.set({ AWS_ENDPOINT_URL_ECR: aws.url });
    await assert.rejects(cloudCredentials('aws', front.host), (e: unknown) => e instanceof OciError && /^aws credentials for 127\.0\.0\.1:\d+: the registry name carries no region .* and AWS_REGION is not set$/.test(e.message));
  });
});
