/**
 * `image-mirror run --specs DIR`: the controller's loop over YAML files instead of the Kubernetes
 * API. Files are re-read on change (fs.watch, debounced); a changed spec is re-queued at once, a
 * removed one forgotten (its target-tag claims released). Status is kept as one JSON file per mirror
 * under --status-dir (beside DIR, never inside it, so our writes never retrigger the watch; file
 * names are derived from the key, never taken from it: status-files.ts) and served at GET /status.
 * Documents are judged by judge-specs.ts: a name defined twice, an unnamed document and an invalid
 * policy each get a status with the reason instead of being dropped or picked silently.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { createWorkLoop } from '../runtime/loop.js';
import { Metrics } from '../metrics.js';
import { createReconciler } from '../mirror/reconcile.js';
import type { ImageMirrorPolicy } from '../mirror/policy.js';
import { ConditionType, Reason, mirrorKey, requestedAt, type ImageMirror, type ImageMirrorStatus } from '../mirror/types.js';
import { setCondition } from '../mirror/conditions.js';
import { loadDockerConfigFile, defaultDockerConfigPath, type DockerConfig } from '../oci/docker-config.js';
import { describeError } from '../oci/errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { startServer, type ServerHandle, parseListenAddr } from '../server.js';
import { startPushReceiver, type PushReceiverHandle } from '../runtime/webhook.js';
import { loadSpecFiles, type SecretDoc } from './spec-files.js';
import { fileCredentials, fileSecretValue } from './file-credentials.js';
import { judgeSpecs } from './judge-specs.js';
import { readStatusFile, statusFilePath } from './status-files.js';
import { closeWithin } from './bounded-close.js';

export interface RunOptions {
  specsDir: string;
  statusDir?: string;
  metricsAddr?: string;
  concurrency?: number;
  dockerConfig?: string;
  /** --credentials-fallback: a named Secret missing from the files means --docker-config. */
  credentialsFallback?: boolean;
  blobConcurrency?: number;
  registryConnections?: number;
  /** --certs-dir: replaces the default certs directories. */
  certsDir?: string;
  /** --registry-qps / --registry-quota-floor: one budget shared by every registry client. */
  rateLimit?: { qps?: number; floor?: number };
  log?: Logger;
  metrics?: Metrics;
  /** Debounce for bursts of file events (editors write several times). */
  debounceMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  /** Refuse mirrors in namespaces no ImageMirrorPolicy names. */
  requirePolicy?: boolean;
  /** Longest one reconcile may take (the reconciler's default when unset). */
  reconcileTimeoutMs?: number;
  /** --webhook-addr: serve registry push notifications here (with webhookTokenFile). Off when unset. */
  webhookAddr?: string;
  /** --webhook-token-file: the notifications' shared secret, re-read on every request. */
  webhookTokenFile?: string;
  /** Delay between a push notification and its reconcile (the loop's default when unset). */
  pushCoalesceMs?: number;
}

export interface RunHandle {
  readonly address: string | undefined;
  /** Where push notifications are received (with webhookAddr). */
  readonly webhookAddress: string | undefined;
  readonly statusDir: string;
  /** Current status of every mirror, keyed `namespace/name` (`file#docIndex` for a document without a usable name). */
  statuses(): Record<string, MirrorState>;
  /** key is queued or being reconciled; when its next delayed run (resync, retry, push) is due (ms since the epoch). */
  pending(key: string): { queued: boolean; scheduledAt?: number };
  /** Re-read the files now (also done on every change). */
  reload(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

export interface MirrorState {
  source: string;
  status: ImageMirrorStatus;
  /** Set when the document itself is invalid. */
  error?: string;
}

interface Entry {
  mirror?: ImageMirror;
  source: string;
  specHash: string;
  generation: number;
  status: ImageMirrorStatus;
  error?: string;
}

export function defaultStatusDir(specsDir: string): string {
  return join(dirname(resolve(specsDir)), '.image-mirror', 'status');
}

export async function startRun(o: RunOptions): Promise<RunHandle> {
  // A mistyped address is a usage error (exit 2) before anything starts.
  if (o.metricsAddr !== undefined) parseListenAddr(o.metricsAddr);
  if (o.webhookAddr !== undefined) parseListenAddr(o.webhookAddr);
  const log = o.log ?? silentLogger;
  const metrics = o.metrics ?? new Metrics({ defaultMetrics: true });
  const statusDir = resolve(o.statusDir ?? defaultStatusDir(o.specsDir));
  const fromSpecs = relative(resolve(o.specsDir), statusDir);
  if (!fromSpecs.startsWith('..') && !isAbsolute(fromSpecs)) {
    throw new Error(`--status-dir ${statusDir} is inside --specs ${o.specsDir}: status writes would retrigger the watch`);
  }
  await mkdir(statusDir, { recursive: true });
  const reconciler = createReconciler({
    metrics,
    log,
    blobConcurrency: o.blobConcurrency,
    client: { connections: o.registryConnections, ...(o.rateLimit ? { rateLimit: o.rateLimit } : {}) },
    reconcileTimeoutMs: o.reconcileTimeoutMs,
    ...(o.certsDir ? { certsDirs: [o.certsDir] } : {}),
    // The operator's own host: an `az login` (or GitHub's azure/login) counts as an Azure identity.
    cloud: { hostTools: true },
  });
  const entries = new Map<string, Entry>();
  let secrets: SecretDoc[] = [];
  let secretsHash = '';
  let policies: ImageMirrorPolicy[] = [];
  let dockerConfig: DockerConfig | undefined;
  let loadedOnce = false;

  const writeStatus = async (key: string, state: MirrorState): Promise<void> => {
    const file = statusFilePath(statusDir, key);
    await writeFile(`${file}.tmp`, JSON.stringify({ key, ...state }, null, 2) + '\n');
    await rename(`${file}.tmp`, file);
  };

  const credentialsFor = () => fileCredentials(secrets, dockerConfig, { fallbackForMissingSecrets: o.credentialsFallback === true });

  const loop = createWorkLoop({
    reconciler,
    metrics,
    log,
    concurrency: o.concurrency,
    backoff: o.backoff,
    syncedLogLevel: 'info',
    pushCoalesceMs: o.pushCoalesceMs,
    onSynced: (key, at, startedAt) => receiver?.observeSynced(key, at, startedAt),
    store: {
      get: (key) => {
        const entry = entries.get(key);
        // The entry's status is the one to build on: the spec's object is shared by versions.
        return entry?.mirror ? { ...entry.mirror, status: entry.status } : undefined;
      },
      list: () => [...entries.values()].flatMap((e) => (e.mirror ? [e.mirror] : [])),
      statuses: () => [...entries.values()].map((e) => e.status),
      // Every document, invalid ones included, gets its per-mirror series under its own key.
      keyedStatuses: () => [...entries].map(([k, e]) => [k, e.status] as const),
      context: (_m, signal) => ({ credentials: credentialsFor(), secretValue: fileSecretValue(secrets), signal, policies, requirePolicy: o.requirePolicy, localPaths: true }),
      settle: async (key) => {
        const entry = entries.get(key);
        if (!entry || entry.mirror) return false;
        const now = new Date();
        const message = entry.error ?? 'invalid ImageMirror';
        let conditions = setCondition(entry.status.conditions, { type: ConditionType.Ready, status: 'False', reason: Reason.InvalidSpec, message }, now);
        conditions = setCondition(conditions, { type: ConditionType.Stalled, status: 'True', reason: Reason.InvalidSpec, message }, now);
        entry.status = { ...entry.status, conditions };
        await writeStatus(key, { source: entry.source, status: entry.status, error: entry.error });
        return true;
      },
      writeStatus: async (m, r) => {
        const key = mirrorKey(m);
        const entry = entries.get(key);
        // The file changed while we worked (the new version is queued), or the mirror was removed.
        if (!entry) return 'gone';
        if (entry.generation !== m.metadata.generation || entry.mirror?.spec !== m.spec) return 'superseded';
        entry.status = r.status;
        await writeStatus(key, { source: entry.source, status: entry.status });
        return 'written';
      },
    },
  });
  const updateReadyGauge = (): void => loop.refreshReadyGauge();

  const reload = async (): Promise<void> => {
    try {
      dockerConfig = await loadDockerConfigFile(o.dockerConfig ?? defaultDockerConfigPath());
    } catch (e) {
      log.warn('docker config unreadable', { error: describeError(e) });
    }
    const loaded = await loadSpecFiles([o.specsDir]);
    const judged = judgeSpecs(loaded);
    for (const err of [...loaded.errors, ...judged.errors]) log.error('spec file error', { source: err.source, error: err.message });
    // Credentials and policies apply to every mirror: when they change, every mirror is re-run.
    const nextSecretsHash = hash([loaded.secrets, judged.policies]);
    const secretsChanged = loadedOnce && nextSecretsHash !== secretsHash;
    secrets = loaded.secrets;
    policies = judged.policies;
    secretsHash = nextSecretsHash;
    const present = new Set(judged.mirrors.map((m) => m.key));
    const removed = [...entries.keys()].filter((key) => !present.has(key));
    // Removals first, in one go: a mirror added in the same change may want a tag a removed one held.
    for (const key of removed) {
      entries.delete(key);
      loop.drop(key);
      // Its target tags are free for another mirror to claim.
      reconciler.forget(key);
    }
    for (const m of judged.mirrors) {
      const key = m.key;
      // A mirror that may not run writes nowhere, so it holds no tag either (as a Forbidden one).
      if (!m.mirror) reconciler.forget(key);
      const specHash = hash(m.mirror ? m.mirror.spec : { error: m.error });
      const prev = entries.get(key);
      // A changed requested-at annotation asks for a reconcile now, as in the controller.
      const requested = prev !== undefined && m.mirror !== undefined && prev.mirror !== undefined && requestedAt(prev.mirror) !== requestedAt(m.mirror);
      if (prev && prev.specHash === specHash && !secretsChanged && !requested) {
        prev.source = m.source; // lines above it changed: nothing to redo
        continue;
      }
      const generation = (prev?.generation ?? 0) + (prev?.specHash === specHash ? 0 : 1);
      // A mirror first seen by this process starts from the status an earlier run left (prune's
      // record of the tags it wrote, and its target-tag claims, survive a restart).
      const stored = prev || !m.mirror ? undefined : await readStatusFile(statusDir, key).catch((e: unknown) => void log.warn('status file unreadable', { mirror: key, error: describeError(e) }));
      if (stored && m.mirror) reconciler.seedClaims({ ...m.mirror, status: stored });
      const entry: Entry = {
        mirror: m.mirror ? { ...m.mirror, metadata: { ...m.mirror.metadata, generation } } : undefined,
        source: m.source,
        specHash,
        generation,
        status: prev?.status ?? stored ?? {},
        error: m.error,
      };
      entries.set(key, entry);
      if (m.error !== undefined) log.error('invalid ImageMirror', { source: m.source, error: m.error });
      loop.drop(key);
      loop.add(key);
    }
    for (const key of removed) {
      await rm(statusFilePath(statusDir, key), { force: true });
      log.info('mirror removed', { mirror: key });
    }
    loadedOnce = true;
    updateReadyGauge();
  };

  loop.start();

  await reload();

  let timer: NodeJS.Timeout | undefined;
  let reloading = Promise.resolve();
  const watcher: FSWatcher = watch(o.specsDir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(reload).catch((e) => log.error('reload failed', { error: describeError(e) }));
    }, o.debounceMs ?? 200);
  });

  let stopping = false;
  let receiver: PushReceiverHandle | undefined;
  let server: ServerHandle | undefined;
  const closeAll = async (graceMs: number): Promise<void> => {
    stopping = true;
    watcher.close();
    clearTimeout(timer);
    await receiver?.close();
    await loop.stop(graceMs);
    await server?.close();
    await closeWithin(() => reconciler.close());
  };
  try {
    if (o.webhookAddr !== undefined) {
      if (!o.webhookTokenFile) throw new Error('--webhook-addr needs --webhook-token-file (the shared secret senders must present)');
      receiver = await startPushReceiver({
        addr: o.webhookAddr,
        tokenFile: o.webhookTokenFile,
        metrics,
        mirrors: () => loop.store.list(),
        pushed: (key, why) => loop.pushed(key, why),
        accepting: () => !stopping,
        log,
      });
    }
    if (o.metricsAddr !== undefined) server = await startMetricsServer();
  } catch (e) {
    await closeAll(0);
    throw e;
  }

  async function startMetricsServer(): Promise<ServerHandle> {
    return startServer({
      addr: o.metricsAddr!,
      metrics,
      ready: () => loadedOnce,
      routes: {
        '/status': () => ({ status: 200, contentType: 'application/json', body: JSON.stringify(snapshot(), null, 2) }),
      },
      postRoutes: {
        // "Reconcile now", as the requested-at annotation does in the controller.
        '/sync/': (rest) => {
          const key = syncKey(rest);
          if (key === undefined || !entries.has(key)) return { status: 404, body: JSON.stringify({ error: 'no such mirror' }) + '\n' };
          loop.enqueue(key, 'POST /sync');
          return { status: 202, body: JSON.stringify({ queued: key }) + '\n' };
        },
      },
    });
  }

  const snapshot = (): Record<string, MirrorState> =>
    Object.fromEntries([...entries].map(([k, e]) => [k, { source: e.source, status: e.status, ...(e.error ? { error: e.error } : {}) }]));

  return {
    address: server?.address,
    webhookAddress: receiver?.address,
    statusDir,
    statuses: snapshot,
    pending: (key) => loop.pending(key),
    reload: async () => {
      await reloading;
      await reload();
    },
    stop: (graceMs = 30_000) => closeAll(graceMs),
  };
}

/** `NS/NAME` (URL-encoded) → `ns/name`; undefined for anything else. */
function syncKey(rest: string): string | undefined {
  const parts = rest.split('/');
  if (parts.length !== 2) return undefined;
  try {
    const [ns, name] = parts.map((p) => decodeURIComponent(p));
    return ns && name && !ns.includes('/') && !name.includes('/') ? `${ns}/${name}` : undefined;
  } catch {
    return undefined;
  }
}

function hash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v) ?? '').digest('hex');
}

