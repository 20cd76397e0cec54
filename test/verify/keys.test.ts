import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import type { Repository } from '../../src/oci/content.js';
import { MAX_PAYLOAD_BYTES, MAX_SIGNATURES_EXAMINED, verifyImage, type VerifyMaterial } from '../../src/verify/index.js';
import { blobOf, buildImage, buildIndex, pushImage, pushIndex, type BuiltManifest } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeKey, pushReferrerArtifact, pushSigTag, SIG_ARTIFACT, signatureLayer, simpleSigningPayload, SIMPLE_SIGNING, type KeyKind, type TestKey } from './cosign.js';
import { startReferrersApiProxy, type ReferrersApiProxy } from './referrers-api-proxy.js';

const KEY_NAME = 'cosign-keys/cosign.pub';

function keys(...ks: Array<[string, TestKey | string]>): VerifyMaterial {
  return { keys: ks.map(([name, k]) => ({ name, pem: typeof k === 'string' ? k : k.pem })), keyless: [] };
}

describe('verifyImage with cosign keys (real registry)', function () {
  let reg: TestRegistry;
  let client: RegistryClient;
  let proxy: ReferrersApiProxy;
  let viaProxy: RegistryClient;
  const ecdsa = makeKey('ecdsa-p256');
  const other = makeKey('ecdsa-p256');
  let n = 0;
  const repoName = (): string => `verify/keys-${++n}`;

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    proxy = await startReferrersApiProxy(reg);
    viaProxy = new RegistryClient(proxy.host);
  });
  after(async () => {
    await client?.close();
    await viaProxy?.close();
    await proxy?.stop();
    await reg?.stop();
  });

  async function image(repo: Repository): Promise<BuiltManifest> {
    return pushImage(repo, buildImage({ layers: [64] }), 'v1');
  }

  it('verifies an image signed with a key through its .sig tag', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest), ecdsa)]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), { ok: true, by: `key ${KEY_NAME}` });
  });

  // Made once: RSA key generation is slow.
  const pairs = new Map<KeyKind, [TestKey, TestKey]>();
  const pairOf = (kind: KeyKind): [TestKey, TestKey] => {
    let p = pairs.get(kind);
    if (!p) pairs.set(kind, (p = [makeKey(kind), makeKey(kind)]));
    return p;
  };

  for (const kind of ['rsa', 'rsa-pss', 'ed25519'] as KeyKind[]) {
    it(`verifies a ${kind} signature, and refuses it for another ${kind} key`, async () => {
      const [key, wrong] = pairOf(kind);
      const repo = client.repository(repoName());
      const img = await image(repo);
      await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest), key)]);
      assert.deepEqual(await verifyImage(repo, img.digest, keys(['k/right', key])), { ok: true, by: 'key k/right' });
      assert.deepEqual(await verifyImage(repo, img.digest, keys(['k/wrong', wrong])), { ok: false, reason: 'signature by none of the keys k/wrong' });
    });
  }

  it('verifies a signature pushed as a referrer, found through the referrers API', async () => {
    const repo = viaProxy.repository(repoName());
    const img = await image(repo);
    await pushReferrerArtifact(repo, img.descriptor, SIG_ARTIFACT, [signatureLayer(simpleSigningPayload(img.digest), ecdsa).blob], { fallbackIndex: false });
    const before = proxy.referrersCalls;
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), { ok: true, by: `key ${KEY_NAME}` });
    assert.ok(proxy.referrersCalls > before, 'the referrers API was asked');
    assert.equal(await repo.headManifest(`${img.digest.replace(':', '-')}.sig`), undefined, 'no .sig tag to find it by');
  });

  it('verifies a signature pushed as a referrer, found through the fallback tag (no referrers API)', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    await pushReferrerArtifact(repo, img.descriptor, SIG_ARTIFACT, [signatureLayer(simpleSigningPayload(img.digest), ecdsa).blob]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), { ok: true, by: `key ${KEY_NAME}` });
  });

  it('verifies a signed multi-platform index by its own digest', async () => {
    const repo = client.repository(repoName());
    const idx = await pushIndex(repo, buildIndex({ layers: [32] }), 'v1');
    await pushSigTag(repo, idx.digest, [signatureLayer(simpleSigningPayload(idx.digest), ecdsa)]);
    assert.deepEqual(await verifyImage(repo, idx.digest, keys([KEY_NAME, ecdsa])), { ok: true, by: `key ${KEY_NAME}` });
    // A child is another image: the index's signature does not sign it.
    assert.deepEqual(await verifyImage(repo, idx.children[0]!.digest, keys([KEY_NAME, ecdsa])), { ok: false, reason: `no signature found for ${idx.children[0]!.digest}` });
  });

  it('fails an unsigned image: no signature found', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), { ok: false, reason: `no signature found for ${img.digest}` });
  });

  it('fails an image signed by another key, naming the keys tried', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest), other)]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa], ['team/backup.pub', makeKey('ed25519')])), {
      ok: false,
      reason: `signature by none of the keys ${KEY_NAME}, team/backup.pub`,
    });
  });

  it('any one key verifying is enough', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest), other), signatureLayer(simpleSigningPayload(img.digest), ecdsa)]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys(['a/unrelated', pairOf('rsa')[0]], [KEY_NAME, ecdsa])), { ok: true, by: `key ${KEY_NAME}` });
  });

  it('fails a valid signature whose payload names another digest (a replayed signature)', async () => {
    const repo = client.repository(repoName());
    const signed = await image(repo);
    const target = await pushImage(repo, buildImage({ layers: [64] }), 'v2');
    // The signature of `signed`, copied under `target`'s .sig tag.
    await pushSigTag(repo, target.digest, [signatureLayer(simpleSigningPayload(signed.digest), ecdsa)]);
    assert.deepEqual(await verifyImage(repo, target.digest, keys([KEY_NAME, ecdsa])), { ok: false, reason: `payload names ${signed.digest} not ${target.digest}` });
  });

  it('fails a signed payload that is not a cosign container image signature', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest, 'r/app', 'atomic container signature'), ecdsa)]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), { ok: false, reason: 'payload is not a cosign container image signature' });
  });

  it('names each distinct problem once, with a count', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    const wrong = signatureLayer(simpleSigningPayload(img.digest), other);
    const wrong2 = signatureLayer(Buffer.concat([simpleSigningPayload(img.digest), Buffer.from(' ')]), other);
    const notBase64 = signatureLayer(simpleSigningPayload(img.digest, 'x/y'), ecdsa, '%%%');
    await pushSigTag(repo, img.digest, [wrong, wrong2, notBase64]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), {
      ok: false,
      reason: `signature by none of the keys ${KEY_NAME} (2 signatures); signature annotation is not base64`,
    });
  });

  it('says when a key is unusable (private key, unsupported curve, not PEM) and still uses the others', async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    await pushSigTag(repo, img.digest, [signatureLayer(simpleSigningPayload(img.digest), ecdsa)]);
    const priv = ecdsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const bad = keys(['s/priv', priv], ['s/p384', makeKey('ecdsa-p384')], ['s/text', 'not a key']);
    const out = await verifyImage(repo, img.digest, bad);
    assert.deepEqual(out, {
      ok: false,
      reason:
        'key s/priv is a private key; give the public key (cosign.pub); key s/p384 is an ECDSA key on secp384r1; ECDSA keys must be P-256; key s/text is not a PEM public key; signature by none of the keys s/priv, s/p384, s/text',
    });
    assert.ok(!out.ok && !out.reason.includes('PRIVATE'), 'no key material in the reason');
    assert.deepEqual(await verifyImage(repo, img.digest, { ...bad, keys: [...bad.keys, { name: KEY_NAME, pem: ecdsa.pem }] }), { ok: true, by: `key ${KEY_NAME}` });
  });

  it(`examines at most ${MAX_SIGNATURES_EXAMINED} signatures and says how many were left`, async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    // One blob, listed again and again: each listing is a signature to examine, one upload in all.
    const junk = Array.from({ length: MAX_SIGNATURES_EXAMINED }, () => signatureLayer(simpleSigningPayload(img.digest), other, 'AAAA'));
    await pushSigTag(repo, img.digest, [...junk, signatureLayer(simpleSigningPayload(img.digest), ecdsa)]);
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), {
      ok: false,
      reason: `signature by none of the keys ${KEY_NAME} (${MAX_SIGNATURES_EXAMINED} signatures); 1 more signatures not examined (at most ${MAX_SIGNATURES_EXAMINED} are)`,
    });
  });

  it(`does not read a payload larger than ${MAX_PAYLOAD_BYTES} bytes`, async () => {
    const repo = client.repository(repoName());
    const img = await image(repo);
    const big = Buffer.concat([simpleSigningPayload(img.digest), Buffer.alloc(MAX_PAYLOAD_BYTES, 0x20)]);
    const layer = { blob: blobOf(big, SIMPLE_SIGNING, { 'dev.cosignproject.cosign/signature': 'AAAA' }), payload: big };
    await pushSigTag(repo, img.digest, [layer]);
    await reg.resetLog();
    assert.deepEqual(await verifyImage(repo, img.digest, keys([KEY_NAME, ecdsa])), {
      ok: false,
      reason: `signature payload is ${big.length} bytes, more than the ${MAX_PAYLOAD_BYTES} allowed`,
    });
    assert.ok(!(await reg.accessLog()).some((e) => e.path.includes(layer.blob.descriptor.digest)), 'the payload blob was never requested');
  });

  it('throws registry failures instead of reporting them as a verdict', async () => {
    const down = new RegistryClient('127.0.0.1:1', { retry: { attempts: 1 } });
    try {
      await assert.rejects(verifyImage(down.repository('x/y'), `sha256:${'a'.repeat(64)}`, keys([KEY_NAME, ecdsa])), (e: Error) => e.name === 'OciError');
    } finally {
      await down.close();
    }
  });
});
