/**
 * The checks a registry makes on what it is sent, for the backends that are their own store
 * (memory, OCI layout): a reference must be a tag or a sha256 digest, and a manifest PUT must fit the
 * size limit, hash to the digest it is put under, and be JSON. One place, so the local stores refuse
 * exactly what each other refuses.
 */
import { sha256Digest } from '../oci/digest.js';
import type { OciError } from '../oci/errors.js';
import { MAX_MANIFEST_BYTES } from '../oci/media-types.js';
import { isSha256Digest, isValidTag, looksLikeDigest, quote } from '../oci/names.js';

type Fail = (code: OciError['code'], what: string, detail: string) => OciError;

/** Throws INVALID_REFERENCE for anything but a valid tag or a sha256 digest. */
export function checkReference(reference: string, where: string, fail: Fail): void {
  if (looksLikeDigest(reference) ? !isSha256Digest(reference) : !isValidTag(reference)) {
    throw fail('INVALID_REFERENCE', where, `invalid tag or digest ${quote(reference)}`);
  }
}

/** The digest and parsed JSON of a manifest about to be stored under `reference`. */
export function checkManifestPut<T>(reference: string, bytes: Uint8Array, what: string, fail: Fail): { digest: string; json: T } {
  if (bytes.length > MAX_MANIFEST_BYTES) throw fail('MANIFEST_TOO_LARGE', what, `${bytes.length} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`);
  const digest = sha256Digest(bytes);
  if (looksLikeDigest(reference) && reference !== digest) throw fail('DIGEST_INVALID', what, `content hashes to ${digest}`);
  try {
    return { digest, json: JSON.parse(Buffer.from(bytes).toString('utf8')) as T };
  } catch {
    throw fail('MANIFEST_INVALID', what, 'not JSON');
  }
}
