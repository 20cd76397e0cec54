/**
 * Reading a source image as a tree: a manifest (exact bytes), its child manifests (for an index)
 * and the blobs each one names. Manifests are content-addressed, so a digest-keyed cache is always
 * valid and lets a fan-out to many targets read each source manifest once.
 */
import type { Descriptor, ManifestJson, RawManifest, Repository } from '../oci/content.js';
import { OciError } from '../oci/errors.js';
import { isIndexMediaType } from '../oci/media-types.js';

export interface ImageNode {
  digest: string;
  mediaType: string;
  raw: RawManifest;
  json: ManifestJson;
  /** Child manifests of an index, in index order (empty for an image manifest). */
  children: ImageNode[];
  /** Blobs this manifest names directly: config, then layers (foreign layers excluded). */
  blobs: Descriptor[];
}

/** Manifest bytes by digest, bounded by total bytes, least recently used dropped first. */
export class ManifestCache {
  private bytes = 0;
  private readonly map = new Map<string, RawManifest>();

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  get(digest: string): RawManifest | undefined {
    const m = this.map.get(digest);
    if (m) {
      this.map.delete(digest);
      this.map.set(digest, m);
    }
    return m;
  }

  set(m: RawManifest): void {
    if (this.map.has(m.digest) || m.bytes.length > this.maxBytes) return;
    this.map.set(m.digest, m);
    this.bytes += m.bytes.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.bytes.length;
    }
  }
}

export function parseManifest(raw: RawManifest, where: string): ManifestJson {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw.bytes).toString('utf8'));
  } catch {
    throw new OciError({ code: 'MANIFEST_INVALID', message: `${where}: manifest ${raw.digest} is not valid JSON` });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new OciError({ code: 'MANIFEST_INVALID', message: `${where}: manifest ${raw.digest} is not a JSON object` });
  }
  return json as ManifestJson;
}

/** Layers the registry does not serve (Windows foreign layers) are not copied, as docker and skopeo do. */
function isForeign(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && /foreign|nondistributable/.test(d.mediaType);
}

export function ownBlobs(json: ManifestJson): Descriptor[] {
  const out: Descriptor[] = [];
  if (json.config) out.push(json.config);
  for (const l of json.layers ?? []) if (!isForeign(l)) out.push(l);
  // `blobs` of an artifact manifest (pre-1.1 ORAS) are layers by another name.
  for (const l of (json as { blobs?: Descriptor[] }).blobs ?? []) if (!isForeign(l)) out.push(l);
  return out;
}

function isIndex(raw: RawManifest, json: ManifestJson): boolean {
  return isIndexMediaType(raw.mediaType) || isIndexMediaType(json.mediaType ?? '') || (Array.isArray(json.manifests) && !json.layers && !json.config);
}

export class ImageReader {
  constructor(private readonly cache: ManifestCache) {}

  async manifest(repo: Repository, digest: string): Promise<RawManifest> {
    const hit = this.cache.get(digest);
    if (hit) return hit;
    const m = await repo.getManifest(digest);
    this.cache.set(m);
    return m;
  }

  /** Loads `digest` and, for an index, every child manifest (recursively), each by digest. */
  async tree(repo: Repository, digest: string, depth = 0): Promise<ImageNode> {
    if (depth > 4) throw new OciError({ code: 'MANIFEST_INVALID', message: `${repo.registry}/${repo.repository}: index nesting deeper than 4 at ${digest}` });
    const raw = await this.manifest(repo, digest);
    const json = parseManifest(raw, `${repo.registry}/${repo.repository}`);
    const children: ImageNode[] = [];
    if (isIndex(raw, json)) {
      for (const d of json.manifests ?? []) children.push(await this.tree(repo, d.digest, depth + 1));
    }
    return { digest, mediaType: raw.mediaType, raw, json, children, blobs: ownBlobs(json) };
  }
}

/** Every blob the image needs, children included, each digest once. */
export function allBlobs(node: ImageNode): Descriptor[] {
  const seen = new Map<string, Descriptor>();
  const walk = (n: ImageNode): void => {
    for (const b of n.blobs) if (!seen.has(b.digest)) seen.set(b.digest, b);
    for (const c of n.children) walk(c);
  };
  walk(node);
  return [...seen.values()];
}

export function blobBytes(blobs: readonly Descriptor[]): number {
  return blobs.reduce((s, b) => s + b.size, 0);
}
