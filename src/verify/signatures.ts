/**
 * Where an image's signatures are found, in the order they are examined: cosign's `sha256-<hex>.sig`
 * tag, then its referrers (the referrers API, or the `sha256-<hex>` fallback tag where the registry
 * has none) of the two kinds that sign an image: cosign signature artifacts and Sigstore bundles.
 * Yielded one at a time, so verification stops fetching once one verifies.
 */
import type { CallOptions, Descriptor, ManifestJson, RawManifest, Repository } from '../oci/content.js';
import { fallbackTag } from '../copy/referrers.js';
import { parseManifestBytes, type StructureContext } from '../oci/descriptor.js';
import { sha256Digest } from '../oci/digest.js';
import { isNotFound } from '../oci/errors.js';
import { MediaType } from '../oci/media-types.js';

/** The layer annotation holding a cosign signature (base64) of that layer's payload. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** The layer annotation with the signing certificate of a keyless cosign signature in its older format. */
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
/** artifactType of cosign signatures pushed as referrers (OCI 1.1 mode). */
export const COSIGN_SIGNATURE_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
/** Prefix of the Sigstore bundle media types (`…bundle+json;version=0.1`, `…bundle.v0.3+json`). */
export const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';

/**
 * Signature manifests fetched per image. Anyone who can push to the source repository can add
 * referrers, so the count is bounded: each costs a request, and a flood must not stall the mirror.
 */
export const MAX_SIGNATURE_MANIFESTS = 16;
/** Signatures (layers and bundles) examined per image, for the same reason. */
export const MAX_SIGNATURES_EXAMINED = 32;

export type Candidate =
  /**
   * A cosign simple-signing layer: `payload` is the blob, `signature` the annotation's base64;
   * `certificate` when cosign signed it keyless without a bundle (its older format).
   */
  | { kind: 'key'; payload: Descriptor; signature: string; certificate: boolean }
  /** A Sigstore bundle, the blob `bundle`. */
  | { kind: 'bundle'; bundle: Descriptor }
  /** A signature manifest that cannot be read as one (counted, so it is named in the reason). */
  | { kind: 'unreadable'; problem: string };

/** What the search left out because of the bounds; set once the generator is done. */
export interface SearchTally {
  notExamined: number;
}

function isBundleType(t: string | undefined): boolean {
  return t !== undefined && t.startsWith(SIGSTORE_BUNDLE_PREFIX);
}

function candidatesOf(json: ManifestJson): Candidate[] {
  const out: Candidate[] = [];
  for (const layer of json.layers ?? []) {
    const sig = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
    if (typeof sig === 'string') out.push({ kind: 'key', payload: layer, signature: sig, certificate: layer.annotations?.[COSIGN_CERTIFICATE_ANNOTATION] !== undefined });
    else if (isBundleType(layer.mediaType)) out.push({ kind: 'bundle', bundle: layer });
  }
  return out;
}

function context(repo: Repository, ref: string): StructureContext {
  return { registry: repo.registry, repository: repo.repository, where: `${repo.registry}/${repo.repository}${ref}` };
}

/** The manifest `reference`, or undefined when it is not there. */
async function getIfPresent(repo: Repository, reference: string, call: CallOptions): Promise<RawManifest | undefined> {
  try {
    return await repo.getManifest(reference, call);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/**
 * Referrers that may sign an image, from the API or the fallback tag; [] when there are none.
 * A fallback index that is not a valid index is `unreadable` rather than an error, since anyone who
 * can push a referrer can write it.
 */
async function signatureReferrers(repo: Repository, digest: string, call: CallOptions): Promise<Descriptor[] | { unreadable: string }> {
  let list: Descriptor[] | undefined;
  if (repo.capabilities.referrersApi !== 'no') list = await repo.referrers(digest, call);
  if (list === undefined) {
    const tag = fallbackTag(digest);
    const raw = await getIfPresent(repo, tag, call);
    // Some registries resolve `sha256-<hex>` to the image itself: only another index lists referrers.
    if (!raw || raw.digest === digest || raw.mediaType !== MediaType.OciIndex) return [];
    try {
      list = parseManifestBytes(raw.bytes, context(repo, `:${tag}`)).manifests ?? [];
    } catch {
      return { unreadable: `referrers index ${tag} is not a valid index` };
    }
  }
  return list.filter((d) => d.artifactType === COSIGN_SIGNATURE_ARTIFACT || isBundleType(d.artifactType));
}

/**
 * The signatures of `digest` in `repo`, at most MAX_SIGNATURES_EXAMINED of them from at most
 * MAX_SIGNATURE_MANIFESTS manifests; `tally.notExamined` counts the signatures and signature
 * manifests left out.
 * Registry failures other than "not found" are thrown: they say nothing about the signatures.
 */
export async function* findSignatures(repo: Repository, digest: string, call: CallOptions, tally: SearchTally): AsyncGenerator<Candidate> {
  const seen = new Set<string>();
  let manifests = 0;
  let examined = 0;
  const from = function* (raw: RawManifest, ref: string): Generator<Candidate> {
    let json: ManifestJson;
    try {
      json = parseManifestBytes(raw.bytes, context(repo, ref));
    } catch {
      // Whoever can push a referrer must not be able to stop the others from being examined.
      yield { kind: 'unreadable', problem: `signature manifest ${raw.digest} is not a valid manifest` };
      return;
    }
    for (const c of candidatesOf(json)) {
      if (examined >= MAX_SIGNATURES_EXAMINED) {
        tally.notExamined++;
        continue;
      }
      examined++;
      yield c;
    }
  };

  const sigTag = `${fallbackTag(digest)}.sig`;
  const sig = await getIfPresent(repo, sigTag, call);
  if (sig) {
    manifests++;
    seen.add(sig.digest);
    yield* from(sig, `:${sigTag}`);
  }

  const referrers = await signatureReferrers(repo, digest, call);
  if (!Array.isArray(referrers)) {
    yield { kind: 'unreadable', problem: referrers.unreadable };
    return;
  }
  for (const d of referrers) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (manifests >= MAX_SIGNATURE_MANIFESTS || examined >= MAX_SIGNATURES_EXAMINED) {
      tally.notExamined++;
      continue;
    }
    manifests++;
    // Listed but gone (deleted since): nothing to examine.
    const raw = await getIfPresent(repo, d.digest, call);
    if (raw) yield* from(raw, `@${d.digest}`);
  }
}

/**
 * The blob `desc` whole, when it is at most `max` bytes and hashes to its digest; otherwise why not.
 * The size is checked before the request and again while reading (the registry may lie).
 */
export async function readSmallBlob(repo: Repository, desc: Descriptor, max: number, what: string, call: CallOptions): Promise<{ bytes: Buffer } | { problem: string }> {
  if (desc.size > max) return { problem: `${what} is ${desc.size} bytes, more than the ${max} allowed` };
  let reader;
  try {
    reader = await repo.getBlob(desc.digest, 0, call);
  } catch (e) {
    if (isNotFound(e)) return { problem: `${what} blob ${desc.digest} is missing` };
    throw e;
  }
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of reader.stream) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      n += b.length;
      if (n > max) return { problem: `${what} is more than the ${max} bytes allowed` };
      parts.push(b);
    }
  } finally {
    reader.stream.destroy();
  }
  const bytes = Buffer.concat(parts);
  if (sha256Digest(bytes) !== desc.digest) return { problem: `${what} does not match its digest ${desc.digest}` };
  return { bytes };
}
