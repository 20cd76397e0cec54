import assert from 'node:assert/strict';
import type { Repository } from '../../src/oci/content.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { MAX_BUNDLE_BYTES, verifyImage, type VerifyMaterial } from '../../src/verify/index.js';
import { blobOf, buildImage, pushImage, type BuiltImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeKey, pushReferrerArtifact, pushSigTag, signatureLayer, simpleSigningPayload } from './cosign.js';
import { startReferrersApiProxy, type ReferrersApiProxy } from './referrers-api-proxy.js';
import { BUNDLE_MEDIA_TYPE, startMockSigstore, type Identity, type MockSigstore } from './sigstore.js';

const CI: Identity = { issuer: 'https://token.example', subject: 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main' };
const CI_PATTERN = '^https://github\\.com/org/app/\\.github/workflows/release\\.yml@refs/heads/main$';
const ROOT_NAME = 'sigstore-root/trusted_root.json';

describe('verifyImage with Sigstore bundles (keyless, offline)', function () {
  let reg: TestRegistry;
  let client: RegistryClient;
  let proxy: ReferrersApiProxy;
  let viaProxy: RegistryClient;
  let sigstore: MockSigstore;
  let otherSigstore: MockSigstore;
  let n = 0;
  const repoName = (): string => `verify/keyless-${++n}`;

  const identity = (o: Partial<{ trustedRoot: string; issuer: string; subjectRegExp: string; name: string }> = {}): VerifyMaterial['keyless'][number] => ({
    name: o.name ?? ROOT_NAME,
    trustedRoot: o.trustedRoot ?? sigstore.trustedRoot,
    issuer: o.issuer ?? CI.issuer,
    subjectRegExp: o.subjectRegExp ?? CI_PATTERN,
  });
  const keyless = (...ids: VerifyMaterial['keyless']): VerifyMaterial => ({ keys: [], keyless: ids });

  before(async () => {
    [reg, sigstore, otherSigstore] = await Promise.all([startRegistry(), startMockSigstore(), startMockSigstore()]);
    client = new RegistryClient(reg.host);
    proxy = await startReferrersApiProxy(reg);
    viaProxy = new RegistryClient(proxy.host);
  });
  after(async () => {
    await client?.close();
    await viaProxy?.close();
    await proxy?.stop();
    await sigstore?.stop();
    await otherSigstore?.stop();
    await reg?.stop();
  });

  /** An image with a bundle attached as a referrer (through the referrers API unless `fallback`). */
  async function signedImage(bundle: (img: BuiltImage) => Promise<Buffer>, o: { fallback?: boolean } = {}): Promise<{ repo: Repository; img: BuiltImage }> {
    const repo = (o.fallback ? client : viaProxy).repository(repoName());
    const img = await pushImage(repo, buildImage({ layers: [64] }), 'v1');
    const layer = blobOf(await bundle(img), BUNDLE_MEDIA_TYPE);
    await pushReferrerArtifact(repo, img.descriptor, BUNDLE_MEDIA_TYPE, [layer], {
      fallbackIndex: o.fallback === true,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
    });
    return { repo, img };
  }

  it('verifies a cosign-style bundle (DSSE statement naming the digest) found through the referrers API, offline', async () => {
    // The deployment that issued the certificate is gone by verification time: only its trusted root is known.
    const ephemeral = await startMockSigstore();
    let root: string;
    let signed: { repo: Repository; img: BuiltImage };
    try {
      root = ephemeral.trustedRoot;
      signed = await signedImage((i) => ephemeral.signStatement(CI, i.digest));
    } finally {
      await ephemeral.stop();
    }
    const before = proxy.referrersCalls;
    assert.deepEqual(await verifyImage(signed.repo, signed.img.digest, keyless(identity({ trustedRoot: root }))), { ok: true, by: `keyless ${CI.subject} (${CI.issuer})` });
    assert.ok(proxy.referrersCalls > before, 'found through the referrers API');
  });

  it('verifies a message-signature bundle over the manifest, found through the fallback tag', async () => {
    const { repo, img } = await signedImage((i) => sigstore.signMessage(CI, i.bytes), { fallback: true });
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity())), { ok: true, by: `keyless ${CI.subject} (${CI.issuer})` });
  });

  it('fails another subject, naming the identity and what was wanted', async () => {
    const other: Identity = { ...CI, subject: 'https://github.com/org/app/.github/workflows/pr.yml@refs/pull/7/merge' };
    const { repo, img } = await signedImage((i) => sigstore.signStatement(other, i.digest));
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity())), {
      ok: false,
      reason: `identity ${other.subject} issued by ${CI.issuer} does not match issuer ${CI.issuer}, subject ${CI_PATTERN}`,
    });
  });

  it('fails another issuer with the same subject', async () => {
    const other: Identity = { ...CI, issuer: 'https://token.attacker.example' };
    const { repo, img } = await signedImage((i) => sigstore.signStatement(other, i.digest));
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity())), {
      ok: false,
      reason: `identity ${CI.subject} issued by ${other.issuer} does not match issuer ${CI.issuer}, subject ${CI_PATTERN}`,
    });
  });

  it('matches subjectRegExp as RE2, unanchored', async () => {
    const { repo, img } = await signedImage((i) => sigstore.signStatement(CI, i.digest));
    assert.equal((await verifyImage(repo, img.digest, keyless(identity({ subjectRegExp: 'workflows/release\\.yml@' })))).ok, true);
    // RE2 has no lookahead: a pattern only JavaScript accepts is a problem named in the reason.
    const bad = await verifyImage(repo, img.digest, keyless(identity({ subjectRegExp: '^(?=https).*$' })));
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.reason : '', /^keyless sigstore-root\/trusted_root\.json: subjectRegExp is not a valid RE2 regular expression: .+; no usable keyless identity$/);
  });

  it('fails with another trusted root', async () => {
    const { repo, img } = await signedImage((i) => sigstore.signStatement(CI, i.digest));
    const out = await verifyImage(repo, img.digest, keyless(identity({ trustedRoot: otherSigstore.trustedRoot, name: 'ops/other-root' })));
    assert.deepEqual(out, { ok: false, reason: 'bundle not verified with trusted root ops/other-root: Failed to verify certificate chain' });
    // Either identity verifying is enough.
    assert.equal((await verifyImage(repo, img.digest, keyless(identity({ trustedRoot: otherSigstore.trustedRoot, name: 'ops/other-root' }), identity()))).ok, true);
  });

  it('requires an SCT when the trusted root names a CT log', async () => {
    const { repo, img } = await signedImage((i) => sigstore.signStatement(CI, i.digest));
    const root = JSON.parse(sigstore.trustedRoot) as { tlogs: Array<Record<string, unknown>>; ctlogs: unknown[] };
    root.ctlogs = [{ ...root.tlogs[0], baseUrl: 'https://ctfe.example' }];
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity({ trustedRoot: JSON.stringify(root) }))), {
      ok: false,
      reason: `bundle not verified with trusted root ${ROOT_NAME}: expected 1 SCTs, got 0`,
    });
  });

  it('fails a bundle that signed another image', async () => {
    const elsewhere = `sha256:${'ab'.repeat(32)}`;
    const { repo, img } = await signedImage(() => sigstore.signStatement(CI, elsewhere));
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity())), { ok: false, reason: `bundle names ${elsewhere} not ${img.digest}` });
  });

  it('fails a message-signature bundle over other bytes', async () => {
    const { repo, img } = await signedImage(async (i) => sigstore.signMessage(CI, Buffer.concat([i.bytes, Buffer.from('\n')])));
    const out = await verifyImage(repo, img.digest, keyless(identity()));
    assert.deepEqual(out, { ok: false, reason: `bundle not verified with trusted root ${ROOT_NAME}: signature verification failed` });
  });

  it('says when the trusted root is not one', async () => {
    const { repo, img } = await signedImage((i) => sigstore.signStatement(CI, i.digest));
    const out = await verifyImage(repo, img.digest, keyless(identity({ trustedRoot: '{"tlogs": 3' })));
    assert.equal(out.ok, false);
    assert.match(!out.ok ? out.reason : '', /^trusted root sigstore-root\/trusted_root\.json is not a Sigstore trusted root: .+; no usable keyless identity$/);
  });

  it('a bundle needs keyless identities, a key signature needs keys; either verifying is enough', async () => {
    const { repo, img } = await signedImage((i) => sigstore.signStatement(CI, i.digest));
    const key = makeKey('ecdsa-p256');
    assert.deepEqual(await verifyImage(repo, img.digest, { keys: [{ name: 'k/cosign.pub', pem: key.pem }], keyless: [] }), {
      ok: false,
      reason: 'Sigstore bundle, and no keyless identities to check it with',
    });
    await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest), makeKey('ecdsa-p256'))]);
    assert.deepEqual(await verifyImage(repo, img.digest, { keys: [{ name: 'k/cosign.pub', pem: key.pem }], keyless: [identity()] }), {
      ok: true,
      by: `keyless ${CI.subject} (${CI.issuer})`,
    });
  });

  it('says a key signature needs keys, and that keyless .sig signatures without a bundle are not verified', async () => {
    const repo = client.repository(repoName());
    const img = await pushImage(repo, buildImage({ layers: [64] }), 'v1');
    const key = makeKey('ecdsa-p256');
    const plain = signatureLayer(simpleSigningPayload(img.digest), key);
    const old = signatureLayer(simpleSigningPayload(img.digest, 'registry.example/other'), key);
    old.blob.descriptor.annotations = { ...old.blob.descriptor.annotations, 'dev.sigstore.cosign/certificate': '-----BEGIN CERTIFICATE-----\n…' };
    await pushSigTag(repo, img.digest, [plain, old]);
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity())), {
      ok: false,
      reason: 'cosign signature, and no keys to check it with; keyless cosign signature without a Sigstore bundle (only bundles are verified keyless)',
    });
  });

  it(`does not read a bundle larger than ${MAX_BUNDLE_BYTES} bytes`, async () => {
    const { repo, img } = await signedImage(async () => Buffer.alloc(MAX_BUNDLE_BYTES + 1, 0x20));
    assert.deepEqual(await verifyImage(repo, img.digest, keyless(identity())), {
      ok: false,
      reason: `bundle is ${MAX_BUNDLE_BYTES + 1} bytes, more than the ${MAX_BUNDLE_BYTES} allowed`,
    });
  });
});
