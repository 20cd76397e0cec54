/**
 * The controller loop: reflectors for ImageMirrors and dockerconfigjson Secrets, a work queue of
 * `ns/name` keys, workers that reconcile the latest cached object and write status, and optional
 * Lease leader election (only the leader runs workers; reflectors always run, for readiness).
 *
 * Enqueue rules (controller-runtime's GenerationChangedPredicate): add → enqueue; update → enqueue
 * only when the generation changed or status.observedGeneration lags it, so our own status writes
 * never re-trigger a reconcile, or when a requested-at annotation changed (then at once, ahead of any
 * backoff: someone asked); delete → forget. A Secret change re-queues the mirrors using it.
 *
 * Tenancy: ImageMirrorPolicies are watched cluster-wide (they are cluster-scoped) and every change
 * re-queues every mirror; workers start only once they are listed, so no mirror runs before the
 * guardrails are known. Target-tag ownership is seeded from every status seen, before workers start,
 * so it survives restarts; a deleted mirror releases its tags.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubeTransport } from './kube-config.js';
import type { Metrics } from '../metrics.js';
import { silentLogger, type Logger } from '../log.js';
import { parseReference } from '../oci/reference.js';
import { TargetAction } from '../copy/actions.js';
import { CredentialsNotFoundError, type ReconcileContext, type ReconcileResult, type Reconciler } from '../mirror/reconciler.js';
import { GROUP, PLURAL, VERSION, mirrorKey, requestedAt, requestedAtChanged, type CloudProvider, type ImageMirror, type ImageMirrorStatus } from '../mirror/types.js';
import type { MirrorReconciler } from '../mirror/reconcile.js';
import { POLICY_PLURAL, validatePolicy, type ImageMirrorPolicy } from '../mirror/policy.js';
import type { BackoffOptions } from '../queue/work-queue.js';
import { createWorkLoop, type StatusWriteResult } from '../runtime/loop.js';
import { EventRecorder } from './events.js';
import { LeaderElector } from './leader-election.js';
import { Reflector, errorLine, stripBookkeeping } from './reflector.js';
import { KubeApi } from './kube-http.js';
import { DOCKERCONFIGJSON, SecretCredentials, apiSecretLookup, apiSecretValue, type SecretObject } from './secrets.js';
import { StatusWriter } from './status.js';
import { formatBytes } from '../format.js';

export interface ControllerOptions {
  kubeconfig: KubeTransport;
  /** Namespaces to watch; empty or absent = all (cluster-wide list/watch). */
  namespaces?: string[];
  /** Label selector for ImageMirrors. */
  selector?: string;
  /** Parallel reconciles. Default 4. */
  concurrency?: number;
  leaderElect?: boolean;
  /** Default `default`. */
  leaseNamespace?: string;
  /** Default `image-mirror-controller`. */
  leaseName?: string;
  /** Default hostname + random suffix. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** With forget/seedClaims (createReconciler's), target-tag ownership follows deletes and restarts. */
  reconciler: Reconciler & Partial<Pick<MirrorReconciler, 'forget' | 'seedClaims'>>;
  metrics: Metrics;
  /** Deny mirrors in namespaces no ImageMirrorPolicy names. */
  requirePolicy?: boolean;
  /**
   * Cloud providers whose identity (the controller pod's own) mirrors may use through
   * `credentials.provider`; default none. Any namespace naming an allowed provider pushes and
   * pulls with that identity, so scope namespaces and repositories with ImageMirrorPolicies.
   */
  cloudCredentials?: readonly CloudProvider[];
  /**
   * Admit `oci:PATH` / `oci-archive:PATH` repositories (--allow-local-paths). Default false: such a
   * mirror reads and writes the controller's own file system, which no namespace should get by
   * writing a spec; refused as InvalidSpec naming the flag.
   */
  localPaths?: boolean;
  /** While the ImageMirrorPolicy CRD is not installed (no policies can exist), how often to look again. Default 30 s. */
  policyRecheckMs?: number;
  /**
   * Called for every target row of every ImageMirror status seen (at start and as statuses change),
   * so the blob-location cache learns where images live across restarts.
   */
  onImageLocation?: (registry: string, repository: string, digest: string) => void;
  /** After each synced reconcile of key (started at startedAt, targets written at `at`, ms). */
  onSynced?: (key: string, at: number, startedAt: number) => void;
  log?: Logger;
  /** Per-key retry backoff. Default 1 s → 5 min. */
  backoff?: BackoffOptions;
  /** Relative jitter on the resync interval. Default 0.1. */
  resyncJitter?: number;
  /** How long in-flight reconciles may run after stop() before their signal aborts. Default 30 s. */
  shutdownGraceMs?: number;
  /** Watch timeoutSeconds (server closes, we re-watch). Default 300. */
  watchTimeoutSeconds?: number;
  /** Watch staleness limit. Default 2 × watchTimeoutSeconds. */
  watchStaleAfterMs?: number;
  /** Record core/v1 Events. Default true. */
  events?: boolean;
}

export interface ControllerHandle {
  /** Identity used for the Lease. */
  readonly identity: string;
  /** Every watch has completed its first list (readiness). */
  ready(): boolean;
  /** Liveness: not stopped, and a leader has renewed within the lease duration. */
  healthy(): boolean;
  isLeader(): boolean;
  waitForSync(): Promise<void>;
  /** Cached ImageMirrors. */
  mirrors(): ImageMirror[];
  /** ImageMirrorPolicies in force (an invalid one grants nothing). */
  policies(): ImageMirrorPolicy[];
  /** Reconcile key now, ahead of its backoff or resync timer (no-op unless leading). */
  enqueue(key: string, why: string): void;
  /** A push notification concerning key: reset its backoff, reconcile within the coalescing window. */
  pushed(key: string, why: string): void;
  /** Stop taking work, let in-flight reconciles finish (grace, then abort), release the lease. */
  stop(): Promise<void>;
}

/** Stand-in for a policy that fails validation: it names what it can and allows nothing. */
function invalidPolicy(obj: unknown, name: string): ImageMirrorPolicy {
  const spec = (obj as { spec?: { namespaces?: unknown } }).spec;
  const namespaces = Array.isArray(spec?.namespaces) ? spec.namespaces.filter((n): n is string => typeof n === 'string') : [];
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirrorPolicy', metadata: { name: `${name} (invalid)` }, spec: { namespaces, sources: [], targets: [] } };
}

/** The Forbidden message's advice for a mirror naming a provider the controller was not started with. */
export function cloudCredentialsHint(provider: CloudProvider): string {
  return `the controller lends its own cloud identity only for providers named by its --cloud-credentials flag; start it with --cloud-credentials=${provider}, and scope which namespaces may write which repositories with an ImageMirrorPolicy`;
}

type MirrorObject = ImageMirror & { metadata: ImageMirror['metadata'] & { deletionTimestamp?: string } };

export async function runController(o: ControllerOptions): Promise<ControllerHandle> {
  const log = o.log ?? silentLogger;
  const kc = o.kubeconfig;
  // The watch and lease gauges mean something only here, so only the controller exports them.
  o.metrics.registerControllerMetrics();
  const namespaces: Array<string | undefined> = o.namespaces?.length ? [...new Set(o.namespaces)] : [undefined];
  const identity = o.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  const api = new KubeApi(kc);
  const statusWriter = new StatusWriter(api);
  const events = o.events === false ? undefined : new EventRecorder({ api, instance: identity, log });
  const watchTimeoutSeconds = o.watchTimeoutSeconds ?? 300;
  let stopped = false;
  let stoppingWorkers: Promise<void> | undefined;

  const nsKey = (ns: string | undefined): string => ns ?? '*';
  const mirrorReflectors = new Map<string, Reflector<MirrorObject>>();
  const secretReflectors = new Map<string, Reflector<SecretObject>>();
  const reflectorFor = <T>(m: Map<string, Reflector<T & { metadata?: { name?: string } }>>, ns: string): Reflector<T & { metadata?: { name?: string } }> | undefined =>
    m.get(ns) ?? m.get('*');

  const secretValue = apiSecretValue(o.kubeconfig);
  const secrets = new SecretCredentials(
    { get: (ns, name) => reflectorFor<SecretObject>(secretReflectors, ns)?.get(ns, name) },
    apiSecretLookup(kc),
  );

  function getMirror(key: string): MirrorObject | undefined {
    const i = key.indexOf('/');
    const ns = key.slice(0, i);
    return reflectorFor<MirrorObject>(mirrorReflectors, ns)?.get(ns, key.slice(i + 1));
  }

  function allMirrors(): MirrorObject[] {
    return [...mirrorReflectors.values()].flatMap((r) => r.list());
  }

  function learnLocations(status: ImageMirrorStatus | undefined, prev?: ImageMirrorStatus): void {
    if (!o.onImageLocation || !status?.targets?.length) return;
    if (prev && JSON.stringify(prev.targets) === JSON.stringify(status.targets)) return;
    for (const row of status.targets) {
      // A pruned row names a tag that is gone; a NotPruned one teaches nothing new either.
      if (!row.digest || row.action === TargetAction.Failed || row.action === TargetAction.Conflict) continue;
      if (row.action === TargetAction.Pruned || row.action === TargetAction.NotPruned) continue;
      try {
        const ref = parseReference(row.reference);
        o.onImageLocation(ref.registry, ref.repository, row.digest);
      } catch {
        // A row we cannot parse teaches nothing.
      }
    }
  }

  const loop = createWorkLoop({
    reconciler: o.reconciler,
    metrics: o.metrics,
    log,
    concurrency: o.concurrency,
    backoff: o.backoff,
    resyncJitter: o.resyncJitter,
    onSynced: o.onSynced,
    store: {
      get: (key) => {
        const m = getMirror(key);
        return m && !m.metadata.deletionTimestamp ? m : undefined;
      },
      list: () => allMirrors().filter((m) => !m.metadata.deletionTimestamp),
      statuses: () => allMirrors().map((m) => m.status),
      keyedStatuses: () => allMirrors().map((m) => [mirrorKey(m), m.status] as const),
      context: (m, signal) => {
        const own = m.metadata.namespace ?? 'default';
        return {
          credentials: async (ns, ref) => {
            if (ref?.secretName && ns !== own)
              throw new CredentialsNotFoundError(`secret ${ns}/${ref.secretName} is outside the mirror's namespace ${own}`);
            return secrets.credentials(own, ref);
          },
          signal,
          policies,
          requirePolicy: o.requirePolicy,
          cloudProviders: o.cloudCredentials ?? [],
          allowCloudProviderHint: cloudCredentialsHint,
          // spec.verify's keys and trusted roots: Secrets of the mirror's own namespace only.
          secretValue: async (ns, name, key) => {
            if (ns !== own) throw new CredentialsNotFoundError(`secret ${ns}/${name} is outside the mirror's namespace ${own}`);
            return secretValue(own, name, key);
          },
          ...(o.localPaths ? { localPaths: true } : {}),
        };
      },
      // Suspended: conditions are left as they were, observedGeneration follows the spec.
      writeStatus: (m, result): Promise<StatusWriteResult> => statusWriter.write(m, result.status),
      afterWrite: async (m, result) => recordEvent(m, result),
    },
  });
  const updateMirrorsGauge = (): void => loop.refreshReadyGauge();
  const enqueue = (key: string): void => loop.add(key);

  // Policies: cluster-wide, whatever namespaces are watched (they are cluster-scoped).
  type PolicyObject = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; resourceVersion?: string } };
  let policies: ImageMirrorPolicy[] = [];
  function refreshPolicies(): void {
    policies = policyReflector
      .list()
      .map((obj) => {
        const v = validatePolicy(obj);
        if (v.ok) return v.policy;
        // The CRD schema catches most mistakes; what it cannot must not widen access, so an invalid
        // policy still governs the namespaces it names but grants nothing.
        log.warn(`ImageMirrorPolicy ${v.name} is invalid and grants nothing: ${v.errors.join('; ')}`);
        return invalidPolicy(obj, v.name);
      })
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
  const onPolicy = (): void => {
    refreshPolicies();
    // Any mirror may now fit or not: re-check them all (a Forbidden mirror is otherwise never retried).
    for (const m of allMirrors()) enqueue(mirrorKey(m));
  };
  const policyReflector = new Reflector<PolicyObject>({
    name: 'imagemirrorpolicies',
    kubeconfig: kc,
    path: `/apis/${GROUP}/${VERSION}/${POLICY_PLURAL}`,
    timeoutSeconds: watchTimeoutSeconds,
    staleAfterMs: o.watchStaleAfterMs,
    absentIsEmpty: { recheckMs: o.policyRecheckMs },
    log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    handlers: { add: onPolicy, update: onPolicy, delete: onPolicy },
  });

  function seedClaims(m: ImageMirror, prev?: ImageMirrorStatus): void {
    if (!o.reconciler.seedClaims || !m.status?.targets?.length) return;
    if (prev && JSON.stringify(prev.targets) === JSON.stringify(m.status.targets)) return;
    o.reconciler.seedClaims(m);
  }

  // Watches: one per namespace (or one cluster-wide), always running so /readyz reflects the caches.
  const connected = new Map<string, boolean>();
  for (const ns of namespaces) {
    const k = nsKey(ns);
    mirrorReflectors.set(
      k,
      new Reflector<MirrorObject>({
        name: `imagemirrors${ns ? ` in ${ns}` : ''}`,
        kubeconfig: kc,
        path: ns ? `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(ns)}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`,
        labelSelector: o.selector,
        transform: stripBookkeeping,
        timeoutSeconds: watchTimeoutSeconds,
        staleAfterMs: o.watchStaleAfterMs,
        log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
        onConnected: (c) => {
          connected.set(k, c);
          o.metrics.watchConnected.set([...connected.values()].every(Boolean) && connected.size === namespaces.length ? 1 : 0);
        },
        onRelist: () => o.metrics.watchRelists.inc(),
        handlers: {
          add: (m) => {
            const key = mirrorKey(m);
            secrets.track(m, key);
            learnLocations(m.status);
            seedClaims(m);
            updateMirrorsGauge();
            enqueue(key);
          },
          update: (m, old) => {
            const key = mirrorKey(m);
            secrets.track(m, key);
            learnLocations(m.status, old.status);
            seedClaims(m, old.status);
            updateMirrorsGauge();
            const gen = m.metadata.generation;
            if (gen !== old.metadata.generation || gen !== m.status?.observedGeneration) enqueue(key);
            // An on-demand request: now, ahead of any backoff or resync timer.
            if (requestedAtChanged(m, old)) loop.enqueue(key, `annotation requested-at set to ${JSON.stringify(requestedAt(m) ?? '')}`);
          },
          delete: (m) => {
            const key = mirrorKey(m);
            secrets.untrack(key);
            o.reconciler.forget?.(key);
            loop.drop(key);
            updateMirrorsGauge();
          },
        },
      }),
    );
    const onSecret = (s: SecretObject): void => {
      const sns = s.metadata?.namespace ?? '';
      const name = s.metadata?.name ?? '';
      secrets.invalidate(sns, name);
      for (const key of secrets.mirrorsFor(sns, name)) enqueue(key);
    };
    secretReflectors.set(
      k,
      new Reflector<SecretObject>({
        name: `secrets${ns ? ` in ${ns}` : ''}`,
        kubeconfig: kc,
        path: ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets` : '/api/v1/secrets',
        // Only pull-secret contents are cached, not every Secret in the namespace.
        fieldSelector: `type=${DOCKERCONFIGJSON}`,
        transform: stripBookkeeping,
        timeoutSeconds: watchTimeoutSeconds,
        staleAfterMs: o.watchStaleAfterMs,
        log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
        handlers: { add: onSecret, update: onSecret, delete: onSecret },
      }),
    );
  }
  const reflectors = [...mirrorReflectors.values(), ...secretReflectors.values(), policyReflector];
  for (const r of reflectors) r.start();
  const synced = Promise.all(reflectors.map((r) => r.waitForSync())).then(() => undefined);

  /** Queues the reconcile's Events; the worker does not wait for them to be written. */
  function recordEvent(m: ImageMirror, r: ReconcileResult): void {
    if (!events || r.outcome === 'suspended') return;
    if (r.outcome === 'synced') {
      const warned = r.targets.filter((t) => t.warning);
      if (warned.length > 0) {
        const more = warned.length > 1 ? ` (and ${warned.length - 1} more)` : '';
        events.record(m, 'Warning', 'ReferrerNotCopied', `${warned[0]!.reference}: ${warned[0]!.warning}${more}`);
      }
      const changed = r.targets.filter((t) => t.action === TargetAction.Copied || t.action === TargetAction.Retagged);
      if (changed.length === 0) return; // a no-op resync is not news
      const copied = r.targets.reduce((a, t) => a + t.bytesCopied, 0);
      const saved = r.targets.reduce((a, t) => a + t.bytesSaved, 0);
      events.record(m, 'Normal', 'Synced', `${changed.length} target tag(s) updated; ${formatBytes(copied)} copied, ${formatBytes(saved)} saved`);
    } else {
      events.record(m, 'Warning', r.reason, r.message);
    }
  }

  async function startWorkers(): Promise<void> {
    if (stopped || loop.running) return;
    await stoppingWorkers;
    await synced;
    if (stopped || loop.running || (elector && !elector.isLeader)) return;
    const mirrors = allMirrors();
    // Counted before the workers start taking them, so the line says how many were handed over.
    log.info(`workers started (${o.concurrency ?? 4}) for ${mirrors.length} ImageMirror${mirrors.length === 1 ? '' : 's'}`);
    loop.start();
    for (const m of mirrors) loop.add(mirrorKey(m));
  }

  function stopWorkers(): Promise<void> {
    if (!loop.running) return stoppingWorkers ?? Promise.resolve();
    stoppingWorkers = loop.stop(o.shutdownGraceMs ?? 30_000).then((r) => {
      if (!r.drained) log.warn(`shutdown: in-flight reconciles aborted after the grace period${r.abandoned.length ? `: ${r.abandoned.join(', ')}` : ''}`);
    });
    return stoppingWorkers;
  }

  const elector = o.leaderElect
    ? new LeaderElector({
        kubeconfig: kc,
        namespace: o.leaseNamespace ?? 'default',
        name: o.leaseName ?? 'image-mirror-controller',
        identity,
        leaseDurationMs: o.leaseDurationMs,
        renewDeadlineMs: o.renewDeadlineMs,
        retryPeriodMs: o.retryPeriodMs,
        metrics: o.metrics,
        log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
        onStartedLeading: () => void startWorkers(),
        onStoppedLeading: () => void stopWorkers(),
      })
    : undefined;
  const leaseDurationMs = o.leaseDurationMs ?? 15_000;
  if (elector) elector.start();
  else {
    o.metrics.leader.set(1);
    void startWorkers();
  }

  return {
    identity,
    ready: () => reflectors.every((r) => r.synced),
    healthy: () => {
      if (stopped) return false;
      const since = elector?.sinceLastRenewMs();
      return since === undefined || since < leaseDurationMs;
    },
    isLeader: () => (elector ? elector.isLeader : !stopped),
    waitForSync: () => synced,
    mirrors: () => allMirrors(),
    policies: () => [...policies],
    enqueue: (key, why) => loop.enqueue(key, why),
    pushed: (key, why) => loop.pushed(key, why),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopWorkers();
      if (elector) await elector.stop({ release: true });
      else o.metrics.leader.set(0);
      await Promise.all(reflectors.map((r) => r.stop()));
      // Events of the last reconciles are written before the connections close (bounded: a few senders, a short queue).
      await events?.flush();
      api.close();
      o.metrics.watchConnected.set(0);
    },
  };
}
