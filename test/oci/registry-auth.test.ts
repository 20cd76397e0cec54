import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import { OciError } from '../../src/oci/errors.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, opener, pushImage, randomBlob } from '../support/images.js';

function basic(username: string, password: string): CredentialProvider {
  return { get: async () => ({ kind: 'basic', username, password }) };
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'));
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('registry client: htpasswd auth', function () {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: { alice: 'wonderland' } });
  });
  after(async () => {
    await reg?.stop();
  });

  it('pushes and pulls with Basic credentials (one challenge, then credentials up front)', async () => {
    const c = new RegistryClient(reg.host, { credentials: basic('alice', 'wonderland') });
    try {
      const repo = c.repository('basic/app');
      const img = await pushImage(repo, buildImage(), 'v1');
      assert.equal((await repo.headManifest('v1'))?.digest, img.digest);
      assert.deepEqual(await repo.listTags(), ['v1']);
      const log = await reg.accessLog();
      assert.equal(log.filter((e) => e.status === 401).length, 1, 'only the first request is challenged');
    } finally {
      await c.close();
    }
  });

  it('wrong password: UNAUTHORIZED naming the registry, no secret in the message', async () => {
    const c = new RegistryClient(reg.host, { credentials: basic('alice', 'not-the-password') });
    try {
      const e = await rejectsWith(c.repository('basic/app').headManifest('v1'), 'UNAUTHORIZED', new RegExp(`authentication failed for ${reg.host}`));
      assert.ok(!e.message.includes('not-the-password'));
    } finally {
      await c.close();
    }
  });

  it('no credentials: UNAUTHORIZED', async () => {
    const c = new RegistryClient(reg.host);
    try {
      await rejectsWith(c.repository('basic/app').listTags(), 'UNAUTHORIZED');
    } finally {
      await c.close();
    }
  });
});

describe('registry client: token auth', function () {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({
      auth: 'token',
      users: { admin: 'admin-pw', mirror: 'mirror-pw', reader: 'reader-pw' },
      rules: [
        { account: 'admin', repository: '*', actions: ['*'] },
        // mirror may pull the source and push the target, nothing else.
        { account: 'mirror', repository: 'src/*', actions: ['pull'] },
        { account: 'mirror', repository: 'dst/*', actions: ['push', 'pull'] },
        { account: 'reader', repository: 'src/*', actions: ['pull'] },
        { account: 'reader', repository: 'dst/*', actions: ['pull'] },
      ],
    });
  });
  after(async () => {
    await reg?.stop();
  });

  it('mounts across repositories with one token scoped push,pull on the target then pull on the source', async () => {
    const admin = new RegistryClient(reg.host, { credentials: basic('admin', 'admin-pw') });
    const mirror = new RegistryClient(reg.host, { credentials: basic('mirror', 'mirror-pw') });
    try {
      const b = randomBlob(4096);
      await admin.repository('src/app').putBlob(b.descriptor, opener(b.bytes));
      reg.token!.requests.length = 0;
      await reg.resetLog();
      const open = opener(b.bytes);
      const r = await mirror.repository('dst/app').putBlob(b.descriptor, open, { mountFrom: ['src/app'] });
      assert.deepEqual(r, { transfer: 'mount', mountedFrom: 'src/app' });
      assert.equal(open.calls, 0);
      assert.equal(mirror.capabilities.mount, true);
      const granted = reg.token!.requests.filter((t) => t.status === 200);
      assert.equal(granted.length, 1);
      assert.deepEqual(granted[0]!.scopes, ['repository:dst/app:push,pull', 'repository:src/app:pull']);
      assert.equal(granted[0]!.account, 'mirror');
      const log = await reg.accessLog();
      assert.deepEqual(log.map((e) => `${e.method} ${e.status}`), ['POST 401', 'POST 201']);
      assert.equal(await mirror.repository('dst/app').headBlob(b.descriptor.digest), 4096);
    } finally {
      await admin.close();
      await mirror.close();
    }
  });

  it('a mount the account may not read from falls back to a plain upload', async () => {
    const admin = new RegistryClient(reg.host, { credentials: basic('admin', 'admin-pw') });
    const mirror = new RegistryClient(reg.host, { credentials: basic('mirror', 'mirror-pw') });
    try {
      const b = randomBlob(4096);
      await admin.repository('private/app').putBlob(b.descriptor, opener(b.bytes));
      const open = opener(b.bytes);
      const r = await mirror.repository('dst/app2').putBlob(b.descriptor, open, { mountFrom: ['private/app'] });
      assert.deepEqual(r, { transfer: 'upload' });
      assert.equal(open.calls, 1);
      assert.equal(await mirror.repository('dst/app2').headBlob(b.descriptor.digest), 4096);
    } finally {
      await admin.close();
      await mirror.close();
    }
  });

  it('an account that may not push the target gets a clear denied error (2.8.2 answers 401)', async () => {
    const admin = new RegistryClient(reg.host, { credentials: basic('admin', 'admin-pw') });
    const reader = new RegistryClient(reg.host, { credentials: basic('reader', 'reader-pw') });
    try {
      const b = randomBlob(1024);
      await admin.repository('src/app3').putBlob(b.descriptor, opener(b.bytes));
      const e = await rejectsWith(
        reader.repository('dst/app3').putBlob(b.descriptor, opener(b.bytes), { mountFrom: ['src/app3'] }),
        'DENIED',
        /access denied.*repository:dst\/app3:push,pull/,
      );
      assert.equal(e.status, 401);
      assert.equal(await admin.repository('dst/app3').headBlob(b.descriptor.digest), undefined);
    } finally {
      await admin.close();
      await reader.close();
    }
  });

  it('pushes, reads and lists with tokens; an absent repository lists as []', async () => {
    const c = new RegistryClient(reg.host, { credentials: basic('admin', 'admin-pw') });
    try {
      const repo = c.repository('dst/tok');
      const img = await pushImage(repo, buildImage(), 'v1');
      assert.equal((await repo.getManifest('v1')).digest, img.digest);
      assert.deepEqual(await repo.listTags(), ['v1']);
      assert.deepEqual(await c.repository('dst/absent').listTags(), []);
    } finally {
      await c.close();
    }
  });

  it('wrong password: UNAUTHORIZED', async () => {
    const c = new RegistryClient(reg.host, { credentials: basic('admin', 'wrong') });
    try {
      const e = await rejectsWith(c.repository('dst/tok').headManifest('v1'), 'UNAUTHORIZED', new RegExp(reg.host.replace(/\./g, '\\.')));
      assert.ok(!e.message.includes('wrong'));
    } finally {
      await c.close();
    }
  });
});
