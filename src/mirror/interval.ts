/**
 * The resync interval of a mirror, clamped to a range a tenant cannot abuse: `interval: 1ns` would
 * re-list the source registry in a hot loop, and `interval: 999999h` is a timer far beyond what
 * setTimeout can hold. Any syntactically valid duration is admitted (the CRD cannot express a range
 * on a duration string, and refusing would break objects already stored); out-of-range values are
 * clamped, and validateMirror reports the clamp as a warning so the user can see it.
 *
 * Every reader of `spec.interval` goes through resyncIntervalMs, so the clamp cannot be bypassed.
 */
import { formatDuration, parseDuration } from './duration.js';
import { DEFAULTS, type ImageMirrorSpec } from './types.js';

/** Shortest resync period: a registry tag list is not worth polling more often than this. */
export const MIN_INTERVAL_MS = 10_000;
/** Longest resync period (30 days): a mirror is re-checked at least this often whatever it says. */
export const MAX_INTERVAL_MS = 30 * 24 * 3_600_000;

/** `ms` clamped to [MIN_INTERVAL_MS, MAX_INTERVAL_MS]; NaN reads as the minimum. */
export function clampIntervalMs(ms: number): number {
  if (!(ms >= MIN_INTERVAL_MS)) return MIN_INTERVAL_MS;
  return Math.min(ms, MAX_INTERVAL_MS);
}

/**
 * The interval as written, its clamped value, and a one-line warning when the clamp changed it.
 * Throws parseDuration's one-line Error for text that is not a duration.
 */
export function readInterval(interval: string): { ms: number; warning?: string } {
  const asked = parseDuration(interval);
  const ms = clampIntervalMs(asked);
  if (ms === asked) return { ms };
  const bound = ms === MIN_INTERVAL_MS ? 'below the minimum' : 'above the maximum';
  return { ms, warning: `interval ${JSON.stringify(interval)} is ${bound} ${formatDuration(ms)}; using ${formatDuration(ms)}` };
}

/**
 * Milliseconds between resyncs of a validated spec (the default when unset), clamped to
 * [MIN_INTERVAL_MS, MAX_INTERVAL_MS].
 */
export function resyncIntervalMs(spec: Pick<ImageMirrorSpec, 'interval'>): number {
  return readInterval(spec.interval ?? DEFAULTS.interval).ms;
}
