/**
 * The base transport: one HTTP exchange with a registry over undici, nothing else. Auth and retries
 * are layered above it (registry.ts), go-containerregistry style. Maps transport failures and
 * error responses to OciError.
 */
import type { Readable } from 'node:stream';
import { Agent, interceptors, type Dispatcher } from 'undici';
import { OciError, type OciErrorCode } from './errors.js';
import { parseRetryAfter } from './retry.js';

export interface RequestEvent {
  registry: string;
  method: string;
  status: number | 'error';
  bytes?: number;
}

export interface TransportOptions {
  insecure?: boolean;
  /** Plain HTTP without probing TLS (loopback registries). */
  plainHttp?: boolean;
  onRequest?: (e: RequestEvent) => void;
  timeouts?: { connectMs?: number; headersMs?: number; bodyIdleMs?: number };
  connections?: number;
  userAgent?: string;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** A path (`/v2/...`) on the registry, or an absolute URL (upload Locations, Link pages). */
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | Uint8Array | Readable;
  /** Bytes the body carries, for the request hook. */
  bodyBytes?: number;
  /** Follow redirects (blob and manifest reads). Authorization is dropped on a change of origin. */
  followRedirects?: boolean;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; dump(o?: { limit: number }): Promise<void> };
  /** The absolute URL that was requested (before redirects); Locations resolve against it. */
  url: URL;
  /** The answer came from another origin (a redirect target such as a CDN). */
  redirected: boolean;
}

export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

const TLS_MISMATCH = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ECONNRESET']);

/** Response bodies are read in larger slices than undici's 64 KiB: fewer chunks per GiB streamed. */
const HIGH_WATER_MARK = 1 << 20;

export class Transport {
  private readonly agent: Agent;
  private readonly redirecting: Dispatcher;
  private scheme: Promise<'https' | 'http'> | undefined;

  constructor(
    readonly registry: string,
    private readonly o: TransportOptions = {},
  ) {
    this.agent = new Agent({
      connect: { timeout: o.timeouts?.connectMs ?? 10_000, rejectUnauthorized: !o.insecure },
      headersTimeout: o.timeouts?.headersMs ?? 30_000,
      bodyTimeout: o.timeouts?.bodyIdleMs ?? 60_000,
      connections: o.connections ?? 8,
    });
    this.redirecting = this.agent.compose(interceptors.redirect({ maxRedirections: 5 }));
    if (o.plainHttp) this.scheme = Promise.resolve('http');
    else if (!o.insecure) this.scheme = Promise.resolve('https');
  }

  /** A dispatcher other components (the token client) may share; it verifies TLS unless insecure. */
  get dispatcher(): Dispatcher {
    return this.agent;
  }

  async baseUrl(): Promise<string> {
    this.scheme ??= this.probeScheme();
    return `${await this.scheme}://${this.registry}`;
  }

  /** insecure: HTTPS without verification, or plain HTTP when the host speaks no TLS. */
  private async probeScheme(): Promise<'https' | 'http'> {
    try {
      const r = await this.agent.request({ origin: `https://${this.registry}`, path: '/v2/', method: 'GET', headers: this.baseHeaders() });
      await r.body.dump();
      this.o.onRequest?.({ registry: this.registry, method: 'GET', status: r.statusCode });
      return 'https';
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (TLS_MISMATCH.has(code) || /wrong version number|packet length too long/i.test(String(e))) return 'http';
      this.scheme = undefined;
      throw transportError(e, this.registry, 'GET /v2/');
    }
  }

  private baseHeaders(): Record<string, string> {
    return { 'user-agent': this.o.userAgent ?? 'image-mirror-controller' };
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url, (await this.baseUrl()) + '/');
    const dispatcher = req.followRedirects ? this.redirecting : this.agent;
    const headers = { ...this.baseHeaders(), ...req.headers };
    try {
      const r = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method,
        headers,
        body: req.body ?? null,
        signal: req.signal,
        highWaterMark: HIGH_WATER_MARK,
        // undici closes the connection after every HEAD unless told otherwise; HEADs are most of
        // what a resync sends, and a new connection each (a TLS handshake on real registries) is slow.
        reset: false,
      });
      const len = r.headers['content-length'];
      const respBytes = typeof len === 'string' ? Number(len) : undefined;
      this.o.onRequest?.({ registry: this.registry, method: req.method, status: r.statusCode, bytes: req.bodyBytes ?? respBytes });
      // The redirect handler lists every URL requested, the answering one last.
      const history = (r.context as { history?: unknown[] } | undefined)?.history;
      const last = Array.isArray(history) ? history[history.length - 1] : undefined;
      const redirected = last instanceof URL && last.origin !== url.origin;
      return { status: r.statusCode, headers: r.headers, body: r.body as HttpResponse['body'], url, redirected };
    } catch (e) {
      this.o.onRequest?.({ registry: this.registry, method: req.method, status: 'error' });
      throw transportError(e, this.registry, `${req.method} ${url.pathname}`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** A failure below HTTP (or a body stream that failed) as an OciError; OciErrors pass through. */
export function transportError(e: unknown, registry: string, what: string): OciError {
  if (e instanceof OciError) return e;
  const err = e as { code?: string; name?: string; message?: string; cause?: unknown };
  if (err.cause instanceof OciError) return err.cause;
  if (err.name === 'AbortError' || err.code === 'UND_ERR_ABORTED' || err.code === 'ABORT_ERR') {
    return new OciError({ code: 'CANCELLED', message: `${what} on ${registry}: cancelled`, registry, cause: e });
  }
  const code = err.code ?? '';
  const timeout = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
  const detail = (err.message ?? String(e)).split('\n')[0];
  return new OciError({
    code: timeout ? 'TIMEOUT' : 'NETWORK',
    message: `${what} on ${registry}: ${timeout ? 'timed out' : 'network error'} (${code || detail})`,
    registry,
    cause: e,
  });
}

const REGISTRY_CODES: Record<string, OciErrorCode> = {
  NAME_UNKNOWN: 'NAME_UNKNOWN',
  NAME_INVALID: 'INVALID_REFERENCE',
  TAG_INVALID: 'INVALID_REFERENCE',
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  MANIFEST_UNVERIFIED: 'MANIFEST_INVALID',
  MANIFEST_BLOB_UNKNOWN: 'MANIFEST_BLOB_UNKNOWN',
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  BLOB_UPLOAD_UNKNOWN: 'BLOB_UPLOAD_UNKNOWN',
  BLOB_UPLOAD_INVALID: 'PROTOCOL',
  DIGEST_INVALID: 'DIGEST_INVALID',
  SIZE_INVALID: 'SIZE_INVALID',
  UNAUTHORIZED: 'UNAUTHORIZED',
  DENIED: 'DENIED',
  UNSUPPORTED: 'UNSUPPORTED',
  RANGE_INVALID: 'RANGE_INVALID',
  TOOMANYREQUESTS: 'TOO_MANY_REQUESTS',
};

export interface ErrorContext {
  registry: string;
  repository?: string;
  /** What was being done, e.g. `GET manifest 127.0.0.1:5000/app:1.0`. */
  what: string;
  /** The code a bare 404 means here (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN). */
  notFound?: OciErrorCode;
}

interface ErrorBody {
  errors?: Array<{ code?: unknown; message?: unknown }>;
}

function oneLine(s: string, max = 200): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? t.slice(0, max) + '…' : t;
}

/** Reads (a bounded part of) an error response and turns it into an OciError. */
export async function errorFromResponse(res: HttpResponse, ctx: ErrorContext): Promise<OciError> {
  let text = '';
  try {
    text = res.status >= 300 ? await readLimited(res.body, 64 * 1024) : '';
  } catch {
    // an unreadable error body still has a status
  }
  const err = errorFromStatus(res.status, text, header(res, 'retry-after'), ctx);
  // A TLS-only server answers plain HTTP with a bare 400 (Go: "HTTP request to an HTTPS server").
  if (res.status === 400 && res.url.protocol === 'http:' && !/^\s*\{/.test(text)) {
    return new OciError({ ...err, code: err.code, message: `${err.message} (plain HTTP refused: if ${ctx.registry} speaks HTTPS only, set insecure: true)` });
  }
  return err;
}

export function errorFromStatus(status: number, bodyText: string, retryAfter: string | undefined, ctx: ErrorContext): OciError {
  let regCode: string | undefined;
  let regMessage: string | undefined;
  try {
    const j = JSON.parse(bodyText) as ErrorBody;
    const first = Array.isArray(j.errors) ? j.errors[0] : undefined;
    if (first && typeof first.code === 'string') regCode = first.code;
    if (first && typeof first.message === 'string') regMessage = first.message;
  } catch {
    // not JSON: the status decides
  }
  let code: OciErrorCode | undefined = regCode ? REGISTRY_CODES[regCode] : undefined;
  if (!code) {
    if (status === 401) code = 'UNAUTHORIZED';
    else if (status === 403) code = 'DENIED';
    else if (status === 404) code = ctx.notFound ?? 'NAME_UNKNOWN';
    else if (status === 405) code = 'UNSUPPORTED';
    else if (status === 413) code = 'MANIFEST_TOO_LARGE';
    else if (status === 416) code = 'RANGE_INVALID';
    else if (status === 429) code = 'TOO_MANY_REQUESTS';
    else if (status >= 500) code = 'SERVER_ERROR';
    else code = 'PROTOCOL';
  }
  // A registry's own code does not make a 5xx or 429 permanent.
  const retryable = status === 429 || status >= 500 ? true : undefined;
  const detail = regMessage ? `${regCode}: ${oneLine(regMessage)}` : regCode ?? (bodyText ? oneLine(bodyText, 120) : 'no details');
  return new OciError({
    code,
    status,
    registry: ctx.registry,
    repository: ctx.repository,
    retryable,
    retryAfterMs: parseRetryAfter(retryAfter),
    message: `${ctx.what}: ${status} ${detail}`,
  });
}

/** Reads a body up to `limit` bytes; the rest is discarded. */
export async function readLimited(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    if (n < limit) chunks.push(b.subarray(0, limit - n));
    n += b.length;
    if (n >= limit) {
      drop(body);
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Resolves a Location or Link target against the URL of the request that returned it. */
export function resolveUrl(location: string, base: URL): URL {
  return new URL(location, base);
}

/** `<url>; rel="next"` from a Link header. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?next"?/i.test(m[2]!)) return m[1];
  }
  return undefined;
}

/** Abandons a stream without an unhandled 'error' (undici bodies emit AbortError on destroy). */
export function drop(stream: Readable): void {
  stream.on('error', () => undefined);
  stream.destroy();
}
