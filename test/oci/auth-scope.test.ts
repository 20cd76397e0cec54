import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import { OciError } from '../../src/oci/errors.js';
import { Authenticator, MAX_CHALLENGE_OVERRIDES } from '../../src/oci/auth.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { anonymous } from '../../src/oci/credentials.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startRealmProxy, type RealmProxy } from '../support/realm-proxy.js';
import { buildImage, pushImage } from '../support/images.js';

const mirror: CredentialProvider = { get: async () => ({ kind: 'basic', username: 'mirror', password: 'mirror-password' }) };

describe('auth challenges per repository: a bogus realm on one repository does not break the others', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let proxy: RealmProxy;
  const repos = ['good/app', 'good/two', 'good/three'];
  before(async () => {
    reg = await startRegistry({ auth: 'token', users: { mirror: 'mirror-password' } });
    const direct = new RegistryClient(reg.host, { credentials: mirror });
    try {
      for (const r of repos) await pushImage(direct.repository(r), buildImage(), 'v1');
    } finally {
      await direct.close();
    }
    proxy = await startRealmProxy(reg.host, { bogusPrefixes: ['bogus/'] });
  });
  beforeEach(() => {
    proxy.log.length = 0;
    proxy.bogusTokenRequests = 0;
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  const fresh = (): RegistryClient => new RegistryClient(proxy.host, { credentials: mirror, retry: { attempts: 1 } });
  const challenges = (prefix: string): number => proxy.log.filter((e) => e.status === 401 && e.path.startsWith(`/v2/${prefix}`)).length;

  async function refusedByBogusRealm(p: Promise<unknown>): Promise<void> {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof OciError, String(e));
      assert.equal(e.code, 'PROTOCOL', e.message);
      assert.match(e.message, new RegExp(`token endpoint ${proxy.bogusRealm} for ${proxy.host} not found \\(404\\)`));
      return true;
    });
  }

  it('the common case: one 401 for the whole registry, not one per repository', async () => {
    const c = fresh();
    try {
      for (const r of repos) assert.ok(await c.repository(r).headManifest('v1'), r);
      assert.equal(proxy.log.filter((e) => e.status === 401).length, 1, JSON.stringify(proxy.log));
    } finally {
      await c.close();
    }
  });

  it('good first: the bogus repository fails alone, and the good ones keep working without a new 401', async () => {
    const c = fresh();
    try {
      assert.ok(await c.repository('good/app').headManifest('v1'));
      await refusedByBogusRealm(c.repository('bogus/app').headManifest('v1'));
      assert.equal(proxy.bogusTokenRequests, 1);
      assert.ok(await c.repository('good/app').headManifest('v1'), 'the repository that worked still works');
      assert.ok(await c.repository('good/two').headManifest('v1'), 'a repository not seen before uses the registry default');
      assert.equal(challenges('good/'), 1, 'only the very first request was challenged');
      // The bogus repository keeps its own challenge: its next request goes to its realm at once.
      await refusedByBogusRealm(c.repository('bogus/app').headManifest('v1'));
      assert.equal(challenges('bogus/'), 1, 'challenged once: the second request went straight to its own realm');
      assert.equal(proxy.bogusTokenRequests, 2);
    } finally {
      await c.close();
    }
  });

  it('bogus first: its failed token fetch does not become the registry default', async () => {
    const c = fresh();
    try {
      await refusedByBogusRealm(c.repository('bogus/app').headManifest('v1'));
      assert.ok(await c.repository('good/app').headManifest('v1'));
      assert.ok(await c.repository('good/two').headManifest('v1'));
      assert.ok(await c.repository('good/three').headManifest('v1'));
      assert.equal(challenges('good/'), 1, 'the good realm, learned once, became the default');
      await refusedByBogusRealm(c.repository('bogus/app').headManifest('v1'));
    } finally {
      await c.close();
    }
  });

  it(`remembers at most MAX_CHALLENGE_OVERRIDES (${MAX_CHALLENGE_OVERRIDES}) repositories with a challenge of their own`, async () => {
    const a = new Authenticator({ registry: 'r.example', credentials: anonymous });
    const scope = (i: number): string[] => [`repository:r${i}:pull`];
    for (let i = 0; i < MAX_CHALLENGE_OVERRIDES + 10; i++) {
      assert.equal(await a.onUnauthorized(`Bearer realm="https://127.0.0.1:1/t${i}",service="s"`, scope(i)), true);
    }
    assert.equal(a.overrideCount, MAX_CHALLENGE_OVERRIDES);
    // The oldest was forgotten (it will be challenged again); the newest is kept.
    assert.equal(await a.authorization(scope(0)), undefined);
    const newest = MAX_CHALLENGE_OVERRIDES + 9;
    await assert.rejects(a.authorization(scope(newest)), new RegExp(`token request for r\\.example to https://127\\.0\\.0\\.1:1/t${newest} failed`));
  });
});
