/**
 * What every cloud credential provider shares: a registry credential cached with its expiry and
 * renewed a margin before it runs out (one renewal at a time however many requests ask), and
 * one-line errors that never carry a token.
 *
 * The registry client asks its CredentialProvider before every request that needs credentials,
 * so a provider that hands out a cached credential and renews it early is all a long-running
 * mirror needs: no request ever carries a token that is about to expire.
 */
import type { Credential, CredentialProvider } from '../oci/credentials.js';
import { OciError } from '../oci/errors.js';

// The provider names are part of the API (credentials.provider), declared in src/api/.
import { isCloudProvider, type CloudProvider } from '../api/vocabulary.js';
export { CLOUD_PROVIDERS, isCloudProvider, type CloudProvider } from '../api/vocabulary.js';

/**
 * Renew this long before a credential expires: long enough that a request signed just before
 * the renewal point still reaches the registry in time and that clock skew between us and the
 * cloud does not matter, short next to the 1 h (GCP), 3 h (ACR) and 12 h (ECR) lifetimes.
 */
export const RENEW_BEFORE_EXPIRY_MS = 5 * 60_000;

/**
 * A credential is reused for at least this long, even one that claims to expire sooner (a
 * skewed clock, a broken token service), and a failed renewal is retried no sooner while the
 * old credential is still valid: otherwise every registry request would ask the cloud for a new
 * token and run into its rate limits.
 */
export const MIN_REUSE_MS = 10_000;

export interface CloudCredentialOptions {
  /** Milliseconds since the epoch; tests move time forward to exercise renewal. */
  now?: () => number;
  /** aws: the region for a registry whose name carries none (default AWS_REGION, AWS_DEFAULT_REGION). */
  region?: string;
  /**
   * azure: CA certificates (PEM) trusted besides the system's, for the token endpoint and the
   * registry's token exchange (a private authority host, a registry behind a private CA).
   */
  ca?: string;
  /** azure: skip TLS verification of the registry's token exchange (the mirror's `insecure: true`). */
  insecure?: boolean;
  /**
   * azure: the registry host's own TLS material (its certs.d directory) for the token exchange,
   * which goes to the registry host: the full list of CAs to trust, and a client certificate.
   */
  registryTls?: { ca?: readonly string[]; cert?: string; key?: string };
  /** Default CLOUD_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
  /**
   * The identity of an operator's host rather than a pod's (`sync`, `run`): azure also tries the
   * Azure CLI's login (`az login`, a CI job's azure/login) before the managed identity.
   */
  hostTools?: boolean;
}

export interface Expiring<T> {
  value: T;
  /** How long the value stays valid, measured from when it was asked for. */
  lifetimeMs: number;
}

/**
 * One renewal (every call to the cloud it takes) gives up after this long: the SDKs wait forever
 * by default, and a hung metadata server must not hang every mirror of the registry with it.
 */
export const CLOUD_REQUEST_TIMEOUT_MS = 30_000;

export interface RenewingOptions {
  /** Milliseconds since the epoch; tests move time forward to exercise renewal. */
  now?: () => number;
  /** Default CLOUD_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

interface Cached<T> {
  value: T;
  expiresAt: number;
  renewAt: number;
}

/**
 * Caches what `fetch` returns until a margin before it expires (RENEW_BEFORE_EXPIRY_MS, or half
 * the lifetime for short-lived ones) and single-flights renewals. When a renewal fails while the
 * cached value is still valid, the cached value is handed out and the renewal retried after
 * MIN_REUSE_MS: a token service's hiccup must not fail requests the old credential can serve.
 */
export class RenewingCredential<T> {
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private cached: Cached<T> | undefined;
  private pending: Promise<T> | undefined;

  constructor(
    private readonly fetch: (signal: AbortSignal) => Promise<Expiring<T>>,
    o: RenewingOptions = {},
  ) {
    this.now = o.now ?? Date.now;
    this.timeoutMs = o.timeoutMs ?? CLOUD_REQUEST_TIMEOUT_MS;
  }

  async get(): Promise<T> {
    const c = this.cached;
    const now = this.now();
    if (c && now < c.renewAt) return c.value;
    if (!this.pending) {
      this.pending = this.renew().finally(() => {
        this.pending = undefined;
      });
    }
    try {
      return await this.pending;
    } catch (e) {
      // Still valid by our clock: serve it, and try again a little later rather than on every
      // request, which during an outage would be a request to the token service per registry call.
      const still = this.cached;
      const at = this.now();
      if (still && at < still.expiresAt) {
        still.renewAt = Math.max(still.renewAt, Math.min(at + MIN_REUSE_MS, still.expiresAt));
        return still.value;
      }
      throw e;
    }
  }

  /** Forget the cached value (the registry refused it): the next get() fetches a new one. */
  invalidate(): void {
    this.cached = undefined;
  }

  private async renew(): Promise<T> {
    const started = this.now();
    const { value, lifetimeMs } = await withTimeout(this.timeoutMs, (signal) => this.fetch(signal));
    const lifetime = Number.isFinite(lifetimeMs) ? Math.max(0, lifetimeMs) : 0;
    const expiresAt = started + lifetime;
    const renewAt = Math.max(started + MIN_REUSE_MS, expiresAt - Math.min(RENEW_BEFORE_EXPIRY_MS, lifetime / 2));
    this.cached = { value, expiresAt, renewAt };
    return value;
  }
}

/** Runs `f` with a signal that aborts after `ms`, and rejects then even if `f` ignores the signal. */
async function withTimeout<R>(ms: number, f: (signal: AbortSignal) => Promise<R>): Promise<R> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`timed out after ${ms / 1000} s`);
      ac.abort(e);
      reject(e);
    }, ms);
  });
  try {
    return await Promise.race([f(ac.signal), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** First line of an error's message, with anything token-shaped or known to be secret removed. */
export function errorLine(e: unknown, secrets: ReadonlyArray<string | undefined> = []): string {
  let msg = e instanceof Error ? e.message : String(e);
  if (!msg && e instanceof Error) msg = e.name;
  for (const s of secrets) if (s && s.length >= 8) msg = msg.split(s).join('<redacted>');
  msg = msg.replace(JWT, '<redacted>').replace(GOOGLE_ACCESS_TOKEN, '<redacted>');
  const line = msg.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.length > MAX_ERROR_LINE ? `${line.slice(0, MAX_ERROR_LINE)}…` : line;
}

/** Three base64url segments, the first a JSON header: what JWT access and refresh tokens look like. */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/** Google OAuth2 access tokens, which google-auth-library errors may quote from a response body. */
const GOOGLE_ACCESS_TOKEN = /ya29\.[A-Za-z0-9_.-]+/g;

/** SDK messages can run to paragraphs with troubleshooting links; status and events want one line. */
export const MAX_ERROR_LINE = 300;

/** `<provider> credentials for <registry>: <cause>`, as an OciError the registry client passes on. */
export function cloudError(provider: CloudProvider, registry: string, e: unknown, secrets: ReadonlyArray<string | undefined> = []): OciError {
  if (e instanceof OciError && e.message.startsWith(`${provider} credentials for `)) return e;
  return new OciError({
    code: 'UNAUTHORIZED',
    registry,
    retryable: false,
    message: `${provider} credentials for ${registry}: ${errorLine(e, secrets) || 'failed'}`,
  });
}

/** A CredentialProvider for one registry, plus the non-secret identity registry clients are keyed by. */
export interface CloudCredentialProvider extends CredentialProvider {
  readonly provider: CloudProvider;
  readonly registry: string;
  /**
   * `<provider>:<registry>:<who>`: the role, service account or client id the credentials come
   * from, never a secret. Stable across renewals, so a client keyed by it keeps its connections
   * and what it learned about the registry.
   */
  readonly identity: string;
}

export function isCloudCredentialProvider(p: CredentialProvider): p is CloudCredentialProvider {
  return 'provider' in p && isCloudProvider((p as { provider?: unknown }).provider) && typeof p.identity === 'string';
}

/**
 * Serves the renewing credential for its own registry only: handing a cloud token to another
 * host would leak it, and a client wired to the wrong registry should fail loudly.
 */
export function registryCredentials(
  provider: CloudProvider,
  registry: string,
  who: string,
  renewing: RenewingCredential<Credential>,
  secrets: () => ReadonlyArray<string | undefined> = () => [],
): CloudCredentialProvider {
  return {
    provider,
    registry,
    identity: `${provider}:${registry}:${who}`,
    async get(asked: string): Promise<Credential | undefined> {
      if (asked !== registry) {
        throw new OciError({ code: 'UNAUTHORIZED', registry: asked, retryable: false, message: `${provider} credentials for ${registry} were asked for another registry (${asked})` });
      }
      try {
        return await renewing.get();
      } catch (e) {
        throw cloudError(provider, registry, e, secrets());
      }
    },
  };
}
