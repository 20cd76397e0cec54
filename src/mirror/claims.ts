/**
 * One tag, one owner: which mirror writes each target tag, held in process by the reconciler.
 *
 * Two mirrors writing the same tag would overwrite each other every interval, so the first
 * claimant keeps the tag and later claimants write nothing there until the owner lets go (it stops
 * selecting the tag, or is deleted). Ownership must survive a controller restart, so front ends
 * seed it from stored statuses before reconciling: when two statuses hold the same tag, the older
 * mirror (creationTimestamp, then namespace/name) keeps it.
 *
 * Keys are canonical `registry/repository:tag` strings; owners are `namespace/name` mirror keys.
 */
import { formatReference, parseReference } from '../oci/reference.js';

interface Owner {
  key: string;
  /** creationTimestamp, `~` when unknown so an unknown age never beats a known one. */
  created: string;
}

/** Canonical `registry/repository:tag` for a status row or a target tag; undefined when not a tag reference. */
export function claimKey(reference: string): string | undefined {
  try {
    const r = parseReference(reference);
    if (r.tag === undefined || r.digest !== undefined) return undefined;
    return formatReference(r);
  } catch {
    return undefined;
  }
}

function older(a: Owner, b: Owner): boolean {
  if (a.created !== b.created) return a.created < b.created;
  return a.key < b.key;
}

export class TargetClaims {
  private readonly owners = new Map<string, Owner>();
  private readonly byMirror = new Map<string, Set<string>>();

  /** The mirror owning `ref`, if any. */
  owner(ref: string): string | undefined {
    return this.owners.get(ref)?.key;
  }

  /** Tags `key` owns, sorted. */
  claimsOf(key: string): string[] {
    return [...(this.byMirror.get(key) ?? [])].sort();
  }

  get size(): number {
    return this.owners.size;
  }

  /**
   * Claims `ref` for `key` unless another mirror owns it. Returns the owner after the call: `key`
   * itself when granted.
   */
  claim(ref: string, key: string, created?: string): string {
    const cur = this.owners.get(ref);
    if (cur) return cur.key;
    this.set(ref, { key, created: created ?? '~' });
    return key;
  }

  /**
   * Records ownership read from a stored status: free tags go to `key`; a tag another mirror
   * already holds goes to the older of the two.
   */
  seed(ref: string, key: string, created?: string): void {
    const next: Owner = { key, created: created ?? '~' };
    const cur = this.owners.get(ref);
    if (cur?.key === key) return;
    if (!cur || older(next, cur)) this.set(ref, next);
  }

  /** Releases every tag `key` owns that is not in `keep`. */
  retain(key: string, keep: ReadonlySet<string>): void {
    const mine = this.byMirror.get(key);
    if (!mine) return;
    for (const ref of [...mine]) if (!keep.has(ref)) this.drop(ref);
  }

  /** Releases every tag `key` owns (the mirror was deleted or may no longer write). */
  release(key: string): void {
    this.retain(key, new Set());
  }

  private set(ref: string, owner: Owner): void {
    if (this.owners.has(ref)) this.drop(ref);
    this.owners.set(ref, owner);
    let mine = this.byMirror.get(owner.key);
    if (!mine) this.byMirror.set(owner.key, (mine = new Set()));
    mine.add(ref);
  }

  private drop(ref: string): void {
    const prev = this.owners.get(ref);
    if (!prev) return;
    this.owners.delete(ref);
    const mine = this.byMirror.get(prev.key);
    mine?.delete(ref);
    if (mine?.size === 0) this.byMirror.delete(prev.key);
  }
}
