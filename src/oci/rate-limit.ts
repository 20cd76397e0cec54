/**
 * Pacing of the requests sent to one registry, shared by all of them (every repository, and every
 * client given the same options): a registry that answers 429 or 503 with `Retry-After` gets the
 * pause it asked for — minutes if need be — while requests to other registries go on; an optional
 * request budget (requests per second); and a floor on the quota a registry reports left (Docker
 * Hub's `ratelimit-remaining`, docker/docs#22134), below which requests that count against it are
 * not sent, so the rest is left for others (the idea of regsync's `ratelimit.min`).
 *
 * Waits happen per registry, never as a process-wide sleep, and end early when the caller's signal
 * is aborted. A caller that holds a concurrency slot while it waits (the copy engine's blob slots)
 * passes `whileWaiting`, to give the slot up for the duration.
 */
import { OciError } from './errors.js';
import { parseRetryAfter, sleep } from './retry.js';

export interface Clock {
  now(): number;
  /** Resolves after `ms` by this clock; rejects with the signal's reason when aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep: (ms, signal) => sleep(ms, signal) };

/**
 * Longest `Retry-After` that requests wait out. A registry asking for longer is not sent anything
 * until then either, but requests fail at once (TOO_MANY_REQUESTS) instead of holding a sync.
 */
export const MAX_REGISTRY_PAUSE_MS = 15 * 60_000;
/** A reported quota decides for this long; after that, one request may go and bring a fresh figure. */
export const QUOTA_STALE_MS = 15 * 60_000;
/** Digits of a `ratelimit-limit`/`ratelimit-remaining` value read; a longer number is not a quota. */
export const MAX_QUOTA_DIGITS = 12;

export interface RateLimitOptions {
  /**
   * Requests per second sent to one registry host, across its repositories (and across clients
   * given this same options object). Unset: no budget.
   */
  qps?: number;
  /**
   * Requests that count against a registry's reported quota (Docker Hub: manifest GETs; HEADs do
   * not count) are not sent while it reports this many or fewer remaining. Unset or 0: none kept.
   */
  floor?: number;
}

/** What a registry reported in `ratelimit-limit` / `ratelimit-remaining` (docker/docs#22134). */
export interface Quota {
  limit: number;
  remaining: number;
  /** The `w=` window, when given. */
  windowMs?: number;
}

type Headers = Record<string, string | string[] | undefined>;

function headerValue(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `N` or `N;w=SECONDS`, each number at most MAX_QUOTA_DIGITS long. */
const QUOTA_VALUE = new RegExp(`^\\s*(\\d{1,${MAX_QUOTA_DIGITS}})(?!\\d)\\s*(?:;\\s*w=(\\d{1,${MAX_QUOTA_DIGITS}})(?!\\d))?`);

function quotaNumber(v: string | undefined): { n: number; windowMs?: number } | undefined {
  if (v === undefined) return undefined;
  const m = QUOTA_VALUE.exec(v);
  if (!m) return undefined;
  return { n: Number(m[1]), ...(m[2] !== undefined ? { windowMs: Number(m[2]) * 1000 } : {}) };
}

/** Docker Hub's quota headers (`100;w=21600`); undefined unless both are present and readable. */
export function parseQuota(headers: Headers): Quota | undefined {
  const limit = quotaNumber(headerValue(headers, 'ratelimit-limit'));
  const remaining = quotaNumber(headerValue(headers, 'ratelimit-remaining'));
  if (!limit || !remaining) return undefined;
  const windowMs = remaining.windowMs ?? limit.windowMs;
  return { limit: limit.n, remaining: Math.min(remaining.n, limit.n), ...(windowMs !== undefined ? { windowMs } : {}) };
}

/** Requests Docker Hub counts as pulls: manifest GETs (a HEAD does not count). */
export function countsAgainstQuota(method: string, pathname: string): boolean {
  return method === 'GET' && /\/manifests\/[^/]+$/.test(pathname);
}

/** Whether a failed attempt's wait is the gate's business (a 429/503 Retry-After pauses the registry). */
export function pausesRegistry(status: number | undefined, retryAfterMs: number | undefined): boolean {
  return (status === 429 || status === 503) && retryAfterMs !== undefined && retryAfterMs > 0;
}

function duration(ms: number): string {
  const total = Math.ceil(ms / 1000);
  const parts: string[] = [];
  if (total >= 3600) parts.push(`${Math.floor(total / 3600)} h`);
  if (total % 3600 >= 60) parts.push(`${Math.floor((total % 3600) / 60)} min`);
  if (total % 60 > 0 || total === 0) parts.push(`${total % 60} s`);
  return parts.join(' ');
}

export interface Admission {
  /** What the request does, for messages. */
  what: string;
  method: string;
  pathname: string;
  signal?: AbortSignal;
  /** Called with each wait; resolves when the caller may go on (it may give up a slot meanwhile). */
  whileWaiting?: (wait: Promise<void>) => Promise<void>;
}

/** One registry's pause, budget and quota. */
export class RegistryGate {
  private pausedUntil = 0;
  private nextSlotAt = 0;
  private observed: { quota: Quota; at: number } | undefined;
  private readonly intervalMs: number;

  constructor(
    readonly registry: string,
    private readonly clock: Clock,
    private readonly o: RateLimitOptions,
  ) {
    this.intervalMs = o.qps ? 1000 / o.qps : 0;
  }

  /** The quota last reported, if any. */
  get quota(): Quota | undefined {
    return this.observed?.quota;
  }

  /** Until when (clock ms) the registry asked not to be sent anything; 0 when it did not. */
  get pausedUntilMs(): number {
    return this.pausedUntil;
  }

  /** Resolves when the request may be sent; rejects when it must not be (see the class comment). */
  async admit(r: Admission): Promise<void> {
    let slotAt: number | undefined;
    for (;;) {
      if (r.signal?.aborted) throw this.cancelled(r);
      const now = this.clock.now();
      const paused = this.pausedUntil - now;
      if (paused > 0) {
        if (paused > MAX_REGISTRY_PAUSE_MS) {
          throw new OciError({
            code: 'TOO_MANY_REQUESTS',
            retryable: false,
            registry: this.registry,
            message: `${r.what}: not sent, ${this.registry} asked for a pause of ${duration(paused)} more (Retry-After), longer than the ${duration(MAX_REGISTRY_PAUSE_MS)} a sync waits; try again later`,
          });
        }
        await this.wait(paused, r);
        continue;
      }
      const floor = this.o.floor ?? 0;
      const q = this.observed;
      if (floor > 0 && q && q.quota.remaining <= floor && now - q.at < QUOTA_STALE_MS && countsAgainstQuota(r.method, r.pathname)) {
        throw new OciError({
          code: 'TOO_MANY_REQUESTS',
          retryable: false,
          registry: this.registry,
          message: `${r.what}: not sent, ${this.registry} reports ${q.quota.remaining} of ${q.quota.limit} pulls left, and the last ${floor} are kept for others (rate-limit floor); try again later`,
        });
      }
      if (this.intervalMs > 0) {
        if (slotAt === undefined) {
          slotAt = Math.max(now, this.nextSlotAt);
          this.nextSlotAt = slotAt + this.intervalMs;
        }
        if (slotAt > now) {
          await this.wait(slotAt - now, r);
          continue;
        }
      }
      return;
    }
  }

  /** Reads what a response says about pacing: its quota headers, and a 429/503 pause. */
  observe(status: number, headers: Headers): Quota | undefined {
    const now = this.clock.now();
    const quota = parseQuota(headers);
    if (quota) this.observed = { quota, at: now };
    const after = parseRetryAfter(headerValue(headers, 'retry-after'), now);
    if (pausesRegistry(status, after)) this.pausedUntil = Math.max(this.pausedUntil, now + after!);
    return quota;
  }

  private cancelled(r: Admission): OciError {
    return new OciError({ code: 'CANCELLED', registry: this.registry, message: `${r.what}: cancelled while waiting for ${this.registry}` });
  }

  private wait(ms: number, r: Admission): Promise<void> {
    const p = this.clock.sleep(ms, r.signal).catch(() => {
      throw this.cancelled(r);
    });
    return r.whileWaiting ? r.whileWaiting(p) : p;
  }
}

/** Gates by registry host, for every client given the same options. */
export class RegistryLimits {
  private readonly gates = new Map<string, RegistryGate>();

  constructor(
    private readonly o: RateLimitOptions = {},
    private readonly clock: Clock = systemClock,
  ) {
    if (o.qps !== undefined && !(Number.isFinite(o.qps) && o.qps > 0)) throw new RangeError(`rate limit: qps must be a positive number, got ${o.qps}`);
    if (o.floor !== undefined && !(Number.isSafeInteger(o.floor) && o.floor >= 0)) throw new RangeError(`rate limit: floor must be a non-negative integer, got ${o.floor}`);
  }

  gate(registry: string): RegistryGate {
    let g = this.gates.get(registry);
    if (!g) this.gates.set(registry, (g = new RegistryGate(registry, this.clock, this.o)));
    return g;
  }
}

const shared = new WeakMap<RateLimitOptions, RegistryLimits>();

/**
 * The limits for a client: one set per options object, so every client built from the same
 * options (the reconciler spreads one `client` object into each) shares one budget and one pause
 * per registry; without options, a set of the client's own.
 */
export function limitsFor(o: RateLimitOptions | undefined, clock: Clock = systemClock): RegistryLimits {
  if (!o) return new RegistryLimits({}, clock);
  let l = shared.get(o);
  if (!l) shared.set(o, (l = new RegistryLimits(o, clock)));
  return l;
}
