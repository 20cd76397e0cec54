import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  defaultDockerConfigPath,
  dockerConfigProvider,
  loadDockerConfigFile,
  normalizeConfigKey,
  parseDockerConfig,
} from '../../src/oci/docker-config.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('docker config.json', () => {
  it('normalizes every key form to the canonical registry', () => {
    const cases: Array<[string, string]> = [
      ['https://index.docker.io/v1/', 'docker.io'],
      ['index.docker.io', 'docker.io'],
      ['registry-1.docker.io', 'docker.io'],
      ['docker.io', 'docker.io'],
      ['https://registry.example.com/v1/', 'registry.example.com'],
      ['http://Registry.Example.com:5000/v2/', 'registry.example.com:5000'],
      ['registry.example.com:8221', 'registry.example.com:8221'],
      ['registry.example.com:443', 'registry.example.com'],
      ['localhost:5000', 'localhost:5000'],
      ['[::1]:5000', '[::1]:5000'],
    ];
    for (const [k, want] of cases) assert.equal(normalizeConfigKey(k), want, k);
  });

  it('parses auth, username/password, identitytoken and registrytoken; skips empty entries', () => {
    const c = parseDockerConfig(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
          'registry-1.docker.io': { auth: b64('other:ignored') },
          'http://r1.example:5000/v2/': { username: 'u1', password: 'p1' },
          'r2.example': { auth: b64('u2:ignored'), identitytoken: 'id-tok' },
          'r3.example': { identitytoken: 'id-only' },
          'r4.example': { registrytoken: 'bearer-tok', auth: b64('u:p') },
          'r5.example': {},
        },
        credHelpers: { 'https://gcr.io': 'gcr', 'ecr.example:443': 'ecr-login' },
        credsStore: 'desktop',
        HttpHeaders: { 'User-Agent': 'x' },
      }),
      'test.json',
    );
    assert.deepEqual(c.auths, {
      'docker.io': { kind: 'basic', username: 'hubuser', password: 'hub:pass' },
      'r1.example:5000': { kind: 'basic', username: 'u1', password: 'p1' },
      'r2.example': { kind: 'identityToken', username: 'u2', identityToken: 'id-tok' },
      'r3.example': { kind: 'identityToken', identityToken: 'id-only' },
      'r4.example': { kind: 'registryToken', registryToken: 'bearer-tok' },
    });
    assert.deepEqual(c.credHelpers, { 'gcr.io': 'gcr', 'ecr.example': 'ecr-login' });
    assert.equal(c.credsStore, 'desktop');
    assert.deepEqual(parseDockerConfig('{}', 'x'), { auths: {}, credHelpers: {}, source: 'x' });
  });

  it('bad input gives one line naming the source and never the secret', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"auths": {"r.io": {"auth": "c2VjcmV0LXBhc3N3b3Jk"}} ', /^cfg\.json: not valid JSON/],
      ['{\n"auths": {\n"r.io": {"password": "hunter2" oops}}}', /^cfg\.json: not valid JSON at line 3$/],
      ['[]', /cfg\.json: expected a JSON object/],
      ['{"auths": []}', /"auths" must be an object/],
      ['{"auths": {"r.io": "x"}}', /auths\["r\.io"\] must be an object/],
      [`{"auths": {"r.io": {"auth": "${b64('no-colon-secret')}"}}}`, /auths\["r\.io"\]\.auth is not base64 of "username:password"/],
      ['{"auths": {"r.io": {"auth": "!!!"}}}', /auths\["r\.io"\]\.auth is not base64/],
      ['{"credHelpers": {"r.io": "../../bin/sh"}}', /credHelpers\["r\.io"\] must be a helper name/],
      ['{"credsStore": 3}', /"credsStore" must be a helper name/],
    ];
    for (const [json, re] of cases) {
      assert.throws(
        () => parseDockerConfig(json, 'cfg.json'),
        (e: unknown) => {
          const m = (e as Error).message;
          assert.match(m, re, json);
          assert.ok(!m.includes('\n'));
          for (const secret of ['hunter2', 'c2VjcmV0', 'no-colon-secret', b64('no-colon-secret')]) assert.ok(!m.includes(secret), m);
          return true;
        },
      );
    }
  });

  it('the first config that has the registry wins; lookups use canonical names', async () => {
    const a = parseDockerConfig(JSON.stringify({ auths: { 'r.example': { auth: b64('a:1') } } }), 'a');
    const b = parseDockerConfig(JSON.stringify({ auths: { 'r.example': { auth: b64('b:2') }, 'https://index.docker.io/v1/': { auth: b64('hub:3') } } }), 'b');
    const p = dockerConfigProvider(a, b);
    assert.deepEqual(await p.get('R.Example:443'), { kind: 'basic', username: 'a', password: '1' });
    assert.deepEqual(await p.get('index.docker.io'), { kind: 'basic', username: 'hub', password: '3' });
    assert.equal(await p.get('other.example'), undefined);
  });

  it('defaultDockerConfigPath honours DOCKER_CONFIG, then HOME', () => {
    assert.equal(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/dc', HOME: '/home/u' }), '/etc/dc/config.json');
    assert.equal(defaultDockerConfigPath({ HOME: '/home/u' }), '/home/u/.docker/config.json');
  });

  it('loadDockerConfigFile: undefined when absent, parsed when present, path in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imc-dc-'));
    try {
      assert.equal(await loadDockerConfigFile(join(dir, 'nope.json')), undefined);
      const f = join(dir, 'config.json');
      await writeFile(f, JSON.stringify({ auths: { 'localhost:5000': { username: 'u', password: 'p' } } }));
      const c = await loadDockerConfigFile(f);
      assert.deepEqual(c?.auths['localhost:5000'], { kind: 'basic', username: 'u', password: 'p' });
      await writeFile(f, '{');
      await assert.rejects(loadDockerConfigFile(f), new RegExp(`^Error: ${f.replace(/[.]/g, '\\.')}: not valid JSON`));
      await assert.rejects(loadDockerConfigFile(dir), /cannot read docker config \(EISDIR\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('credential helpers', () => {
    let dir: string;
    let savedPath: string | undefined;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'imc-credhelper-'));
      // One script, several names: it answers by server URL and logs what it was asked.
      const script = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported $1" >&2; exit 2; }
read -r server
echo "$(basename "$0") $server" >> "${dir}/calls.log"
case "$server" in
  helper.example) echo '{"ServerURL":"helper.example","Username":"hu","Secret":"hs"}' ;;
  token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-me"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hub","Secret":"hubsecret"}' ;;
  broken.example) echo 'helper exploded' >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
      for (const name of ['docker-credential-imctest', 'docker-credential-imcstore']) {
        await writeFile(join(dir, name), script);
        await chmod(join(dir, name), 0o755);
      }
      savedPath = process.env.PATH;
      process.env.PATH = `${dir}${delimiter}${savedPath ?? ''}`;
    });
    after(async () => {
      process.env.PATH = savedPath;
      await rm(dir, { recursive: true, force: true });
    });
    const calls = async (): Promise<string[]> => (await readFile(join(dir, 'calls.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);

    it('credHelpers: runs the helper with the server URL on stdin; <token> means identity token; results are cached', async () => {
      const c = parseDockerConfig(
        JSON.stringify({
          auths: { 'helper.example': { auth: b64('static:ignored') } },
          credHelpers: { 'helper.example': 'imctest', 'https://token.example/v1/': 'imctest', 'index.docker.io': 'imctest', 'none.example': 'imctest', 'broken.example': 'imctest' },
        }),
        'cfg',
      );
      const p = dockerConfigProvider(c);
      const before = (await calls()).length;
      assert.deepEqual(await p.get('helper.example'), { kind: 'basic', username: 'hu', password: 'hs' });
      assert.deepEqual(await p.get('helper.example'), { kind: 'basic', username: 'hu', password: 'hs' });
      assert.deepEqual(await p.get('token.example'), { kind: 'identityToken', identityToken: 'refresh-me' });
      assert.deepEqual(await p.get('docker.io'), { kind: 'basic', username: 'hub', password: 'hubsecret' });
      assert.equal(await p.get('none.example'), undefined);
      await assert.rejects(p.get('broken.example'), /^Error: credentials for broken\.example \(credHelpers in cfg\): docker-credential-imctest get failed \(exit 3\): helper exploded$/);
      assert.deepEqual((await calls()).slice(before), [
        'docker-credential-imctest helper.example',
        'docker-credential-imctest token.example',
        'docker-credential-imctest https://index.docker.io/v1/',
        'docker-credential-imctest none.example',
        'docker-credential-imctest broken.example',
      ]);
    });

    it('credsStore is asked first, auths is the fallback', async () => {
      const c = parseDockerConfig(
        JSON.stringify({ credsStore: 'imcstore', auths: { 'helper.example': {}, 'plain.example': { auth: b64('pu:pp') } } }),
        'cfg',
      );
      const p = dockerConfigProvider(c);
      assert.deepEqual(await p.get('helper.example'), { kind: 'basic', username: 'hu', password: 'hs' });
      assert.deepEqual(await p.get('plain.example'), { kind: 'basic', username: 'pu', password: 'pp' });
      assert.equal(await p.get('nothing.example'), undefined);
      assert.ok((await calls()).includes('docker-credential-imcstore plain.example'));
    });

    it('a helper that is not installed fails only the registry that needs it', async () => {
      const c = parseDockerConfig(
        JSON.stringify({ credHelpers: { 'ecr.example': 'imc-not-installed' }, auths: { 'ok.example': { auth: b64('u:p') } } }),
        '/home/u/.docker/config.json',
      );
      const p = dockerConfigProvider(c);
      assert.deepEqual(await p.get('ok.example'), { kind: 'basic', username: 'u', password: 'p' });
      await assert.rejects(
        p.get('ecr.example'),
        /^Error: credentials for ecr\.example \(credHelpers in \/home\/u\/\.docker\/config\.json\) needs docker-credential-imc-not-installed, which is not installed or not on PATH$/,
      );
    });
  });
});
