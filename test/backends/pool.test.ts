/**
 * The registry backend's client pool: one client per (registry, TLS mode, credentials identity),
 * least recently used closed beyond CLIENT_POOL_MAX. No request is sent: clients connect lazily.
 */
import assert from 'node:assert/strict';
import { CLIENT_POOL_MAX, CredentialLookupError, RegistryPool } from '../../src/backends/registry/pool.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';

const REGISTRY = 'registry.example';
const withIdentity = (identity: string): CredentialProvider => ({ get: async () => ({ kind: 'basic' as const, username: 'u', password: identity }), identity });
const baked = (password: string): CredentialProvider => ({ get: async () => ({ kind: 'basic' as const, username: 'u', password }) });
/** The client part of a repository identity (`<client id>/<repository>`). */
const clientOf = (identity: string): string => identity.slice(0, identity.indexOf('/'));

describe('registry client pool', () => {
  it('reuses a client per registry, TLS mode and credentials identity; another identity gets another', async () => {
    const pool = new RegistryPool({ certsDirs: [] });
    try {
      const a = await pool.repository(REGISTRY, 'team/a', withIdentity('secret-1'), false);
      const b = await pool.repository(REGISTRY, 'team/b', withIdentity('secret-1'), false);
      assert.equal(clientOf(a.identity), clientOf(b.identity));
      const rotated = await pool.repository(REGISTRY, 'team/a', withIdentity('secret-2'), false);
      assert.notEqual(clientOf(rotated.identity), clientOf(a.identity));
      const insecure = await pool.repository(REGISTRY, 'team/a', withIdentity('secret-1'), true);
      assert.notEqual(clientOf(insecure.identity), clientOf(a.identity));
      // Without an identity, the credential itself (by a hash) decides.
      const p1 = await pool.repository(REGISTRY, 'team/a', baked('x'), false);
      const p2 = await pool.repository(REGISTRY, 'team/a', baked('x'), false);
      const p3 = await pool.repository(REGISTRY, 'team/a', baked('y'), false);
      assert.equal(clientOf(p1.identity), clientOf(p2.identity));
      assert.notEqual(clientOf(p3.identity), clientOf(p1.identity));
      assert.equal(pool.size, 5);
    } finally {
      await pool.close();
    }
    assert.equal(pool.size, 0);
  });

  it('concurrent first calls for one key share one client (none made and leaked per caller)', async () => {
    const pool = new RegistryPool({ certsDirs: [] });
    try {
      const repos = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.repository(REGISTRY, `team/r${i}`, withIdentity('secret-1'), false)));
      assert.equal(new Set(repos.map((r) => clientOf(r.identity))).size, 1);
      assert.equal(pool.size, 1);
    } finally {
      await pool.close();
    }
  });

  it(`keeps at most CLIENT_POOL_MAX (${CLIENT_POOL_MAX}) clients, dropping the least recently used`, async () => {
    const pool = new RegistryPool({ certsDirs: [] });
    try {
      const first = await pool.repository(REGISTRY, 'team/a', withIdentity('id-0'), false);
      const second = await pool.repository(REGISTRY, 'team/a', withIdentity('id-1'), false);
      for (let i = 2; i < CLIENT_POOL_MAX; i++) await pool.repository(REGISTRY, 'team/a', withIdentity(`id-${i}`), false);
      assert.equal(pool.size, CLIENT_POOL_MAX);
      // Used again: now the most recent, so `second` is the oldest.
      assert.equal(clientOf((await pool.repository(REGISTRY, 'team/a', withIdentity('id-0'), false)).identity), clientOf(first.identity));
      await pool.repository(REGISTRY, 'team/a', withIdentity('one-more'), false);
      assert.equal(pool.size, CLIENT_POOL_MAX);
      assert.equal(clientOf((await pool.repository(REGISTRY, 'team/a', withIdentity('id-0'), false)).identity), clientOf(first.identity));
      assert.notEqual(clientOf((await pool.repository(REGISTRY, 'team/a', withIdentity('id-1'), false)).identity), clientOf(second.identity));
    } finally {
      await pool.close();
    }
  });

  it('a provider failing up front is a CredentialLookupError carrying its error, and makes no client', async () => {
    const pool = new RegistryPool({ certsDirs: [] });
    const cause = new Error('secret team/creds not found');
    await assert.rejects(
      pool.repository(REGISTRY, 'team/a', { get: async () => Promise.reject(cause) }, false),
      (e: unknown) => e instanceof CredentialLookupError && e.cause === cause,
    );
    assert.equal(pool.size, 0);
  });
});
