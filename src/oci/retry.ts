/** Backoff for retryable registry failures: network errors, 5xx, 429 (Retry-After honoured). */
import { isOciError, type OciError } from './errors.js';

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 10_000 };

export function retryPolicy(o?: Partial<RetryPolicy>): RetryPolicy {
  return {
    attempts: Math.max(1, o?.attempts ?? DEFAULT_RETRY.attempts),
    baseDelayMs: Math.max(0, o?.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs),
    maxDelayMs: Math.max(0, o?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs),
  };
}

/** Longest Retry-After value read (a week, in ms): a bigger number is just "later", and stays finite. */
export const MAX_RETRY_AFTER_MS = 7 * 24 * 3600_000;
/** Longer header values are not a delay or a date, and are not handed to Date.parse. */
export const MAX_RETRY_AFTER_CHARS = 64;

/** `Retry-After` as delta-seconds or an HTTP date, in ms (0..MAX_RETRY_AFTER_MS); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.length > MAX_RETRY_AFTER_CHARS) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const t = Date.parse(v);
  if (!Number.isFinite(t)) return undefined;
  return Math.min(Math.max(0, t - now), MAX_RETRY_AFTER_MS);
}

/**
 * Delay before retry number `retry` (1 = first retry): full jitter over an exponential window,
 * or the server's Retry-After when it gave one (capped by maxDelayMs so a hostile header
 * cannot stall a sync for hours).
 */
export function backoffDelay(policy: RetryPolicy, retry: number, retryAfterMs?: number, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs);
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(window / 2 + (random() * window) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or attempts run out.
 * `waitedElsewhere`: failures whose wait something else makes the next attempt observe (a registry
 * pause), so this loop adds none.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  signal?: AbortSignal,
  waitedElsewhere?: (e: OciError) => boolean,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= policy.attempts || !isOciError(e) || !e.retryable || signal?.aborted) throw e;
      if (waitedElsewhere?.(e)) continue;
      await sleep(backoffDelay(policy, attempt, e.retryAfterMs), signal);
    }
  }
}
