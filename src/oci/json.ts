/**
 * JSON from a registry, parsed under a nesting bound. JSON.parse takes time in proportion to
 * nesting (about a second per million levels), so a 4 MiB manifest of `[[[[…` would hold the event
 * loop, and with it every other mirror, for seconds per fetch. Manifests, indexes, tag lists and
 * referrers lists nest a handful of levels; a linear byte scan refuses anything deeper before
 * JSON.parse sees it.
 */

/** Nesting of arrays and objects accepted in a registry's JSON (a manifest needs about 5). */
export const MAX_JSON_DEPTH = 64;

/** True when `bytes` nest arrays/objects deeper than `max` (strings and escapes skipped). */
export function nestsDeeperThan(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte (UTF-8 continuation bytes are >= 0x80)
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Parses registry JSON; throws a plain Error whose message says why ("not JSON", "nested deeper
 * than …"), for the caller to wrap in its own typed error.
 */
export function parseRegistryJson(bytes: Uint8Array): unknown {
  if (nestsDeeperThan(bytes, MAX_JSON_DEPTH)) throw new Error(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
  } catch {
    throw new Error('not valid JSON');
  }
}
