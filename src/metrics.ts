/**
 * Prometheus metrics, one vocabulary with status and CLI output. One Metrics object per process (tests make their own), so
 * nothing here is a global singleton. Labels stay low-cardinality: registry host, never repo or tag;
 * the per-mirror gauges hold one series per ImageMirror (namespace, name), so an alert can name it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BlobAction, SavedMethod, TargetAction, targetActionLabel } from './copy/actions.js';
import type { CopyObserver, LearnedCapability } from './copy/observer.js';
import type { RequestEvent } from './oci/http.js';
import type { Quota } from './oci/rate-limit.js';
import { buildInfo, type BuildInfo } from './version.js';

export const METRIC_NAMES = [
  'imagemirror_bytes_saved_total',
  'imagemirror_bytes_copied_total',
  'imagemirror_blobs_total',
  'imagemirror_target_syncs_total',
  'imagemirror_sync_duration_seconds',
  'imagemirror_registry_requests_total',
  'imagemirror_registry_capability',
  'imagemirror_registry_ratelimit_limit',
  'imagemirror_registry_ratelimit_remaining',
  'imagemirror_mirrors',
  'imagemirror_workqueue_depth',
  'imagemirror_reconcile_total',
  'imagemirror_mirror_ready',
  'imagemirror_mirror_last_success_timestamp_seconds',
  'imagemirror_build_info',
  'imagemirror_watch_connected',
  'imagemirror_watch_relists_total',
  'imagemirror_leader',
] as const;

/** Metrics only the controller has a meaning for: `run` and `sync` have no watch and no lease. */
export const CONTROLLER_METRIC_NAMES = ['imagemirror_watch_connected', 'imagemirror_watch_relists_total', 'imagemirror_leader'] as const;

/** Results counted by imagemirror_reconcile_total (each exported at zero from the start). */
export const RECONCILE_RESULTS = ['success', 'error', 'requeue'] as const;
export type ReconcileResultLabel = (typeof RECONCILE_RESULTS)[number];

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics. */
  defaultMetrics?: boolean;
  /** Register the controller-only metrics (CONTROLLER_METRIC_NAMES); runController also does so itself. */
  controller?: boolean;
  /** What imagemirror_build_info reports; default the running build's (computed at the first scrape). */
  buildInfo?: BuildInfo;
}

let processBuildInfo: BuildInfo | undefined;

/** The copy engine's counts arrive through CopyObserver, so the engine needs nothing from this module. */
export class Metrics implements CopyObserver {
  readonly registry: Registry;
  readonly bytesSaved: Counter<'method'>;
  readonly bytesCopied: Counter;
  readonly blobs: Counter<'action'>;
  readonly targetSyncs: Counter<'result'>;
  /** spec.verify: source images checked, by result (verified, failed). */
  readonly verifications: Counter<'result'>;
  readonly syncDuration: Histogram;
  readonly registryRequests: Counter<'registry' | 'method' | 'code'>;
  readonly registryCapability: Gauge<'registry' | 'capability'>;
  readonly registryRateLimit: Gauge<'registry'>;
  readonly registryRateLimitRemaining: Gauge<'registry'>;
  readonly mirrors: Gauge<'ready'>;
  readonly workqueueDepth: Gauge;
  readonly reconciles: Counter<'result'>;
  /** One series per mirror: 1 while its Ready condition is True, else 0; reason is the condition's. */
  readonly mirrorReady: Gauge<'namespace' | 'name' | 'reason'>;
  readonly mirrorLastSuccess: Gauge<'namespace' | 'name'>;
  readonly buildInfo: Gauge<'version' | 'commit' | 'node'>;
  readonly watchConnected: Gauge;
  readonly watchRelists: Counter;
  readonly leader: Gauge;

  constructor(options: MetricsOptions = {}) {
    const registers = [(this.registry = new Registry())];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.bytesSaved = new Counter({
      name: 'imagemirror_bytes_saved_total',
      help: 'Blob bytes a target needed and did not receive over the wire, by how (exists, mount, retag)',
      labelNames: ['method'],
      registers,
    });
    this.bytesCopied = new Counter({ name: 'imagemirror_bytes_copied_total', help: 'Blob bytes uploaded to targets', registers });
    this.blobs = new Counter({ name: 'imagemirror_blobs_total', help: 'Blobs handled, by action (exists, mount, upload)', labelNames: ['action'], registers });
    this.targetSyncs = new Counter({
      name: 'imagemirror_target_syncs_total',
      help: 'Target tags synced, by result (up_to_date, retagged, copied, conflict, failed)',
      labelNames: ['result'],
      registers,
    });
    this.verifications = new Counter({
      name: 'imagemirror_verifications_total',
      help: 'Source images checked against spec.verify before anything was written, by result (verified, failed)',
      labelNames: ['result'],
      registers,
    });
    this.syncDuration = new Histogram({
      name: 'imagemirror_sync_duration_seconds',
      help: 'Duration of one mirror reconcile',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.registryRequests = new Counter({
      name: 'imagemirror_registry_requests_total',
      help: 'HTTP requests to registries, by registry host, method and status code',
      labelNames: ['registry', 'method', 'code'],
      registers,
    });
    this.registryCapability = new Gauge({
      name: 'imagemirror_registry_capability',
      help: 'What a registry turned out to support (1) or not (0): mount, referrers_api',
      labelNames: ['registry', 'capability'],
      registers,
    });
    this.registryRateLimit = new Gauge({
      name: 'imagemirror_registry_ratelimit_limit',
      help: 'Requests a registry allows per window, as it last reported (ratelimit-limit, Docker Hub)',
      labelNames: ['registry'],
      registers,
    });
    this.registryRateLimitRemaining = new Gauge({
      name: 'imagemirror_registry_ratelimit_remaining',
      help: 'Requests left in the window, as the registry last reported (ratelimit-remaining, Docker Hub)',
      labelNames: ['registry'],
      registers,
    });
    this.mirrors = new Gauge({ name: 'imagemirror_mirrors', help: 'ImageMirrors by Ready condition status', labelNames: ['ready'], registers });
    this.workqueueDepth = new Gauge({ name: 'imagemirror_workqueue_depth', help: 'Keys waiting in the work queue', registers });
    this.reconciles = new Counter({ name: 'imagemirror_reconcile_total', help: 'Reconciles, by result (success, error, requeue)', labelNames: ['result'], registers });
    this.mirrorReady = new Gauge({
      name: 'imagemirror_mirror_ready',
      help: 'One series per ImageMirror: 1 while its Ready condition is True, else 0; reason is the condition reason',
      labelNames: ['namespace', 'name', 'reason'],
      registers,
    });
    this.mirrorLastSuccess = new Gauge({
      name: 'imagemirror_mirror_last_success_timestamp_seconds',
      help: 'When the last successful sync of an ImageMirror finished (status.lastSyncTime), seconds since the epoch',
      labelNames: ['namespace', 'name'],
      registers,
    });
    const info = options.buildInfo;
    this.buildInfo = new Gauge({
      name: 'imagemirror_build_info',
      help: 'Always 1; the labels name the version, the commit it was built from and the Node.js version',
      labelNames: ['version', 'commit', 'node'],
      registers,
      // At the first scrape, not at construction: a checkout learns its commit by running git.
      collect() {
        const b = info ?? (processBuildInfo ??= buildInfo());
        this.reset();
        this.set({ version: b.version, commit: b.commit, node: b.node }, 1);
      },
    });
    // Controller-only: created always (the leader elector and watches write to them), registered
    // only in the controller, so `run` and `sync` do not export a watch or a lease they do not have.
    this.watchConnected = new Gauge({ name: 'imagemirror_watch_connected', help: '1 while the ImageMirror watch stream is connected', registers: [] });
    this.watchRelists = new Counter({ name: 'imagemirror_watch_relists_total', help: 'Full re-lists of ImageMirrors (410 Gone, errors, staleness)', registers: [] });
    this.leader = new Gauge({ name: 'imagemirror_leader', help: '1 while this process holds the leader lease', registers: [] });
    if (options.controller) this.registerControllerMetrics();

    // Known label values start at zero, so rate() and increase() see the first event and an alert
    // on a counter that never moved has a series to evaluate.
    for (const result of RECONCILE_RESULTS) this.reconciles.inc({ result }, 0);
    for (const a of Object.values(TargetAction)) this.targetSyncs.inc({ result: targetActionLabel(a) }, 0);
    for (const result of ['verified', 'failed']) this.verifications.inc({ result }, 0);
    for (const action of Object.values(BlobAction)) this.blobs.inc({ action }, 0);
    for (const method of Object.values(SavedMethod)) this.bytesSaved.inc({ method }, 0);
    for (const ready of ['True', 'False', 'Unknown']) this.mirrors.set({ ready }, 0);
  }

  /** Adds watch_connected, watch_relists_total and leader to the exposition (idempotent). */
  registerControllerMetrics(): void {
    for (const m of [this.watchConnected, this.watchRelists, this.leader]) {
      if (!this.registry.getSingleMetric((m as unknown as { name: string }).name)) this.registry.registerMetric(m);
    }
  }

  countBlob(action: BlobAction, size: number): void {
    this.blobs.inc({ action });
    if (action === 'upload') this.bytesCopied.inc(size);
    else this.bytesSaved.inc({ method: action }, size);
  }

  countSaved(method: SavedMethod, bytes: number): void {
    if (bytes > 0) this.bytesSaved.inc({ method }, bytes);
  }

  countTarget(action: TargetAction): void {
    this.targetSyncs.inc({ result: targetActionLabel(action) });
  }

  countRequest(registry: string, method: string, code: number | string): void {
    this.registryRequests.inc({ registry, method, code: String(code) });
  }

  /** One answered (or failed) registry request: counted, and its reported quota kept. */
  observeRequest(e: RequestEvent): void {
    this.countRequest(e.registry, e.method, e.status);
    if (e.rateLimit) this.setRateLimit(e.registry, e.rateLimit);
  }

  setRateLimit(registry: string, q: Quota): void {
    this.registryRateLimit.set({ registry }, q.limit);
    this.registryRateLimitRemaining.set({ registry }, q.remaining);
  }

  setCapability(registry: string, capability: LearnedCapability, supported: boolean): void {
    this.registryCapability.set({ registry, capability }, supported ? 1 : 0);
  }

  async exposition(): Promise<string> {
    return this.registry.metrics();
  }
}
