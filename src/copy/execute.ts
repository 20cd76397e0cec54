/**
 * The executor: carries out what the planner decided. A live executor writes (mounts, uploads,
 * manifest PUTs) and records what is now where; a dry-run executor writes nothing, records what
 * would be where for the rest of the plan, and counts nothing.
 */
import type { BlobReader, CallOptions, Descriptor, Repository } from '../oci/content.js';
import type { BlobAction } from './actions.js';
import type { BlobLocations } from './blob-locations.js';
import type { CopyObserver } from './observer.js';
import type { BlobPlan } from './plan.js';
import { PlannedPresence, RecordedPresence, type Presence } from './presence.js';

export interface Executor {
  /** Where counts go: none for a dry run. */
  readonly observer: CopyObserver | undefined;
  readonly presence: Presence;
  /** PUT the exact bytes under a tag or digest. */
  putManifest(repo: Repository, reference: string, manifest: { mediaType: string; bytes: Uint8Array }, call: CallOptions): Promise<void>;
  /** Make a blob present as `plan` says (not 'exists'); returns how it got there. */
  transferBlob(repo: Repository, desc: Descriptor, plan: Exclude<BlobPlan, { kind: 'exists' }>, call: CallOptions): Promise<BlobAction>;
}

export interface LiveExecutorOptions {
  locations: BlobLocations;
  observer: CopyObserver | undefined;
  source: Repository;
  /** Wraps a source blob stream (progress counting). */
  counting(digest: string, r: BlobReader): BlobReader['stream'];
  /** A mount was refused from a repository this engine had just uploaded the blob to. */
  onMountsNeedManifest(blobStore: string): void;
  /** A blob with mount candidates was uploaded instead, and not for want of a manifest: the store did not mount. */
  onMountDeclined(blobStore: string): void;
}

export class LiveExecutor implements Executor {
  readonly observer: CopyObserver | undefined;
  readonly presence: Presence;

  constructor(private readonly o: LiveExecutorOptions) {
    this.observer = o.observer;
    this.presence = new RecordedPresence(o.locations);
  }

  async putManifest(repo: Repository, reference: string, manifest: { mediaType: string; bytes: Uint8Array }, call: CallOptions): Promise<void> {
    await repo.putManifest(reference, manifest, call);
  }

  async transferBlob(repo: Repository, desc: Descriptor, plan: Exclude<BlobPlan, { kind: 'exists' }>, call: CallOptions): Promise<BlobAction> {
    const action = await this.transfer(repo, desc, plan, call);
    this.presence.recordBlob(repo, desc.digest);
    return action;
  }

  private async transfer(repo: Repository, desc: Descriptor, plan: Exclude<BlobPlan, { kind: 'exists' }>, call: CallOptions): Promise<BlobAction> {
    const source = this.o.source;
    const open = async (offset: number): Promise<BlobReader> => {
      const r = await source.getBlob(desc.digest, offset, call);
      return { size: r.size, stream: this.o.counting(desc.digest, r) };
    };
    const from = plan.kind === 'mount' ? plan.from : [];
    const provisional = plan.kind === 'mount' ? plan.provisional : [];
    if (repo.capabilities.mount === 'yes') {
      // A store sure to mount what it holds is asked to, candidate by candidate, before uploading.
      for (const f of from) if (await repo.mountBlob(desc, f, call)) return 'mount';
      await repo.putBlob(desc, open, call);
      if (from.length > 0) this.o.onMountDeclined(repo.blobStore);
      return 'upload';
    }
    // A registry learns whether it mounts by trying: putBlob tries the candidates and uploads in
    // the session a refused mount opened, one request less than a mount and then an upload.
    let refused = 0;
    let refusedProvisional = 0;
    const res = await repo.putBlob(desc, open, {
      ...call,
      mountFrom: from,
      provisionalMountFrom: provisional,
      onMountRefused: (f) => {
        refused++;
        // A blob this engine just uploaded there, not mounted: the registry wants a manifest first.
        if (provisional.includes(f)) {
          refusedProvisional++;
          this.o.onMountsNeedManifest(repo.blobStore);
        }
      },
    });
    // Uploaded although candidates were offered: refused, or not even tried (the client gave up on
    // mounting). Only refusals of just-uploaded blobs are explained by needing a manifest first.
    if (res.transfer === 'upload' && from.length > 0 && !(refused > 0 && refused === refusedProvisional)) this.o.onMountDeclined(repo.blobStore);
    return res.transfer;
  }
}

/** Writes nothing: what a plan would do is recorded for the rest of the run and reported. */
export class DryRunExecutor implements Executor {
  readonly observer = undefined;
  readonly presence: Presence;

  constructor(locations: BlobLocations) {
    this.presence = new PlannedPresence(locations);
  }

  async putManifest(): Promise<void> {
    // A dry run writes nothing.
  }

  async transferBlob(repo: Repository, desc: Descriptor, plan: Exclude<BlobPlan, { kind: 'exists' }>): Promise<BlobAction> {
    this.presence.recordBlob(repo, desc.digest);
    return plan.kind;
  }
}
