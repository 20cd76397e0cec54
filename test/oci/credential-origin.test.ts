import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/oci/registry.js';
import { sameOrigin } from '../../src/oci/session.js';
import { sha256Digest } from '../../src/oci/digest.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { startOriginServer, type OriginServer } from '../support/origin-server.js';

const creds: CredentialProvider = { get: async () => ({ kind: 'basic', username: 'alice', password: 'origin-password' }) };

describe('credentials go only to the API origin (scheme, host and port)', function () {
  this.timeout(30_000);
  let api: OriginServer;
  let other: OriginServer;
  before(async () => {
    [api, other] = await Promise.all([startOriginServer(), startOriginServer()]);
  });
  beforeEach(() => {
    api.requests.length = 0;
    other.requests.length = 0;
  });
  after(async () => {
    await api?.stop();
    await other?.stop();
  });

  // insecure on loopback: HTTPS without verification (the server speaks TLS), so the API is https.
  const client = (): RegistryClient => new RegistryClient(api.host, { credentials: creds, insecure: true, retry: { attempts: 1 } });
  const blob = Buffer.from('payload');
  const upload = (c: RegistryClient): Promise<unknown> =>
    c.repository('a').putBlob({ mediaType: 'x', digest: sha256Digest(blob), size: blob.length }, async () => ({ stream: Readable.from([blob]), size: blob.length }));
  const puts = (s: OriginServer) => s.requests.filter((r) => r.method === 'PUT');

  it('the API itself is https and gets credentials (control)', async () => {
    api.location = () => `https://${api.host}/upload/1`;
    const c = client();
    try {
      await upload(c);
      const put = puts(api);
      assert.equal(put.length, 1);
      assert.equal(put[0]!.scheme, 'https');
      assert.match(put[0]!.authorization ?? '', /^Basic /, 'same scheme, host and port: credentials sent');
    } finally {
      await c.close();
    }
  });

  it('an upload Location on the same host and port over plain http gets no Authorization', async () => {
    api.location = () => `http://${api.host}/upload/1`;
    const c = client();
    try {
      await upload(c);
      const put = puts(api);
      assert.equal(put.length, 1);
      assert.equal(put[0]!.scheme, 'http');
      assert.equal(put[0]!.authorization, undefined);
      assert.ok(api.requests.some((r) => r.scheme === 'https' && r.authorization), 'credentials were in use on the API');
    } finally {
      await c.close();
    }
  });

  it('an upload Location on another port gets no Authorization', async () => {
    api.location = () => `https://${other.host}/upload/1`;
    const c = client();
    try {
      await upload(c);
      assert.equal(puts(other).length, 1);
      assert.equal(puts(other)[0]!.authorization, undefined);
    } finally {
      await c.close();
    }
  });

  it('sameOrigin compares scheme, host and port, with default ports normalized', () => {
    assert.equal(sameOrigin(new URL('https://r.example/v2/'), new URL('https://r.example:443/x')), true);
    assert.equal(sameOrigin(new URL('http://r.example/v2/'), new URL('https://r.example/v2/')), false);
    assert.equal(sameOrigin(new URL('https://r.example:5000/'), new URL('https://r.example/')), false);
    assert.equal(sameOrigin(new URL('https://R.EXAMPLE/'), new URL('https://r.example/')), true);
    assert.equal(sameOrigin(new URL('https://other.example/'), new URL('https://r.example/')), false);
  });
});
