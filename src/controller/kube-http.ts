/**
 * Raw list and watch requests over a KubeConfig's transport (TLS, token, proxy, as client-node
 * configures them). Our own rather than client-node's Watch because that one cannot be aborted
 * before the response headers arrive and has no inactivity timeout (a stalled watch would hang forever), and the
 * typed list calls turn timestamps into Dates while watch events stay raw JSON.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

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

function buildUrl(kc: KubeConfig, path: string, query: Query): URL {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
  return url;
}

async function open(kc: KubeConfig, path: string, query: Query, signal: AbortSignal): Promise<http.IncomingMessage> {
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
export async function listObjects<T>(kc: KubeConfig, path: string, query: Query, signal: AbortSignal): Promise<KubeList<T>> {
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
  kc: KubeConfig,
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
