/**
 * The push-notification receiver: `POST /hooks/<format>` with the shared secret, answered fast —
 * 202 once the body is read, parsed and matched — and the mirrors a push concerns handed to
 * `enqueue` afterwards, never waiting on a reconcile. Matching is the only per-event work; the
 * work queue coalesces a burst (a key already waiting is not queued twice), and one request
 * enqueues each mirror once however many of its events name it.
 *
 * Refusals, each before anything is enqueued:
 * - 404 for another path, 405 for another method, 503 while `accepting()` says no (a controller
 *   replica that is not the leader: the sender retries, and reaches the leader);
 * - 401 when the secret is missing or wrong — checked before the body is read for every format
 *   that carries it in a header or the URL; GitHub's signature needs the body, read under the limit;
 * - 413 when the body (declared or streamed) passes `maxBodyBytes`, 408 when it does not arrive
 *   within `bodyTimeoutMs`; the rest of such a body is never read: the connection stops reading
 *   and is closed once the answer is written (Connection: close);
 * - 400 when the body is not the format's JSON.
 * The secret is never logged, echoed or counted; nor is the request URL (it may carry `?token=`).
 *
 * `observeSynced(key, at, startedAt)` closes the loop for the delay histogram: the front end calls
 * it after a successful reconcile of `key`, and every receipt for that key not later than
 * `startedAt` is satisfied (a reconcile that began before the push arrived may not have seen it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ImageMirror } from '../mirror/types.js';
import { authBeforeBody, checkHeaderToken, checkHubSignature } from './auth.js';
import { WebhookPayloadError, isWebhookFormat, parsePayload, type ParsedPayload, type PushEvent, type WebhookFormat } from './formats.js';
import { MirrorIndex } from './match.js';
import { webhookMetrics, type WebhookMetrics, type WebhookResult } from './metrics.js';

/** Largest body read by default: push payloads are a few KiB (GitHub's, with its manifest, ~30 KiB). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** How long a sender may take to deliver its body once the headers are in. */
export const BODY_TIMEOUT_MS = 10_000;
/** Mirrors with receipts awaiting a reconcile; past this, new keys are not timed (the sync still happens). */
export const MAX_PENDING_RECEIPTS = 10_000;
/** Receipts kept per mirror awaiting its reconcile; past this the newest replaces the last one. */
export const MAX_RECEIPTS_PER_KEY = 16;

export interface WebhookReceiverOptions {
  /** The shared secret, read by the caller (e.g. from --webhook-token-file); undefined or empty refuses every request. */
  tokens: () => string | undefined;
  /** The mirrors to match, as the front end knows them now. */
  mirrors: () => readonly ImageMirror[];
  /** Queue `key` now, ahead of its backoff or resync timer. Called after the answer is sent. */
  enqueue: (key: string, why: string) => void;
  metrics?: Pick<Metrics, 'registry'>;
  maxBodyBytes?: number;
  bodyTimeoutMs?: number;
  /** Clock for receipt times (ms). */
  now?: () => number;
  /** False: answer 503 (e.g. not the leader, or shutting down). Default always true. */
  accepting?: () => boolean;
  /** Registry host assumed when a GitLab or Harbor payload names none (`request.host`, `resource_url`). */
  defaultRegistry?: Partial<Record<'gitlab' | 'harbor', string>>;
  log?: Logger;
}

export interface WebhookReceiver {
  /** The request handler, for a server listening on --webhook-addr. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** A reconcile of `key` that started at `startedAt` (default: any time) finished with its targets written at `at`. */
  observeSynced(key: string, at?: number, startedAt?: number): void;
}

type BodyResult = { ok: true; body: Buffer } | { ok: false; why: 'too_large' | 'timeout' | 'aborted' };

export function createWebhookReceiver(o: WebhookReceiverOptions): WebhookReceiver {
  const maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const bodyTimeoutMs = o.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  const now = o.now ?? Date.now;
  const metrics: WebhookMetrics | undefined = o.metrics ? webhookMetrics(o.metrics) : undefined;
  const receipts = new Map<string, number[]>();
  let warnedNoSecret = false;

  const count = (format: WebhookFormat, result: WebhookResult, n = 1): void => {
    if (n > 0) metrics?.events.inc({ format, result }, n);
  };

  function send(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  /**
   * Answers without reading (more of) the body: the socket stops reading, and with
   * `Connection: close` Node closes it as soon as the answer is written (unread bytes are
   * discarded by the kernel, not read into this process).
   */
  function refuse(req: IncomingMessage, res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
    req.socket.pause();
    req.pause();
    const text = JSON.stringify(body) + '\n';
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), connection: 'close', ...headers });
    res.end(text);
  }

  function readBody(req: IncomingMessage): Promise<BodyResult> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (r: BodyResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('aborted', onAbort);
        req.off('error', onAbort);
        req.off('close', onClose);
        resolve(r);
      };
      const onData = (c: Buffer): void => {
        size += c.length;
        if (size > maxBodyBytes) {
          req.pause();
          req.socket.pause();
          finish({ ok: false, why: 'too_large' });
          return;
        }
        chunks.push(c);
      };
      const onEnd = (): void => finish({ ok: true, body: Buffer.concat(chunks, size) });
      const onAbort = (): void => finish({ ok: false, why: 'aborted' });
      const onClose = (): void => finish({ ok: false, why: 'aborted' });
      const timer = setTimeout(() => {
        req.pause();
        req.socket.pause();
        finish({ ok: false, why: 'timeout' });
      }, bodyTimeoutMs);
      timer.unref();
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('aborted', onAbort);
      req.on('error', onAbort);
      req.on('close', onClose);
    });
  }

  function secret(): string | undefined {
    const s = o.tokens()?.trim();
    return s ? s : undefined;
  }

  function record(key: string, at: number): void {
    const list = receipts.get(key);
    if (list) {
      if (list.length < MAX_RECEIPTS_PER_KEY) list.push(at);
      else list[list.length - 1] = at;
    } else if (receipts.size < MAX_PENDING_RECEIPTS) {
      receipts.set(key, [at]);
    }
  }

  function describe(format: WebhookFormat, e: PushEvent): string {
    const what = e.tag !== undefined ? `:${e.tag}` : e.digest !== undefined ? `@${e.digest}` : '';
    return `${format} notification: push to ${e.registry ?? '?'}/${e.repository}${what}`;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = now();
    let path: string;
    let query: URLSearchParams;
    try {
      const u = new URL(req.url ?? '/', 'http://receiver.invalid');
      path = u.pathname;
      query = u.searchParams;
    } catch {
      refuse(req, res, 404, { error: 'not found' });
      return;
    }
    const m = /^\/hooks\/([a-z]+)\/?$/.exec(path);
    if (!m || !isWebhookFormat(m[1]!)) {
      refuse(req, res, 404, { error: 'not found' });
      return;
    }
    const format = m[1];
    if (req.method !== 'POST') {
      refuse(req, res, 405, { error: 'method not allowed' }, { allow: 'POST' });
      return;
    }
    if (o.accepting && !o.accepting()) {
      refuse(req, res, 503, { error: 'not accepting notifications now' }, { 'retry-after': '5' });
      return;
    }
    const key = secret();
    if (key === undefined) {
      count(format, 'unauthorized');
      // Once: every request would say the same, and anyone can send requests.
      if (!warnedNoSecret) o.log?.warn('webhook requests refused: no shared secret configured (empty or unreadable token file)');
      warnedNoSecret = true;
      refuse(req, res, 401, { error: 'unauthorized' });
      return;
    }
    if (authBeforeBody(format) && !checkHeaderToken(format, req.headers, query, key)) {
      count(format, 'unauthorized');
      o.log?.debug('webhook refused: wrong or missing secret', { format });
      refuse(req, res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      count(format, 'too_large');
      refuse(req, res, 413, { error: `body over ${maxBodyBytes} bytes` });
      return;
    }
    const body = await readBody(req);
    if (!body.ok) {
      if (body.why === 'aborted') return; // the sender went away: nobody to answer
      count(format, body.why);
      if (body.why === 'too_large') refuse(req, res, 413, { error: `body over ${maxBodyBytes} bytes` });
      else refuse(req, res, 408, { error: `body not received within ${bodyTimeoutMs} ms` });
      return;
    }
    if (!authBeforeBody(format) && !checkHubSignature(req.headers, body.body, key)) {
      count(format, 'unauthorized');
      o.log?.debug('webhook refused: missing or wrong signature', { format });
      send(res, 401, { error: 'unauthorized' });
      return;
    }
    let parsed: ParsedPayload;
    try {
      const ghEvent = req.headers['x-github-event'];
      parsed = parsePayload(format, body.body, {
        defaultRegistry: format === 'gitlab' || format === 'harbor' ? o.defaultRegistry?.[format] : undefined,
        githubEvent: typeof ghEvent === 'string' ? ghEvent : undefined,
      });
    } catch (e) {
      if (!(e instanceof WebhookPayloadError)) throw e;
      count(format, 'invalid');
      o.log?.debug('webhook refused: malformed payload', { format, error: e.message });
      send(res, 400, { error: e.message });
      return;
    }
    const index = new MirrorIndex(o.mirrors());
    const why = new Map<string, string>();
    let accepted = 0;
    let unmatched = 0;
    for (const e of parsed.events) {
      const keys = index.match(e);
      if (keys.length === 0) {
        unmatched++;
        continue;
      }
      accepted++;
      for (const k of keys) if (!why.has(k)) why.set(k, describe(format, e));
    }
    count(format, 'accepted', accepted);
    count(format, 'unmatched', unmatched);
    count(format, 'ignored', parsed.ignored);
    count(format, 'invalid', parsed.invalid);
    send(res, 202, { accepted, unmatched, ignored: parsed.ignored, invalid: parsed.invalid });
    if (why.size === 0) return;
    // After the answer: the sender is never held by the queue (or by whatever enqueue does).
    setImmediate(() => {
      for (const [k, reason] of why) {
        record(k, receivedAt);
        try {
          o.enqueue(k, reason);
        } catch (e) {
          o.log?.error('webhook enqueue failed', { mirror: k, error: e instanceof Error ? e.message : String(e) });
        }
      }
    });
  }

  return {
    handle: (req, res) => {
      handle(req, res).catch((e: unknown) => {
        o.log?.error('webhook handler failed', { error: e instanceof Error ? e.message : String(e) });
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
    observeSynced(key, at = now(), startedAt) {
      const list = receipts.get(key);
      if (!list) return;
      // Receipts are in arrival order: those up to startedAt are what this reconcile saw.
      const later = startedAt === undefined ? -1 : list.findIndex((t) => t > startedAt);
      const satisfied = later === -1 ? list.length : later;
      if (satisfied === 0) return;
      metrics?.syncDelay.observe(Math.max(0, at - list[0]!) / 1000);
      if (satisfied === list.length) receipts.delete(key);
      else list.splice(0, satisfied);
    },
  };
}
