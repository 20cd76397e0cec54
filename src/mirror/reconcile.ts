/**
 * reconcile(mirror) → status, shared by the controller, `run` and `sync`.
 * Resolves the source selection with one tags/list and one HEAD per selected tag (shared with the
 * other mirrors reading that source with the same credentials, see SharedReads), then hands each
 * image to the copy engine; turns what happened into kstatus conditions and per-target rows.
 *
 * Verification gate (`spec.verify`): before anything is claimed or written, every selected
 * image's digest is verified against the keys and trusted roots read through ctx.secretValue; one
 * that does not verify means nothing is written for the mirror (Ready=False, VerificationFailed,
 * retried: a signature may appear later). A verified (source, digest, key material) is remembered,
 * so a re-sync re-reads no signatures; another digest or changed keys are checked afresh.
 *
 * Ownership and prune: every target tag the mirror writes (Copied or Retagged; a tag already in
 * place is not counted as written) is recorded in status.owned, per target repository, with the
 * digest written (kept current by later Copied, Retagged and UpToDate rows of recorded tags), so
 * prune can tell a tag still holding what the mirror wrote from one pushed over since. A target
 * removed from the spec has its record forgotten, not its tags deleted: the mirror no longer
 * speaks for that repository. With `prune: true`, recorded tags the selection no longer takes are
 * deleted (prune.ts), only after every selected tag synced (a failed copy keeps what the target
 * has), never while the selection is empty (a source that lists nothing is an error, not an
 * order to empty the target), and never a tag another mirror now claims (forgotten instead).
 */
import { createHash } from 'node:crypto';
import { CopyEngine } from '../copy/engine.js';
import { BlobLocations } from '../copy/blob-locations.js';
import { LruMap } from '../copy/lru.js';
import { TargetAction } from '../copy/actions.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { RegistryClientOptions } from '../oci/registry.js';
import { openRepository } from '../backends/open.js';
import { CLIENT_POOL_MAX, CredentialLookupError, RegistryPool } from '../backends/registry/pool.js';
import { DEFAULT_CERTS_DIRS, loadHostTls } from '../oci/certs-dir.js';
import { parseRepository, formatReference } from '../oci/reference.js';
import { describeError, isOciError, isNotFound } from '../oci/errors.js';
import type { CredentialProvider } from '../oci/credentials.js';
import type { Repository } from '../oci/content.js';
import { CloudCredentialCache, type CloudCacheOptions } from '../auth/cloud-cache.js';
import { isCloudCredentialProvider } from '../auth/provider.js';
import { validateMirror } from './validate.js';
import { selectTags, missingTags, targetTags } from './select.js';
import { formatDuration } from './duration.js';
import { resyncIntervalMs } from './interval.js';
import { TargetClaims, claimKey } from './claims.js';
import { checkPolicy } from './policy.js';
import { SharedReads, type SharedReadsOptions } from './shared-reads.js';
import { ownedByRepository, ownedList, pruneReport, pruneTags, type PruneResult } from './prune.js';
import { verifyImage, type VerifyMaterial, type VerifyOutcome } from '../verify/index.js';
import { removeCondition, setCondition } from './conditions.js';
import {
  ConditionType,
  Reason,
  OWNED_TAGS_CAP,
  TARGET_ROWS_CAP,
  isCloudRef,
  pruneEnabled,
  trustedRootKey,
  mirrorKey,
  requestedAt,
  type CloudProvider,
  type CredentialsRef,
  type ImageMirror,
  type ImageMirrorStatus,
  type OwnedTags,
  type TargetStatus,
  type VerifySpec,
} from './types.js';
import {
  CredentialsNotFoundError,
  type ReconcileContext,
  type ReconcileOutcome,
  type ReconcileResult,
  type Reconciler,
  type TargetReport,
} from './reconciler.js';

/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ReconcilerOptions {
  metrics?: Metrics;
  /** Shared knowledge of which repos hold which blobs/images (the controller feeds it from statuses). */
  locations?: BlobLocations;
  /** Registry client settings other than credentials and TLS, which come from each mirror. */
  client?: Omit<RegistryClientOptions, 'credentials' | 'insecure' | 'onRequest' | 'onCapability' | 'tls'>;
  /**
   * Directories in the containers certs.d layout (`<host[:port]>/ca.crt`, `client.cert`,
   * `client.key`); default /etc/containers/certs.d, then /etc/docker/certs.d.
   */
  certsDirs?: readonly string[];
  blobConcurrency?: number;
  log?: Logger;
  /**
   * Longest one reconcile may take: its work is aborted and the result is a retry with backoff, even
   * if some request ignores the abort (a registry trickling bytes must not hold a worker forever).
   * Default DEFAULT_RECONCILE_TIMEOUT_MS.
   */
  reconcileTimeoutMs?: number;
  /** Target-tag ownership; default a private one. */
  claims?: TargetClaims;
  /**
   * Settings for `credentials.provider`: `hostTools` for `sync` and `run`, which run on an
   * operator's host or a CI runner (azure: `az login` too); tests: a clock, a CA for a private
   * token authority. The providers use the identity of this process and live as long as the
   * reconciler.
   */
  cloud?: CloudCacheOptions;
  /**
   * Source tags/list and manifest HEADs shared by mirrors reading the same repository with the
   * same credentials (TTL, size bound, clock: tests).
   */
  sharedReads?: SharedReadsOptions;
}

export interface MirrorReconciler extends Reconciler {
  readonly locations: BlobLocations;
  /** Which mirror writes which target tag (one tag, one owner). */
  readonly claims: TargetClaims;
  /** Releases every target tag the mirror `namespace/name` owns: front ends call it when a mirror is deleted. */
  forget(key: string): void;
  /**
   * Learns ownership from a stored status (rows other than Failed/Conflict), so claims survive a
   * restart; front ends call it for every mirror they load, before reconciling.
   */
  seedClaims(mirror: ImageMirror): void;
  close(): Promise<void>;
}

/**
 * Verification results kept (one short string each): a mirror re-syncing its images every interval
 * re-reads no signatures, and new digests or changed keys are checked afresh.
 */
const VERIFIED_CACHE_MAX = 10_000;

/** Registry clients kept by one reconciler (least recently used closed beyond it). */
const CLIENT_CACHE_MAX = CLIENT_POOL_MAX;
/** Default per-reconcile deadline: long enough for a multi-GiB image on a slow link. */
export const DEFAULT_RECONCILE_TIMEOUT_MS = 30 * 60_000;
/** errorCode of a target row left alone because another mirror owns the tag. */
export const TARGET_CLAIMED_CODE = 'TARGET_CLAIMED';

export function createReconciler(o: ReconcilerOptions = {}): MirrorReconciler {
  const locations = o.locations ?? new BlobLocations();
  const engine = new CopyEngine({ metrics: o.metrics, locations, blobConcurrency: o.blobConcurrency });
  const log = o.log ?? silentLogger;
  const claims = o.claims ?? new TargetClaims();
  // setTimeout fires at once past 2^31-1 ms (~24.8 days): a longer limit is as good as none.
  const reconcileTimeoutMs = Math.min(o.reconcileTimeoutMs ?? DEFAULT_RECONCILE_TIMEOUT_MS, MAX_TIMER_MS);

  const cloud = new CloudCredentialCache(o.cloud);
  /** Verified (source identity, digest, key material): a signature once verified is not re-read every interval. */
  const verified = new LruMap<string, true>(VERIFIED_CACHE_MAX);
  const shared = new SharedReads(o.sharedReads);
  const certsDirs = o.certsDirs ?? DEFAULT_CERTS_DIRS;
  const pool = new RegistryPool({
    client: o.client,
    certsDirs,
    log,
    onRequest: (e) => o.metrics?.observeRequest(e),
    onCapability: (registry, c, supported) => o.metrics?.setCapability(registry, c, supported),
    max: CLIENT_CACHE_MAX,
  });

  /**
   * The credentials of one side: a cloud provider from the cache (made once per provider and
   * registry, for the life of the reconciler), else whatever the front end resolves a Secret (or
   * no ref) to. Failing to make a cloud provider is CredentialsNotFound, like a missing Secret.
   */
  async function sideCredentials(ctx: ReconcileContext, namespace: string, ref: CredentialsRef | undefined, repo: string, insecure: boolean): Promise<CredentialProvider> {
    if (!isCloudRef(ref)) return ctx.credentials(namespace, ref);
    const registry = parseRepository(repo).registry;
    try {
      // Only azure's token exchange goes to the registry host itself.
      const tls = ref.provider === 'azure' ? await loadHostTls(registry, certsDirs) : undefined;
      return await cloud.get({ provider: ref.provider, registry, insecure, registryTls: tls });
    } catch (e) {
      throw new CredentialsNotFoundError(describeError(e));
    }
  }

  /**
   * The repository through the pooled registry clients (one per registry, TLS mode and credentials
   * identity: see RegistryPool). A credential lookup that fails up front fails the side before any
   * copy starts: CredentialsNotFound for a cloud provider, else the provider's own error.
   */
  async function repositoryFor(repo: string, creds: CredentialProvider, insecure: boolean): Promise<Repository> {
    try {
      return await openRepository(repo, creds, { pool, insecure });
    } catch (e) {
      if (!(e instanceof CredentialLookupError)) throw e;
      if (isCloudCredentialProvider(creds)) throw new CredentialsNotFoundError(describeError(e.cause));
      throw e.cause;
    }
  }

  async function reconcile(raw: ImageMirror, ctx: ReconcileContext, opened: Repository[] = []): Promise<ReconcileResult> {
    const now = ctx.now?.() ?? new Date();
    const started = performance.now();
    const prev: ImageMirrorStatus = raw.status ?? {};
    const generation = raw.metadata?.generation;
    /** The ownership record once this reconcile may have written: kept by every result after that. */
    let ownedNow: OwnedTags[] | undefined;
    const finish = (
      outcome: ReconcileOutcome,
      reason: string,
      message: string,
      extra: Partial<ImageMirrorStatus> = {},
      targets: TargetReport[] = [],
      requeueAfterMs?: number,
    ): ReconcileResult => {
      o.metrics?.syncDuration.observe((performance.now() - started) / 1000);
      const owned = ownedNow === undefined ? {} : { owned: ownedNow };
      return { outcome, reason, message, status: statusFor(prev, outcome, reason, message, generation, now, { ...handled(raw), ...owned, ...extra }), targets, requeueAfterMs };
    };

    const v = validateMirror(raw, { localPaths: ctx.localPaths === true });
    if (!v.ok) return finish('stalled', Reason.InvalidSpec, v.errors.join('; '));
    const m = v.mirror;
    const spec = m.spec;
    if (spec.suspend) {
      // Conditions stay as they were (the last thing known about the images), but the status does
      // describe this generation: tools waiting for observedGeneration (kstatus, Argo CD, Flux)
      // would otherwise wait forever on a mirror suspended in the same change.
      const status = generation === undefined || prev.observedGeneration === generation ? prev : { ...prev, observedGeneration: generation };
      return { outcome: 'suspended', reason: Reason.Suspended, message: 'suspended', status, targets: [] };
    }
    const key = mirrorKey(m);
    if (ctx.policies?.length || ctx.requirePolicy) {
      const decision = checkPolicy(m, ctx.policies ?? [], ctx.requirePolicy === true);
      if (!decision.allowed) {
        // It may write nowhere, so it owns no tag either.
        if (!ctx.dryRun) claims.release(key);
        return finish('stalled', Reason.Forbidden, decision.message);
      }
    }
    const refused = refusedCloudProvider(spec, ctx);
    if (refused !== undefined) {
      if (!ctx.dryRun) claims.release(key);
      const how = ctx.allowCloudProviderHint?.(refused) ?? 'cloud identities are not lent to mirrors here';
      return finish('stalled', Reason.Forbidden, `credentials.provider ${refused} is not allowed: ${how}`);
    }
    const namespace = m.metadata.namespace ?? 'default';
    const intervalMs = resyncIntervalMs(spec);
    const mlog = log.child({ mirror: key });

    let source: Repository;
    const targets: Array<{ repository: Repository; spec: (typeof spec.targets)[number] }> = [];
    try {
      const srcInsecure = spec.source.insecure === true;
      const srcCreds = await sideCredentials(ctx, namespace, spec.source.credentials, spec.source.repository, srcInsecure);
      source = await repositoryFor(spec.source.repository, srcCreds, srcInsecure);
      opened.push(source);
      for (const t of spec.targets) {
        const insecure = t.insecure === true;
        const creds = await sideCredentials(ctx, namespace, t.credentials, t.repository, insecure);
        const repository = await repositoryFor(t.repository, creds, insecure);
        opened.push(repository);
        targets.push({ repository, spec: t });
      }
    } catch (e) {
      if (e instanceof CredentialsNotFoundError) return finish('retry', Reason.CredentialsNotFound, e.message);
      return finish('retry', Reason.RegistryError, describeError(e));
    }

    // One tags/list serves selection, missing-tag detection and cosign/fallback referrer tags.
    let sourceTags: string[] | undefined;
    const images: Array<{ name: string; reference: string }> = [];
    try {
      if (spec.source.digest === undefined || spec.referrers !== false) sourceTags = await shared.listTags(source, { signal: ctx.signal, fresh: ctx.fresh });
      if (spec.source.digest !== undefined) {
        images.push({ name: spec.source.digest, reference: spec.source.digest });
      } else {
        const available = sourceTags ?? [];
        const missing = missingTags(spec.source, available);
        if (missing.length > 0) {
          return finish('retry', Reason.SourceNotFound, `source ${spec.source.repository}: tag ${missing.join(', ')} not found`);
        }
        const selected = selectTags(spec.source, available);
        if (selected.length === 0) {
          return finish('retry', Reason.SourceNotFound, `source ${spec.source.repository}: no tag matches the selector`);
        }
        for (const tag of selected) images.push({ name: tag, reference: tag });
      }
    } catch (e) {
      return finish('retry', sourceReason(e), `source ${spec.source.repository}: ${describeError(e)}`);
    }

    // The verification gate: every selected image's digest is resolved and verified before
    // anything is claimed or written; the copy then writes exactly the digests verified (a tag
    // moved meanwhile fails the copy's digest check instead of slipping through).
    const verifiedDigests = new Map<string, string>();
    if (spec.verify && ((spec.verify.keys?.length ?? 0) > 0 || (spec.verify.keyless?.length ?? 0) > 0)) {
      let material: VerifyMaterial;
      try {
        material = await verifyMaterial(ctx, namespace, spec.verify);
      } catch (e) {
        if (e instanceof CredentialsNotFoundError) return finish('retry', Reason.CredentialsNotFound, `spec.verify: ${e.message}`);
        return finish('retry', Reason.RegistryError, `spec.verify: ${describeError(e)}`);
      }
      const materialHash = createHash('sha256').update(JSON.stringify(material)).digest('hex');
      for (const image of images) {
        if (ctx.signal?.aborted) break;
        const where = formatReference({ ...parseRepository(spec.source.repository), ...refPart(image.reference) });
        let digest: string;
        try {
          const head = await shared.headManifest(source, image.reference, { signal: ctx.signal, fresh: ctx.fresh });
          if (!head) return finish('retry', Reason.SourceNotFound, `source ${where} not found`);
          digest = head.digest;
        } catch (e) {
          return finish('retry', sourceReason(e), `source ${spec.source.repository}: ${describeError(e)}`);
        }
        const cacheKey = `${source.identity}@${digest}#${materialHash}`;
        if (verified.get(cacheKey) === undefined) {
          let outcome: VerifyOutcome;
          try {
            outcome = await verifyImage(source, digest, material, { signal: ctx.signal });
          } catch (e) {
            // A registry failure says nothing about the signatures: retried as what it is.
            return finish('retry', sourceReason(e), `verifying ${where}: ${describeError(e)}`);
          }
          o.metrics?.verifications.inc({ result: outcome.ok ? 'verified' : 'failed' });
          if (!outcome.ok) {
            mlog.warn('verification failed', { image: where, digest });
            return finish('retry', Reason.VerificationFailed, `${where} (${digest}) did not verify, nothing was written: ${outcome.reason}`);
          }
          verified.set(cacheKey, true);
        }
        verifiedDigests.set(image.name, digest);
      }
    }

    if (ctx.signal?.aborted) {
      // Past the deadline (or shutting down) while selecting: claim nothing, write nothing.
      return finish('retry', Reason.RegistryError, 'interrupted by shutdown before any target was synced');
    }
    // Ownership per canonical target repository; a target gone from the spec is forgotten.
    const repoKey = (r: Repository): string => `${r.registry}/${r.repository}`;
    const previouslyOwned = ownedByRepository(prev.owned ?? ownedFromRows(prev), writtenDigests(prev));
    /** Canonical target repository → (tag → digest written there, '' when unknown). */
    const owned = new Map<string, Map<string, string>>();
    for (const t of targets) owned.set(repoKey(t.repository), new Map(previouslyOwned.get(repoKey(t.repository))));
    if (!ctx.dryRun) ownedNow = ownedList(owned);
    let ownedFull = false;
    const recordWritten = (repository: string, tag: string, digest: string): void => {
      const tags = owned.get(repository);
      if (!tags) return;
      // Past the cap (per repository and in total) a written tag goes unrecorded: it is never
      // pruned, which is the safe side.
      if (!tags.has(tag) && ownedCount(owned) >= OWNED_TAGS_CAP) {
        ownedFull = true;
        return;
      }
      tags.set(tag, digest);
    };

    // One tag, one owner: claim every selected target tag before the first write. A tag another
    // mirror owns is left out of the copy and reported instead. A dry run only looks.
    const wanted = new Set<string>();
    /** Target reference → where it is recorded when written. */
    const written = new Map<string, { repository: string; tag: string }>();
    const ownerOf = new Map<string, string>();
    const plans = images.map((image) =>
      targets.map((t) => {
        const tags: string[] = [];
        const blocked: Array<{ reference: string; owner: string }> = [];
        for (const tag of targetTags(spec.source, t.spec, image.name)) {
          const reference = `${t.repository.registry}/${t.repository.repository}:${tag}`;
          wanted.add(reference);
          written.set(reference, { repository: repoKey(t.repository), tag });
          const owner = ctx.dryRun ? claims.owner(reference) ?? key : claims.claim(reference, key, m.metadata.creationTimestamp);
          if (owner === key) tags.push(tag);
          else {
            blocked.push({ reference, owner });
            ownerOf.set(reference, owner);
          }
        }
        return { repository: t.repository, tags, blocked };
      }),
    );

    const sourceDigests: Record<string, string> = {};
    const reports: TargetReport[] = [];
    let streamed = 0;
    for (const [i, image] of images.entries()) {
      if (ctx.signal?.aborted) break;
      let digest: string;
      try {
        const checked = verifiedDigests.get(image.name);
        const head = checked !== undefined ? { digest: checked } : await shared.headManifest(source, image.reference, { signal: ctx.signal, fresh: ctx.fresh });
        if (!head) {
          return finish('retry', Reason.SourceNotFound, `source ${formatReference({ ...parseRepository(spec.source.repository), ...refPart(image.reference) })} not found`);
        }
        digest = head.digest;
      } catch (e) {
        return finish('retry', sourceReason(e), `source ${spec.source.repository}: ${describeError(e)}`);
      }
      sourceDigests[image.name] = digest;
      const plan = plans[i]!;
      const copyTargets = plan.filter((p) => p.tags.length > 0).map((p) => ({ repository: p.repository, tags: p.tags }));
      if (copyTargets.length > 0) {
        const result = await engine.copyImage({
          source,
          reference: image.reference,
          sourceDigest: digest,
          sourceTags,
          targets: copyTargets,
          referrers: spec.referrers !== false,
          overwrite: spec.overwrite !== false,
          dryRun: ctx.dryRun,
          ...(spec.source.platforms?.length ? { platforms: spec.source.platforms } : {}),
          signal: ctx.signal,
          onProgress: ctx.onProgress ? (p) => ctx.onProgress!(streamed + p.bytes) : undefined,
        });
        streamed += result.targets.reduce((n, t) => n + t.bytesCopied, 0);
        reports.push(...result.targets);
        if (!ctx.dryRun) {
          for (const r of result.targets) {
            const w = written.get(r.reference);
            if (!w) continue;
            if (r.action === TargetAction.Copied || r.action === TargetAction.Retagged) recordWritten(w.repository, w.tag, r.digest);
            // A recorded tag found holding what the mirror writes: its digest is that one now.
            else if (r.action === TargetAction.UpToDate && owned.get(w.repository)?.has(w.tag)) recordWritten(w.repository, w.tag, r.digest);
          }
          ownedNow = ownedList(owned);
        }
      }
      for (const p of plan) for (const b of p.blocked) reports.push(claimedReport(b.reference, digest, b.owner));
    }
    if (ownedFull) mlog.warn('ownership record full: tags written past the cap are not recorded and never pruned', { cap: OWNED_TAGS_CAP });

    // Prune what left the selection, once everything selected is in place (see the header).
    const pruneRows: TargetReport[] = [];
    if (!ctx.signal?.aborted && !reports.some((r) => r.action === TargetAction.Failed)) {
      for (const t of targets) {
        const rk = repoKey(t.repository);
        const tags = owned.get(rk);
        if (!tags) continue;
        const left = [...tags.keys()].filter((tag) => !wanted.has(`${rk}:${tag}`)).sort();
        // Two targets naming one repository prune it once.
        if (pruneRows.some((r) => r.reference.startsWith(`${rk}:`))) continue;
        const candidates = new Map<string, string>();
        const results: PruneResult[] = [];
        for (const tag of left) {
          const ref = `${rk}:${tag}`;
          // Another mirror writes it now: not ours to delete, and no longer ours to record.
          const owner = ctx.dryRun || !pruneEnabled(t.spec) ? claims.owner(ref) ?? key : claims.claim(ref, key, m.metadata.creationTimestamp);
          if (owner !== key) {
            if (!ctx.dryRun) tags.delete(tag);
          } else if (pruneEnabled(t.spec)) {
            const digest = tags.get(tag) ?? '';
            if (digest !== '') candidates.set(tag, digest);
            else results.push({ tag, outcome: 'Disowned', digest: '', message: unknownDigestMessage(ctx.dryRun === true) });
          }
        }
        if (candidates.size > 0) results.push(...(await pruneTags(t.repository, candidates, { dryRun: ctx.dryRun, signal: ctx.signal })));
        results.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
        for (const r of results) {
          if (!ctx.dryRun && (r.outcome === 'Pruned' || r.outcome === 'Gone' || r.outcome === 'Disowned')) tags.delete(r.tag);
          const row = pruneReport(`${rk}:${r.tag}`, r);
          if (row) pruneRows.push(row);
          if (row && !ctx.dryRun) o.metrics?.countTarget(row.action);
        }
      }
      if (!ctx.dryRun) ownedNow = ownedList(owned);
    }
    // Tags no longer selected are free for other mirrors; an interrupted run keeps what it had.
    if (!ctx.dryRun && !ctx.signal?.aborted) claims.retain(key, wanted);
    if (ctx.signal?.aborted && reports.length === 0) {
      return finish('retry', Reason.RegistryError, 'interrupted by shutdown before any target was synced');
    }

    const rows: TargetStatus[] = [...reports, ...pruneRows].map((r) => ({
      reference: r.reference,
      digest: r.digest,
      action: r.action,
      lastSyncTime: now.toISOString(),
      ...(r.message ? { message: r.message } : r.warning ? { message: r.warning } : {}),
      ...(r.sourceDigest ? { sourceDigest: r.sourceDigest } : {}),
    }));
    const inSync = reports.filter((r) => r.action !== TargetAction.Failed && r.action !== TargetAction.Conflict).length;
    const copied = reports.reduce((n, r) => n + r.bytesCopied, 0);
    const saved = reports.reduce((n, r) => n + r.bytesSaved, 0);
    const extra: Partial<ImageMirrorStatus> = {
      sourceDigests,
      targets: rows.slice(0, TARGET_ROWS_CAP),
      targetsOmitted: Math.max(0, rows.length - TARGET_ROWS_CAP),
      summary: `${inSync}/${reports.length} in sync`,
      ...(ownedNow === undefined ? {} : { owned: ownedNow }),
      bytes: ctx.dryRun
        ? prev.bytes ?? { copied: 0, saved: 0 }
        : { copied: (prev.bytes?.copied ?? 0) + copied, saved: (prev.bytes?.saved ?? 0) + saved },
    };

    const failed = reports.filter((r) => r.action === TargetAction.Failed);
    const claimed = reports.filter((r) => r.errorCode === TARGET_CLAIMED_CODE);
    const conflicts = reports.filter((r) => r.action === TargetAction.Conflict && r.errorCode !== TARGET_CLAIMED_CODE);
    if (failed.length > 0) {
      const first = failed[0]!;
      const reason = first.errorCode === 'UNAUTHORIZED' || first.errorCode === 'DENIED' ? Reason.AuthFailed : Reason.RegistryError;
      const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : '';
      mlog.warn('targets failed', { failed: failed.length });
      return finish('retry', reason, `${first.reference}: ${first.message ?? 'failed'}${more}`, extra, [...reports, ...pruneRows]);
    }
    if (claimed.length > 0) {
      // Retried, not stalled: the mirror takes the tag over once its owner lets go of it.
      const first = claimed[0]!;
      const more = claimed.length > 1 ? ` (and ${claimed.length - 1} more tag${claimed.length > 2 ? 's' : ''} owned by other mirrors)` : '';
      return finish(
        'retry',
        Reason.TargetClaimed,
        `target tag ${first.reference} is owned by ImageMirror ${ownerOf.get(first.reference) ?? '(another mirror)'}, which writes it already; not written here (one tag, one owner)${more}`,
        extra,
        [...reports, ...pruneRows],
      );
    }
    if (conflicts.length > 0) {
      const refs = conflicts.map((c) => c.reference);
      const more = refs.length > 3 ? ` and ${refs.length - 3} more` : '';
      // An immutable tag (ECR's TAG_INVALID) is a conflict the registry decided: its own words say why.
      const immutable = conflicts.find((c) => c.errorCode === 'TAG_INVALID');
      return finish(
        'stalled',
        Reason.TagConflict,
        immutable
          ? `${immutable.reference}: ${immutable.message ?? 'the registry refuses to move this tag (immutable)'}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more)` : ''}`
          : `${refs.slice(0, 3).join(', ')}${more} already ${refs.length === 1 ? 'points to another image' : 'point to other images'} and overwrite is false`,
        extra,
        [...reports, ...pruneRows],
      );
    }
    const images1 = images.length === 1 ? '1 image' : `${images.length} images`;
    const tags = `${reports.length} target tag${reports.length === 1 ? '' : 's'}`;
    // A dry run wrote nothing: it says what a real run would do, never that anything is in sync.
    const message = ctx.dryRun ? `dry run: ${images1}, ${tags}: ${wouldDo([...reports, ...pruneRows])}` : `${images1}, ${tags} in sync${pruneSummary(pruneRows)}`;
    return finish('synced', Reason.Synced, message, { ...extra, lastSyncTime: now.toISOString() }, [...reports, ...pruneRows], intervalMs);
  }

  function retryResult(mirror: ImageMirror, ctx: ReconcileContext, message: string): ReconcileResult {
    const now = ctx.now?.() ?? new Date();
    return {
      outcome: 'retry',
      reason: Reason.RegistryError,
      message,
      status: statusFor(mirror.status ?? {}, 'retry', Reason.RegistryError, message, mirror.metadata?.generation, now, handled(mirror)),
      targets: [],
    };
  }

  async function guarded(mirror: ImageMirror, ctx: ReconcileContext): Promise<ReconcileResult> {
    const opened: Repository[] = [];
    let result: ReconcileResult;
    try {
      result = await reconcile(mirror, ctx, opened);
    } catch (e) {
      // The loop must never crash on one mirror: anything unexpected becomes a retryable RegistryError.
      result = retryResult(mirror, ctx, describeError(e));
    }
    // Backends that finish on close (an oci-archive target is renamed into place only then): a
    // close that fails wrote nothing, so the mirror is not in sync.
    let closeError: string | undefined;
    for (const r of opened) await r.close?.().catch((e: unknown) => void (closeError ??= describeError(e)));
    return closeError === undefined || result.outcome === 'retry' ? result : retryResult(mirror, ctx, closeError);
  }

  return {
    locations,
    claims,
    forget: (key) => claims.release(key),
    seedClaims: (mirror) => {
      const ready = mirror.status?.conditions?.find((c) => c.type === ConditionType.Ready);
      // A Forbidden mirror gave its tags up; its old rows must not win them back after a restart.
      if (ready?.reason === Reason.Forbidden) return;
      const key = mirrorKey(mirror);
      for (const row of mirror.status?.targets ?? []) {
        // Rows of tags not written (failed, conflicting) or no longer selected (prune's) claim nothing.
        if (row.action === TargetAction.Failed || row.action === TargetAction.Conflict) continue;
        if (row.action === TargetAction.Pruned || row.action === TargetAction.NotPruned) continue;
        const ref = claimKey(row.reference);
        if (ref) claims.seed(ref, key, mirror.metadata.creationTimestamp);
      }
    },
    reconcile: async (mirror, ctx) => {
      const deadline = new AbortController();
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, deadline.signal]) : deadline.signal;
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Resolves at the deadline even when some awaited request ignores the abort, so the worker
      // is freed; the abandoned work stops at its next abort check and claims or writes nothing more.
      const timedOut = new Promise<ReconcileResult>((resolve) => {
        timer = setTimeout(() => {
          const message = `reconcile took longer than ${formatDuration(reconcileTimeoutMs)}; will retry with backoff`;
          resolve(retryResult(mirror, ctx, message));
          o.metrics?.syncDuration.observe((performance.now() - started) / 1000);
          log.child({ mirror: mirrorKey(mirror) }).warn(message);
          deadline.abort(new Error(message));
        }, reconcileTimeoutMs);
      });
      try {
        return await Promise.race([guarded(mirror, { ...ctx, signal }), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: async () => {
      await pool.close();
    },
  };
}

function statusFor(
  prev: ImageMirrorStatus,
  outcome: ReconcileOutcome,
  reason: string,
  message: string,
  generation: number | undefined,
  now: Date,
  extra: Partial<ImageMirrorStatus>,
): ImageMirrorStatus {
  let conditions = prev.conditions ?? [];
  const g = generation === undefined ? {} : { observedGeneration: generation };
  if (outcome === 'synced') {
    conditions = setCondition(conditions, { type: ConditionType.Ready, status: 'True', reason, message, ...g }, now);
    conditions = removeCondition(removeCondition(conditions, ConditionType.Reconciling), ConditionType.Stalled);
  } else if (outcome === 'stalled') {
    conditions = setCondition(conditions, { type: ConditionType.Ready, status: 'False', reason, message, ...g }, now);
    conditions = setCondition(conditions, { type: ConditionType.Stalled, status: 'True', reason, message, ...g }, now);
    conditions = removeCondition(conditions, ConditionType.Reconciling);
  } else {
    conditions = setCondition(conditions, { type: ConditionType.Ready, status: 'False', reason, message, ...g }, now);
    conditions = setCondition(conditions, { type: ConditionType.Reconciling, status: 'True', reason: Reason.Retrying, message: `retrying: ${message}`, ...g }, now);
    conditions = removeCondition(conditions, ConditionType.Stalled);
  }
  const next: ImageMirrorStatus = { ...prev, ...extra, conditions };
  if (generation !== undefined) next.observedGeneration = generation;
  return next;
}

/** The on-demand request this reconcile answers, recorded so whoever asked sees it handled. */
function handled(m: ImageMirror): Pick<ImageMirrorStatus, 'lastHandledRequestedAt'> {
  const v = m.metadata ? requestedAt(m) : undefined;
  return v === undefined ? {} : { lastHandledRequestedAt: v };
}

function sourceReason(e: unknown): string {
  if (isOciError(e) && (e.code === 'UNAUTHORIZED' || e.code === 'DENIED')) return Reason.AuthFailed;
  if (isNotFound(e)) return Reason.SourceNotFound;
  return Reason.RegistryError;
}

/** `would copy 1, would retag 2, 3 up to date` (only the actions that occur). */
function wouldDo(reports: readonly TargetReport[]): string {
  const count = (a: TargetAction) => reports.filter((r) => r.action === a).length;
  const parts: string[] = [];
  if (count(TargetAction.Copied) > 0) parts.push(`would copy ${count(TargetAction.Copied)}`);
  if (count(TargetAction.Retagged) > 0) parts.push(`would retag ${count(TargetAction.Retagged)}`);
  if (count(TargetAction.UpToDate) > 0) parts.push(`${count(TargetAction.UpToDate)} up to date`);
  if (count(TargetAction.Pruned) > 0) parts.push(`would prune ${count(TargetAction.Pruned)}`);
  return parts.length > 0 ? parts.join(', ') : 'nothing to do';
}

/** `; 2 tags pruned; 1 not pruned: <why>` (empty when prune did nothing). */
function pruneSummary(rows: readonly TargetReport[]): string {
  const pruned = rows.filter((r) => r.action === TargetAction.Pruned).length;
  const not = rows.filter((r) => r.action === TargetAction.NotPruned);
  let s = pruned > 0 ? `; ${pruned} tag${pruned === 1 ? '' : 's'} pruned` : '';
  if (not.length > 0) s += `; ${not.length} not pruned (${not[0]!.reference}: ${not[0]!.message ?? 'refused'})`;
  return s;
}

/**
 * A recorded tag left the selection without a known digest (a status from before digests were
 * recorded, whose rows do not say what was written): it cannot be shown unchanged since.
 */
function unknownDigestMessage(dryRun: boolean): string {
  return `not pruned: the ownership record (from an earlier version) has no digest for this tag, so it cannot be shown unchanged since the mirror wrote it; ${dryRun ? 'would be forgotten' : 'forgotten'}, not deleted`;
}

/**
 * The ownership record of a status written before status.owned existed: the tags its rows say it
 * copied or retagged, with the digests written (rows are capped, so this may be fewer than it
 * wrote; never more).
 */
/** Tags recorded across every target repository of the mirror. */
function ownedCount(owned: ReadonlyMap<string, ReadonlyMap<string, string>>): number {
  let n = 0;
  for (const tags of owned.values()) n += tags.size;
  return n;
}

function ownedFromRows(prev: ImageMirrorStatus): OwnedTags[] {
  const byRepo = new Map<string, Map<string, string>>();
  for (const row of prev.targets ?? []) {
    if (row.action !== TargetAction.Copied && row.action !== TargetAction.Retagged) continue;
    const ref = claimKey(row.reference);
    const at = ref?.lastIndexOf(':') ?? -1;
    if (ref === undefined || at < 0) continue;
    const repo = ref.slice(0, at);
    let tags = byRepo.get(repo);
    if (!tags) byRepo.set(repo, (tags = new Map()));
    tags.set(ref.slice(at + 1), row.digest);
  }
  return ownedList(byRepo);
}

/**
 * Target reference → the digest a row of the last status says the tag holds from this mirror
 * (Copied, Retagged, or UpToDate: found holding what the mirror writes). What dates an ownership
 * entry recorded without digests; a Conflict, Failed or prune row proves nothing about it.
 */
function writtenDigests(prev: ImageMirrorStatus): Map<string, string> {
  const map = new Map<string, string>();
  for (const row of prev.targets ?? []) {
    if (row.action !== TargetAction.Copied && row.action !== TargetAction.Retagged && row.action !== TargetAction.UpToDate) continue;
    const ref = claimKey(row.reference);
    if (ref !== undefined && row.digest) map.set(ref, row.digest);
  }
  return map;
}

function refPart(reference: string): { tag?: string; digest?: string } {
  return reference.startsWith('sha256:') ? { digest: reference } : { tag: reference };
}

function claimedReport(reference: string, digest: string, owner: string): TargetReport {
  return {
    reference,
    digest,
    action: TargetAction.Conflict,
    bytesCopied: 0,
    bytesSaved: 0,
    blobs: { exists: 0, mount: 0, upload: 0 },
    message: `owned by ImageMirror ${owner}; not written (one tag, one owner)`,
    errorCode: TARGET_CLAIMED_CODE,
  };
}

/** The first cloud provider the mirror names that the context does not allow. */
function refusedCloudProvider(spec: ImageMirror['spec'], ctx: ReconcileContext): CloudProvider | undefined {
  if (ctx.cloudProviders === undefined) return undefined;
  for (const ref of [spec.source.credentials, ...spec.targets.map((t) => t.credentials)]) {
    if (isCloudRef(ref) && !ctx.cloudProviders.includes(ref.provider)) return ref.provider;
  }
  return undefined;
}

/**
 * The keys and trusted roots `spec.verify` names, read through the front end's secretValue (Secrets
 * in the mirror's namespace; Secret documents in file modes). Throws CredentialsNotFoundError.
 */
async function verifyMaterial(ctx: ReconcileContext, namespace: string, v: VerifySpec): Promise<VerifyMaterial> {
  const read = ctx.secretValue;
  if (!read) throw new CredentialsNotFoundError('this front end reads no Secrets for verification keys, so nothing can be verified');
  const keys: VerifyMaterial['keys'] = [];
  for (const k of v.keys ?? []) keys.push({ name: `${k.secretName}/${k.key}`, pem: await read(namespace, k.secretName, k.key) });
  const keyless: VerifyMaterial['keyless'] = [];
  for (const k of v.keyless ?? []) {
    const key = trustedRootKey(k);
    keyless.push({ name: `${k.trustedRootSecretName}/${key}`, trustedRoot: await read(namespace, k.trustedRootSecretName, key), issuer: k.issuer, subjectRegExp: k.subjectRegExp });
  }
  return { keys, keyless };
}

