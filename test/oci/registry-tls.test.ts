import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import { isOciError } from '../../src/oci/errors.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

describe('registry client over HTTPS (insecure: true)', function () {
  this.timeout(30_000);
  let tls: TestRegistry;
  let plain: TestRegistry;

  before(async () => {
    [tls, plain] = await Promise.all([startRegistry({ tls: true }), startRegistry()]);
  });
  after(async () => Promise.all([tls.stop(), plain.stop()]));

  it('speaks HTTPS without verifying a self-signed certificate, and pushes and reads exact bytes', async () => {
    const client = new RegistryClient(tls.host, { insecure: true });
    try {
      const img = await pushImage(client.repository('tls/app'), buildImage(), '1');
      const got = await client.repository('tls/app').getManifest('1');
      assert.equal(got.digest, img.digest);
      assert.deepEqual(Buffer.from(got.bytes), img.bytes);
      // The registry's own access log saw the requests (they reached it over TLS).
      assert.ok((await tls.accessLog()).some((e) => e.method === 'PUT' && e.path.includes('/manifests/1')));
    } finally {
      await client.close();
    }
  });

  it('falls back to plain HTTP when an insecure host speaks no TLS', async () => {
    const client = new RegistryClient(plain.host, { insecure: true });
    try {
      const img = await pushImage(client.repository('plain/app'), buildImage(), '1');
      assert.equal((await client.repository('plain/app').headManifest('1'))?.digest, img.digest);
    } finally {
      await client.close();
    }
  });

  it('without insecure, a loopback host is spoken to in plain HTTP, and a TLS-only one fails with one clear line', async () => {
    const client = new RegistryClient(tls.host, { retry: { attempts: 1 } });
    try {
      await assert.rejects(client.repository('tls/app').headManifest('1'), (e: unknown) => {
        assert.ok(isOciError(e), String(e));
        assert.match(e.message, new RegExp(tls.host.replace(/\./g, '\\.')));
        assert.doesNotMatch(e.message, /\n/);
        assert.match(e.message, /plain HTTP refused: .* set insecure: true/);
        return true;
      });
    } finally {
      await client.close();
    }
  });
});
