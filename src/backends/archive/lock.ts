/**
 * A bundle's lock: every digest (and size) its images need, and whether the bundle carries it or
 * left it out because the far side already held it. Written inside the archive
 * (`image-mirror.lock.json`, next to index.json) and beside it (`<bundle>.lock.json`), so the next
 * bundle can be made against it (`--since`, `--have`) and an importer can name what is missing.
 */
import { isSha256Digest } from '../../oci/names.js';

/** The lock's name inside an archive. */
export const LOCK_ENTRY = 'image-mirror.lock.json';
export const LOCK_API_VERSION = 'bundle.imagemirror.dev/v1';
export const LOCK_KIND = 'BundleLock';
/** The largest lock read: a few hundred bytes per blob, far beyond any real bundle. */
export const MAX_LOCK_BYTES = 256 * 1024 * 1024;

export interface LockBlob {
  digest: string;
  size: number;
  /** A manifest (always carried, so an importer can walk every image from the archive alone). */
  manifest?: true;
  /** false: left out, the far side held it when the bundle was made. */
  included: boolean;
}

export interface LockImage {
  /** The source repository as the mirror names it. */
  repository: string;
  tag: string;
  /** The ref name in the archive's index.json (`TAG`, or `PATH:TAG` in a bundle of several repositories). */
  refName: string;
  digest: string;
}

export interface BundleLock {
  apiVersion: typeof LOCK_API_VERSION;
  kind: typeof LOCK_KIND;
  images: LockImage[];
  blobs: LockBlob[];
}

/** Parses and checks a lock; throws an Error with a one-line reason. */
export function parseLock(text: string): BundleLock {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  const l = json as Partial<BundleLock>;
  if (typeof json !== 'object' || json === null || l.apiVersion !== LOCK_API_VERSION || l.kind !== LOCK_KIND) {
    throw new Error(`not a ${LOCK_KIND} (apiVersion ${LOCK_API_VERSION})`);
  }
  if (!Array.isArray(l.blobs) || !Array.isArray(l.images)) throw new Error('blobs and images must be lists');
  for (const b of l.blobs) {
    if (typeof b !== 'object' || b === null || !isSha256Digest(b.digest) || !Number.isSafeInteger(b.size) || b.size < 0 || typeof b.included !== 'boolean') {
      throw new Error(`invalid blob entry ${JSON.stringify(b)?.slice(0, 200)}`);
    }
  }
  return l as BundleLock;
}
