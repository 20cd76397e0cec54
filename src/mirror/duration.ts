/**
 * Go-style durations (`10m`, `1h30m`, `1.5h`, `500ms`), the format Kubernetes users know from
 * Flux and metav1.Duration. The grammar is the one the CRD's `interval` pattern enforces
 * (DURATION_PATTERN), so a value the API server admits always parses here. Unlike Go, a bare
 * number (even `0`) and a sign are refused: an interval is always positive and always has a unit.
 * Like Go, a duration beyond time.Duration's range (about 292 years) is refused, so the CRD's CEL
 * `duration()` and this parser agree on what is a duration.
 */

/** Longest duration text accepted; checked before any regex runs, so parsing is linear time. */
export const MAX_DURATION_LENGTH = 64;
/** Go's time.Duration maximum (2^63-1 ns), in whole milliseconds: 2562047h47m16.854s. */
export const MAX_DURATION_MS = 9_223_372_036_854;

/** Anchored; the CRD carries the same text as its `pattern`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds in `s`; throws a one-line Error naming the value when it is not a positive duration. */
export function parseDuration(s: string): number {
  if (typeof s === 'string' && s.length > MAX_DURATION_LENGTH) {
    throw new Error(`invalid duration ${JSON.stringify(s.slice(0, 16))}…: ${s.length} characters, at most ${MAX_DURATION_LENGTH} allowed`);
  }
  if (typeof s !== 'string' || !DURATION_RE.test(s)) {
    throw new Error(`invalid duration ${JSON.stringify(s)}: use a number with a unit, e.g. "90s", "10m", "1h30m" (units ns, us, ms, s, m, h)`);
  }
  let ms = 0;
  for (const m of s.matchAll(PART_RE)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (!(ms > 0)) throw new Error(`invalid duration ${JSON.stringify(s)}: must be greater than zero`);
  if (!(ms <= MAX_DURATION_MS)) throw new Error(`invalid duration ${JSON.stringify(s)}: too large (at most ${formatDuration(MAX_DURATION_MS)})`);
  return ms;
}

/** Compact Go-like form: `1h30m`, `10m`, `1m30s`, `500ms`, `1.5s`; `0s` for zero. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return '0s';
  if (ms < 1) return `${trim(ms * 1000)}us`;
  if (ms < 1000) return `${trim(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const rest = ms - h * 3_600_000 - m * 60_000;
  let out = '';
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (rest) out += `${trim(rest / 1000)}s`;
  return out;
}

function trim(n: number): string {
  // Three decimals is enough for ms/µs display and hides float noise (0.1+0.2).
  return String(Number(n.toFixed(3)));
}
