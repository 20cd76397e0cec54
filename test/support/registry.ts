/**
 * Starts Debian's docker-registry (distribution 2.8.2) on a free loopback port, in no-auth,
 * htpasswd or token mode, and exposes its own access log so tests can count requests.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { startTokenServer, type TokenServer, type TokenGrantRule } from './token-server.js';

const execFileP = promisify(execFile);

export interface AccessLogEntry {
  method: string;
  /** Request URI as logged, query included. */
  path: string;
  status: number;
  bytes: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  dir: string;
  auth: 'none' | 'htpasswd' | 'token';
  users: Record<string, string>;
  token?: TokenServer;
  /** Every request the registry logged so far (flushed first). */
  accessLog(): Promise<AccessLogEntry[]>;
  resetLog(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  users?: Record<string, string>;
  /** Token mode: what each account may do; default: every user may push and pull everything. */
  rules?: TokenGrantRule[];
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (clients must skip verification). */
  tls?: boolean;
  /**
   * Serve HTTPS with this certificate and key (e.g. one signed by a test CA, see pki.ts). With
   * `clientCa` the registry requires a client certificate signed by it (`http.tls.clientcas`), and
   * its own readiness and log probes present `client`. Takes precedence over `tls`.
   */
  tlsFiles?: { cert: string; key: string; clientCa?: string; client?: { cert: string; key: string } };
  /**
   * Send distribution notifications (`notifications.endpoints`) to `url`, with these request
   * headers (e.g. `Authorization: Bearer …`); pulls are not sent unless `ignoreActions` says
   * otherwise. Timeout 1 s, backoff 100 ms, so a test hears of a push within a fraction of a second.
   */
  notifications?: { url: string; headers?: Record<string, string>; ignoreActions?: string[] };
  /** `storage.delete.enabled` (default true); false: every DELETE of a manifest answers 405 UNSUPPORTED. */
  deleteEnabled?: boolean;
}

const DEFAULT_USERS: Record<string, string> = { alice: 'alice-secret' };
const SENTINEL = '/v2/?__log_sentinel=';
// gorilla/handlers CombinedLoggingHandler, which distribution 2.8.2 writes to stdout.
const LOG_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-)/;

/** A self-signed certificate for 127.0.0.1 (SAN IP), as the registry's TLS config wants it. */
async function selfSignedCertificate(certPath: string, keyPath: string): Promise<void> {
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath,
  ]);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function htpasswdFile(path: string, users: Record<string, string>): Promise<void> {
  const lines: string[] = [];
  for (const [u, p] of Object.entries(users)) {
    const { stdout } = await execFileP('htpasswd', ['-Bbn', u, p]);
    lines.push(stdout.trim());
  }
  await writeFile(path, lines.join('\n') + '\n');
}

interface TlsConfig {
  cert: string;
  key: string;
  clientCa?: string;
}

function tlsYaml(tls: TlsConfig): string {
  const clientCas = tls.clientCa ? `    clientcas:\n      - ${tls.clientCa}\n` : '';
  return `  tls:\n    certificate: ${tls.cert}\n    key: ${tls.key}\n${clientCas}`;
}

function notificationsYaml(n: NonNullable<StartRegistryOptions['notifications']>): string {
  const headers = Object.entries(n.headers ?? {})
    .map(([k, v]) => `        ${JSON.stringify(k)}: [${JSON.stringify(v)}]\n`)
    .join('');
  const ignore = n.ignoreActions ?? ['pull'];
  return (
    `notifications:\n  endpoints:\n    - name: test-listener\n      url: ${JSON.stringify(n.url)}\n` +
    (headers ? `      headers:\n${headers}` : '') +
    `      timeout: 1s\n      threshold: 3\n      backoff: 100ms\n` +
    (ignore.length > 0 ? `      ignore:\n        actions: [${ignore.map((a) => JSON.stringify(a)).join(', ')}]\n` : '')
  );
}

function configYaml(dir: string, port: number, authBlock: string, tls?: TlsConfig, notifications?: StartRegistryOptions['notifications'], deleteEnabled = true): string {
  return `version: 0.1
log:
  level: error
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: ${deleteEnabled}
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  headers:
    X-Content-Type-Options: [nosniff]
${tls ? tlsYaml(tls) : ''}${authBlock}${notifications ? notificationsYaml(notifications) : ''}`;
}

export async function startRegistry(o: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = o.auth ?? 'none';
  const users = auth === 'none' ? {} : (o.users ?? DEFAULT_USERS);
  const dir = await mkdtemp(join(tmpdir(), 'imc-registry-'));
  let token: TokenServer | undefined;
  try {
    let authBlock = '';
    if (auth === 'htpasswd') {
      await htpasswdFile(join(dir, 'htpasswd'), users);
      authBlock = `auth:\n  htpasswd:\n    realm: test-realm\n    path: ${join(dir, 'htpasswd')}\n`;
    } else if (auth === 'token') {
      const rules: TokenGrantRule[] = o.rules ?? Object.keys(users).map((account) => ({ account, repository: '*', actions: ['push', 'pull'] }));
      token = await startTokenServer({ users, rules });
      authBlock =
        `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n` +
        `    issuer: ${token.issuer}\n    rootcertbundle: ${token.rootCertBundle}\n`;
    }
    let tls: TlsConfig | undefined;
    if (o.tlsFiles) {
      tls = { cert: o.tlsFiles.cert, key: o.tlsFiles.key, clientCa: o.tlsFiles.clientCa };
    } else if (o.tls) {
      tls = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
      await selfSignedCertificate(tls.cert, tls.key);
    }
    // A port picked free can be taken before the registry binds it; try a few.
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const cfg = join(dir, 'config.yml');
      await writeFile(cfg, configYaml(dir, port, authBlock, tls, o.notifications, o.deleteEnabled));
      try {
        return await launch(dir, port, cfg, auth, users, token, tls !== undefined, o.tlsFiles?.client);
      } catch (e) {
        lastErr = e;
        if (!/address already in use/.test(String(e))) break;
      }
    }
    throw lastErr;
  } catch (e) {
    await token?.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function launch(
  dir: string,
  port: number,
  cfg: string,
  auth: 'none' | 'htpasswd' | 'token',
  users: Record<string, string>,
  token: TokenServer | undefined,
  tls = false,
  probeClient?: { cert: string; key: string },
): Promise<TestRegistry> {
  const clientPem = probeClient ? { cert: await readFile(probeClient.cert), key: await readFile(probeClient.key) } : {};
  const child: ChildProcess = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  const host = `127.0.0.1:${port}`;
  const url = `${tls ? 'https' : 'http'}://${host}`;
  // Our own probes of a TLS test registry skip verification of its certificate (self-signed or
  // from a test CA), and present the client certificate a registry with clientcas demands.
  const dispatcher = tls ? new Agent({ connect: { rejectUnauthorized: false, ...clientPem } }) : undefined;
  const fetch = (u: string) => undiciFetch(u, dispatcher ? { dispatcher } : {});
  let entries: AccessLogEntry[] = [];
  let sentinels = new Set<string>();
  let partial = '';
  let stderr = '';
  let exited: { code: number | null } | undefined;
  const exitWaiters: Array<() => void> = [];
  const logWaiters: Array<() => void> = [];

  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = LOG_LINE.exec(line);
      if (!m) continue;
      const path = m[2]!;
      if (path.startsWith(SENTINEL)) {
        sentinels.add(path);
      } else {
        entries.push({ method: m[1]!, path, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) });
      }
    }
    for (const w of logWaiters.splice(0)) w();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => {
    stderr = (stderr + c).slice(-4000);
  });
  child.on('exit', (code) => {
    exited = { code };
    for (const w of exitWaiters.splice(0)) w();
    for (const w of logWaiters.splice(0)) w();
  });

  // Ready when GET /v2/ answers (200 without auth, 401 with); no fixed sleeps.
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited (${exited.code}) before answering: ${stderr.trim().split('\n').pop() ?? ''}`);
    try {
      const r = await fetch(`${url}/v2/`);
      await r.arrayBuffer();
      if (r.status === 200 || r.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry on ${host} did not answer within 15s`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  let seq = 0;
  // The access log line is written after the response; a sentinel request that we see logged
  // means every request answered before it has been logged too.
  async function flush(): Promise<void> {
    if (exited) return;
    const path = `${SENTINEL}${++seq}`;
    const r = await fetch(`${url}${path}`);
    await r.arrayBuffer();
    const until = Date.now() + 5000;
    while (!sentinels.has(path)) {
      if (exited) return;
      if (Date.now() > until) throw new Error(`access log of ${host} did not show the sentinel request`);
      await new Promise<void>((resolve) => {
        logWaiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  // The log starts empty: readiness probes are not the tests' requests.
  await flush();
  entries = [];

  let stopped = false;
  return {
    host,
    url,
    dir,
    auth,
    users,
    token,
    async accessLog() {
      await flush();
      return entries.slice();
    },
    async resetLog() {
      await flush();
      entries = [];
      sentinels = new Set();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!exited) {
        const done = new Promise<void>((resolve) => exitWaiters.push(resolve));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await done;
        clearTimeout(t);
      }
      await token?.stop();
      await dispatcher?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Writes a manifest straight into the registry's filesystem storage and tags it, for content the
 * registry serves but refuses to accept over the API (signed schema1, manifests over 4 MiB).
 * Returns the digest.
 */
export async function storeManifestDirectly(reg: TestRegistry, repository: string, tag: string, bytes: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { mkdir } = await import('node:fs/promises');
  const hex = createHash('sha256').update(bytes).digest('hex');
  const digest = `sha256:${hex}`;
  const root = join(reg.dir, 'data', 'docker', 'registry', 'v2');
  const put = async (path: string, content: Buffer | string): Promise<void> => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content);
  };
  await put(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), bytes);
  const manifests = join(root, 'repositories', repository, '_manifests');
  await put(join(manifests, 'revisions', 'sha256', hex, 'link'), digest);
  await put(join(manifests, 'tags', tag, 'current', 'link'), digest);
  await put(join(manifests, 'tags', tag, 'index', 'sha256', hex, 'link'), digest);
  return digest;
}
