/**
 * cosign's simple-signing payload: what a key signature actually vouches for. A signature is only
 * about the image its payload names, so a valid signature copied next to another image (a replay)
 * must not count for it.
 */

/** The `critical.type` cosign writes into every image signature payload. */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** undefined when `payload` is a cosign signature payload for exactly `digest`, else why not. */
export function payloadProblem(payload: Uint8Array, digest: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return 'payload is not JSON';
  }
  const critical = isObject(json) ? json['critical'] : undefined;
  if (!isObject(critical)) return 'payload has no critical section';
  if (critical['type'] !== COSIGN_SIGNATURE_TYPE) return `payload is not a ${COSIGN_SIGNATURE_TYPE}`;
  const image = critical['image'];
  const named = isObject(image) ? image['docker-manifest-digest'] : undefined;
  if (typeof named !== 'string') return 'payload names no docker-manifest-digest';
  if (named !== digest) return `payload names ${printable(named)} not ${digest}`;
  return undefined;
}

/** A value from a payload, safe for a one-line message: bounded, no control characters. */
export function printable(s: string, max = 80): string {
  const clean = s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
