import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { DEFAULT_CERTS_DIRS, defaultCertsDirs, loadHostTls, type HostTls } from '../../src/oci/certs-dir.js';
import { createDispatcher, proxySettings, schemeFor, type DispatcherOptions } from '../../src/oci/dispatcher.js';
import { isOciError } from '../../src/oci/errors.js';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy.js';
import { buildImage, type BuiltImage } from '../support/images.js';
import { createPki, type TestPki } from '../support/pki.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const REPO = 'net/app';
const TAG = '1';

type Files = Record<string, string | { symlinkTo: string }>;

/** A certs directory: `{ '<host[:port]>': { 'ca.crt': pem, ... } }`. */
async function makeCertsDir(root: string, hosts: Record<string, Files>): Promise<string> {
  const dir = await mkdtemp(join(root, 'certs-'));
  for (const [host, files] of Object.entries(hosts)) {
    await mkdir(join(dir, host), { recursive: true });
    for (const [name, content] of Object.entries(files)) {
      if (typeof content === 'string') await writeFile(join(dir, host, name), content);
      else await symlink(content.symlinkTo, join(dir, host, name));
    }
  }
  return dir;
}

async function withDispatcher<T>(o: DispatcherOptions, fn: (d: Dispatcher) => Promise<T>): Promise<T> {
  const d = createDispatcher(o);
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

async function expectOk(r: Dispatcher.ResponseData, status: number): Promise<Buffer> {
  const body = Buffer.from(await r.body.arrayBuffer());
  assert.equal(r.statusCode, status, body.toString('utf8'));
  return body;
}

/** Pushes an image with plain API calls, so a registry that demands a client certificate can be filled too. */
async function pushRaw(d: Dispatcher, base: string, img: BuiltImage): Promise<void> {
  for (const b of img.blobs) {
    const start = await request(`${base}/v2/${REPO}/blobs/uploads/`, { method: 'POST', dispatcher: d });
    await expectOk(start, 202);
    const loc = new URL(String(start.headers.location), base);
    loc.searchParams.set('digest', b.descriptor.digest);
    await expectOk(await request(loc, { method: 'PUT', body: b.bytes, headers: { 'content-type': 'application/octet-stream' }, dispatcher: d }), 201);
  }
  const put = await request(`${base}/v2/${REPO}/manifests/${TAG}`, { method: 'PUT', body: img.bytes, headers: { 'content-type': img.mediaType }, dispatcher: d });
  await expectOk(put, 201);
}

/** GET /v2/, the manifest by tag and the first layer, each checked byte for byte. */
async function readImage(d: Dispatcher, base: string, img: BuiltImage): Promise<void> {
  await expectOk(await request(`${base}/v2/`, { dispatcher: d }), 200);
  const m = await request(`${base}/v2/${REPO}/manifests/${TAG}`, { headers: { accept: img.mediaType }, dispatcher: d });
  assert.deepEqual(await expectOk(m, 200), img.bytes);
  const layer = img.layers[0]!;
  const b = await request(`${base}/v2/${REPO}/blobs/${layer.descriptor.digest}`, { dispatcher: d });
  assert.deepEqual(await expectOk(b, 200), layer.bytes);
}

/** The registry served the manifest and blob reads (they reached it, by whatever route). */
async function assertServedReads(reg: TestRegistry, img: BuiltImage): Promise<void> {
  const log = await reg.accessLog();
  assert.ok(log.some((e) => e.method === 'GET' && e.path === `/v2/${REPO}/manifests/${TAG}` && e.status === 200), JSON.stringify(log));
  assert.ok(log.some((e) => e.method === 'GET' && e.path === `/v2/${REPO}/blobs/${img.layers[0]!.descriptor.digest}` && e.status === 200));
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  assert.fail('expected the request to fail');
}

function withCredentials(proxyUrl: string, user: string, password: string): string {
  const u = new URL(proxyUrl);
  u.username = user;
  u.password = password;
  return u.href;
}

describe('registry traffic through proxies and with certs directories (real registries)', function () {
  this.timeout(60_000);
  let pki: TestPki;
  let scratch: string;
  let plain: TestRegistry; // plain HTTP
  let privateCa: TestRegistry; // HTTPS, certificate from pki.ca
  let clientAuth: TestRegistry; // HTTPS from pki.ca, demands a client certificate from pki.clientCa
  let proxy: ConnectProxy;
  let other: ConnectProxy;
  let caDir: string; // privateCa → ca.crt
  let clientDir: string; // clientAuth → ca.crt, client.cert, client.key
  let caTls: HostTls;
  let clientTls: HostTls;
  const images = new Map<TestRegistry, BuiltImage>();

  before(async () => {
    [pki, scratch] = await Promise.all([createPki(), mkdtemp(join(tmpdir(), 'imc-networks-'))]);
    const server = { cert: pki.server.cert, key: pki.server.key };
    [plain, privateCa, clientAuth, proxy, other] = await Promise.all([
      startRegistry(),
      startRegistry({ tlsFiles: server }),
      startRegistry({ tlsFiles: { ...server, clientCa: pki.clientCa.cert, client: { cert: pki.client.cert, key: pki.client.key } } }),
      startConnectProxy(),
      startConnectProxy(),
    ]);
    caDir = await makeCertsDir(scratch, { [privateCa.host]: { 'ca.crt': pki.ca.certPem } });
    clientDir = await makeCertsDir(scratch, {
      [clientAuth.host]: { 'ca.crt': pki.ca.certPem, 'client.cert': pki.client.certPem, 'client.key': pki.client.keyPem },
    });
    caTls = (await loadHostTls(privateCa.host, [caDir]))!;
    clientTls = (await loadHostTls(clientAuth.host, [clientDir]))!;
    // Filled through a plain undici Agent, independent of the code under test.
    const filler = new Agent({ connect: { rejectUnauthorized: false, cert: pki.client.certPem, key: pki.client.keyPem } });
    try {
      for (const reg of [plain, privateCa, clientAuth]) {
        const img = buildImage();
        await pushRaw(filler, reg.url, img);
        images.set(reg, img);
      }
    } finally {
      await filler.close();
    }
  });

  beforeEach(async () => {
    proxy.reset();
    other.reset();
    await Promise.all([plain.resetLog(), privateCa.resetLog(), clientAuth.resetLog()]);
  });

  after(async () => {
    await Promise.all([plain?.stop(), privateCa?.stop(), clientAuth?.stop(), proxy?.stop(), other?.stop(), pki?.remove()]);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  describe('proxies', () => {
    it('sends plain HTTP through HTTP_PROXY in absolute form: /v2/, a manifest and a blob', async () => {
      const img = images.get(plain)!;
      await withDispatcher({ host: plain.host, env: { HTTP_PROXY: proxy.url } }, (d) => readImage(d, plain.url, img));
      assert.deepEqual(proxy.targets(), [plain.host]);
      assert.deepEqual(
        proxy.log.map((r) => `${r.method} ${r.path}`),
        ['GET /v2/', `GET /v2/${REPO}/manifests/${TAG}`, `GET /v2/${REPO}/blobs/${img.layers[0]!.descriptor.digest}`],
      );
      await assertServedReads(plain, img);
    });

    it('goes direct for a NO_PROXY host (name, CIDR block, matching port) and through the proxy when the entry names another port', async () => {
      const img = images.get(plain)!;
      const port = plain.host.split(':')[1]!;
      for (const noProxy of ['127.0.0.1', 'example.test, 127.0.0.0/8', `127.0.0.1:${port}`, '*']) {
        await withDispatcher({ host: plain.host, env: { HTTP_PROXY: proxy.url, NO_PROXY: noProxy } }, (d) => readImage(d, plain.url, img));
        assert.deepEqual(proxy.log, [], `NO_PROXY=${noProxy}`);
      }
      await assertServedReads(plain, img);
      await withDispatcher({ host: plain.host, env: { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1:1' } }, (d) => readImage(d, plain.url, img));
      assert.deepEqual(proxy.targets(), [plain.host]);
    });

    it('tunnels HTTPS through HTTPS_PROXY with CONNECT and verifies the registry inside the tunnel with the certs-dir CA', async () => {
      const img = images.get(privateCa)!;
      await withDispatcher({ host: privateCa.host, tls: caTls, env: { HTTPS_PROXY: proxy.url } }, (d) => readImage(d, privateCa.url, img));
      assert.ok(proxy.log.length > 0);
      assert.ok(proxy.log.every((r) => r.method === 'CONNECT' && r.target === privateCa.host), JSON.stringify(proxy.log));
      await assertServedReads(privateCa, img);

      // The same tunnel without the CA: the registry's certificate is refused inside it.
      proxy.reset();
      const err = await withDispatcher({ host: privateCa.host, env: { HTTPS_PROXY: proxy.url } }, (d) => failure(request(`${privateCa.url}/v2/`, { dispatcher: d })));
      assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', String(err));
      assert.deepEqual(proxy.targets(), [privateCa.host]);
    });

    it('presents the client certificate through a CONNECT tunnel', async () => {
      const img = images.get(clientAuth)!;
      await withDispatcher({ host: clientAuth.host, tls: clientTls, env: { https_proxy: proxy.url } }, (d) => readImage(d, clientAuth.url, img));
      assert.deepEqual(proxy.targets(), [clientAuth.host]);
      await assertServedReads(clientAuth, img);
    });

    it('HTTPS falls back to HTTP_PROXY when HTTPS_PROXY is unset; lower-case variables win over upper-case', async () => {
      const img = images.get(privateCa)!;
      await withDispatcher({ host: privateCa.host, tls: caTls, env: { HTTP_PROXY: proxy.url } }, (d) => readImage(d, privateCa.url, img));
      assert.deepEqual(proxy.targets(), [privateCa.host]);
      proxy.reset();
      await withDispatcher({ host: privateCa.host, tls: caTls, env: { https_proxy: other.url, HTTPS_PROXY: proxy.url } }, (d) => readImage(d, privateCa.url, img));
      assert.deepEqual([other.targets(), proxy.targets()], [[privateCa.host], []]);
      // no_proxy set (even empty) overrides NO_PROXY the same way.
      other.reset();
      await withDispatcher({ host: plain.host, env: { http_proxy: other.url, no_proxy: '', NO_PROXY: '127.0.0.1' } }, (d) => readImage(d, plain.url, images.get(plain)!));
      assert.deepEqual(other.targets(), [plain.host]);
    });

    it('reads the proxy variables from `env`, and from process.env only when no env is given', async () => {
      const img = images.get(plain)!;
      const names = ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];
      const saved = names.map((n) => process.env[n]);
      for (const n of names) delete process.env[n];
      process.env.HTTP_PROXY = proxy.url;
      try {
        await withDispatcher({ host: plain.host, env: {} }, (d) => readImage(d, plain.url, img));
        assert.deepEqual(proxy.log, []);
        await withDispatcher({ host: plain.host }, (d) => readImage(d, plain.url, img));
        assert.deepEqual(proxy.targets(), [plain.host]);
      } finally {
        names.forEach((n, i) => {
          if (saved[i] === undefined) delete process.env[n];
          else process.env[n] = saved[i];
        });
      }
    });

    it('sends credentials from the proxy URL as Proxy-Authorization; without them the 407 fails the request, and no secret is in any error', async () => {
      const guarded = await startConnectProxy({ auth: { user: 'proxyuser', password: 'pr0xy-s3cret' } });
      try {
        const img = images.get(privateCa)!;
        const withCreds = withCredentials(guarded.url, 'proxyuser', 'pr0xy-s3cret');
        await withDispatcher({ host: privateCa.host, tls: caTls, env: { HTTPS_PROXY: withCreds } }, (d) => readImage(d, privateCa.url, img));
        assert.ok(guarded.log.length > 0 && guarded.log.every((r) => r.authorized), JSON.stringify(guarded.log));
        await withDispatcher({ host: plain.host, env: { HTTP_PROXY: withCreds } }, (d) => readImage(d, plain.url, images.get(plain)!));
        assert.ok(guarded.log.some((r) => r.method === 'GET' && r.authorized));

        guarded.reset();
        const wrong = withCredentials(guarded.url, 'proxyuser', 'wr0ng-s3cret');
        const tunnel = await withDispatcher({ host: privateCa.host, tls: caTls, env: { HTTPS_PROXY: wrong } }, (d) => failure(request(`${privateCa.url}/v2/`, { dispatcher: d })));
        assert.match(tunnel.message, /\(407\)/);
        const absolute = await withDispatcher({ host: plain.host, env: { HTTP_PROXY: wrong } }, (d) => failure(request(`${plain.url}/v2/`, { dispatcher: d })));
        assert.match(absolute.message, /407/);
        for (const e of [tunnel, absolute]) assert.doesNotMatch(`${e.message} ${String(e.cause ?? '')}`, /s3cret|cHJveHl1c2Vy/);
        assert.ok(guarded.log.length >= 2 && guarded.log.every((r) => !r.authorized));
      } finally {
        await guarded.stop();
      }
    });

    it('a proxy that never answers fails the request after the headers timeout, for CONNECT and for absolute-form requests', async () => {
      const wedged = await startConnectProxy({ stall: true });
      try {
        const cases: Array<[TestRegistry, HostTls | undefined, NodeJS.ProcessEnv]> = [[privateCa, caTls, { HTTPS_PROXY: wedged.url }], [plain, undefined, { HTTP_PROXY: wedged.url }]];
        for (const [reg, tls, env] of cases) {
          const started = performance.now();
          const err = await withDispatcher({ host: reg.host, tls, headersTimeoutMs: 200, env }, (d) => failure(request(`${reg.url}/v2/`, { dispatcher: d })));
          assert.equal(err.code, 'UND_ERR_HEADERS_TIMEOUT', String(err));
          // undici's timers tick about once a second; far from its 300 s default for proxy connections.
          assert.ok(performance.now() - started < 5_000);
        }
        assert.deepEqual(wedged.log.map((r) => `${r.method} ${r.target}`), [`CONNECT ${privateCa.host}`, `GET ${plain.host}`]);
      } finally {
        await wedged.stop();
      }
    });

    it('refuses an unusable proxy variable with one line naming it, never echoing its value', () => {
      for (const [env, why] of [
        [{ HTTPS_PROXY: 'socks5://user:s3cret@proxy.corp:1080' }, /HTTPS_PROXY: unsupported proxy scheme socks5: in socks5:\/\/proxy\.corp:1080/],
        [{ http_proxy: 'http://user:s3cret@[not-an-ip' }, /http_proxy is not a valid proxy URL/],
      ] as const) {
        assert.throws(
          () => createDispatcher({ host: 'registry.example', env }),
          (e: unknown) => {
            assert.ok(isOciError(e));
            assert.match(e.message, /^registry\.example: /);
            assert.match(e.message, why);
            assert.doesNotMatch(e.message, /s3cret|\n/);
            return true;
          },
        );
      }
      // A proxy without a scheme is HTTP, as curl and Go read it.
      assert.equal(proxySettings({ HTTPS_PROXY: 'proxy.corp:3128' }).httpsProxy?.href, 'http://proxy.corp:3128/');
    });
  });

  describe('certs directories', () => {
    it('verifies a registry with a private CA through the certs dir, and refuses it without (or with an unrelated CA only)', async () => {
      const img = images.get(privateCa)!;
      await withDispatcher({ host: privateCa.host, tls: caTls, env: {} }, (d) => readImage(d, privateCa.url, img));
      await assertServedReads(privateCa, img);

      const unrelatedDir = await makeCertsDir(scratch, { [privateCa.host]: { 'ca.crt': pki.unrelatedCa.certPem } });
      const unrelated = await loadHostTls(privateCa.host, [unrelatedDir], {});
      for (const tls of [undefined, unrelated]) {
        await privateCa.resetLog();
        const err = await withDispatcher({ host: privateCa.host, tls, env: {} }, (d) => failure(request(`${privateCa.url}/v2/`, { dispatcher: d })));
        assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', String(err));
        assert.deepEqual(await privateCa.accessLog(), []);
      }
    });

    it('presents client.cert/client.key to a registry that demands a client certificate, and is turned away without them', async () => {
      const img = images.get(clientAuth)!;
      await withDispatcher({ host: clientAuth.host, tls: clientTls, env: {} }, (d) => readImage(d, clientAuth.url, img));
      await assertServedReads(clientAuth, img);

      await clientAuth.resetLog();
      const caOnly = await loadHostTls(clientAuth.host, [await makeCertsDir(scratch, { [clientAuth.host]: { 'ca.crt': pki.ca.certPem } })]);
      assert.ok(caOnly && !caOnly.cert);
      const err = await withDispatcher({ host: clientAuth.host, tls: caOnly, env: {} }, (d) => failure(request(`${clientAuth.url}/v2/`, { dispatcher: d })));
      // TLS 1.3: the server rejects the missing certificate after the client's handshake completes,
      // so undici sees the connection closed (or the alert) rather than a verification error.
      assert.match(`${err.code} ${err.message}`, /UND_ERR_SOCKET|ECONNRESET|CERTIFICATE_REQUIRED|certificate required/i, String(err));
      assert.deepEqual(await clientAuth.accessLog(), []);
    });

    it('insecure skips verification (direct and inside a tunnel) but still presents the client certificate', async () => {
      const noCa: HostTls = { ...clientTls, ca: undefined };
      for (const env of [{}, { HTTPS_PROXY: proxy.url }]) {
        await withDispatcher({ host: clientAuth.host, tls: noCa, insecure: true, env }, (d) => readImage(d, clientAuth.url, images.get(clientAuth)!));
        await withDispatcher({ host: privateCa.host, insecure: true, env }, (d) => readImage(d, privateCa.url, images.get(privateCa)!));
      }
      assert.deepEqual(proxy.targets().sort(), [clientAuth.host, privateCa.host].sort());
    });

    it('keeps the system trust: the CA list holds every Node root, the NODE_EXTRA_CA_CERTS file and the directory CAs', async () => {
      const extra = join(scratch, 'extra-ca.pem');
      await writeFile(extra, `# a bundle with a comment\n${pki.ca.certPem}\nstray text\n`);
      const dir = await makeCertsDir(scratch, { [privateCa.host]: { 'ca.crt': pki.unrelatedCa.certPem, 'other.crt': pki.clientCa.certPem } });
      const tls = (await loadHostTls(privateCa.host, [dir], { NODE_EXTRA_CA_CERTS: extra }))!;
      const ca = new Set(tls.ca);
      assert.ok(rootCertificates.length > 100);
      assert.ok(rootCertificates.every((r) => ca.has(r)), 'every tls.rootCertificates entry');
      for (const pem of [pki.ca.certPem, pki.unrelatedCa.certPem, pki.clientCa.certPem]) assert.ok(ca.has(pem.trim()));
      assert.equal(tls.ca!.length, rootCertificates.length + 3);

      // The registry's CA is only in the NODE_EXTRA_CA_CERTS file, yet it stays trusted next to the dir's CAs.
      await withDispatcher({ host: privateCa.host, tls, env: {} }, (d) => readImage(d, privateCa.url, images.get(privateCa)!));
      const without = (await loadHostTls(privateCa.host, [dir], {}))!;
      const err = await withDispatcher({ host: privateCa.host, tls: without, env: {} }, (d) => failure(request(`${privateCa.url}/v2/`, { dispatcher: d })));
      assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('looks in <dir>/<host:port> before <dir>/<host>, and the first directory that has the host wins', async () => {
      const host = '127.0.0.1:5000';
      const both = await makeCertsDir(scratch, { [host]: { 'ca.crt': pki.ca.certPem }, '127.0.0.1': { 'ca.crt': pki.unrelatedCa.certPem } });
      const bareOnly = await makeCertsDir(scratch, { '127.0.0.1': { 'ca.crt': pki.unrelatedCa.certPem } });
      const otherHost = await makeCertsDir(scratch, { 'registry.example': { 'ca.crt': pki.clientCa.certPem } });
      const missing = join(scratch, 'does-not-exist');

      const exact = (await loadHostTls(host, [both], {}))!;
      assert.equal(exact.dir, join(both, host));
      assert.ok(exact.ca!.includes(pki.ca.certPem.trim()) && !exact.ca!.includes(pki.unrelatedCa.certPem.trim()));
      assert.equal((await loadHostTls(host, [bareOnly], {}))!.dir, join(bareOnly, '127.0.0.1'));
      assert.equal((await loadHostTls(host, [missing, otherHost, bareOnly, both], {}))!.dir, join(bareOnly, '127.0.0.1'));
      assert.equal(await loadHostTls(host, [missing, otherHost], {}), undefined);
      assert.equal((await loadHostTls('registry.example', [otherHost], {}))!.dir, join(otherHost, 'registry.example'));
      assert.deepEqual(DEFAULT_CERTS_DIRS, ['/etc/containers/certs.d', '/etc/docker/certs.d']);
      assert.deepEqual(defaultCertsDirs(), [...DEFAULT_CERTS_DIRS]);
    });

    it('an empty host directory means HTTPS with the default trust; a loopback host with a directory is HTTPS too', async () => {
      const dir = await makeCertsDir(scratch, { [privateCa.host]: {} });
      const tls = (await loadHostTls(privateCa.host, [dir], {}))!;
      assert.deepEqual({ ca: tls.ca, cert: tls.cert, files: tls.files }, { ca: undefined, cert: undefined, files: [] });
      assert.equal(schemeFor(privateCa.host, { tls }), 'https');
      assert.equal(schemeFor(privateCa.host, {}), 'http');
      assert.equal(schemeFor('localhost:5000', {}), 'http');
      assert.equal(schemeFor('registry.example', {}), 'https');
      assert.equal(schemeFor('registry.example', { tls }), 'https');
      assert.equal(schemeFor(privateCa.host, { insecure: true, tls }), 'probe');
      assert.equal(schemeFor('registry.example', { insecure: true }), 'probe');
    });

    it('a broken directory is one line naming the host and the file: .cert without .key, .key without .cert, unreadable or non-PEM .crt, mismatched pair', async () => {
      const host = 'registry.example:5000';
      const cases: Array<[Files, RegExp]> = [
        [{ 'client.cert': pki.client.certPem }, /client\.cert: client certificate without its key client\.key \(CA certificates use the \.crt extension\)/],
        [{ 'client.key': pki.client.keyPem }, /client\.key: key without its client certificate client\.cert/],
        [{ 'ca.crt': { symlinkTo: join(scratch, 'nowhere.pem') } }, /cannot read .*ca\.crt: ENOENT/],
        [{ 'ca.crt': 'not a certificate\n' }, /ca\.crt: no PEM certificate in it/],
        [{ 'ca.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' }, /ca\.crt: not a valid certificate/],
        [{ 'client.cert': pki.client.certPem, 'client.key': pki.ca.keyPem }, /client\.cert with client\.key: unusable client certificate/],
      ];
      for (const [files, why] of cases) {
        const dir = await makeCertsDir(scratch, { [host]: files });
        await assert.rejects(loadHostTls(host, [dir], {}), (e: unknown) => {
          assert.ok(isOciError(e), String(e));
          assert.ok(e.message.startsWith(`TLS files for ${host}: `), e.message);
          assert.ok(e.message.includes(join(dir, host)), e.message);
          assert.match(e.message, why);
          assert.doesNotMatch(e.message, /\n/);
          assert.equal(e.retryable, false);
          assert.doesNotMatch(e.message, /BEGIN|PRIVATE/);
          return true;
        });
      }
    });
  });
});
