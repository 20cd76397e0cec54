/**
 * `image-mirror sync` behind a corporate network, end to end in a child process: HTTPS_PROXY /
 * NO_PROXY from the environment, a registry signed by a private CA reached through --certs-dir,
 * and one that demands client certificates. The registries are real docker-registry instances.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy.js';
import { createPki, type TestPki } from '../support/pki.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');
const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];

async function sync(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: '/nonexistent' };
  for (const v of PROXY_VARS) delete base[v];
  try {
    const r = await exec(process.execPath, [BIN, 'sync', ...args], { env: { ...base, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('sync behind proxies and private CAs (CLI, real registries)', function () {
  this.timeout(120_000);
  let pki: TestPki;
  let dir: string;
  let certs: string;
  let source: TestRegistry;
  let privateCa: TestRegistry;
  let clientCert: TestRegistry;
  let proxy: ConnectProxy;
  let digest: string;

  before(async () => {
    [pki, dir] = await Promise.all([createPki(), mkdtemp(join(tmpdir(), 'imc-net-cli-'))]);
    [source, privateCa, clientCert, proxy] = await Promise.all([
      startRegistry(),
      startRegistry({ tlsFiles: { cert: pki.server.cert, key: pki.server.key } }),
      startRegistry({ tlsFiles: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.clientCa.cert, client: { cert: pki.client.cert, key: pki.client.key } } }),
      startConnectProxy(),
    ]);
    const c = new RegistryClient(source.host);
    digest = (await pushImage(c.repository('dev/web'), buildImage({ layers: [2048, 4096] }), '1.0.0')).digest;
    await c.close();
    // The containers certs.d layout: <dir>/<host:port>/ca.crt, client.cert, client.key.
    certs = join(dir, 'certs.d');
    await mkdir(join(certs, privateCa.host), { recursive: true });
    await copyFile(pki.ca.cert, join(certs, privateCa.host, 'ca.crt'));
    await mkdir(join(certs, clientCert.host), { recursive: true });
    await copyFile(pki.ca.cert, join(certs, clientCert.host, 'ca.crt'));
    await copyFile(pki.client.cert, join(certs, clientCert.host, 'client.cert'));
    await copyFile(pki.client.key, join(certs, clientCert.host, 'client.key'));
  });
  after(async () => {
    await Promise.all([source?.stop(), privateCa?.stop(), clientCert?.stop(), proxy?.stop()]);
    await Promise.all([pki?.remove(), rm(dir, { recursive: true, force: true })]);
  });

  async function specFile(name: string, target: TestRegistry): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(
      file,
      `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${name}, namespace: ci}
spec:
  source: {repository: ${source.host}/dev/web, tags: ["1.0.0"]}
  targets: [{repository: ${target.host}/mirror/${name}}]
`,
    );
    return file;
  }

  it('a registry signed by a private CA works through --certs-dir (verified HTTPS, loopback included), and is refused without it', async () => {
    const file = await specFile('private-ca', privateCa);
    const without = await sync(['-f', file, '--certs-dir', join(dir, 'empty')], {});
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stderr, /ci\/private-ca: RegistryError: .*/);
    const r = await sync(['-f', file, '--certs-dir', certs], {});
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${privateCa.host}/mirror/private-ca:1\\.0\\.0\\s+Copied\\s+${digest}`));
  });

  it('a registry demanding client certificates works with client.cert/client.key', async () => {
    const file = await specFile('client-cert', clientCert);
    const r = await sync(['-f', file, '--certs-dir', certs], {});
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Copied/);
    // Without the client pair (CA only) the registry refuses the handshake.
    const caOnly = join(dir, 'ca-only');
    await mkdir(join(caOnly, clientCert.host), { recursive: true });
    await copyFile(pki.ca.cert, join(caOnly, clientCert.host, 'ca.crt'));
    const refused = await sync(['-f', await specFile('client-cert-missing', clientCert), '--certs-dir', caOnly], {});
    assert.equal(refused.code, 1);
  });

  it('HTTPS_PROXY/HTTP_PROXY carry every registry request; a NO_PROXY host none', async () => {
    const file = await specFile('proxied', privateCa);
    proxy.reset();
    await source.resetLog();
    const r = await sync(['-f', file, '--certs-dir', certs], { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url });
    assert.equal(r.code, 0, r.stderr);
    // Every request the plain-HTTP source answered came through the proxy (absolute form, one log entry each).
    const answered = (await source.accessLog()).length;
    assert.equal(proxy.log.filter((e) => e.target === source.host).length, answered, JSON.stringify(proxy.log));
    // The TLS registry through a CONNECT tunnel (verified inside it), the plain-HTTP source in absolute form.
    assert.ok(proxy.log.some((e) => e.method === 'CONNECT' && e.target === privateCa.host), JSON.stringify(proxy.log));
    assert.ok(proxy.log.some((e) => e.method !== 'CONNECT' && e.target === source.host), JSON.stringify(proxy.log));
    const sourceRequests = proxy.log.filter((e) => e.target === source.host).length;
    assert.ok(sourceRequests >= 2, `tags/list and the source HEAD go through the proxy (saw ${sourceRequests})`);

    proxy.reset();
    const bypass = await sync(['-f', await specFile('bypassed', privateCa), '--certs-dir', certs], {
      HTTPS_PROXY: proxy.url,
      HTTP_PROXY: proxy.url,
      NO_PROXY: `${source.host},${privateCa.host}`,
    });
    assert.equal(bypass.code, 0, bypass.stderr);
    assert.deepEqual(proxy.log, [], 'NO_PROXY hosts are reached directly');
  });
});
