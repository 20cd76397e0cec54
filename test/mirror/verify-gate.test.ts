/**
 * The verification gate in the reconcile, against the real docker-registry: a signed image is
 * promoted; unsigned, signed by another key, or signed with a payload naming another digest means
 * nothing is written for the mirror (Ready=False VerificationFailed, retried), counted in
 * imagemirror_verifications_total. Keys come through ctx.secretValue, as the front ends give them.
 */
import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import { CredentialsNotFoundError, type ReconcileContext } from '../../src/mirror/reconciler.js';
import type { ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import { Metrics } from '../../src/metrics.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';
import { makeKey, pushSigTag, signatureLayer, simpleSigningPayload } from '../verify/cosign.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runSync } from '../../src/standalone/sync.js';

const trusted = makeKey('ecdsa-p256');
const stranger = makeKey('ecdsa-p256');

const ctx: ReconcileContext = {
  credentials: async () => ({ get: async () => undefined }),
  fresh: true,
  secretValue: async (namespace, secretName, key) => {
    if (namespace === 'team-a' && secretName === 'cosign-keys' && key === 'cosign.pub') return trusted.pem;
    throw new CredentialsNotFoundError(`secret ${namespace}/${secretName} has no key ${key}`);
  },
};

function mirror(spec: ImageMirrorSpec): ImageMirror {
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'gate', namespace: 'team-a', generation: 1 }, spec };
}

describe('verification gate (reconcile, real registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let reconciler: MirrorReconciler;
  let metrics: Metrics;
  const digests: Record<string, string> = {};

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    const src = client.repository('gate/src');
    for (const tag of ['signed', 'unsigned', 'stranger', 'wrong-digest']) digests[tag] = (await pushImage(src, buildImage({ layers: [96] }), tag)).digest;
    await pushSigTag(src, digests.signed!, [signatureLayer(simpleSigningPayload(digests.signed!), trusted)]);
    await pushSigTag(src, digests.stranger!, [signatureLayer(simpleSigningPayload(digests.stranger!), stranger)]);
    // A valid signature by the trusted key, but of another image, stored as this one's.
    await pushSigTag(src, digests['wrong-digest']!, [signatureLayer(simpleSigningPayload(digests.signed!), trusted)]);
  });
  beforeEach(() => {
    metrics = new Metrics();
    reconciler = createReconciler({ metrics });
  });
  afterEach(async () => reconciler.close());
  after(async () => {
    await client.close();
    await reg.stop();
  });

  const spec = (tags: string[], target: string): ImageMirrorSpec => ({
    source: { repository: `${reg.host}/gate/src`, tags },
    targets: [{ repository: `${reg.host}/gate/${target}` }],
    verify: { keys: [{ secretName: 'cosign-keys', key: 'cosign.pub' }] },
  });
  const count = async (result: string): Promise<number> => Number(new RegExp(`imagemirror_verifications_total\\{result="${result}"\\} (\\d+)`).exec(await metrics.exposition())?.[1]);

  it('a signed image is promoted, and verified once: the re-sync fetches no signature', async () => {
    const r = await reconciler.reconcile(mirror(spec(['signed'], 'ok')), ctx);
    assert.equal(r.outcome, 'synced', r.message);
    assert.equal((await client.repository('gate/ok').headManifest('signed'))?.digest, digests.signed);
    assert.equal(await count('verified'), 1);
    await reg.resetLog();
    const again = await reconciler.reconcile(mirror(spec(['signed'], 'ok')), ctx);
    assert.equal(again.outcome, 'synced', again.message);
    assert.equal(await count('verified'), 1);
    // Signatures travel with the image (HEADs of its .sig tag), but none is fetched to be checked.
    const fetched = (await reg.accessLog()).filter((e) => e.method === 'GET' && !e.path.includes('/tags/list'));
    assert.deepEqual(fetched, []);
  });

  for (const [tag, why] of [
    ['unsigned', /no signature/i],
    ['stranger', /cosign-keys\/cosign\.pub/],
    ['wrong-digest', /sha256:/],
  ] as const) {
    it(`${tag}: nothing written, Ready=False VerificationFailed naming the tag and why, retried`, async () => {
      await reg.resetLog();
      const r = await reconciler.reconcile(mirror(spec([tag], `no-${tag}`)), ctx);
      assert.equal(r.outcome, 'retry');
      assert.equal(r.reason, 'VerificationFailed');
      assert.match(r.message, new RegExp(`^${reg.host}/gate/src:${tag} \\(${digests[tag]}\\) did not verify, nothing was written: `));
      assert.match(r.message, why);
      assert.doesNotMatch(r.message, /\n/);
      const ready = r.status.conditions?.find((c) => c.type === 'Ready');
      assert.deepEqual([ready?.status, ready?.reason], ['False', 'VerificationFailed']);
      assert.equal(r.status.conditions?.some((c) => c.type === 'Stalled'), false);
      const writes = (await reg.accessLog()).filter((e) => !['GET', 'HEAD'].includes(e.method));
      assert.deepEqual(writes, []);
      assert.equal(await count('failed'), 1);
    });
  }

  it('one image of several failing means none is written, the signed ones neither', async () => {
    await reg.resetLog();
    const r = await reconciler.reconcile(mirror(spec(['signed', 'unsigned'], 'mixed')), ctx);
    assert.equal(r.reason, 'VerificationFailed');
    assert.match(r.message, /gate\/src:unsigned/);
    assert.deepEqual(await client.repository('gate/mixed').listTags(), []);
    assert.deepEqual((await reg.accessLog()).filter((e) => !['GET', 'HEAD'].includes(e.method)), []);
  });

  it('a dry run reports VerificationFailed too', async () => {
    const r = await reconciler.reconcile(mirror(spec(['unsigned'], 'dry')), { ...ctx, dryRun: true });
    assert.equal(r.reason, 'VerificationFailed');
  });

  it('sync reads the key from a Secret document in the spec files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verify-sync-'));
    try {
      const file = join(dir, 'm.yaml');
      const pem = trusted.pem.replace(/\n/g, '\n      ');
      const mirrorDoc = (name: string, tag: string) =>
        `---\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}, namespace: team-a}\nspec:\n  source: {repository: ${reg.host}/gate/src, tags: [${tag}]}\n  targets: [{repository: ${reg.host}/gate/sync-${tag}}]\n  verify: {keys: [{secretName: cosign-keys, key: cosign.pub}]}\n`;
      await writeFile(file, `apiVersion: v1\nkind: Secret\nmetadata: {name: cosign-keys, namespace: team-a}\nstringData:\n  cosign.pub: |\n      ${pem}\n` + mirrorDoc('good', 'signed') + mirrorDoc('bad', 'unsigned'));
      const r = await runSync({ files: [file], stdout: new PassThrough(), stderr: new PassThrough() });
      const by = Object.fromEntries(r.mirrors.map((m) => [m.name, m]));
      assert.equal(by.good?.ready, true, by.good?.message);
      assert.equal(by.bad?.reason, 'VerificationFailed');
      assert.equal((await client.repository('gate/sync-signed').headManifest('signed'))?.digest, digests.signed);
      assert.deepEqual(await client.repository('gate/sync-unsigned').listTags(), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a key Secret that is missing: CredentialsNotFound naming it, nothing written', async () => {
    const s = spec(['signed'], 'nokey');
    s.verify = { keys: [{ secretName: 'absent', key: 'cosign.pub' }] };
    const r = await reconciler.reconcile(mirror(s), ctx);
    assert.equal(r.reason, 'CredentialsNotFound');
    assert.match(r.message, /^spec\.verify: secret team-a\/absent has no key cosign\.pub$/);
    assert.deepEqual(await client.repository('gate/nokey').listTags(), []);
  });
});
