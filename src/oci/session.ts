/**
 * The auth, pacing and retry layers over the base transport: every registry request goes through
 * `RegistrySession.request`, which waits for the registry's gate (a Retry-After pause, a request
 * budget: rate-limit.ts), adds a token for the scopes it needs, re-authenticates once on a 401, and
 * retries network errors, 5xx and 429 when its body can be sent again.
 */
import type { Readable } from 'node:stream';
import { Authenticator } from './auth.js';
import { OciError } from './errors.js';
import { errorFromResponse, header, type ErrorContext, type HttpRequest, type HttpResponse, type Transport } from './http.js';
import { pausesRegistry, type RegistryGate } from './rate-limit.js';
import { withRetry, type RetryPolicy } from './retry.js';

export interface RequestOp {
  method: HttpRequest['method'];
  url: string;
  headers?: Record<string, string>;
  /** A buffer (replayable) or a factory for a one-shot stream (not retried here). */
  body?: Buffer | Uint8Array | (() => Readable);
  bodyBytes?: number;
  /** Token scopes, most important first. */
  scopes: string[];
  /** Statuses returned to the caller; anything else becomes an OciError. */
  ok: readonly number[];
  ctx: ErrorContext;
  followRedirects?: boolean;
  /** Send exactly once (no retries at this layer), e.g. a chunk whose resume is handled above. */
  once?: boolean;
  signal?: AbortSignal;
  /** Wraps each wait before the request is sent (see RegistryGate); the caller may give up a slot meanwhile. */
  whileWaiting?: (wait: Promise<void>) => Promise<void>;
}

/** A failed attempt whose wait the registry's gate makes the next attempt observe. */
export function pausedByRegistry(e: OciError): boolean {
  return pausesRegistry(e.status, e.retryAfterMs);
}

export class RegistrySession {
  constructor(
    readonly registry: string,
    /** Host the API is served from (registry-1.docker.io for docker.io). */
    readonly apiHost: string,
    readonly transport: Transport,
    readonly auth: Authenticator,
    readonly retry: RetryPolicy,
    readonly gate: RegistryGate,
  ) {
    // Token requests are exchanges with the registry's auth service: same timeouts configuration.
    auth.useDeadline(transport.limits.tokenMs);
  }

  async request(op: RequestOp): Promise<HttpResponse> {
    const replayable = op.body === undefined || typeof op.body !== 'function';
    const policy = replayable && !op.once ? this.retry : { ...this.retry, attempts: 1 };
    return withRetry(policy, () => this.authenticated(op), op.signal, pausedByRegistry);
  }

  private async authenticated(op: RequestOp): Promise<HttpResponse> {
    const base = await this.transport.baseUrl();
    // Upload Locations and Link pages may point elsewhere; credentials go only to the API's own
    // origin: same scheme, host and port (an http:// Location on an https registry gets none).
    const target = new URL(op.url, base + '/');
    const sameHost = sameOrigin(target, new URL(base));
    for (let reauthed = false; ; reauthed = true) {
      await this.gate.admit({ what: op.ctx.what, method: op.method, pathname: target.pathname, signal: op.signal, whileWaiting: op.whileWaiting });
      const headers: Record<string, string> = { ...op.headers };
      if (sameHost) {
        const authz = await this.auth.authorization(op.scopes);
        if (authz) headers['authorization'] = authz;
      }
      const body = typeof op.body === 'function' ? op.body() : op.body;
      const res = await this.transport.send({
        method: op.method,
        url: op.url,
        headers,
        body,
        bodyBytes: op.bodyBytes,
        followRedirects: op.followRedirects,
        signal: op.signal,
        label: op.ctx.what,
      });
      this.gate.observe(res.status, res.headers);
      // A 401 from a redirect target (a CDN) is not the registry asking for credentials.
      if (res.status === 401 && sameHost && !res.redirected) {
        const challenge = header(res, 'www-authenticate');
        await res.body.dump().catch(() => undefined);
        if (!reauthed && (await this.auth.onUnauthorized(challenge, op.scopes))) {
          if (typeof op.body === 'function') {
            // The stream is spent; the caller restarts with a fresh one.
            throw new OciError({ code: 'UNAUTHORIZED', message: `${op.ctx.what}: re-authenticated, retrying`, status: 401, registry: this.registry, retryable: true });
          }
          continue;
        }
        throw authFailure(this.registry, op, challenge);
      }
      if (op.ok.includes(res.status)) return res;
      throw await errorFromResponse(res, op.ctx);
    }
  }
}

/** Same scheme, host and port (URL normalizes default ports, so https://h and https://h:443 match). */
export function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.hostname === b.hostname && a.port === b.port;
}

/**
 * A 401 that re-authenticating did not cure. distribution answers 401 (not 403) when the token
 * lacks a scope, saying so with `error="insufficient_scope"`: that is a denial, not bad credentials.
 */
function authFailure(registry: string, op: RequestOp, challenge: string | undefined): OciError {
  if (challenge && /error="?insufficient_scope/i.test(challenge)) {
    return new OciError({
      code: 'DENIED',
      status: 401,
      registry,
      repository: op.ctx.repository,
      message: `${op.ctx.what}: access denied (credentials for ${registry} lack ${op.scopes.join(' ')})`,
    });
  }
  return new OciError({
    code: 'UNAUTHORIZED',
    status: 401,
    registry,
    repository: op.ctx.repository,
    message: `authentication failed for ${registry} (${op.ctx.what})`,
  });
}
