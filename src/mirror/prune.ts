/**
 * Prune: delete target tags a mirror wrote earlier that its selection no longer takes, and the
 * ownership record (status.owned) that says which tags those are.
 *
 * Only tags in the record are ever candidates, so a tag the mirror did not write is never touched;
 * the reconcile also leaves out tags another mirror now claims. The record keeps, per tag, the
 * manifest digest the mirror wrote there, and a candidate is deleted only while it still points at
 * that digest: a tag another tool has pushed over since is no longer the mirror's. Such a tag is
 * not deleted and is forgotten (dropped from the record), with one NotPruned row saying
 * "overwritten since: now sha256:…" so the hand-over is visible once rather than silent; the row
 * does not come back on the next reconcile because the tag is no longer recorded. A tag recorded
 * without a digest (a status from before digests were recorded, whose rows do not give one) cannot
 * be shown unchanged, so it is forgotten the same way instead of pruned.
 *
 * A candidate is deleted as a tag (OCI distribution 1.1: `DELETE /v2/<name>/manifests/<tag>`, the
 * manifest stays). A registry without tag deletion (distribution 2.x answers 400 DIGEST_INVALID)
 * gets the manifest deleted by digest instead, which deletes every tag pointing at it, so that
 * happens only when no other tag of the repository (a tag pushed over included) points at that
 * manifest or at an index holding it; otherwise the tag is reported NotPruned with the reason, and
 * stays in the record to be tried again. The registry API has no conditional delete: a push
 * under a candidate between prune's HEAD of it and its DELETE is deleted with it (the window is
 * the few requests of this pass; there is no way to close it from the client).
 */
import type { Repository } from '../oci/content.js';
import { describeError, isOciError } from '../oci/errors.js';
import { MediaType } from '../oci/media-types.js';
import { TargetAction } from '../copy/actions.js';
import type { TargetReport } from './reconciler.js';
import type { OwnedTags } from './types.js';

/**
 * Most tags of one target repository read (tags/list, then a HEAD each, a GET per index) to learn
 * whether another tag still points at a manifest before deleting it by digest: that check costs a
 * request per tag, and a repository bigger than this gets NotPruned instead.
 */
export const PRUNE_SCAN_MAX_TAGS = 1000;

/**
 * Statuses of a tag DELETE meaning "no tag deletion here" (not a failure): try the digest. A 404 is
 * that only while the tag is still there (else someone deleted it meanwhile).
 */
const TAG_DELETE_REFUSED: ReadonlySet<number> = new Set([400, 404, 405]);

export interface PruneOptions {
  /** List what would be pruned; delete nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** What prune did with one candidate tag. */
export interface PruneResult {
  tag: string;
  /**
   * Pruned and NotPruned become status rows; Gone (absent already) is just forgotten; Disowned
   * (no longer provably the mirror's: it points at another manifest than the one recorded) is
   * forgotten with a NotPruned row.
   */
  outcome: 'Pruned' | 'NotPruned' | 'Gone' | 'Disowned';
  /** The manifest the tag pointed at ('' when unknown). */
  digest: string;
  message?: string;
}

/**
 * Prunes `candidates` (tag → the digest this mirror wrote there, for tags of `repo` that left its
 * selection) in one target repository. Never throws for a registry error: a candidate that could
 * not be pruned is NotPruned with the reason.
 */
export async function pruneTags(repo: Repository, candidates: ReadonlyMap<string, string>, o: PruneOptions = {}): Promise<PruneResult[]> {
  const call = o.signal ? { signal: o.signal } : {};
  /** Candidates still pointing at what the mirror wrote: the only ones that may be deleted. */
  const pending = new Set<string>();
  const results: PruneResult[] = [];
  const digestOf = new Map<string, string>();
  let holders: Promise<Map<string, string>> | undefined;
  /** Digests already deleted in this pass: every candidate pointing at one went with it. */
  const deleted = new Set<string>();

  // Every candidate's manifest first: a manifest deleted by digest takes its other candidates along.
  const sorted = [...candidates.keys()].sort();
  const unreadable = new Map<string, string>();
  for (const tag of sorted) {
    if (o.signal?.aborted) return results;
    try {
      const head = await repo.headManifest(tag, call);
      if (head !== undefined) digestOf.set(tag, head.digest);
    } catch (e) {
      unreadable.set(tag, describeError(e));
    }
  }
  for (const [tag, wrote] of candidates) if (digestOf.get(tag) === wrote) pending.add(tag);
  for (const tag of sorted) {
    if (o.signal?.aborted) break;
    const why = unreadable.get(tag);
    if (why !== undefined) {
      results.push({ tag, outcome: 'NotPruned', digest: '', message: `could not read the tag: ${why}` });
      continue;
    }
    const digest = digestOf.get(tag);
    if (digest === undefined) {
      results.push({ tag, outcome: 'Gone', digest: '' });
      continue;
    }
    const wrote = candidates.get(tag) ?? '';
    if (digest !== wrote) {
      results.push({ tag, outcome: 'Disowned', digest, message: overwrittenMessage(digest, wrote, o.dryRun === true) });
      continue;
    }
    if (o.dryRun) {
      results.push({ tag, outcome: 'Pruned', digest, message: 'would prune: left the selection' });
      continue;
    }
    if (deleted.has(digest)) {
      results.push({ tag, outcome: 'Pruned', digest, message: `pruned: left the selection; went with its manifest ${digest}` });
      continue;
    }
    if (repo.deleteManifest === undefined) {
      results.push({ tag, outcome: 'NotPruned', digest, message: 'this target cannot delete tags' });
      continue;
    }
    try {
      await repo.deleteManifest(tag, call);
      results.push({ tag, outcome: 'Pruned', digest, message: 'pruned: left the selection' });
      continue;
    } catch (e) {
      if (!(isOciError(e) && e.status !== undefined && TAG_DELETE_REFUSED.has(e.status))) {
        results.push({ tag, outcome: 'NotPruned', digest, message: `delete refused: ${describeError(e)}` });
        continue;
      }
      if (e.status === 404 && (await repo.headManifest(tag, call).catch(() => null)) === undefined) {
        results.push({ tag, outcome: 'Gone', digest });
        continue;
      }
    }
    // No tag deletion: the manifest goes by digest, only when nothing else still points at it.
    let byOthers: Map<string, string>;
    try {
      holders ??= otherHolders(repo, pending, call);
      byOthers = await holders;
    } catch (e) {
      results.push({ tag, outcome: 'NotPruned', digest, message: `the registry has no tag deletion and the other tags could not be checked: ${describeError(e)}` });
      continue;
    }
    const holder = byOthers.get(digest);
    if (holder !== undefined) {
      results.push({ tag, outcome: 'NotPruned', digest, message: `the registry has no tag deletion and ${holder} points at the same manifest (deleting it by digest would remove that too)` });
      continue;
    }
    try {
      await repo.deleteManifest(digest, call);
    } catch (e) {
      if (isOciError(e) && e.status === 404) {
        // Gone meanwhile: what prune wanted.
      } else if (isOciError(e) && e.status === 405) {
        results.push({ tag, outcome: 'NotPruned', digest, message: 'this registry does not allow deletion (405 UNSUPPORTED; distribution: storage.delete.enabled: true)' });
        continue;
      } else {
        results.push({ tag, outcome: 'NotPruned', digest, message: `delete by digest refused: ${describeError(e)}` });
        continue;
      }
    }
    deleted.add(digest);
    results.push({ tag, outcome: 'Pruned', digest, message: `pruned: left the selection; the registry has no tag deletion, so its manifest ${digest} was deleted (no other tag points at it)` });
  }
  return results;
}

/**
 * digest → a description of a tag (not among `candidates`) that keeps it: the tag points at it,
 * or at an index holding it. One tags/list, one HEAD per tag, one GET per index.
 */
async function otherHolders(repo: Repository, candidates: ReadonlySet<string>, call: { signal?: AbortSignal }): Promise<Map<string, string>> {
  const tags = (await repo.listTags(call)).filter((t) => !candidates.has(t));
  if (tags.length > PRUNE_SCAN_MAX_TAGS) {
    throw new Error(`${tags.length} other tags, more than the ${PRUNE_SCAN_MAX_TAGS} checked`);
  }
  const holders = new Map<string, string>();
  const hold = (digest: string, by: string): void => {
    if (!holders.has(digest)) holders.set(digest, by);
  };
  const expanded = new Set<string>();
  let reads = 0;
  const expand = async (digest: string, by: string): Promise<void> => {
    if (expanded.has(digest)) return;
    expanded.add(digest);
    if (++reads > PRUNE_SCAN_MAX_TAGS) throw new Error(`more than ${PRUNE_SCAN_MAX_TAGS} indexes to read`);
    const m = await repo.getManifest(digest, call);
    let children: unknown;
    try {
      children = (JSON.parse(Buffer.from(m.bytes).toString('utf8')) as { manifests?: unknown }).manifests;
    } catch {
      return;
    }
    if (!Array.isArray(children)) return;
    for (const c of children as Array<{ digest?: unknown; mediaType?: unknown }>) {
      if (typeof c.digest !== 'string') continue;
      hold(c.digest, by);
      if (typeof c.mediaType === 'string' && INDEX_TYPES.has(c.mediaType)) await expand(c.digest, by);
    }
  };
  for (const t of tags.sort()) {
    const head = await repo.headManifest(t, call);
    if (head === undefined) continue;
    hold(head.digest, `tag ${t}`);
    if (INDEX_TYPES.has(head.mediaType)) await expand(head.digest, `tag ${t} (an index holding it)`);
  }
  return holders;
}

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);

function overwrittenMessage(now: string, wrote: string, dryRun: boolean): string {
  const forgotten = dryRun ? 'would be forgotten, not deleted' : 'forgotten, not deleted';
  return `not pruned: overwritten since: now ${now}, the mirror wrote ${wrote}; no longer this mirror's tag, ${forgotten}`;
}

/** A status row for a prune result (none for Gone). */
export function pruneReport(reference: string, r: PruneResult): TargetReport | undefined {
  if (r.outcome === 'Gone') return undefined;
  // Disowned is a NotPruned row: the tag left the selection and was not deleted.
  return {
    reference,
    digest: r.digest,
    action: r.outcome === 'Pruned' ? TargetAction.Pruned : TargetAction.NotPruned,
    bytesCopied: 0,
    bytesSaved: 0,
    blobs: { exists: 0, mount: 0, upload: 0 },
    ...(r.message ? { message: r.message } : {}),
  };
}

/**
 * status.owned as repository → (tag → the digest written there, '' when unknown). An entry
 * without digests (or with a digests list not parallel to its tags) is from a status written
 * before digests were recorded: its tags take the digest of a Copied, Retagged or UpToDate row
 * of the same status (`rowDigests`, reference → digest), the only proof of what was written.
 */
export function ownedByRepository(owned: readonly OwnedTags[] | undefined, rowDigests: ReadonlyMap<string, string> = new Map()): Map<string, Map<string, string>> {
  const map = new Map<string, Map<string, string>>();
  for (const o of owned ?? []) {
    let tags = map.get(o.repository);
    if (!tags) map.set(o.repository, (tags = new Map()));
    const digests = o.digests?.length === o.tags.length ? o.digests : undefined;
    for (const [i, t] of o.tags.entries()) {
      const digest = digests?.[i] || rowDigests.get(`${o.repository}:${t}`) || '';
      // A tag listed twice keeps a digest it has.
      if (!tags.get(t)) tags.set(t, digest);
    }
  }
  return map;
}

/** repository → (tag → digest) as status.owned: sorted by repository and tag, empty repositories left out. */
export function ownedList(map: ReadonlyMap<string, ReadonlyMap<string, string>>): OwnedTags[] {
  return [...map]
    .filter(([, tags]) => tags.size > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([repository, tags]) => {
      const sorted = [...tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return { repository, tags: sorted.map(([t]) => t), digests: sorted.map(([, d]) => d) };
    });
}
