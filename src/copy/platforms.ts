/**
 * Choosing platforms of a multi-platform image: `os/arch[/variant]` strings, matched against an
 * index's descriptors, and the new index holding exactly the matching children.
 *
 * Matching:
 * - os and architecture must be equal; `os.version` and `os.features` are not looked at.
 * - A wanted platform without a variant takes every variant of its os/arch (`linux/arm` takes
 *   arm/v6 and arm/v7). With a variant, only that variant.
 * - arm64 without a variant is arm64/v8 (the OCI image index spec's only arm64 variant in common
 *   use, and what containerd assumes): `linux/arm64/v8` takes a child that names no variant.
 * - buildkit's attestation manifests (annotation `vnd.docker.reference.type: attestation-manifest`,
 *   platform unknown/unknown) go with the child their `vnd.docker.reference.digest` names: kept
 *   when it is kept, dropped with it, so the new index never lists an attestation of a child it
 *   does not hold.
 * - An entry with no platform (a nested index, an artifact) matches nothing and is left out.
 *
 * The new index is the source index's JSON with only `manifests` changed (every other field and
 * annotation kept, entries unchanged and in source order), serialized compactly: the same source
 * index always gives the same bytes, so a re-sync compares the target with the digest it would
 * write and finds it up to date.
 */
import type { CallOptions, Descriptor, ManifestJson, Platform, RawManifest, Repository } from '../oci/content.js';
import { sha256Digest } from '../oci/digest.js';

export interface PlatformChoice {
  os: string;
  architecture: string;
  variant?: string;
}

/** Annotations buildkit puts on the attestation manifests of an index. */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';

const PART = /^[a-z0-9][a-z0-9._-]*$/;

/** `os/arch[/variant]` → its parts; throws an Error naming the string otherwise. */
export function parsePlatform(text: string): PlatformChoice {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => PART.test(p))) {
    throw new Error(`platform ${JSON.stringify(text)}: expected os/arch or os/arch/variant in lower case (linux/amd64, linux/arm64/v8)`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

/** The variant a platform implies when it names none (arm64 → v8). */
function variantOf(p: Pick<Platform, 'architecture' | 'variant'>): string | undefined {
  return p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
}

export function platformMatches(want: PlatformChoice, have: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || variantOf(want) === variantOf(have);
}

function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST;
}

/**
 * The index `raw` (parsed: `json`) with only the entries matching `wanted` (and their
 * attestations), as the bytes to write. Undefined when no entry matches; `raw` itself when every
 * entry does (the source's bytes, digest and signatures then stay valid).
 */
export function filterIndex(raw: RawManifest, json: ManifestJson, wanted: readonly PlatformChoice[]): RawManifest | undefined {
  const entries = json.manifests ?? [];
  const matches = (d: Descriptor): boolean => wanted.some((w) => platformMatches(w, d.platform));
  const platformDigests = new Set(entries.filter((d) => !isAttestation(d) && matches(d)).map((d) => d.digest));
  if (platformDigests.size === 0) return undefined;
  const keep = entries.map((d) => (isAttestation(d) ? platformDigests.has(d.annotations?.[REFERENCE_DIGEST_ANNOTATION] ?? '') : platformDigests.has(d.digest)));
  if (keep.every(Boolean)) return raw;
  // The source's own entry objects, unchanged: fields this code does not know are kept too.
  const original = JSON.parse(new TextDecoder().decode(raw.bytes)) as Record<string, unknown> & { manifests: unknown[] };
  // parseManifest checked each entry of this very list, in order.
  if (!Array.isArray(original.manifests) || original.manifests.length !== entries.length) throw new Error(`index ${raw.digest}: manifests changed while filtering`);
  const bytes = new TextEncoder().encode(JSON.stringify({ ...original, manifests: original.manifests.filter((_, i) => keep[i]) }));
  return { digest: sha256Digest(bytes), mediaType: raw.mediaType, size: bytes.length, bytes };
}

/** An image config is a few KiB; one larger than this is not read into memory to learn a platform. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** The platform an image manifest's config names (`os`, `architecture`, `variant`). */
export async function configPlatform(source: Repository, json: ManifestJson, call: CallOptions): Promise<PlatformChoice | undefined> {
  const config = json.config;
  if (!config || config.size > MAX_CONFIG_BYTES) return undefined;
  const r = await source.getBlob(config.digest, 0, call);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of r.stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > config.size) break;
    chunks.push(chunk);
  }
  if (size > config.size) r.stream.destroy();
  const bytes = Buffer.concat(chunks);
  // A config that is not what the manifest names tells nothing about the image.
  if (bytes.length !== config.size || sha256Digest(bytes) !== config.digest) return undefined;
  try {
    const c = JSON.parse(bytes.toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
    return { os: c.os, architecture: c.architecture, ...(typeof c.variant === 'string' ? { variant: c.variant } : {}) };
  } catch {
    return undefined;
  }
}

/** The platforms of an index's entries (attestations left out), for messages. */
export function indexPlatforms(json: ManifestJson): string[] {
  return (json.manifests ?? []).filter((d) => !isAttestation(d)).map((d) => (d.platform ? formatPlatform(d.platform) : 'unknown'));
}
