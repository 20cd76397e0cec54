/**
 * Raw list and watch requests over a KubeConfig's transport (TLS, token, proxy, as client-node
 * configures them). Our own rather than client-node's Watch because that one cannot be aborted
 * before the response headers arrive and has no inactivity timeout (a stalled watch would hang forever), and the
 * typed list calls turn timestamps into Dates while watch events stay raw JSON.
 *
 * Writes (status patches, Events) go through KubeApi: client-node makes a new Agent, hence a new
 * TCP connection and TLS handshake, for every request, and re-reads the CA file each time; at a
 * thousand mirrors that is two handshakes per reconcile. KubeApi keeps its connections open.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeTransport } from './kube-config.js';

/** The subset of a Kubernetes object the reflector relies on. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** An API request that failed with an HTTP status (or a watch ERROR event carrying one). */
export class KubeHttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeHttpError';
  }
}

export function isGone(err: unknown): boolean {
  return err instanceof KubeHttpError && err.code === 410;
}

type Query = Record<string, string | number | boolean | undefined>;

function buildUrl(kc: KubeTransport, path: string, query: Query): URL {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
  return url;
}

async function open(kc: KubeTransport, path: string, query: Query, signal: AbortSignal): Promise<http.IncomingMessage> {
  const url = buildUrl(kc, path, query);
  const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  signal.throwIfAborted();
  const mod = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, signal }, resolve);
    req.on('error', reject);
    req.end();
  });
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function statusError(code: number, body: string, what: string): KubeHttpError {
  let reason = http.STATUS_CODES[code] ?? 'Error';
  let message = '';
  try {
    const s = JSON.parse(body) as { reason?: string; message?: string };
    if (s.reason) reason = s.reason;
    if (s.message) message = s.message;
  } catch {
    // not a Status body
  }
  return new KubeHttpError(code, reason, `${what}: HTTP ${code} ${reason}${message ? `: ${message.split('\n')[0]}` : ''}`);
}

/** GET a list (one page; the caller's collections are small). */
export async function listObjects<T>(kc: KubeTransport, path: string, query: Query, signal: AbortSignal): Promise<KubeList<T>> {
  const res = await open(kc, path, query, signal);
  const body = await readBody(res);
  if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, body, `list ${path}`);
  const list = JSON.parse(body) as KubeList<T>;
  if (!Array.isArray(list.items)) list.items = [];
  return list;
}

/**
 * Watch path from query.resourceVersion; calls onOpen once the server accepted the watch and onEvent
 * per event line. Resolves when the server ends the stream, rejects on transport errors, a non-200
 * answer, or an ERROR event (as KubeHttpError with its code, 410 for Expired).
 */
export async function watchObjects<T>(
  kc: KubeTransport,
  path: string,
  query: Query,
  signal: AbortSignal,
  onOpen: () => void,
  onEvent: (e: WatchEvent<T>) => void,
): Promise<void> {
  const res = await open(kc, path, { ...query, watch: 'true' }, signal);
  if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, await readBody(res), `watch ${path}`);
  onOpen();
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      res.destroy();
      reject(err);
    };
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while (!failed && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let e: WatchEvent<T>;
        try {
          e = JSON.parse(line) as WatchEvent<T>;
        } catch {
          fail(new Error(`watch ${path}: undecodable event line`));
          return;
        }
        if (e.type === 'ERROR') {
          const s = e.object as { code?: number; reason?: string; message?: string };
          fail(new KubeHttpError(s.code ?? 500, s.reason ?? 'Error', `watch ${path}: ${s.reason ?? 'error'} (${s.code ?? '?'})${s.message ? `: ${s.message}` : ''}`));
          return;
        }
        try {
          onEvent(e);
        } catch (err) {
          fail(err);
          return;
        }
      }
    });
    res.on('end', () => {
      if (!failed) resolve();
    });
    res.on('error', fail);
    res.on('close', () => {
      if (failed) return;
      if (signal.aborted) fail(signal.reason ?? new Error('aborted'));
      else if (!res.complete) fail(new Error(`watch ${path}: connection closed mid-stream`));
      else resolve();
    });
  });
}

/**
 * Connections KubeApi keeps open to the API server. Writes are bounded by the workers (one status
 * write each) and the Event sender; more would only queue on the server side.
 */
export const API_WRITE_CONNECTIONS = 16;
/** A write the API server has not answered in this long failed (a worker must not wait forever). */
export const API_REQUEST_TIMEOUT_MS = 30_000;

export interface KubeResponse {
  status: number;
  body: string;
}

/**
 * Requests to the API server over kept-alive connections. Credentials are applied to every
 * request (a rotated service-account token or an exec plugin's renewal takes effect at once); the
 * connection pool is rebuilt when the TLS material changes. A cluster reached through a proxy uses
 * client-node's proxy agent for each request, as before.
 */
export class KubeApi {
  private pooled?: { agent: http.Agent; tls: TlsMaterial };

  constructor(
    private readonly kc: KubeTransport,
    private readonly o: { connections?: number } = {},
  ) {}

  /**
   * method path with a JSON body (none when undefined); resolves with the answer when it is 2xx, else throws a
   * KubeHttpError naming `what` with the server's status message.
   */
  async request(method: string, path: string, body: unknown, contentType: string, what: string, signal?: AbortSignal): Promise<KubeResponse> {
    const url = buildUrl(this.kc, path, {});
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) {
      headers['content-type'] = contentType;
      headers['content-length'] = payload.length;
    }
    const opts: https.RequestOptions = { method, headers };
    await this.kc.applyToHTTPSOptions(opts);
    signal?.throwIfAborted();
    if (!this.kc.getCurrentCluster()?.proxyUrl) opts.agent = this.agentFor(url, opts);
    const mod = url.protocol === 'http:' ? http : https;
    const timeout = AbortSignal.timeout(API_REQUEST_TIMEOUT_MS);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = mod.request(url, { ...opts, signal: signal ? AbortSignal.any([signal, timeout]) : timeout }, resolve);
      req.on('error', reject);
      req.end(payload);
    });
    const text = await readBody(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw statusError(status, text, what);
    return { status, body: text };
  }

  /** Closes the kept connections. */
  close(): void {
    this.pooled?.agent.destroy();
    this.pooled = undefined;
  }

  private agentFor(url: URL, opts: https.RequestOptions): http.Agent {
    const tls = tlsMaterial(opts);
    if (this.pooled && sameTls(this.pooled.tls, tls)) return this.pooled.agent;
    this.pooled?.agent.destroy();
    const options = { keepAlive: true, maxSockets: this.o.connections ?? API_WRITE_CONNECTIONS };
    const agent = url.protocol === 'http:' ? new http.Agent(options) : new https.Agent({ ...options, ...tls });
    this.pooled = { agent, tls };
    return agent;
  }
}

type TlsMaterial = Pick<https.AgentOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase' | 'rejectUnauthorized' | 'servername'>;

function tlsMaterial(o: https.RequestOptions): TlsMaterial {
  const t: TlsMaterial = {};
  for (const k of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const) if (o[k] !== undefined) (t as Record<string, unknown>)[k] = o[k];
  return t;
}

function sameTls(a: TlsMaterial, b: TlsMaterial): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof TlsMaterial>;
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y) ? !x.equals(y) : String(x) !== String(y)) return false;
  }
  return true;
}
