/**
 * The checks a registry makes on what it is sent, for the backends that are their own store
 * (memory, OCI layout): a reference must be a tag or a sha256 digest, and a manifest PUT must fit the
 * size limit, hash to the digest it is put under, and be JSON. One place, so the local stores refuse
 * exactly what each other refuses.
 */
import { sha256Digest } from '../oci/digest.js';
import type { CallOptions, Descriptor, PutBlobOptions, PutBlobResult } from '../oci/content.js';
import { OciError } from '../oci/errors.js';
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

/** A local store's answer to an aborted call: CANCELLED, as the registry client answers it. */
export function throwIfAborted(o: CallOptions | undefined, what: string): void {
  if (o?.signal?.aborted) throw new OciError({ code: 'CANCELLED', message: `${what}: cancelled` });
}

/**
 * The front half of a local store's putBlob: the digest must be sha256, and each offered mount
 * source is tried in turn. The mount result, or undefined when the blob must be stored.
 */
export async function mountBeforeStore(
  desc: Descriptor,
  options: PutBlobOptions | undefined,
  what: string,
  mount: (from: string) => Promise<boolean>,
  fail: Fail,
): Promise<PutBlobResult | undefined> {
  throwIfAborted(options, what);
  if (!isSha256Digest(desc.digest)) throw fail('DIGEST_INVALID', what, 'not a sha256 digest');
  for (const from of options?.mountFrom ?? []) {
    if (await mount(from)) return { transfer: 'mount', mountedFrom: from };
    options?.onMountRefused?.(from);
  }
  return undefined;
}
