import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { Authenticator, parseWwwAuthenticate, repositoryScope } from '../../src/oci/auth.js';
import type { Credential, CredentialProvider } from '../../src/oci/credentials.js';
import { anonymous } from '../../src/oci/credentials.js';
import { OciError } from '../../src/oci/errors.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';

function creds(c: Credential | undefined): CredentialProvider {
  return { get: async () => c };
}
const basic = (username: string, password: string): CredentialProvider => creds({ kind: 'basic', username, password });

function isOci(code: string, re?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof OciError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'));
    return true;
  };
}

describe('parseWwwAuthenticate', () => {
  it('parses a distribution bearer challenge', () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'),
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } }],
    );
  });
  it('splits several challenges, keeping quoted commas and unescaping quotes', () => {
    const h = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple, but, commas" , BEARER Realm = "https://r/t" ,error=insufficient_scope';
    assert.deepEqual(parseWwwAuthenticate(h), [
      { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'basic', params: { realm: 'simple, but, commas' } },
      { scheme: 'bearer', params: { realm: 'https://r/t', error: 'insufficient_scope' } },
    ]);
  });
  it('skips token68 values, empty list elements and junk', () => {
    assert.deepEqual(parseWwwAuthenticate(', Negotiate abc+/==,, Basic , Bearer realm="x"'), [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: {} },
      { scheme: 'bearer', params: { realm: 'x' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('=oops, Bearer realm="a" junk, service="s"'), [{ scheme: 'bearer', params: { realm: 'a', service: 's' } }]);
    assert.deepEqual(parseWwwAuthenticate(''), []);
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="unterminated'), [{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
  });
  it('repositoryScope keeps the action order', () => {
    assert.equal(repositoryScope('dst/app', ['push', 'pull']), 'repository:dst/app:push,pull');
    assert.equal(repositoryScope('src', ['pull']), 'repository:src:pull');
  });
});

describe('Authenticator and the token server (no registry)', () => {
  let ts: TokenServer;
  let tsShort: TokenServer;
  before(async () => {
    ts = await startTokenServer({ users: { alice: 'alice-pw' }, rules: [{ account: '*', repository: '*', actions: ['*'] }] });
    tsShort = await startTokenServer({ users: { alice: 'alice-pw' }, rules: [{ account: '*anonymous*', repository: '*', actions: ['pull'] }], omitExpiresIn: true });
  });
  beforeEach(() => {
    ts.requests.length = 0;
    tsShort.requests.length = 0;
  });
  after(async () => {
    await ts.stop();
    await tsShort.stop();
  });
  const challenge = (t: TokenServer): string => `Bearer realm="${t.realm}",service="${t.service}"`;

  it('returns undefined before any challenge and anonymous access without a token scheme', async () => {
    const a = new Authenticator({ registry: '127.0.0.1:1', credentials: anonymous });
    assert.equal(await a.authorization(['repository:a:pull']), undefined);
    assert.equal(await a.onUnauthorized(undefined, ['repository:a:pull']), false);
    assert.equal(await a.onUnauthorized('Basic realm="r"', ['repository:a:pull']), false, 'no credentials: retrying is the same failure');
    assert.equal(await a.authorization(['repository:a:pull']), undefined);
  });

  it('caches by account and scope set, renews 5 s before expiry, and single-flights', async () => {
    let now = Date.now();
    const seen: Array<{ realm: string; status: number | 'error' }> = [];
    const a = new Authenticator({ registry: 'r.example', credentials: basic('alice', 'alice-pw'), now: () => now, onTokenRequest: (e) => seen.push(e) });
    const scopes = [repositoryScope('dst', ['push', 'pull']), repositoryScope('src', ['pull'])];
    assert.equal(await a.onUnauthorized(challenge(ts), scopes), true);
    const [h1, h2] = await Promise.all([a.authorization(scopes), a.authorization(scopes)]);
    assert.ok(h1?.startsWith('Bearer '));
    assert.equal(h1, h2);
    assert.equal(ts.requests.length, 1, 'concurrent callers share one token request');
    assert.deepEqual(ts.requests[0], { method: 'GET', account: 'alice', scopes, status: 200 }, 'push scope first, one request');
    assert.equal(await a.authorization([...scopes].reverse()), h1, 'same scope set, same token');
    assert.notEqual(await a.authorization([repositoryScope('dst', ['pull'])]), h1);
    assert.equal(ts.requests.length, 2);
    now += 294_000; // expires_in 300
    assert.equal(await a.authorization(scopes), h1);
    now += 2_000;
    assert.notEqual(await a.authorization(scopes), h1);
    assert.equal(ts.requests.length, 3);
    assert.deepEqual(seen[0], { realm: ts.realm, status: 200 });
  });

  it('applies the 60 s default when expires_in is absent', async () => {
    let now = Date.now();
    const a = new Authenticator({ registry: 'localhost:5000', credentials: anonymous, now: () => now });
    await a.onUnauthorized(challenge(tsShort), ['repository:x:pull']);
    const h = await a.authorization(['repository:x:pull']);
    now += 54_000;
    assert.equal(await a.authorization(['repository:x:pull']), h);
    now += 2_000;
    await a.authorization(['repository:x:pull']);
    assert.equal(tsShort.requests.length, 2);
    assert.equal(tsShort.requests[0]!.account, undefined, 'anonymous requests carry no credentials');
  });

  it('re-authenticates once per 401 and says when retrying cannot help', async () => {
    const a = new Authenticator({ registry: 'r.example', credentials: basic('alice', 'alice-pw') });
    const s = ['repository:x:pull'];
    assert.equal(await a.onUnauthorized(challenge(ts), s), true, 'newly learned challenge');
    const t1 = await a.authorization(s);
    assert.equal(await a.onUnauthorized(challenge(ts), s), false, 'the token fetched for the retry was refused');
    const t2 = await a.authorization(s);
    assert.notEqual(t2, t1);
    assert.equal(await a.onUnauthorized(challenge(ts), s), false, 'a token minted for this request was refused: same grant again');
    const t3 = await a.authorization(s);
    assert.notEqual(t3, t2);
    assert.equal(await a.authorization(s), t3, 'served from the cache');
    assert.equal(await a.onUnauthorized(challenge(ts), s), true, 'a reused token (e.g. revoked early) gets one retry');
    const t4 = await a.authorization(s);
    assert.notEqual(t4, t3);
    assert.equal(await a.onUnauthorized(`${challenge(ts)},error="insufficient_scope"`, s), false);
    assert.equal(ts.requests.length, 4);
  });

  it('concurrent requests refused with the same reused token all retry, with one new token', async () => {
    const a = new Authenticator({ registry: 'r.example', credentials: basic('alice', 'alice-pw') });
    const s = ['repository:x:pull'];
    await a.onUnauthorized(challenge(ts), s);
    const t1 = await a.authorization(s);
    assert.equal(await a.authorization(s), t1);
    assert.deepEqual(await Promise.all([a.onUnauthorized(challenge(ts), s), a.onUnauthorized(challenge(ts), s)]), [true, true]);
    const [r1, r2] = await Promise.all([a.authorization(s), a.authorization(s)]);
    assert.equal(r1, r2);
    assert.notEqual(r1, t1);
    assert.equal(ts.requests.length, 2);
    assert.equal(await a.onUnauthorized(challenge(ts), s), false, 'the retry token itself was refused');
  });

  it('a changed realm drops cached tokens and allows a retry', async () => {
    const a = new Authenticator({ registry: 'r.example', credentials: basic('alice', 'alice-pw') });
    const s = ['repository:x:pull'];
    await a.onUnauthorized(challenge(ts), s);
    await a.authorization(s);
    assert.equal(await a.onUnauthorized(challenge(tsShort), s), true);
    await a.authorization(s);
    assert.equal(tsShort.requests.length, 1);
  });

  it('a wrong password is UNAUTHORIZED naming the registry, never the secret', async () => {
    const a = new Authenticator({ registry: 'r.example:8443', credentials: basic('alice', 's3cr3t-wrong') });
    await a.onUnauthorized(challenge(ts), ['repository:x:pull']);
    await assert.rejects(a.authorization(['repository:x:pull']), (e: unknown) => {
      isOci('UNAUTHORIZED', /r\.example:8443/)(e);
      assert.ok(!(e as Error).message.includes('s3cr3t'));
      return true;
    });
  });

  it('refuses to send credentials to a plain-HTTP realm off loopback', async () => {
    const a = new Authenticator({ registry: 'r.example', credentials: basic('alice', 'pw') });
    await a.onUnauthorized('Bearer realm="http://auth.example.com/token?x=1",service="s"', ['repository:x:pull']);
    await assert.rejects(a.authorization(['repository:x:pull']), isOci('UNAUTHORIZED', /plain-HTTP token realm http:\/\/auth\.example\.com\/token /));
  });

  it('a realm that does not answer is a retryable NETWORK error', async () => {
    const port = await freePort();
    const a = new Authenticator({ registry: 'r.example', credentials: anonymous });
    await a.onUnauthorized(`Bearer realm="http://127.0.0.1:${port}/token"`, ['repository:x:pull']);
    await assert.rejects(a.authorization(['repository:x:pull']), (e: unknown) => isOci('NETWORK', /r\.example/)(e) && (e as OciError).retryable);
  });

  it('credential provider failures become one-line UNAUTHORIZED errors', async () => {
    const a = new Authenticator({
      registry: 'r.example',
      credentials: {
        get: async () => {
          throw new Error('docker-credential-gone is not installed\nstack');
        },
      },
    });
    await assert.rejects(a.onUnauthorized(challenge(ts), []), isOci('UNAUTHORIZED', /credentials for r\.example: docker-credential-gone/));
  });

  it('OAuth2: exchanges an identity token by POST, and falls back to GET on 404', async () => {
    // What `docker login` does to get an identity token.
    const login = await request(ts.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-pw', service: ts.service, client_id: 'docker', access_type: 'offline' }).toString(),
    });
    const { refresh_token } = (await login.body.json()) as { refresh_token: string };
    assert.ok(refresh_token);
    const a = new Authenticator({ registry: 'r.example', credentials: creds({ kind: 'identityToken', identityToken: refresh_token }) });
    const s = [repositoryScope('dst', ['push', 'pull']), repositoryScope('src', ['pull'])];
    await a.onUnauthorized(challenge(ts), s);
    assert.ok((await a.authorization(s))?.startsWith('Bearer '));
    assert.deepEqual(ts.requests.at(-1), { method: 'POST', account: 'alice', scopes: s, status: 200, grantType: 'refresh_token' });

    const noOauth = await startTokenServer({ users: { alice: 'the-identity-token' }, rules: [], oauth2: false });
    try {
      const b = new Authenticator({ registry: 'r.example', credentials: creds({ kind: 'identityToken', username: 'alice', identityToken: 'the-identity-token' }) });
      await b.onUnauthorized(challenge(noOauth), s);
      assert.ok(await b.authorization(s));
      assert.deepEqual(
        noOauth.requests.map((r) => [r.method, r.status, r.account]),
        [
          ['POST', 404, undefined],
          ['GET', 200, 'alice'],
        ],
      );
    } finally {
      await noOauth.stop();
    }
  });
});

describe('Authenticator against docker-registry 2.8.2', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({
      auth: 'token',
      users: { alice: 'alice-pw', bob: 'bob-pw' },
      rules: [
        { account: 'alice', repository: 'team/*', actions: ['push', 'pull'] },
        { account: 'alice', repository: 'public/*', actions: ['push', 'pull'] },
        { account: 'bob', repository: 'team/*', actions: ['pull'] },
        { account: '*anonymous*', repository: 'public/*', actions: ['pull'] },
      ],
    });
  });
  after(async () => {
    await reg?.stop();
  });

  async function call(a: Authenticator, scopes: string[], method: 'GET' | 'HEAD' | 'POST' | 'PUT', path: string, body?: Buffer) {
    for (let attempt = 0; ; attempt++) {
      const h = await a.authorization(scopes);
      const headers: Record<string, string> = {};
      if (h) headers.authorization = h;
      if (body) headers['content-type'] = 'application/octet-stream';
      const res = await request(`${reg.url}${path}`, { method, headers, body });
      await res.body.dump();
      const www = res.headers['www-authenticate'];
      if (res.statusCode === 401 && attempt === 0 && (await a.onUnauthorized(typeof www === 'string' ? www : undefined, scopes))) continue;
      const loc = res.headers.location;
      return { status: res.statusCode, location: typeof loc === 'string' ? loc : undefined };
    }
  }

  async function pushBlob(a: Authenticator, repo: string, content: Buffer): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    const scopes = [repositoryScope(repo, ['push', 'pull'])];
    const start = await call(a, scopes, 'POST', `/v2/${repo}/blobs/uploads/`);
    assert.equal(start.status, 202);
    const loc = new URL(start.location!, reg.url);
    loc.searchParams.set('digest', digest);
    const put = await call(a, scopes, 'PUT', loc.pathname + loc.search, content);
    assert.equal(put.status, 201);
    return digest;
  }

  it('pushes with a token from Basic credentials, reusing it across requests', async () => {
    const before = reg.token!.requests.length;
    const a = new Authenticator({ registry: reg.host, credentials: basic('alice', 'alice-pw') });
    const d = await pushBlob(a, 'team/app', Buffer.from('hello token auth'));
    assert.equal(reg.token!.requests.length - before, 1, 'one token for POST and PUT');
    assert.equal((await call(a, [repositoryScope('team/app', ['pull'])], 'HEAD', `/v2/team/app/blobs/${d}`)).status, 200);
  });

  it('mounts across repositories with ONE token carrying two repository scopes (push first)', async () => {
    const a = new Authenticator({ registry: reg.host, credentials: basic('alice', 'alice-pw') });
    const d = await pushBlob(a, 'team/src', Buffer.from('blob to mount'));
    const mountPath = (dst: string): string => `/v2/${dst}/blobs/uploads/?mount=${d}&from=team/src`;

    // Control: the target scope alone does not let distribution mount.
    const only = await call(a, [repositoryScope('team/dst1', ['push', 'pull'])], 'POST', mountPath('team/dst1'));
    assert.notEqual(only.status, 201);

    const scopes = [repositoryScope('team/dst2', ['push', 'pull']), repositoryScope('team/src', ['pull'])];
    const before = reg.token!.requests.length;
    const m = await call(a, scopes, 'POST', mountPath('team/dst2'));
    assert.equal(m.status, 201);
    const tokenReqs = reg.token!.requests.slice(before);
    assert.equal(tokenReqs.length, 1);
    assert.deepEqual(tokenReqs[0]!.scopes, ['repository:team/dst2:push,pull', 'repository:team/src:pull']);
    assert.equal((await call(a, [repositoryScope('team/dst2', ['pull'])], 'HEAD', `/v2/team/dst2/blobs/${d}`)).status, 200);
  });

  it('a token without push scope is refused, and the second 401 is final', async () => {
    const alice = new Authenticator({ registry: reg.host, credentials: basic('alice', 'alice-pw') });
    const d = await pushBlob(alice, 'team/ro', Buffer.from('read only for bob'));
    const bob = new Authenticator({ registry: reg.host, credentials: basic('bob', 'bob-pw') });
    assert.equal((await call(bob, [repositoryScope('team/ro', ['pull'])], 'HEAD', `/v2/team/ro/blobs/${d}`)).status, 200);
    const before = reg.token!.requests.length;
    const push = await call(bob, [repositoryScope('team/ro', ['push', 'pull'])], 'POST', '/v2/team/ro/blobs/uploads/');
    assert.equal(push.status, 401);
    assert.equal(reg.token!.requests.length - before, 1, 'no retry storm: one token request, one retry');
  });

  it('anonymous pulls where allowed and cannot push', async () => {
    const alice = new Authenticator({ registry: reg.host, credentials: basic('alice', 'alice-pw') });
    const d = await pushBlob(alice, 'public/base', Buffer.from('public bytes'));
    const anon = new Authenticator({ registry: reg.host, credentials: anonymous });
    assert.equal((await call(anon, [repositoryScope('public/base', ['pull'])], 'HEAD', `/v2/public/base/blobs/${d}`)).status, 200);
    assert.equal((await call(anon, [repositoryScope('team/app', ['pull'])], 'GET', '/v2/team/app/tags/list')).status, 401);
    assert.equal((await call(anon, [repositoryScope('public/base', ['push', 'pull'])], 'POST', '/v2/public/base/blobs/uploads/')).status, 401);
  });

  it('a registrytoken credential is sent as is', async () => {
    const u = new URL(reg.token!.realm);
    u.searchParams.set('service', reg.token!.service);
    u.searchParams.append('scope', 'repository:team/app:pull');
    const r = await request(u, { headers: { authorization: 'Basic ' + Buffer.from('alice:alice-pw').toString('base64') } });
    const { token } = (await r.body.json()) as { token: string };
    const before = reg.token!.requests.length;
    const a = new Authenticator({ registry: reg.host, credentials: creds({ kind: 'registryToken', registryToken: token }) });
    assert.equal((await call(a, ['repository:team/app:pull'], 'GET', '/v2/team/app/tags/list')).status, 404, 'authorized; no tags yet');
    assert.equal(reg.token!.requests.length, before);
    assert.equal((await call(a, ['repository:team/app:push,pull'], 'POST', '/v2/team/app/blobs/uploads/')).status, 401);
  });
});

describe('Authenticator with a Basic challenge (htpasswd registry)', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: { alice: 'alice-pw' } });
  });
  after(async () => {
    await reg?.stop();
  });
  async function get(a: Authenticator): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const h = await a.authorization([]);
      const res = await request(`${reg.url}/v2/`, { headers: h ? { authorization: h } : {} });
      await res.body.dump();
      const www = res.headers['www-authenticate'];
      if (res.statusCode === 401 && attempt === 0 && (await a.onUnauthorized(typeof www === 'string' ? www : undefined, []))) continue;
      return res.statusCode;
    }
  }
  it('sends Basic after the challenge; wrong password and anonymous stop after one retry', async () => {
    assert.equal(await get(new Authenticator({ registry: reg.host, credentials: basic('alice', 'alice-pw') })), 200);
    const wrong = new Authenticator({ registry: reg.host, credentials: basic('alice', 'nope') });
    assert.equal(await get(wrong), 401);
    assert.equal(await get(wrong), 401);
    assert.equal(await get(new Authenticator({ registry: reg.host, credentials: anonymous })), 401);
  });
});
