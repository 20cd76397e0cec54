/**
 * Where the engine believes blobs and images are, as one copy run sees it. A live run records into
 * the engine's BlobLocations; a dry run writes nothing, so what it *would* have put somewhere is kept
 * in an overlay for this run only (later targets plan mounts from it) and never becomes a location
 * another run would trust.
 */
import type { Repository } from '../oci/content.js';
import type { BlobLocations } from './blob-locations.js';
import { allBlobs, type ImageNode } from './image-tree.js';

export interface Presence {
  /** `digest` is (or, planned, would be) in `repo`. */
  recordBlob(repo: Repository, digest: string): void;
  /** `node` and every blob it needs are (or would be) in `repo`. */
  recordImage(repo: Repository, node: ImageNode): void;
  /** Repositories of `repo`'s blob store believed to hold the blob, best first. */
  candidates(repo: Repository, digest: string, imageDigests: readonly string[]): string[];
  /** Whether a manifest known to be in `repository` names the blob (see BlobLocations.isReferenced). */
  isReferenced(blobStore: string, repository: string, digest: string): boolean;
}

/** What a live run learns: shared with every later run through the engine's BlobLocations. */
export class RecordedPresence implements Presence {
  constructor(private readonly locations: BlobLocations) {}

  recordBlob(repo: Repository, digest: string): void {
    this.locations.recordBlob(repo.blobStore, repo.repository, digest);
  }

  recordImage(repo: Repository, node: ImageNode): void {
    this.locations.recordImage(repo.blobStore, repo.repository, node.digest, allBlobs(node).map((b) => b.digest));
  }

  candidates(repo: Repository, digest: string, imageDigests: readonly string[]): string[] {
    return this.locations.candidates(repo.blobStore, digest, { imageDigests });
  }

  isReferenced(blobStore: string, repository: string, digest: string): boolean {
    return this.locations.isReferenced(blobStore, repository, digest);
  }
}

/** A dry run's view: the recorded locations (read only) plus what this plan would have written. */
export class PlannedPresence implements Presence {
  /** `blobStore@digest` → repositories it would be in, most recent first. */
  private readonly planned = new Map<string, string[]>();

  constructor(private readonly locations: BlobLocations) {}

  recordBlob(repo: Repository, digest: string): void {
    const key = `${repo.blobStore}@${digest}`;
    const list = this.planned.get(key) ?? [];
    if (!list.includes(repo.repository)) list.unshift(repo.repository);
    this.planned.set(key, list);
  }

  recordImage(repo: Repository, node: ImageNode): void {
    for (const b of allBlobs(node)) this.recordBlob(repo, b.digest);
  }

  candidates(repo: Repository, digest: string, imageDigests: readonly string[]): string[] {
    return [...(this.planned.get(`${repo.blobStore}@${digest}`) ?? []), ...this.locations.candidates(repo.blobStore, digest, { imageDigests })];
  }

  /** A planned location counts as referenced: the plan writes a manifest naming the blob there. */
  isReferenced(blobStore: string, repository: string, digest: string): boolean {
    return (this.planned.get(`${blobStore}@${digest}`) ?? []).includes(repository) || this.locations.isReferenced(blobStore, repository, digest);
  }
}
