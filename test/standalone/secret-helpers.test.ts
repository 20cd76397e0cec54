import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { RegistryClient } from '../../src/oci/registry.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { runSync } from '../../src/standalone/sync.js';
import { fileCredentials } from '../../src/standalone/file-credentials.js';
import { DOCKERCONFIGJSON, SecretCredentials } from '../../src/controller/secrets.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe('spec-file Secrets run no credential helpers (as the controller)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let dir: string;
  let marker: string;
  let savedPath: string | undefined;
  const password = 'helper-test-password';

  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: { alice: password } });
    const creds: CredentialProvider = { get: async () => ({ kind: 'basic', username: 'alice', password }) };
    const c = new RegistryClient(reg.host, { credentials: creds });
    try {
      await pushImage(c.repository('src/app'), buildImage(), '1.0');
    } finally {
      await c.close();
    }
    dir = await mkdtemp(join(tmpdir(), 'secret-helpers-'));
    marker = join(dir, 'helper-ran');
    // A helper that leaves a marker when run, and would even hand out working credentials.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const helper = join(bin, 'docker-credential-xyz');
    await writeFile(helper, `#!/bin/sh\ncat >/dev/null\necho ran >> '${marker}'\necho '{"ServerURL":"${reg.host}","Username":"alice","Secret":"${password}"}'\n`);
    await chmod(helper, 0o755);
    savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
  });
  after(async () => {
    process.env.PATH = savedPath;
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => rm(marker, { force: true }));

  const secretDoc = (config: object): string =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: pull, namespace: team-a}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '${JSON.stringify(config)}'\n`;
  const mirrorDoc = (name: string, secret: boolean): string =>
    `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}, namespace: team-a}\nspec:\n` +
    `  source: {repository: ${reg.host}/src/app, tags: ['1.0']${secret ? ', credentials: {secretName: pull}' : ''}}\n` +
    `  targets: [{repository: ${reg.host}/dst/${name}${secret ? ', credentials: {secretName: pull}' : ''}}]\n`;

  async function sync(docs: string[], dockerConfig: object | undefined): Promise<Awaited<ReturnType<typeof runSync>>> {
    const file = join(dir, 'spec.yaml');
    await writeFile(file, docs.join('---\n'));
    const cfg = join(dir, 'config.json');
    if (dockerConfig) await writeFile(cfg, JSON.stringify(dockerConfig));
    return runSync({ files: [file], dockerConfig: dockerConfig ? cfg : join(dir, 'absent.json'), stdout: new PassThrough(), stderr: new PassThrough() });
  }

  it('credHelpers and credsStore in a Secret document are ignored: its auths are used, the helper never runs', async () => {
    const r = await sync([secretDoc({ credsStore: 'xyz', credHelpers: { [reg.host]: 'xyz' }, auths: { [reg.host]: { auth: b64(`alice:${password}`) } } }), mirrorDoc('with-auths', true)], undefined);
    assert.equal(r.mirrors[0]?.ready, true, r.mirrors[0]?.message);
    assert.equal(await exists(marker), false, 'the helper ran');
  });

  it('a Secret naming only a helper yields no credentials (an auth failure), and the helper never runs', async () => {
    const r = await sync([secretDoc({ credHelpers: { [reg.host]: 'xyz' } }), mirrorDoc('helper-only', true)], undefined);
    assert.equal(r.mirrors[0]?.ready, false);
    assert.match(r.mirrors[0]?.message ?? '', /authentication failed|UNAUTHORIZED|401/i);
    assert.equal(await exists(marker), false, 'the helper ran');
  });

  it('the host --docker-config may still use helpers, as docker does (control: the helper works)', async () => {
    const r = await sync([mirrorDoc('host-config', false)], { credHelpers: { [reg.host]: 'xyz' } });
    assert.equal(r.mirrors[0]?.ready, true, r.mirrors[0]?.message);
    assert.equal(await exists(marker), true, 'the helper ran for the host config');
  });
});

describe('one dockerconfigjson Secret implementation for the controller and the file modes', () => {
  const host = 'registry.example.com:5000';
  const configWith = (password: string): string => JSON.stringify({ credsStore: 'xyz', credHelpers: { [host]: 'xyz' }, auths: { [host]: { auth: b64(`alice:${password}`) } } });
  const config = configWith('s3cret-pw');
  const controller = (json: string, rv: string) =>
    new SecretCredentials({ get: () => ({ metadata: { name: 'pull', namespace: 'team-a', resourceVersion: rv }, type: DOCKERCONFIGJSON, data: { '.dockerconfigjson': b64(json) } }) });
  const files = (json: string) => fileCredentials([{ namespace: 'team-a', name: 'pull', type: DOCKERCONFIGJSON, dockerConfigJson: json, source: 'spec.yaml:1' }], undefined);

  it('both read the auths and drop the helpers, with the same identity, which names the Secret and never its secret', async () => {
    const fromCluster = await controller(config, '1').credentials('team-a', { secretName: 'pull' });
    const fromFile = await files(config)('team-a', { secretName: 'pull' });
    for (const p of [fromCluster, fromFile]) {
      // A helper would be asked first (credHelpers decide alone): getting the auths entry shows none is left.
      assert.deepEqual(await p.get(host), { kind: 'basic', username: 'alice', password: 's3cret-pw' });
      assert.match(p.identity ?? '', /^docker-config:secret team-a\/pull@[0-9a-f]{16}$/);
      assert.ok(!p.identity!.includes('s3cret') && !p.identity!.includes(b64('alice:s3cret-pw')));
    }
    assert.equal(fromCluster.identity, fromFile.identity);
  });

  it('a changed Secret has another identity (its client is not reused), an unchanged one the same', async () => {
    const a = await files(config)('team-a', { secretName: 'pull' });
    const same = await controller(config, '7').credentials('team-a', { secretName: 'pull' });
    const rotated = await files(configWith('n3w-pw'))('team-a', { secretName: 'pull' });
    assert.deepEqual(await rotated.get(host), { kind: 'basic', username: 'alice', password: 'n3w-pw' });
    assert.equal(same.identity, a.identity, 'a new resourceVersion with the same content');
    assert.notEqual(rotated.identity, a.identity);
  });

  it('both refuse a Secret of another type or without a readable .dockerconfigjson, with the same message', async () => {
    const wrongType = new SecretCredentials({ get: () => ({ metadata: { name: 'pull', namespace: 'team-a' }, type: 'Opaque', data: {} }) });
    await assert.rejects(wrongType.credentials('team-a', { secretName: 'pull' }), /^CredentialsNotFoundError: secret team-a\/pull is of type Opaque, want kubernetes\.io\/dockerconfigjson$/);
    await assert.rejects(
      fileCredentials([{ namespace: 'team-a', name: 'pull', type: 'Opaque', source: 'spec.yaml:1' }], undefined)('team-a', { secretName: 'pull' }),
      /^CredentialsNotFoundError: secret team-a\/pull is of type Opaque, want kubernetes\.io\/dockerconfigjson$/,
    );
    await assert.rejects(controller('{"auths": ', '2').credentials('team-a', { secretName: 'pull' }), /^CredentialsNotFoundError: secret team-a\/pull: not valid JSON/);
    await assert.rejects(files('{"auths": ')('team-a', { secretName: 'pull' }), /^CredentialsNotFoundError: secret team-a\/pull: not valid JSON/);
  });
});
