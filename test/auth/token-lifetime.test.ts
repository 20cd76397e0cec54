/**
 * How long a registry token is reused when the token endpoint leaves `expires_in` out: until the
 * JWT's `exp` when the token is a JWT (Harbor, Quay and distribution's own token servers send
 * one), the 60 s default otherwise. Against the test token server, which signs real RS256 JWTs.
 */
import assert from 'node:assert/strict';
import { Authenticator, DEFAULT_EXPIRES_IN_S, tokenExpiresAt } from '../../src/oci/auth.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { fakeJwt } from '../support/cloud/tokens.js';

const LIFETIME_S = 600;
const basic: CredentialProvider = { get: async () => ({ kind: 'basic', username: 'alice', password: 'alice-pw' }) };

describe('auth: token lifetime without expires_in', function () {
  this.timeout(20000);
  let jwtServer: TokenServer;
  let opaqueServer: TokenServer;
  before(async () => {
    const rules = [{ account: '*', repository: '*', actions: ['*' as const] }];
    [jwtServer, opaqueServer] = await Promise.all([
      startTokenServer({ users: { alice: 'alice-pw' }, rules, omitExpiresIn: true, tokenFormat: 'jwt', expiresIn: LIFETIME_S }),
      startTokenServer({ users: { alice: 'alice-pw' }, rules, omitExpiresIn: true, tokenFormat: 'opaque' }),
    ]);
  });
  after(async () => {
    await jwtServer?.stop();
    await opaqueServer?.stop();
  });

  const scopes = ['repository:app:pull'];
  const challenge = (t: TokenServer): string => `Bearer realm="${t.realm}",service="${t.service}"`;

  it(`a JWT without expires_in is reused until its exp (${LIFETIME_S} s here, not ${DEFAULT_EXPIRES_IN_S} s), then renewed`, async () => {
    const start = Date.now();
    let now = start;
    const a = new Authenticator({ registry: 'r.example', credentials: basic, now: () => now });
    assert.equal(await a.onUnauthorized(challenge(jwtServer), scopes), true);
    const first = await a.authorization(scopes);
    assert.ok(first?.startsWith('Bearer eyJ'), 'the token server signs JWTs');
    // Long past the 60 s default, still well before exp (which is at least start + 599 s).
    now = start + 5 * DEFAULT_EXPIRES_IN_S * 1000;
    assert.equal(await a.authorization(scopes), first);
    now = start + 590_000;
    assert.equal(await a.authorization(scopes), first);
    assert.equal(jwtServer.requests.length, 1, 'one token for ten minutes');
    now = start + LIFETIME_S * 1000;
    const renewed = await a.authorization(scopes);
    assert.notEqual(renewed, first, 'renewed at exp');
    assert.equal(jwtServer.requests.length, 2);
  });

  it(`an opaque token without expires_in keeps the ${DEFAULT_EXPIRES_IN_S} s default`, async () => {
    const start = Date.now();
    let now = start;
    const a = new Authenticator({ registry: 'r.example', credentials: basic, now: () => now });
    await a.onUnauthorized(challenge(opaqueServer), scopes);
    const first = await a.authorization(scopes);
    assert.ok(first?.startsWith('Bearer opaque-'));
    now = start + (DEFAULT_EXPIRES_IN_S - 6) * 1000;
    assert.equal(await a.authorization(scopes), first);
    now = start + DEFAULT_EXPIRES_IN_S * 1000;
    assert.notEqual(await a.authorization(scopes), first);
    assert.equal(opaqueServer.requests.length, 2);
  });

  it('tokenExpiresAt: expires_in wins over exp; an exp already past (a skewed clock) or absent falls back to the default', () => {
    const now = 1_800_000_000_000;
    const exp = (s: number): string => fakeJwt({ exp: Math.floor(now / 1000) + s });
    assert.equal(tokenExpiresAt({ token: exp(3600) }, now), now + 3600_000);
    assert.equal(tokenExpiresAt({ token: exp(3600), expiresInS: 300 }, now), now + 300_000);
    assert.equal(tokenExpiresAt({ token: exp(-10) }, now), now + DEFAULT_EXPIRES_IN_S * 1000);
    assert.equal(tokenExpiresAt({ token: fakeJwt({ sub: 'no exp' }) }, now), now + DEFAULT_EXPIRES_IN_S * 1000);
    assert.equal(tokenExpiresAt({ token: 'eyJub3QganNvbg.bm90IGpzb24.' }, now), now + DEFAULT_EXPIRES_IN_S * 1000);
    assert.equal(tokenExpiresAt({ token: 'opaque' }, now), now + DEFAULT_EXPIRES_IN_S * 1000);
  });
});
