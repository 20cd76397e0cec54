/**
 * reconcile(mirror) → status, shared by the controller, `run` and `sync`.
 * Resolves the source selection with one tags/list and one HEAD per selected tag, then hands each
 * image to the copy engine; turns what happened into kstatus conditions and per-target rows.
 */
import { createHash } from 'node:crypto';
import { CopyEngine } from '../copy/engine.js';
import { BlobLocations } from '../copy/blob-locations.js';
import { TargetAction } from '../copy/actions.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { RegistryClient, type RegistryClientOptions } from '../oci/registry.js';
import { parseRepository, formatReference } from '../oci/reference.js';
import { describeError, isOciError, isNotFound } from '../oci/errors.js';
import type { Credential, CredentialProvider } from '../oci/credentials.js';
import type { Repository } from '../oci/content.js';
import { validateMirror } from './validate.js';
import { selectTags, missingTags, targetTags } from './select.js';
import { parseDuration } from './duration.js';
import { removeCondition, setCondition } from './conditions.js';
import {
  ConditionType,
  Reason,
  TARGET_ROWS_CAP,
  mirrorKey,
  type ImageMirror,
  type ImageMirrorStatus,
  type TargetStatus,
} from './types.js';
import {
  CredentialsNotFoundError,
  type ReconcileContext,
  type ReconcileOutcome,
  type ReconcileResult,
  type Reconciler,
  type TargetReport,
} from './reconciler.js';

export interface ReconcilerOptions {
  metrics?: Metrics;
  /** Shared knowledge of which repos hold which blobs/images (the controller feeds it from statuses). */
  locations?: BlobLocations;
  /** Registry client settings other than credentials and TLS, which come from each mirror. */
  client?: Omit<RegistryClientOptions, 'credentials' | 'insecure' | 'onRequest' | 'onCapability'>;
  blobConcurrency?: number;
  log?: Logger;
}

export interface MirrorReconciler extends Reconciler {
  readonly locations: BlobLocations;
  close(): Promise<void>;
}

const CLIENT_CACHE_MAX = 64;

export function createReconciler(o: ReconcilerOptions = {}): MirrorReconciler {
  const locations = o.locations ?? new BlobLocations();
  const engine = new CopyEngine({ metrics: o.metrics, locations, blobConcurrency: o.blobConcurrency });
  const clients = new Map<string, RegistryClient>();
  const log = o.log ?? silentLogger;

  /**
   * One client per (registry, TLS mode, credential): a rotated Secret yields a new key, so new
   * credentials take effect at once; the key holds a hash, never the secret.
   */
  async function repositoryFor(repo: string, creds: CredentialProvider, insecure: boolean): Promise<Repository> {
    const ref = parseRepository(repo);
    const credential = await creds.get(ref.registry);
    const key = `${ref.registry}|${insecure}|${fingerprint(credential)}`;
    let client = clients.get(key);
    if (client) {
      clients.delete(key); // re-insert: most recently used last
    } else {
      client = new RegistryClient(ref.registry, {
        ...o.client,
        insecure,
        credentials: { get: async (r) => (r === ref.registry ? credential : undefined) },
        onRequest: (e) => o.metrics?.countRequest(e.registry, e.method, e.status),
        onCapability: (c, supported) => o.metrics?.setCapability(ref.registry, c, supported),
      });
      if (clients.size >= CLIENT_CACHE_MAX) {
        const [oldestKey, oldest] = clients.entries().next().value as [string, RegistryClient];
        clients.delete(oldestKey);
        void oldest.close().catch(() => {});
      }
    }
    clients.set(key, client);
    return client.repository(ref.repository);
  }

  async function reconcile(raw: ImageMirror, ctx: ReconcileContext): Promise<ReconcileResult> {
    const now = ctx.now?.() ?? new Date();
    const started = performance.now();
    const prev: ImageMirrorStatus = raw.status ?? {};
    const generation = raw.metadata?.generation;
    const finish = (
      outcome: ReconcileOutcome,
      reason: string,
      message: string,
      extra: Partial<ImageMirrorStatus> = {},
      targets: TargetReport[] = [],
      requeueAfterMs?: number,
    ): ReconcileResult => {
      o.metrics?.syncDuration.observe((performance.now() - started) / 1000);
      return { outcome, reason, message, status: statusFor(prev, outcome, reason, message, generation, now, extra), targets, requeueAfterMs };
    };

    const v = validateMirror(raw);
    if (!v.ok) return finish('stalled', Reason.InvalidSpec, v.errors.join('; '));
    const m = v.mirror;
    const spec = m.spec;
    if (spec.suspend) {
      return { outcome: 'suspended', reason: Reason.Suspended, message: 'suspended', status: prev, targets: [] };
    }
    const namespace = m.metadata.namespace ?? 'default';
    const intervalMs = parseDuration(spec.interval ?? '10m');
    const mlog = log.child({ mirror: mirrorKey(m) });

    let source: Repository;
    const targets: Array<{ repository: Repository; spec: (typeof spec.targets)[number] }> = [];
    try {
      const srcCreds = await ctx.credentials(namespace, spec.source.credentials);
      source = await repositoryFor(spec.source.repository, srcCreds, spec.source.insecure === true);
      for (const t of spec.targets) {
        const creds = await ctx.credentials(namespace, t.credentials);
        targets.push({ repository: await repositoryFor(t.repository, creds, t.insecure === true), spec: t });
      }
    } catch (e) {
      if (e instanceof CredentialsNotFoundError) return finish('retry', Reason.CredentialsNotFound, e.message);
      return finish('retry', Reason.RegistryError, describeError(e));
    }

    // One tags/list serves selection, missing-tag detection and cosign/fallback referrer tags.
    let sourceTags: string[] | undefined;
    const images: Array<{ name: string; reference: string }> = [];
    try {
      if (spec.source.digest === undefined || spec.referrers !== false) sourceTags = await source.listTags();
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

    const sourceDigests: Record<string, string> = {};
    const reports: TargetReport[] = [];
    let streamed = 0;
    for (const image of images) {
      if (ctx.signal?.aborted) break;
      let digest: string;
      try {
        const head = await source.headManifest(image.reference);
        if (!head) {
          return finish('retry', Reason.SourceNotFound, `source ${formatReference({ ...parseRepository(spec.source.repository), ...refPart(image.reference) })} not found`);
        }
        digest = head.digest;
      } catch (e) {
        return finish('retry', sourceReason(e), `source ${spec.source.repository}: ${describeError(e)}`);
      }
      sourceDigests[image.name] = digest;
      const result = await engine.copyImage({
        source,
        reference: image.reference,
        sourceDigest: digest,
        sourceTags,
        targets: targets.map((t) => ({ repository: t.repository, tags: targetTags(spec.source, t.spec, image.name) })),
        referrers: spec.referrers !== false,
        overwrite: spec.overwrite !== false,
        dryRun: ctx.dryRun,
        signal: ctx.signal,
        onProgress: ctx.onProgress ? (p) => ctx.onProgress!(streamed + p.bytes) : undefined,
      });
      streamed += result.targets.reduce((n, t) => n + t.bytesCopied, 0);
      reports.push(...result.targets);
    }
    if (ctx.signal?.aborted && reports.length === 0) {
      return finish('retry', Reason.RegistryError, 'interrupted by shutdown before any target was synced');
    }

    const rows: TargetStatus[] = reports.map((r) => ({
      reference: r.reference,
      digest: r.digest,
      action: r.action,
      lastSyncTime: now.toISOString(),
      ...(r.message ? { message: r.message } : {}),
    }));
    const inSync = reports.filter((r) => r.action !== TargetAction.Failed && r.action !== TargetAction.Conflict).length;
    const copied = reports.reduce((n, r) => n + r.bytesCopied, 0);
    const saved = reports.reduce((n, r) => n + r.bytesSaved, 0);
    const extra: Partial<ImageMirrorStatus> = {
      sourceDigests,
      targets: rows.slice(0, TARGET_ROWS_CAP),
      targetsOmitted: Math.max(0, rows.length - TARGET_ROWS_CAP),
      summary: `${inSync}/${reports.length} in sync`,
      bytes: ctx.dryRun
        ? prev.bytes ?? { copied: 0, saved: 0 }
        : { copied: (prev.bytes?.copied ?? 0) + copied, saved: (prev.bytes?.saved ?? 0) + saved },
    };

    const failed = reports.filter((r) => r.action === TargetAction.Failed);
    const conflicts = reports.filter((r) => r.action === TargetAction.Conflict);
    if (failed.length > 0) {
      const first = failed[0]!;
      const reason = first.errorCode === 'UNAUTHORIZED' || first.errorCode === 'DENIED' ? Reason.AuthFailed : Reason.RegistryError;
      const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : '';
      mlog.warn('targets failed', { failed: failed.length });
      return finish('retry', reason, `${first.reference}: ${first.message ?? 'failed'}${more}`, extra, reports);
    }
    if (conflicts.length > 0) {
      const refs = conflicts.map((c) => c.reference);
      return finish(
        'stalled',
        Reason.TagConflict,
        `${refs.slice(0, 3).join(', ')}${refs.length > 3 ? ` and ${refs.length - 3} more` : ''} point elsewhere and overwrite is false`,
        extra,
        reports,
      );
    }
    const images1 = images.length === 1 ? '1 image' : `${images.length} images`;
    const message = `${images1}, ${reports.length} target tag${reports.length === 1 ? '' : 's'} in sync`;
    return finish('synced', Reason.Synced, message, { ...extra, lastSyncTime: now.toISOString() }, reports, intervalMs);
  }

  return {
    locations,
    reconcile: async (mirror, ctx) => {
      try {
        return await reconcile(mirror, ctx);
      } catch (e) {
        // The loop must never crash on one mirror: anything unexpected becomes a retryable RegistryError.
        const now = ctx.now?.() ?? new Date();
        const prev = mirror.status ?? {};
        const message = describeError(e);
        return {
          outcome: 'retry',
          reason: Reason.RegistryError,
          message,
          status: statusFor(prev, 'retry', Reason.RegistryError, message, mirror.metadata?.generation, now, {}),
          targets: [],
        };
      }
    },
    close: async () => {
      await Promise.all([...clients.values()].map((c) => c.close().catch(() => {})));
      clients.clear();
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

function sourceReason(e: unknown): string {
  if (isOciError(e) && (e.code === 'UNAUTHORIZED' || e.code === 'DENIED')) return Reason.AuthFailed;
  if (isNotFound(e)) return Reason.SourceNotFound;
  return Reason.RegistryError;
}

function refPart(reference: string): { tag?: string; digest?: string } {
  return reference.startsWith('sha256:') ? { digest: reference } : { tag: reference };
}

function fingerprint(c: Credential | undefined): string {
  if (!c) return 'anonymous';
  return createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 16);
}
