/**
 * The base transport: one HTTP exchange with a registry over undici, nothing else. Auth and retries
 * are layered above it (registry.ts), go-containerregistry style. Maps transport failures and
 * error responses to OciError.
 *
 * No exchange can hold a worker forever, however slowly a registry answers: undici's timeouts are
 * idle timeouts (one byte every few seconds resets them), so every request also gets
 *  - a total deadline (headers and body) when it is a bounded exchange: HEAD, manifests, tag and
 *    referrer pages, upload session requests;
 *  - a minimum transfer rate when it moves a blob body (a GET of /blobs/<digest>, a streamed or
 *    PATCHed upload), like curl's --speed-limit/--speed-time: fewer than `lowSpeedBytes` in a
 *    window of `lowSpeedWindowMs` while the registry (not our side) is the one holding up the
 *    transfer is a TIMEOUT. Its headers, and an upload's answer, get the total deadline.
 */
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { interceptors, type Dispatcher } from 'undici';
import type { HostTls } from './certs-dir.js';
import { createDispatcher } from './dispatcher.js';
import { OciError, type OciErrorCode } from './errors.js';
import { parseQuota, type Quota } from './rate-limit.js';
import { parseRetryAfter } from './retry.js';

export interface RequestEvent {
  registry: string;
  method: string;
  /** What was requested, fit for a log: see traceUrl. */
  url: string;
  status: number | 'error';
  /** The request body sent, else the size of the answer's body as announced (Content-Length). */
  bytes?: number;
  /** From sending the request to its answer's headers (or to the failure), in ms. */
  ms: number;
  /** The quota the registry reported with this answer (Docker Hub's `ratelimit-*` headers). */
  rateLimit?: Quota;
}

/**
 * Query parameters whose values a trace shows: the distribution API's own, which name tags,
 * digests and repositories. Every other value is replaced, because registries and the storage
 * they redirect to put secrets there: distribution's upload `_state` (a signed session token),
 * S3/GCS/Azure presigned signatures (`X-Amz-Signature`, `sig`, `se`…), `access_token`, a token
 * request's `account`. A list of what is safe cannot miss a vendor's new secret; a list of
 * what is secret could.
 */
export const TRACED_QUERY_PARAMS: ReadonlySet<string> = new Set(['n', 'last', 'digest', 'mount', 'from', 'artifactType', 'service', 'scope']);

/** What a trace prints for a value it hides (the redaction marker, so logs read the same everywhere). */
const HIDDEN = '[REDACTED]';

/** Escapes only what would make a traced query ambiguous or span lines; the rest stays readable. */
function traceEscape(s: string): string {
  return s.replace(/[\s&=#%\x00-\x1f\x7f]/g, (c) => encodeURIComponent(c));
}

/**
 * A request URL fit for a log line: path and query, plus scheme and host when it is not on
 * `origin` (an upload Location on a storage host, a token realm). Never user:password, never the
 * fragment, and query values only for TRACED_QUERY_PARAMS.
 */
export function traceUrl(u: URL, origin?: string): string {
  const query = [...u.searchParams].map(([k, v]) => `${traceEscape(k)}=${TRACED_QUERY_PARAMS.has(k) ? traceEscape(v) : HIDDEN}`);
  const path = u.pathname + (query.length > 0 ? `?${query.join('&')}` : '');
  return u.origin === origin ? path : `${u.protocol}//${u.host}${path}`;
}

/** Milliseconds since `started` (a performance.now() reading), to 0.1 ms. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/** Total deadline for a bounded exchange, from sending the request to the last body byte. */
export const REQUEST_DEADLINE_MS = 120_000;
/** A blob transfer moving fewer bytes than this per LOW_SPEED_WINDOW_MS is abandoned (~550 B/s). */
export const LOW_SPEED_BYTES = 16 * 1024;
export const LOW_SPEED_WINDOW_MS = 30_000;
/** Upload bodies are handed to undici in slices of at most this, so what the registry has not taken stays measurable. */
export const UPLOAD_SLICE_BYTES = 64 * 1024;

/**
 * An upload body that counts the bytes it hands on itself: the request sets this hook instead of
 * adding a counting stage (one more stream transition for every chunk of a blob).
 */
export const UPLOAD_METER = Symbol('imc.uploadMeter');
export interface UploadMetered extends Readable {
  [UPLOAD_METER]: ((bytes: number) => void) | undefined;
}

function isUploadMetered(b: Readable): b is UploadMetered {
  return UPLOAD_METER in b;
}

export interface TransportTimeouts {
  connectMs?: number;
  /** Idle time waiting for response headers (undici headersTimeout). */
  headersMs?: number;
  /** Idle time between body chunks (undici bodyTimeout). */
  bodyIdleMs?: number;
  /** Total deadline per bounded exchange (default REQUEST_DEADLINE_MS). */
  requestMs?: number;
  /** Minimum bytes per window for blob bodies (default LOW_SPEED_BYTES). */
  lowSpeedBytes?: number;
  /** The window of the minimum transfer rate (default LOW_SPEED_WINDOW_MS). */
  lowSpeedWindowMs?: number;
  /** Total deadline per token request (default TOKEN_DEADLINE_MS in auth.ts). */
  tokenMs?: number;
}

export interface TransportOptions {
  insecure?: boolean;
  /** Plain HTTP without probing TLS (loopback registries). */
  plainHttp?: boolean;
  onRequest?: (e: RequestEvent) => void;
  timeouts?: TransportTimeouts;
  connections?: number;
  userAgent?: string;
  /** CAs and client certificate for this host (from a certs directory). */
  tls?: HostTls;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read (default process.env). */
  env?: NodeJS.ProcessEnv;
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
  /** What this request does, for a timeout's message (e.g. `GET blob host/repo@sha256:…`). */
  label?: string;
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
  private readonly agent: Dispatcher;
  private readonly direct: Dispatcher;
  private readonly redirecting: Dispatcher;
  private scheme: Promise<'https' | 'http'> | undefined;
  /** The deadlines in force (defaults filled in). */
  readonly limits: Required<Pick<TransportTimeouts, 'requestMs' | 'lowSpeedBytes' | 'lowSpeedWindowMs'>> & Pick<TransportTimeouts, 'tokenMs'>;

  constructor(
    readonly registry: string,
    private readonly o: TransportOptions = {},
  ) {
    this.agent = createDispatcher({
      host: registry,
      insecure: o.insecure,
      tls: o.tls,
      env: o.env,
      connectTimeoutMs: o.timeouts?.connectMs,
      headersTimeoutMs: o.timeouts?.headersMs,
      bodyTimeoutMs: o.timeouts?.bodyIdleMs,
      connections: o.connections,
    });
    this.direct = this.agent.compose(meteringInterceptor);
    this.redirecting = this.agent.compose(interceptors.redirect({ maxRedirections: 5 }), meteringInterceptor);
    if (o.plainHttp) this.scheme = Promise.resolve('http');
    else if (!o.insecure) this.scheme = Promise.resolve('https');
    this.limits = {
      requestMs: positive(o.timeouts?.requestMs) ?? REQUEST_DEADLINE_MS,
      lowSpeedBytes: positive(o.timeouts?.lowSpeedBytes) ?? LOW_SPEED_BYTES,
      lowSpeedWindowMs: positive(o.timeouts?.lowSpeedWindowMs) ?? LOW_SPEED_WINDOW_MS,
      tokenMs: positive(o.timeouts?.tokenMs),
    };
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
    const guard = new RequestGuard(this.registry, `GET /v2/ on ${this.registry}`, this.limits);
    guard.deadline(this.limits.requestMs, 'no complete response');
    const started = performance.now();
    try {
      const r = await guard.race(this.agent.request({ origin: `https://${this.registry}`, path: '/v2/', method: 'GET', headers: this.baseHeaders(), signal: guard.signal }));
      const ms = elapsedMs(started);
      await r.body.dump();
      this.o.onRequest?.({ registry: this.registry, method: 'GET', url: '/v2/', status: r.statusCode, ms });
      return 'https';
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (!guard.error && (TLS_MISMATCH.has(code) || /wrong version number|packet length too long/i.test(String(e)))) return 'http';
      this.o.onRequest?.({ registry: this.registry, method: 'GET', url: '/v2/', status: 'error', ms: elapsedMs(started) });
      this.scheme = undefined;
      throw guard.error ?? transportError(e, this.registry, 'GET /v2/');
    } finally {
      guard.close();
    }
  }

  private baseHeaders(): Record<string, string> {
    return { 'user-agent': this.o.userAgent ?? 'image-mirror-controller' };
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const base = await this.baseUrl();
    const url = new URL(req.url, base + '/');
    // `https://host:443` has origin `https://host`: compare origins, not strings.
    const origin = new URL(base).origin;
    const dispatcher = req.followRedirects ? this.redirecting : this.direct;
    const headers = { ...this.baseHeaders(), ...req.headers };
    const kind = transferKind(req, url);
    const guard = new RequestGuard(this.registry, req.label ?? `${req.method} ${url.pathname} on ${this.registry}`, this.limits, req.signal);
    let body = req.body ?? null;
    if (kind === 'upload' && body) body = guard.meterUpload(body);
    else guard.deadline(this.limits.requestMs, kind === 'download' ? 'no response' : 'no complete response');
    const started = performance.now();
    try {
      const r = await guard.race(dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method,
        headers,
        body,
        signal: guard.signal,
        highWaterMark: HIGH_WATER_MARK,
        // undici closes the connection after every HEAD unless told otherwise; HEADs are most of
        // what a resync sends, and a new connection each (a TLS handshake on real registries) is slow.
        reset: false,
        ...(kind === 'download' ? { [METER]: guard.meter } : {}),
      } as Dispatcher.RequestOptions));
      const ms = elapsedMs(started);
      guard.onResponse(r.body as Readable, kind);
      if (this.o.onRequest) {
        const len = r.headers['content-length'];
        const respBytes = typeof len === 'string' && /^\d+$/.test(len) ? Number(len) : undefined;
        const bytes = req.bodyBytes ?? respBytes;
        const rateLimit = parseQuota(r.headers);
        this.o.onRequest({
          registry: this.registry,
          method: req.method,
          url: traceUrl(url, origin),
          status: r.statusCode,
          ...(bytes !== undefined ? { bytes } : {}),
          ms,
          ...(rateLimit ? { rateLimit } : {}),
        });
      }
      // The redirect handler lists every URL requested, the answering one last.
      const history = (r.context as { history?: unknown[] } | undefined)?.history;
      const last = Array.isArray(history) ? history[history.length - 1] : undefined;
      const redirected = last instanceof URL && last.origin !== url.origin;
      return { status: r.statusCode, headers: r.headers, body: r.body as HttpResponse['body'], url, redirected };
    } catch (e) {
      guard.close();
      this.o.onRequest?.({ registry: this.registry, method: req.method, url: traceUrl(url, origin), status: 'error', ms: elapsedMs(started) });
      throw guard.error ?? transportError(e, this.registry, `${req.method} ${url.pathname}`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

type TransferKind = 'exchange' | 'download' | 'upload';

/** `/v2/<name>/blobs/<algorithm>:<hex>` (not `/blobs/uploads/…`). */
const BLOB_PATH = /^\/v2\/.+\/blobs\/[^/:]+:[^/]+$/;

function isStream(b: unknown): b is Readable {
  return typeof (b as Readable | undefined)?.pipe === 'function';
}

/**
 * Which rule bounds a request: blob bodies are as long as the blob, so only their rate can be
 * judged; everything else is small and gets a total deadline.
 */
function transferKind(req: HttpRequest, url: URL): TransferKind {
  if (isStream(req.body)) return 'upload';
  if (req.method === 'PATCH' && req.body && req.body.byteLength > 0) return 'upload';
  if (req.method === 'GET' && BLOB_PATH.test(url.pathname)) return 'download';
  return 'exchange';
}

/** Counts response body bytes as they arrive, for requests that carry a meter. */
const METER = Symbol('imc.meter');
interface Meter {
  add(bytes: number): void;
}

const meteringInterceptor: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
  const meter = (opts as { [METER]?: Meter })[METER];
  if (!meter) return dispatch(opts, handler);
  return dispatch(opts, {
    onRequestStart: (c, ctx) => handler.onRequestStart?.(c, ctx),
    onRequestUpgrade: (c, status, headers, socket) => handler.onRequestUpgrade?.(c, status, headers, socket),
    onResponseStart: (c, status, headers, message) => handler.onResponseStart?.(c, status, headers, message),
    onResponseData: (c, chunk) => {
      meter.add(chunk.length);
      return handler.onResponseData?.(c, chunk);
    },
    onResponseEnd: (c, trailers) => handler.onResponseEnd?.(c, trailers),
    onResponseError: (c, err) => handler.onResponseError?.(c, err),
  });
};

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * The deadlines of one request. Aborting its signal with the TIMEOUT error makes undici reject
 * the request, or destroy the response body with that error once headers are in, so whoever
 * awaits or reads sees the TIMEOUT.
 */
class RequestGuard {
  private readonly ac = new AbortController();
  error: OciError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private windowBytes = 0;
  private closed = false;
  private unlink: (() => void) | undefined;
  readonly meter: Meter = { add: (n) => void (this.windowBytes += n) };

  constructor(
    private readonly registry: string,
    private readonly what: string,
    private readonly limits: Transport['limits'],
    outer?: AbortSignal,
  ) {
    if (outer?.aborted) this.ac.abort(outer.reason);
    else if (outer) {
      const onAbort = (): void => this.ac.abort(outer.reason);
      outer.addEventListener('abort', onAbort, { once: true });
      this.unlink = () => outer.removeEventListener('abort', onAbort);
    }
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /**
   * Waits for the response headers, but no longer than the deadline: undici only acts on an
   * abort once a connection is up, so a connect or TLS handshake that hangs would otherwise
   * outlast it (until the connect timeout). A response that arrives after losing is dropped.
   */
  race<T extends { body: Readable }>(request: Promise<T>): Promise<T> {
    let lost = false;
    request.then(
      (r) => {
        if (lost) drop(r.body);
      },
      () => undefined,
    );
    return Promise.race([request, this.expired]).catch((e: unknown) => {
      lost = true;
      throw e;
    });
  }

  private rejectExpired: ((e: OciError) => void) | undefined;
  private readonly expired: Promise<never> = new Promise<never>((_, reject) => (this.rejectExpired = reject));

  private fail(detail: string): void {
    if (this.closed || this.error) return;
    this.error = new OciError({ code: 'TIMEOUT', message: `${this.what}: timed out (${detail})`, registry: this.registry });
    this.stopTimers();
    this.ac.abort(this.error);
    this.expired.catch(() => undefined);
    this.rejectExpired?.(this.error);
  }

  /** A total deadline from now; `detail` says what did not happen in time. */
  deadline(ms: number, detail: string): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail(`${detail} within ${seconds(ms)}`), ms);
    // The request's own socket keeps the process alive while it matters; this timer must not.
    this.timer.unref();
  }

  /** The minimum transfer rate from now; `stalled()` says whether the registry is the holdup. */
  private rate(stalled: () => boolean, detail: string): void {
    if (this.closed) return;
    const { lowSpeedBytes: min, lowSpeedWindowMs: window } = this.limits;
    this.windowBytes = 0;
    clearInterval(this.ticker);
    this.ticker = setInterval(() => {
      if (this.windowBytes < min && stalled()) this.fail(`${detail} fewer than ${min} bytes in ${seconds(window)}`);
      this.windowBytes = 0;
    }, window);
    this.ticker.unref();
  }

  /**
   * Streams an upload body through a counter. The registry is the holdup when bytes wait in the
   * counter for undici to send them; an empty counter means the source is slow, which is the
   * source download's rate rule to judge. Once the body is sent, the answer gets the deadline.
   */
  meterUpload(body: Buffer | Uint8Array | Readable): Readable {
    if (isStream(body) && isUploadMetered(body)) {
      body[UPLOAD_METER] = this.meter.add;
      body.once('end', () => {
        clearInterval(this.ticker);
        this.deadline(this.limits.requestMs, 'no complete response after the upload');
      });
      // Bytes the body holds are bytes undici has not taken: it paused the body for the socket.
      this.rate(() => body.readableLength > 0, 'the registry took');
      return body;
    }
    const source = isStream(body) ? body : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)], { objectMode: false });
    const meter = this.meter;
    const counter = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        meter.add(chunk.length);
        // In slices: a large chunk handed to undici whole would sit in the socket's buffer, out
        // of sight; sliced, what the registry has not taken stays here where it can be seen.
        for (let i = 0; i < chunk.length; i += UPLOAD_SLICE_BYTES) this.push(chunk.subarray(i, i + UPLOAD_SLICE_BYTES));
        cb();
      },
    });
    pipeline(source, counter, () => undefined);
    counter.once('end', () => {
      clearInterval(this.ticker);
      this.deadline(this.limits.requestMs, 'no complete response after the upload');
    });
    // Waiting on the registry: bytes queued here, or all of them handed over and the last not
    // yet taken (the stream cannot end while undici holds it paused).
    const waiting = (): boolean => counter.readableLength > 0 || counter.writableLength > 0 || (counter.writableFinished && !counter.readableEnded);
    this.rate(waiting, 'the registry took');
    return counter;
  }

  /** Headers are in: the body gets the rule of its kind until it is consumed or dropped. */
  onResponse(body: Readable, kind: TransferKind): void {
    const done = (): void => this.close();
    body.once('end', done);
    body.once('close', done);
    body.once('error', done);
    if (kind === 'download') {
      clearTimeout(this.timer);
      // Bytes waiting in the body mean our side is not reading (backpressure), not a slow registry.
      this.rate(() => body.readableLength === 0, 'the registry sent');
    } else if (kind === 'upload' && !this.timer) {
      // Answered before the body was all sent (an early refusal): bound the answer.
      clearInterval(this.ticker);
      this.deadline(this.limits.requestMs, 'no complete response');
    }
  }

  private stopTimers(): void {
    clearTimeout(this.timer);
    clearInterval(this.ticker);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.unlink?.();
  }
}

/** A failure below HTTP (or a body stream that failed) as an OciError; OciErrors pass through. */
export function transportError(e: unknown, registry: string, what: string): OciError {
  if (e instanceof OciError) return e;
  const err = e as { code?: string; name?: string; message?: string; cause?: unknown };
  if (err.cause instanceof OciError) return err.cause;
  // undici reports a proxy refusing CONNECT as an abort; it is the proxy's answer, not a cancel.
  const proxy = /^Proxy response \((\d{3})\) !== 200|^Proxy Authentication Required \((407)\)/.exec(err.message ?? '');
  if (proxy) {
    const status = proxy[1] ?? proxy[2];
    const hint = status === '407' ? ': proxy authentication required (put credentials in the proxy URL)' : '';
    return new OciError({ code: 'NETWORK', message: `${what} on ${registry}: the proxy answered ${status}${hint}`, registry, cause: e });
  }
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
  TAG_INVALID: 'TAG_INVALID',
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
  /** A write: NAME_UNKNOWN then means the repository has to be created first (ECR does not create on push). */
  push?: boolean;
}

/** Appended to NAME_UNKNOWN on a push (aws/containers-roadmap#853: ECR creates a repository on push only with a creation template). */
export const PUSH_NEEDS_REPOSITORY = 'the repository must exist before pushing: create it, or set up create-on-push (on ECR, a repository creation template)';

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
  let detail = regMessage ? `${regCode}: ${oneLine(regMessage)}` : regCode ?? (bodyText ? oneLine(bodyText, 120) : 'no details');
  if (code === 'NAME_UNKNOWN' && ctx.push) detail += `; ${PUSH_NEEDS_REPOSITORY}`;
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
