/**
 * The planner: decides, with reads only (HEADs), what each target tag, manifest and blob needs.
 * It never writes; the executor (execute.ts) carries a plan out, or — in a dry run — only records
 * what it would have done. A real run and a dry run therefore decide the same way.
 */
import type { CallOptions, Descriptor, ManifestInfo, Repository } from '../oci/content.js';
import type { Presence } from './presence.js';

/** What one target tag needs. */
export type TagPlan =
  /** The tag already points at the digest to write. */
  | { kind: 'up-to-date' }
  /** The tag points elsewhere and may not be moved (overwrite false). */
  | { kind: 'conflict'; head: ManifestInfo }
  /** The manifest is in the repository: one PUT of it under the tag. */
  | { kind: 'retag'; head?: ManifestInfo }
  /** Children and blobs first, then the manifest under the tag. */
  | { kind: 'copy'; head?: ManifestInfo };

/** What one blob of a manifest being pushed needs. */
export type BlobPlan =
  | { kind: 'exists' }
  /**
   * Mount from `from`, best first, uploading when none mounts. `provisional`: those of `from` that
   * hold the blob only as an upload no pushed manifest references yet. `unchecked`: no HEAD went
   * first, because a mount answers both "is it there" (201) and "put it there"; when the registry
   * declines, the blob may already have been in the target.
   */
  | { kind: 'mount'; from: string[]; provisional: string[]; unchecked: boolean }
  | { kind: 'upload' };

export interface PlannerContext {
  source: Repository;
  /** The digest every target tag should point at. */
  digest: string;
  overwrite: boolean;
  presence: Presence;
  maxMountCandidates: number;
  /** Whether the engine learned that `blobStore` mounts only blobs a pushed manifest references. */
  mountsNeedManifest(blobStore: string): boolean;
  /**
   * Whether `blobStore` can be expected to mount from a known candidate: false for a while after
   * it uploaded instead (a registry that does not mount would otherwise receive blobs it already
   * holds, with no HEAD to say so).
   */
  mountsDependable(blobStore: string): boolean;
  call(): CallOptions;
}

function sameRepository(a: Repository, b: Repository): boolean {
  return a.blobStore === b.blobStore && a.repository === b.repository;
}

export class Planner {
  constructor(private readonly c: PlannerContext) {}

  /**
   * One target tag. `present`: the manifest is known to be in `repo` already (same repository as
   * the source, or an earlier tag of this run put or found it there).
   */
  async tag(repo: Repository, tag: string, present: boolean): Promise<TagPlan> {
    const call = this.c.call();
    const head = await repo.headManifest(tag, call);
    if (head?.digest === this.c.digest) return { kind: 'up-to-date' };
    if (head && !this.c.overwrite) return { kind: 'conflict', head };
    const there = present || sameRepository(this.c.source, repo) || (await repo.headManifest(this.c.digest, call)) !== undefined;
    const plan: TagPlan = there ? { kind: 'retag' } : { kind: 'copy' };
    if (head) plan.head = head;
    return plan;
  }

  /** A manifest pushed by digest (a child of an index, a referrer): already there, or to push. */
  async manifest(repo: Repository, digest: string): Promise<'exists' | 'push'> {
    return (await repo.headManifest(digest, this.c.call())) ? 'exists' : 'push';
  }

  /** One blob of the manifest `imageDigest`, for `repo`. */
  async blob(repo: Repository, desc: Descriptor, imageDigest: string, call: CallOptions): Promise<BlobPlan> {
    const { from, provisional } = this.mountCandidates(repo, desc.digest, imageDigest);
    if (from.length > 0 && this.c.mountsDependable(repo.blobStore)) {
      // A mount source is known: the mount is the existence check (a new mirror costs a tag
      // HEAD, a manifest HEAD, a mount per blob and the PUT).
      return { kind: 'mount', from, provisional, unchecked: true };
    }
    // Present only at the descriptor's size: zot's deduplicated storage can answer 200 with a
    // 0-byte stub (project-zot/zot#4427), which a manifest PUT would then find wanting.
    if ((await repo.headBlob(desc.digest, call)) === desc.size) return { kind: 'exists' };
    return from.length > 0 ? { kind: 'mount', from, provisional, unchecked: false } : { kind: 'upload' };
  }

  /**
   * Candidates may be other tenants' repositories: a mount is the registry's access decision.
   * Repositories where a pushed manifest names the blob come first; `provisional` are those where
   * it was only uploaded (left out where the registry is known to refuse those).
   */
  private mountCandidates(repo: Repository, digest: string, imageDigest: string): { from: string[]; provisional: string[] } {
    // A store that declares it cannot mount is not asked to.
    if (repo.capabilities.mount === 'no') return { from: [], provisional: [] };
    const source = this.c.source;
    const list = this.c.presence.candidates(repo, digest, [imageDigest, this.c.digest]);
    if (source.blobStore === repo.blobStore && !list.includes(source.repository)) list.push(source.repository);
    const unique = [...new Set(list)].filter((r) => r !== repo.repository);
    const referenced = unique.filter((r) => this.c.presence.isReferenced(repo.blobStore, r, digest));
    const provisional = this.c.mountsNeedManifest(repo.blobStore) ? [] : unique.filter((r) => !referenced.includes(r));
    const from = [...referenced, ...provisional].slice(0, this.c.maxMountCandidates);
    return { from, provisional: provisional.filter((r) => from.includes(r)) };
  }
}
