/**
 * How the controller reaches the API server: the kubeconfig (--kubeconfig, KUBECONFIG,
 * ~/.kube/config) or the pod's service account, as client-go and client-node resolve them.
 *
 * Our own loader rather than client-node's KubeConfig, because loading that one loads every
 * generated API client with it: about 25 MiB of heap and 65 MiB of RSS, and over a second of
 * start-up, in a controller that needs none of them. It covers what kubeconfigs in use carry:
 * server, CA, insecure-skip-tls-verify, tls-server-name; token, token file, client certificate
 * and key, basic auth, and exec credential plugins. A kubeconfig using anything else (a legacy
 * auth-provider, a proxy-url) is handed to client-node, loaded then and only then.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';

/** The cluster fields the controller reads (client-node's Cluster has them too). */
export interface KubeCluster {
  readonly server: string;
  readonly skipTLSVerify?: boolean;
  readonly proxyUrl?: string;
}

/**
 * What the controller's API calls need from a kubeconfig. client-node's KubeConfig fits it too
 * (tests hand theirs in).
 */
export interface KubeTransport {
  getCurrentCluster(): KubeCluster | null;
  /** Sets TLS material and credentials on request options; asked before every request. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A token file (a projected service-account token rotates) is read again after this long, as client-go does. */
export const TOKEN_FILE_REREAD_MS = 60_000;
/** An exec plugin's credential is renewed this long before its expirationTimestamp. */
export const EXEC_RENEW_BEFORE_MS = 30_000;
/** An exec plugin that has not answered in this long failed. */
export const EXEC_TIMEOUT_MS = 60_000;

/** A kubeconfig or in-cluster setting we cannot use; the message names what and where. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

interface NamedCluster {
  name: string;
  cluster: {
    server?: string;
    'certificate-authority'?: string;
    'certificate-authority-data'?: string;
    'insecure-skip-tls-verify'?: boolean;
    'tls-server-name'?: string;
    'proxy-url'?: string;
  };
}

interface ExecConfig {
  command: string;
  args?: string[];
  env?: Array<{ name: string; value: string }>;
  apiVersion?: string;
}

interface NamedUser {
  name: string;
  user?: {
    token?: string;
    tokenFile?: string;
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    username?: string;
    password?: string;
    exec?: ExecConfig;
    'auth-provider'?: unknown;
  };
}

interface KubeconfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string; namespace?: string } }>;
  'current-context'?: string;
}

interface Resolved {
  cluster: KubeCluster & { tlsServerName?: string };
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  tokenFile?: string;
  basic?: string;
  exec?: ExecConfig;
}

export interface LoadOptions {
  /** --kubeconfig: this file only. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** The service account directory (tests). */
  serviceAccountDir?: string;
}

/**
 * The transport for a kubeconfig file, KUBECONFIG, ~/.kube/config or the pod's service account,
 * in that order (client-node's loadFromDefault order). Throws KubeConfigError when none is usable.
 */
export async function loadKubeTransport(o: LoadOptions = {}): Promise<KubeTransport> {
  const env = o.env ?? process.env;
  let files: string[];
  if (o.file) files = [o.file];
  else {
    files = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '' && existsSync(p));
    const home = join(env.HOME ?? homedir(), '.kube', 'config');
    if (files.length === 0 && existsSync(home)) files = [home];
  }
  if (files.length === 0) {
    const sa = o.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
    if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(join(sa, 'token'))) return inCluster(env, sa);
    throw new KubeConfigError('no kubeconfig: give --kubeconfig or KUBECONFIG, write ~/.kube/config, or run in a pod with a service account');
  }
  const merged = mergeFiles(files);
  if (needsClientNode(merged)) return clientNodeTransport(files);
  return new LiteTransport(resolve(merged));
}

function readYaml(path: string): { doc: KubeconfigFile; dir: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${path}: not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) throw new KubeConfigError(`kubeconfig ${path}: not a kubeconfig mapping`);
  return { doc: (doc ?? {}) as KubeconfigFile, dir: dirname(path) };
}

type WithDir<T> = T & { dir: string };

interface Merged {
  clusters: Array<WithDir<NamedCluster>>;
  users: Array<WithDir<NamedUser>>;
  contexts: NonNullable<KubeconfigFile['contexts']>;
  current?: string;
  source: string;
}

/** KUBECONFIG's merge rule: the first file to name an entry (or the current context) wins. */
function mergeFiles(files: string[]): Merged {
  const m: Merged = { clusters: [], users: [], contexts: [], source: files.join(delimiter) };
  for (const f of files) {
    const { doc, dir } = readYaml(f);
    for (const c of doc.clusters ?? []) if (c?.name && !m.clusters.some((x) => x.name === c.name)) m.clusters.push({ ...c, dir });
    for (const u of doc.users ?? []) if (u?.name && !m.users.some((x) => x.name === u.name)) m.users.push({ ...u, dir });
    for (const c of doc.contexts ?? []) if (c?.name && !m.contexts.some((x) => x.name === c.name)) m.contexts.push(c);
    m.current ??= doc['current-context'] || undefined;
  }
  return m;
}

function currentEntries(m: Merged): { cluster: WithDir<NamedCluster>; user?: WithDir<NamedUser> } {
  if (!m.current) throw new KubeConfigError(`kubeconfig ${m.source}: no current-context`);
  const ctx = m.contexts.find((c) => c.name === m.current);
  if (!ctx?.context) throw new KubeConfigError(`kubeconfig ${m.source}: current-context ${m.current} is not among its contexts`);
  const cluster = m.clusters.find((c) => c.name === ctx.context!.cluster);
  if (!cluster?.cluster?.server) throw new KubeConfigError(`kubeconfig ${m.source}: context ${m.current} names no cluster with a server`);
  const user = ctx.context.user ? m.users.find((u) => u.name === ctx.context!.user) : undefined;
  return { cluster, user };
}

function needsClientNode(m: Merged): boolean {
  const { cluster, user } = currentEntries(m);
  return Boolean(cluster.cluster['proxy-url'] || user?.user?.['auth-provider']);
}

function fileOrData(dir: string, file: string | undefined, data: string | undefined, what: string): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (!file) return undefined;
  const path = isAbsolute(file) ? file : join(dir, file);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${what} ${path}: ${(e as Error).message}`);
  }
}

function resolve(m: Merged): Resolved {
  const { cluster: nc, user: nu } = currentEntries(m);
  const c = nc.cluster;
  const u = nu?.user ?? {};
  const udir = nu?.dir ?? nc.dir;
  const r: Resolved = {
    cluster: { server: c.server!, skipTLSVerify: c['insecure-skip-tls-verify'] === true, tlsServerName: c['tls-server-name'] },
    ca: fileOrData(nc.dir, c['certificate-authority'], c['certificate-authority-data'], 'certificate-authority'),
    cert: fileOrData(udir, u['client-certificate'], u['client-certificate-data'], 'client-certificate'),
    key: fileOrData(udir, u['client-key'], u['client-key-data'], 'client-key'),
  };
  if (u.token) r.token = u.token;
  else if (u.tokenFile) r.tokenFile = isAbsolute(u.tokenFile) ? u.tokenFile : join(udir, u.tokenFile);
  if (u.username !== undefined) r.basic = `${u.username}:${u.password ?? ''}`;
  if (u.exec) {
    if (!u.exec.command) throw new KubeConfigError(`kubeconfig ${m.source}: user ${nu!.name}: exec has no command`);
    r.exec = u.exec;
  }
  return r;
}

function inCluster(env: NodeJS.ProcessEnv, dir: string): KubeTransport {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT}`;
  const caPath = join(dir, 'ca.crt');
  return new LiteTransport({ cluster: { server }, ca: existsSync(caPath) ? readFileSync(caPath) : undefined, tokenFile: join(dir, 'token') });
}

interface ExecStatus {
  token?: string;
  clientCertificateData?: string;
  clientKeyData?: string;
  expirationTimestamp?: string;
}

class LiteTransport implements KubeTransport {
  private fileToken?: { value: string; at: number };
  private execCredential?: { status: ExecStatus; until: number };
  private execRunning?: Promise<ExecStatus>;

  constructor(private readonly r: Resolved) {}

  getCurrentCluster(): KubeCluster {
    return this.r.cluster;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const r = this.r;
    if (r.ca) opts.ca = r.ca;
    if (r.cert) opts.cert = r.cert;
    if (r.key) opts.key = r.key;
    if (r.cluster.skipTLSVerify) opts.rejectUnauthorized = false;
    if (r.cluster.tlsServerName) opts.servername = r.cluster.tlsServerName;
    let token = r.token ?? (r.tokenFile ? this.readTokenFile(r.tokenFile) : undefined);
    if (r.exec) {
      const s = await this.execStatus();
      if (s.token) token = s.token;
      if (s.clientCertificateData && s.clientKeyData) {
        opts.cert = Buffer.from(s.clientCertificateData);
        opts.key = Buffer.from(s.clientKeyData);
      }
    }
    if (token) opts.headers = { ...(opts.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` };
    else if (r.basic) opts.auth = r.basic;
  }

  private readTokenFile(path: string): string {
    const now = Date.now();
    if (this.fileToken && now - this.fileToken.at < TOKEN_FILE_REREAD_MS) return this.fileToken.value;
    let value: string;
    try {
      value = readFileSync(path, 'utf8').trim();
    } catch (e) {
      throw new KubeConfigError(`token file ${path}: ${(e as Error).message}`);
    }
    this.fileToken = { value, at: now };
    return value;
  }

  private async execStatus(): Promise<ExecStatus> {
    const kept = this.execCredential;
    if (kept && Date.now() < kept.until) return kept.status;
    // Concurrent requests share one run of the plugin.
    this.execRunning ??= runExec(this.r.exec!).finally(() => (this.execRunning = undefined));
    const status = await this.execRunning;
    const expires = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : NaN;
    this.execCredential = { status, until: Number.isFinite(expires) ? expires - EXEC_RENEW_BEFORE_MS : Infinity };
    return status;
  }
}

function runExec(e: ExecConfig): Promise<ExecStatus> {
  const apiVersion = e.apiVersion ?? 'client.authentication.k8s.io/v1';
  const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false } }) };
  for (const v of e.env ?? []) env[v.name] = v.value;
  return new Promise((resolveP, reject) => {
    execFile(e.command, e.args ?? [], { env, timeout: EXEC_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        // The plugin's own words, not its output: stdout may hold a credential.
        const why = String(stderr).trim().split('\n').pop() || err.message.split('\n')[0];
        reject(new KubeConfigError(`kubeconfig exec plugin ${e.command} failed: ${why}`));
        return;
      }
      try {
        const cred = JSON.parse(stdout) as { status?: ExecStatus };
        if (!cred.status || (!cred.status.token && !cred.status.clientCertificateData)) throw new Error('no status.token or status.clientCertificateData');
        resolveP(cred.status);
      } catch (x) {
        reject(new KubeConfigError(`kubeconfig exec plugin ${e.command}: its output is not an ExecCredential: ${(x as Error).message.split('\n')[0]}`));
      }
    });
  });
}

/** client-node's KubeConfig for what LiteTransport does not cover; loaded only then. */
async function clientNodeTransport(files: string[]): Promise<KubeTransport> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (files.length === 1) kc.loadFromFile(files[0]!);
  else kc.loadFromDefault();
  // client-node refuses an http:// cluster unless skipTLSVerify is set, while kubectl accepts it
  // (e.g. `kubectl proxy`'s http://127.0.0.1:8001); there is no TLS to verify on plain HTTP.
  if (kc.clusters.some((c) => c.server.startsWith('http://') && !c.skipTLSVerify)) {
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => (c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c)),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
  }
  return kc;
}
