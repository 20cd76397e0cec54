import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiSecretValue } from '../../src/controller/secrets.js';
import { CredentialsNotFoundError } from '../../src/oci/credentials.js';
import { fileSecretValue } from '../../src/standalone/file-credentials.js';
import { loadSpecFiles } from '../../src/standalone/spec-files.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { makeKey } from './cosign.js';

const PEM = makeKey('ecdsa-p256').pem;
const ROOT = '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The error is a CredentialsNotFoundError with exactly this message (so no value can be in it). */
function notFound(message: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof CredentialsNotFoundError, String(e));
    assert.equal(e.message, message);
    return true;
  };
}

describe('secret values for spec.verify', function () {
  describe('file modes: a Secret document in the spec files', () => {
    let dir: string;
    let f: string;
    let value: ReturnType<typeof fileSecretValue>;
    let brokenLine: number;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'imc-secret-values-'));
      f = join(dir, 'secrets.yaml');
      const text = [
        `apiVersion: v1\nkind: Secret\nmetadata: {name: cosign-keys, namespace: team-a}\ndata:\n  cosign.pub: ${b64(PEM)}\n  other.pub: ${b64('other')}\nstringData:\n  other.pub: 'from stringData'\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: sigstore-root, namespace: team-a}\nstringData:\n  trusted_root.json: '${ROOT}'\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: broken, namespace: team-a}\ndata:\n  cosign.pub: 'not base64!'\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: cosign-keys}\ndata:\n  cosign.pub: ${b64('the default namespace one')}\n`,
      ].join('---\n');
      await writeFile(f, text);
      brokenLine = text.slice(0, text.indexOf('apiVersion: v1\nkind: Secret\nmetadata: {name: broken')).split('\n').length;
      const r = await loadSpecFiles([f]);
      assert.deepEqual(r.errors, []);
      value = fileSecretValue(r.secrets);
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads data (base64) and stringData keys of Opaque Secrets, stringData winning', async () => {
      assert.equal(await value('team-a', 'cosign-keys', 'cosign.pub'), PEM);
      assert.equal(await value('team-a', 'cosign-keys', 'other.pub'), 'from stringData');
      assert.equal(await value('team-a', 'sigstore-root', 'trusted_root.json'), ROOT);
      assert.equal(await value('default', 'cosign-keys', 'cosign.pub'), 'the default namespace one');
    });

    it('names the secret and key when absent, never a value', async () => {
      await assert.rejects(value('team-a', 'missing', 'cosign.pub'), notFound('secret team-a/missing not found in the spec files'));
      await assert.rejects(value('team-b', 'cosign-keys', 'cosign.pub'), notFound('secret team-b/cosign-keys not found in the spec files'));
      await assert.rejects(value('team-a', 'cosign-keys', 'absent.pub'), notFound(`secret team-a/cosign-keys has no key absent.pub in data or stringData (${f}:1)`));
      await assert.rejects(value('team-a', 'broken', 'cosign.pub'), notFound(`secret team-a/broken: data.cosign.pub is not valid base64 (use stringData for plain text) (${f}:${brokenLine})`));
    });
  });

  describe('controller: a Secret of any type read from the API server', () => {
    let fake: FakeApiServer;

    before(async () => {
      fake = await startFakeApiServer({ namespaces: ['team-a'] });
      await fake.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cosign-keys', namespace: 'team-a' }, type: 'Opaque', data: { 'cosign.pub': b64(PEM) } });
      await fake.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sigstore-root', namespace: 'team-a' }, stringData: { 'trusted_root.json': ROOT } });
    });
    after(async () => {
      await fake?.stop();
    });

    it('reads one data key, decoded', async () => {
      const value = apiSecretValue(fake.kubeconfig());
      assert.equal(await value('team-a', 'cosign-keys', 'cosign.pub'), PEM);
    });

    it('names the secret and key when absent, never a value', async () => {
      const value = apiSecretValue(fake.kubeconfig());
      await assert.rejects(value('team-a', 'missing', 'cosign.pub'), notFound('secret team-a/missing not found'));
      await assert.rejects(value('team-a', 'cosign-keys', 'absent.pub'), notFound('secret team-a/cosign-keys has no key absent.pub'));
    });

    it('says a Secret it may not read is forbidden', async () => {
      fake.failNext({ verb: 'get', resource: 'secrets' }, 403);
      await assert.rejects(apiSecretValue(fake.kubeconfig())('team-a', 'cosign-keys', 'cosign.pub'), notFound('secret team-a/cosign-keys cannot be read: forbidden'));
    });
  });
});
