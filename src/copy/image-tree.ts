/**
 * Reading a source image as a tree: a manifest (exact bytes), its child manifests (for an index)
 * and the blobs each one names. The tree is really a DAG: an index may list one child many times,
 * or two indexes the same child, and each distinct digest is read, parsed and held once. Bounds on
 * distinct manifests, their bytes, distinct blobs and nesting keep a few KB of hostile index from
 * costing more than that; exceeding one is a MANIFEST_INVALID error naming the image.
 *
 * Manifests are content-addressed, but a digest is not a secret: the cache serves a manifest only
 * to a reader with the same `Repository.identity` (same repository, same credentials) as the one
 * that read it, so knowing another tenant's digest is never enough to receive its content.
 */
import type { CallOptions, Descriptor, ManifestJson, RawManifest, Repository } from '../oci/content.js';
import { parseManifestBytes } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import { isIndexMediaType } from '../oci/media-types.js';

/** Index nesting: an index of indexes of … at most this deep below the top manifest. */
export const MAX_INDEX_DEPTH = 4;
/** Distinct manifests (the top one included) in one image tree. */
export const MAX_IMAGE_MANIFESTS = 512;
/** Bytes of all distinct manifests of one image tree together. */
export const MAX_IMAGE_MANIFEST_BYTES = 32 * 1024 * 1024;
/** Distinct blobs named by one image tree. */
export const MAX_IMAGE_BLOBS = 10_000;

export interface ImageNode {
  digest: string;
  mediaType: string;
  raw: RawManifest;
  json: ManifestJson;
  /** Distinct child manifests of an index, in index order (empty for an image manifest). */
  children: ImageNode[];
  /** Blobs this manifest names directly: config, then layers (foreign layers excluded). */
  blobs: Descriptor[];
  /** Longest chain of indexes below this node (0 for an image manifest). */
  height: number;
}

/** Manifest bytes by (reader identity, digest), bounded by total bytes, least recently used dropped first. */
export class ManifestCache {
  private bytes = 0;
  private readonly map = new Map<string, RawManifest>();

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  private static key(identity: string, digest: string): string {
    return `${identity}@${digest}`;
  }

  get(identity: string, digest: string): RawManifest | undefined {
    const k = ManifestCache.key(identity, digest);
    const m = this.map.get(k);
    if (m) {
      this.map.delete(k);
      this.map.set(k, m);
    }
    return m;
  }

  set(identity: string, m: RawManifest): void {
    const k = ManifestCache.key(identity, m.digest);
    if (this.map.has(k) || m.bytes.length > this.maxBytes) return;
    this.map.set(k, m);
    this.bytes += m.bytes.length;
    for (const [key, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(key);
      this.bytes -= v.bytes.length;
    }
  }

  get size(): number {
    return this.map.size;
  }
}

/** Parses and checks a manifest's JSON (descriptor digests, sizes, list shapes). */
export function parseManifest(raw: RawManifest, where: string): ManifestJson {
  return parseManifestBytes(raw.bytes, { where: `${where}: manifest ${raw.digest}` });
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

/** Bookkeeping of one tree build: what has been read, against the bounds. */
interface TreeBuild {
  repo: Repository;
  call: CallOptions;
  top: string;
  nodes: Map<string, Promise<ImageNode>>;
  bytes: number;
  blobs: Set<string>;
  /** The top manifest's bytes when the caller has them (a manifest made here, not in `repo`). */
  root?: RawManifest;
}

export class ImageReader {
  constructor(private readonly cache: ManifestCache) {}

  async manifest(repo: Repository, digest: string, call: CallOptions = {}): Promise<RawManifest> {
    const hit = this.cache.get(repo.identity, digest);
    if (hit) return hit;
    const m = await repo.getManifest(digest, call);
    // getManifest verifies a digest reference; a Repository that did not would poison the cache.
    if (m.digest !== digest) {
      throw new OciError({ code: 'DIGEST_INVALID', message: `${repo.registry}/${repo.repository}@${digest}: content is ${m.digest}`, registry: repo.registry, repository: repo.repository });
    }
    this.cache.set(repo.identity, m);
    return m;
  }

  /**
   * Loads `digest` and, for an index, every distinct child manifest (recursively), each by digest
   * and each once, within the MAX_IMAGE_* and MAX_INDEX_DEPTH bounds.
   */
  async tree(repo: Repository, digest: string, call: CallOptions = {}): Promise<ImageNode> {
    const build: TreeBuild = { repo, call, top: digest, nodes: new Map(), bytes: 0, blobs: new Set() };
    return this.node(build, digest, 0, []);
  }

  /**
   * The tree below `root`, a manifest the caller made (a platform-filtered index): its children
   * are read from `repo` as for tree(), under the same bounds.
   */
  async treeOf(repo: Repository, root: RawManifest, call: CallOptions = {}): Promise<ImageNode> {
    const build: TreeBuild = { repo, call, top: root.digest, nodes: new Map(), bytes: 0, blobs: new Set(), root };
    return this.node(build, root.digest, 0, []);
  }

  private invalid(b: TreeBuild, detail: string): OciError {
    const name = `${b.repo.registry}/${b.repo.repository}`;
    return new OciError({ code: 'MANIFEST_INVALID', message: `${name}@${b.top}: ${detail}`, registry: b.repo.registry, repository: b.repo.repository });
  }

  private tooDeep(b: TreeBuild, digest: string): OciError {
    return this.invalid(b, `index nesting deeper than ${MAX_INDEX_DEPTH} at ${digest}`);
  }

  private async node(b: TreeBuild, digest: string, depth: number, path: readonly string[]): Promise<ImageNode> {
    if (depth > MAX_INDEX_DEPTH) throw this.tooDeep(b, digest);
    // Content addressing rules out cycles for verified content; refusing one keeps a Repository
    // that does not verify from making this wait on itself.
    if (path.includes(digest)) throw this.invalid(b, `index ${digest} lists itself`);
    let p = b.nodes.get(digest);
    if (!p) {
      if (b.nodes.size >= MAX_IMAGE_MANIFESTS) throw this.invalid(b, `more than ${MAX_IMAGE_MANIFESTS} distinct manifests`);
      p = this.load(b, digest, depth, [...path, digest]);
      b.nodes.set(digest, p);
    }
    const n = await p;
    // Reached again deeper than where it was first read: the longer chain counts.
    if (depth + n.height > MAX_INDEX_DEPTH) throw this.tooDeep(b, digest);
    return n;
  }

  private async load(b: TreeBuild, digest: string, depth: number, path: readonly string[]): Promise<ImageNode> {
    const raw = b.root?.digest === digest ? b.root : await this.manifest(b.repo, digest, b.call);
    b.bytes += raw.bytes.length;
    if (b.bytes > MAX_IMAGE_MANIFEST_BYTES) throw this.invalid(b, `manifests larger than ${MAX_IMAGE_MANIFEST_BYTES} bytes in total`);
    const json = parseManifest(raw, `${b.repo.registry}/${b.repo.repository}`);
    const blobs = ownBlobs(json);
    for (const d of blobs) b.blobs.add(d.digest);
    if (b.blobs.size > MAX_IMAGE_BLOBS) throw this.invalid(b, `more than ${MAX_IMAGE_BLOBS} distinct blobs`);
    const children: ImageNode[] = [];
    let height = 0;
    if (isIndex(raw, json)) {
      const seen = new Set<string>();
      for (const d of json.manifests ?? []) {
        if (seen.has(d.digest)) continue;
        seen.add(d.digest);
        const child = await this.node(b, d.digest, depth + 1, path);
        children.push(child);
        height = Math.max(height, child.height + 1);
      }
    }
    return { digest, mediaType: raw.mediaType, raw, json, children, blobs, height };
  }
}

/** Every node of the DAG below and including `node`, each once. */
export function allNodes(node: ImageNode): ImageNode[] {
  const seen = new Set<ImageNode>();
  const walk = (n: ImageNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const c of n.children) walk(c);
  };
  walk(node);
  return [...seen];
}

const blobsOf = new WeakMap<ImageNode, Descriptor[]>();

/** Every blob the image needs, children included, each digest once (computed once per node). */
export function allBlobs(node: ImageNode): Descriptor[] {
  const known = blobsOf.get(node);
  if (known) return known;
  const seen = new Map<string, Descriptor>();
  for (const n of allNodes(node)) for (const b of n.blobs) if (!seen.has(b.digest)) seen.set(b.digest, b);
  const out = [...seen.values()];
  blobsOf.set(node, out);
  return out;
}

export function blobBytes(blobs: readonly Descriptor[]): number {
  return blobs.reduce((s, b) => s + b.size, 0);
}
