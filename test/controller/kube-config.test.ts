import assert from 'node:assert/strict';
import { chmod, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { KubeConfigError, loadKubeTransport } from '../../src/controller/kube-config.js';
import { listObjects } from '../../src/controller/kube-http.js';
import { startFakeApiServer } from '../support/fake-apiserver.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, name = 'c'): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  });
}

async function applied(file: string, env: NodeJS.ProcessEnv = {}): Promise<https.RequestOptions> {
  const t = await loadKubeTransport({ file, env });
  const opts: https.RequestOptions = { headers: { accept: 'application/json' } };
  await t.applyToHTTPSOptions(opts);
  return opts;
}

describe('kubeconfig loading without client-node', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imc-kubeconfig-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('server, CA data, tls-server-name, insecure, token; client certificate files relative to the kubeconfig', async () => {
    await writeFile(join(dir, 'client.crt'), 'CERT');
    await writeFile(join(dir, 'client.key'), 'KEY');
    const file = join(dir, 'config');
    await writeFile(
      file,
      kubeconfig(
        { server: 'https://k8s.example:6443', 'certificate-authority-data': b64('CA'), 'tls-server-name': 'api.internal', 'insecure-skip-tls-verify': true },
        { token: 'tok-123', 'client-certificate': 'client.crt', 'client-key': 'client.key' },
      ),
    );
    const t = await loadKubeTransport({ file, env: {} });
    assert.equal(t.getCurrentCluster()?.server, 'https://k8s.example:6443');
    const o = await applied(file);
    assert.equal(String(o.ca), 'CA');
    assert.equal(String(o.cert), 'CERT');
    assert.equal(String(o.key), 'KEY');
    assert.equal(o.servername, 'api.internal');
    assert.equal(o.rejectUnauthorized, false);
    assert.deepEqual(o.headers, { accept: 'application/json', authorization: 'Bearer tok-123' });
  });

  it('basic auth; a token file is read (not the path sent)', async () => {
    const basic = join(dir, 'basic');
    await writeFile(basic, kubeconfig({ server: 'http://127.0.0.1:1' }, { username: 'u', password: 'p' }));
    assert.equal((await applied(basic)).auth, 'u:p');
    await writeFile(join(dir, 'tok'), 'from-file\n');
    const tf = join(dir, 'tf');
    await writeFile(tf, kubeconfig({ server: 'http://127.0.0.1:1' }, { tokenFile: 'tok' }));
    assert.equal(((await applied(tf)).headers as Record<string, string>).authorization, 'Bearer from-file');
  });

  it('KUBECONFIG: files that do not exist are skipped, the first file naming an entry or the current context wins', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await writeFile(a, stringify({ clusters: [{ name: 'x', cluster: { server: 'http://first:1' } }], users: [{ name: 'x', user: { token: 'first' } }] }));
    await writeFile(b, kubeconfig({ server: 'http://second:1' }, { token: 'second' }, 'x'));
    const t = await loadKubeTransport({ env: { KUBECONFIG: [join(dir, 'absent'), a, b].join(delimiter), HOME: dir } });
    assert.equal(t.getCurrentCluster()?.server, 'http://first:1');
  });

  it('in a pod: the service account token and CA, the service host (IPv6 bracketed)', async () => {
    const sa = join(dir, 'sa');
    await mkdir(sa);
    await writeFile(join(sa, 'token'), 'sa-token');
    await writeFile(join(sa, 'ca.crt'), 'SA-CA');
    const t = await loadKubeTransport({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443', HOME: dir }, serviceAccountDir: sa });
    assert.equal(t.getCurrentCluster()?.server, 'https://[fd00::1]:443');
    const o: https.RequestOptions = {};
    await t.applyToHTTPSOptions(o);
    assert.equal(String(o.ca), 'SA-CA');
    assert.deepEqual(o.headers, { authorization: 'Bearer sa-token' });
  });

  it('an exec plugin runs once for concurrent requests and again once its credential expires; a failing one says why, not its output', async () => {
    const count = join(dir, 'runs');
    const plugin = join(dir, 'plugin.mjs');
    await writeFile(
      plugin,
      `#!/usr/bin/env node
import { appendFileSync, readFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(count)}, 'x');
const n = readFileSync(${JSON.stringify(count)}, 'utf8').length;
if (process.env.FAIL) { process.stdout.write('secret-output'); process.stderr.write('no session: run login\\n'); process.exit(1); }
const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
// Expired already: the next request runs the plugin again.
process.stdout.write(JSON.stringify({ apiVersion: info.apiVersion, kind: 'ExecCredential', status: { token: 'exec-' + n + '-' + process.env.EXTRA, expirationTimestamp: new Date(Date.now() - 1000).toISOString() } }));
`,
    );
    await chmod(plugin, 0o755);
    const file = join(dir, 'config');
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], env: [{ name: 'EXTRA', value: 'e' }] };
    await writeFile(file, kubeconfig({ server: 'http://127.0.0.1:1' }, { exec }));
    const t = await loadKubeTransport({ file, env: {} });
    const opts = [{}, {}, {}] as https.RequestOptions[];
    await Promise.all(opts.map((o) => t.applyToHTTPSOptions(o)));
    assert.deepEqual(
      opts.map((o) => (o.headers as Record<string, string>).authorization),
      ['Bearer exec-1-e', 'Bearer exec-1-e', 'Bearer exec-1-e'],
    );
    const later: https.RequestOptions = {};
    await t.applyToHTTPSOptions(later);
    assert.equal((later.headers as Record<string, string>).authorization, 'Bearer exec-2-e');
    assert.equal(await readFile(count, 'utf8'), 'xx');

    await writeFile(file, kubeconfig({ server: 'http://127.0.0.1:1' }, { exec: { ...exec, env: [{ name: 'FAIL', value: '1' }] } }));
    const failing = await loadKubeTransport({ file, env: {} });
    await assert.rejects(failing.applyToHTTPSOptions({}), (e: unknown) => e instanceof KubeConfigError && /no session: run login/.test(e.message) && !e.message.includes('secret-output'));
  });

  it('a legacy auth-provider is handed to client-node; a kubeconfig without a current context is an error naming the file', async () => {
    const file = join(dir, 'config');
    await writeFile(file, kubeconfig({ server: 'http://127.0.0.1:1' }, { 'auth-provider': { name: 'oidc', config: { 'id-token': 'x' } } }));
    // client-node's KubeConfig (mocha may load another copy of the class than the source's dynamic import).
    const t = await loadKubeTransport({ file, env: {} });
    assert.equal(t.constructor.name, KubeConfig.name);
    assert.ok('makeApiClient' in t);
    await writeFile(file, stringify({ clusters: [], users: [], contexts: [] }));
    await assert.rejects(loadKubeTransport({ file, env: {} }), (e: unknown) => e instanceof KubeConfigError && e.message === `kubeconfig ${file}: no current-context`);
  });

  it('lists from a real (fake) API server with the token it was given', async () => {
    const fake = await startFakeApiServer({ namespaces: ['team-a'] });
    try {
      const file = join(dir, 'config');
      await writeFile(file, kubeconfig({ server: fake.url }, { token: 'abc' }));
      const list = await listObjects<{ metadata?: { name?: string } }>(await loadKubeTransport({ file, env: {} }), '/api/v1/namespaces', {}, AbortSignal.timeout(5000));
      assert.ok(list.items.some((n) => n.metadata?.name === 'team-a'));
    } finally {
      await fake.stop();
    }
  });
});
