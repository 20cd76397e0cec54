/**
 * Reading user-written objects (ImageMirror and ImageMirrorPolicy documents, raw or from the API
 * server) for validation: shape tests, `null` read as absent (the API server drops nulls before it
 * validates), and values described for error messages in bounded, one-line form.
 */
import { quote } from '../oci/names.js';

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
