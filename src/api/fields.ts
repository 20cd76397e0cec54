/**
 * Reading user-written objects for validation: shape tests, `null` read as absent (the API server
 * drops nulls before it validates), and values described for error messages in bounded, one-line
 * form. Here rather than in src/mirror so the API declaration can word its messages with them
 * while importing nothing else from src/.
 */

/** A user value or key quoted in an error is cut here, so a huge value cannot make a huge message. */
export const QUOTE_MAX_CHARS = 64;

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Field value with `null` read as absent. */
export function get(o: Obj, k: string): unknown {
  const v = o[k];
  return v === null ? undefined : v;
}

/** JSON-quoted with the characters JSON leaves raw but terminals and logs mangle escaped. */
function quote(s: string): string {
  return JSON.stringify(s).replace(/[\u2028\u2029\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A user-written string quoted for an error message, cut at QUOTE_MAX_CHARS. */
export function quoteValue(s: string): string {
  return s.length <= QUOTE_MAX_CHARS ? quote(s) : `${quote(s.slice(0, QUOTE_MAX_CHARS))}…`;
}

/** What a value is, for "must be X, got Y" messages. */
export function describeValue(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${quoteValue(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/** Characters (code points) in `s`, as the API server counts maxLength, or undefined when within `max`. */
export function tooLong(s: string, max: number): string | undefined {
  if (s.length <= max) return undefined;
  let n = 0;
  for (const _ of s) n++;
  return n > max ? `${n} characters, at most ${max} allowed` : undefined;
}
