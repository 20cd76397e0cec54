/**
 * Referrers (signatures, SBOMs, attestations) of a subject digest: the OCI referrers API, its
 * `sha256-<hex>` fallback tag, and cosign's `sha256-<hex>.sig/.att/.sbom` tags.
 */
import type { Descriptor, ManifestJson } from '../oci/content.js';
import { sha256Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';

/** The referrers fallback tag of a subject: `sha256:<hex>` → `sha256-<hex>` (truncated as the spec says). */
export function fallbackTag(subjectDigest: string): string {
  const [algo = '', hex = ''] = subjectDigest.split(':');
  return `${algo.slice(0, 32)}-${hex.slice(0, 64)}`.replace(/[^a-zA-Z0-9._-]/g, '-');
}

const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'] as const;

/** cosign tags of `subjectDigest` present in `tags` (from a tag list the caller already has). */
export function cosignTags(subjectDigest: string, tags: readonly string[]): string[] {
  const base = fallbackTag(subjectDigest);
  const want = new Set(COSIGN_SUFFIXES.map((s) => `${base}.${s}`));
  return tags.filter((t) => want.has(t));
}

/** The descriptor a referrers list carries for a manifest (artifactType and annotations kept). */
export function referrerDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  if (d.annotations !== undefined) out.annotations = d.annotations;
  return out;
}

/** A fallback index for `descriptors`, when there are no source bytes to copy as they are. */
export function buildFallbackIndex(descriptors: readonly Descriptor[]): { mediaType: string; bytes: Uint8Array; digest: string } {
  const json = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: descriptors.map(referrerDescriptor) };
  const bytes = new TextEncoder().encode(JSON.stringify(json));
  return { mediaType: MediaType.OciIndex, bytes, digest: sha256Digest(bytes) };
}

/**
 * Adds `ours` to an existing fallback index without dropping or changing any entry it already has
 * (other tools' referrers). Returns undefined when nothing is missing, so nothing needs writing.
 */
export function mergeFallbackIndex(
  existing: ManifestJson,
  ours: readonly Descriptor[],
): { json: ManifestJson; added: Descriptor[] } | undefined {
  const have = new Set((existing.manifests ?? []).map((d) => d.digest));
  const added: Descriptor[] = [];
  for (const d of ours) {
    if (have.has(d.digest)) continue;
    have.add(d.digest);
    added.push(referrerDescriptor(d));
  }
  if (added.length === 0) return undefined;
  return { json: { ...existing, manifests: [...(existing.manifests ?? []), ...added] }, added };
}
