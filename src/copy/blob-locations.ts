/**
 * Where blobs are known to live, per blob store (a registry's host; see Repository.blobStore), so
 * a copy can mount from any repository of the target's store that holds a blob instead of
 * uploading it. Learned from everything
 * the engine sees (source reads, target writes, HEAD hits) and fed from outside (the controller
 * records each ImageMirror's target repo + image digest). An image known to be in a repository
 * implies all of its blobs are there. Bounded: least recently used entries are forgotten; a stale
 * entry only costs a mount that the registry answers "not mounted".
 */
import { LruMap } from './lru.js';

export interface BlobLocationsOptions {
  /** Distinct (registry, blob) and (registry, image) keys kept. Default 50 000. */
  maxEntries?: number;
  /** Repositories remembered per key, most recent first. Default 8. */
  maxReposPerEntry?: number;
  /** Image → blob lists kept (content-addressed, so registry independent). Default 5 000. */
  maxImages?: number;
}

export class BlobLocations {
  private readonly maxRepos: number;
  /** `b|registry|blob` or `i|registry|image` → repositories, most recent first. */
  private readonly repos: LruMap<string, string[]>;
  /** image digest → its blob digests (including those of its child manifests). */
  private readonly imageBlobs: LruMap<string, readonly string[]>;
  /** blob digest → images known to contain it (reverse of imageBlobs). */
  private readonly blobImages = new Map<string, Set<string>>();

  constructor(o: BlobLocationsOptions = {}) {
    this.maxRepos = o.maxReposPerEntry ?? 8;
    this.repos = new LruMap(o.maxEntries ?? 50_000);
    this.imageBlobs = new LruMap(o.maxImages ?? 5_000, (image, blobs) => {
      for (const b of blobs) {
        const set = this.blobImages.get(b);
        set?.delete(image);
        if (set && set.size === 0) this.blobImages.delete(b);
      }
    });
  }

  recordBlob(registry: string, repository: string, digest: string): void {
    this.add(`b|${registry}|${digest}`, repository);
  }

  /**
   * `manifestDigest` is present in `repository`. With `blobDigests` (all blobs it needs, children
   * included) those are remembered too, so any repository later recorded as holding this image on
   * any registry becomes a mount candidate for them.
   */
  recordImage(registry: string, repository: string, manifestDigest: string, blobDigests?: readonly string[]): void {
    this.add(`i|${registry}|${manifestDigest}`, repository);
    if (blobDigests) this.learnImageBlobs(manifestDigest, blobDigests);
  }

  /** Remember what an image contains without saying where it is. */
  learnImageBlobs(manifestDigest: string, blobDigests: readonly string[]): void {
    const known = this.imageBlobs.peek(manifestDigest);
    if (known) {
      this.imageBlobs.get(manifestDigest);
      return;
    }
    const unique = [...new Set(blobDigests)];
    this.imageBlobs.set(manifestDigest, unique);
    for (const b of unique) {
      let set = this.blobImages.get(b);
      if (!set) this.blobImages.set(b, (set = new Set()));
      set.add(manifestDigest);
    }
  }

  /**
   * Repositories of `registry` believed to hold `blobDigest`, most recently learned first.
   * `imageDigests`: images the caller knows contain the blob (e.g. the image being copied), whose
   * known locations count too.
   */
  candidates(registry: string, blobDigest: string, opts: { imageDigests?: readonly string[] } = {}): string[] {
    const out: string[] = [];
    const push = (list: readonly string[] | undefined): void => {
      for (const r of list ?? []) if (!out.includes(r)) out.push(r);
    };
    push(this.repos.get(`b|${registry}|${blobDigest}`));
    const images = new Set<string>(opts.imageDigests ?? []);
    for (const i of this.blobImages.get(blobDigest) ?? []) images.add(i);
    for (const i of images) push(this.repos.get(`i|${registry}|${i}`));
    return out;
  }

  /**
   * Whether a manifest known to be in `repository` names the blob (not merely an upload seen
   * there): some registries mount only such blobs (ECR, aws/containers-roadmap#2860).
   */
  isReferenced(registry: string, repository: string, blobDigest: string): boolean {
    for (const image of this.blobImages.get(blobDigest) ?? []) {
      if (this.repos.peek(`i|${registry}|${image}`)?.includes(repository)) return true;
    }
    return false;
  }

  get size(): number {
    return this.repos.size;
  }

  private add(key: string, repository: string): void {
    const list = this.repos.peek(key) ?? [];
    const next = [repository, ...list.filter((r) => r !== repository)].slice(0, this.maxRepos);
    this.repos.set(key, next);
  }
}
