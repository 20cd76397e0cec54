/**
 * `image-mirror run --specs DIR`: the controller's loop over YAML files instead of the Kubernetes
 * API. Files are re-read on change (fs.watch, debounced); a changed spec is re-queued at once, a
 * removed one forgotten. Status is kept as one JSON file per mirror under --status-dir (beside DIR,
 * never inside it, so our writes never retrigger the watch) and served at GET /status.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { WorkQueue } from '../queue/work-queue.js';
import { Metrics } from '../metrics.js';
import { createReconciler } from '../mirror/reconcile.js';
import { validateMirror } from '../mirror/validate.js';
import { ConditionType, Reason, mirrorKey, type ImageMirror, type ImageMirrorStatus } from '../mirror/types.js';
import { setCondition } from '../mirror/conditions.js';
import { loadDockerConfigFile, defaultDockerConfigPath, type DockerConfig } from '../oci/docker-config.js';
import { describeError } from '../oci/errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { startServer, type ServerHandle } from '../server.js';
import { loadSpecFiles, type SecretDoc } from './spec-files.js';
import { fileCredentials } from './file-credentials.js';

export interface RunOptions {
  specsDir: string;
  statusDir?: string;
  metricsAddr?: string;
  concurrency?: number;
  dockerConfig?: string;
  blobConcurrency?: number;
  registryConnections?: number;
  log?: Logger;
  metrics?: Metrics;
  /** Debounce for bursts of file events (editors write several times). */
  debounceMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
}

export interface RunHandle {
  readonly address: string | undefined;
  readonly statusDir: string;
  /** Current status of every mirror, keyed `namespace/name`. */
  statuses(): Record<string, MirrorState>;
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
  const log = o.log ?? silentLogger;
  const metrics = o.metrics ?? new Metrics({ defaultMetrics: true });
  const statusDir = resolve(o.statusDir ?? defaultStatusDir(o.specsDir));
  if (statusDir.startsWith(resolve(o.specsDir) + '/')) {
    throw new Error(`--status-dir ${statusDir} is inside --specs ${o.specsDir}: status writes would retrigger the watch`);
  }
  await mkdir(statusDir, { recursive: true });
  const reconciler = createReconciler({ metrics, log, blobConcurrency: o.blobConcurrency, client: { connections: o.registryConnections } });
  const entries = new Map<string, Entry>();
  let secrets: SecretDoc[] = [];
  let secretsHash = '';
  let dockerConfig: DockerConfig | undefined;
  let loadedOnce = false;
  const queue = new WorkQueue({ backoff: o.backoff, onDepth: (d) => metrics.workqueueDepth.set(d) });

  const writeStatus = async (key: string, state: MirrorState): Promise<void> => {
    const file = join(statusDir, `${key.replace('/', '_')}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify({ key, ...state }, null, 2) + '\n');
    await rename(`${file}.tmp`, file);
  };

  const updateReadyGauge = (): void => {
    const counts = { True: 0, False: 0, Unknown: 0 };
    for (const e of entries.values()) {
      const ready = e.status.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
      counts[ready]++;
    }
    for (const [ready, n] of Object.entries(counts)) metrics.mirrors.set({ ready }, n);
  };

  const reload = async (): Promise<void> => {
    try {
      dockerConfig = await loadDockerConfigFile(o.dockerConfig ?? defaultDockerConfigPath());
    } catch (e) {
      log.warn('docker config unreadable', { error: describeError(e) });
    }
    const loaded = await loadSpecFiles([o.specsDir]);
    for (const err of loaded.errors) log.error('spec file error', { source: err.source, error: err.message });
    const nextSecretsHash = hash(loaded.secrets);
    const secretsChanged = loadedOnce && nextSecretsHash !== secretsHash;
    secrets = loaded.secrets;
    secretsHash = nextSecretsHash;
    const seen = new Set<string>();
    for (const doc of loaded.mirrors) {
      const v = validateMirror(doc.doc);
      const key = v.ok ? mirrorKey(v.mirror) : v.name.includes('/') ? v.name : `invalid/${doc.source}`;
      seen.add(key);
      const specHash = hash(v.ok ? v.mirror.spec : doc.doc);
      const prev = entries.get(key);
      if (prev && prev.specHash === specHash && !secretsChanged) continue;
      const generation = (prev?.generation ?? 0) + (prev?.specHash === specHash ? 0 : 1);
      const entry: Entry = {
        mirror: v.ok ? { ...v.mirror, metadata: { ...v.mirror.metadata, generation } } : undefined,
        source: doc.source,
        specHash,
        generation,
        status: prev?.status ?? {},
        error: v.ok ? undefined : v.errors.join('; '),
      };
      entries.set(key, entry);
      if (!v.ok) log.error('invalid ImageMirror', { source: doc.source, error: entry.error });
      queue.forget(key);
      queue.cancelDelayed(key);
      queue.add(key);
    }
    for (const key of [...entries.keys()]) {
      if (seen.has(key)) continue;
      entries.delete(key);
      queue.forget(key);
      queue.cancelDelayed(key);
      await rm(join(statusDir, `${key.replace('/', '_')}.json`), { force: true });
      log.info('mirror removed', { mirror: key });
    }
    loadedOnce = true;
    updateReadyGauge();
  };

  const credentialsFor = () => fileCredentials(secrets, dockerConfig);

  queue.run(Math.max(1, o.concurrency ?? 4), async (key, signal) => {
    const entry = entries.get(key);
    if (!entry) return;
    if (!entry.mirror) {
      const now = new Date();
      const message = entry.error ?? 'invalid ImageMirror';
      let conditions = setCondition(entry.status.conditions, { type: ConditionType.Ready, status: 'False', reason: Reason.InvalidSpec, message }, now);
      conditions = setCondition(conditions, { type: ConditionType.Stalled, status: 'True', reason: Reason.InvalidSpec, message }, now);
      entry.status = { ...entry.status, conditions };
      await writeStatus(key, { source: entry.source, status: entry.status, error: entry.error });
      updateReadyGauge();
      return;
    }
    const mirror: ImageMirror = { ...entry.mirror, status: entry.status };
    const r = await reconciler.reconcile(mirror, { credentials: credentialsFor(), signal });
    if (entries.get(key) !== entry) return; // the file changed while we worked: the new entry is queued
    entry.status = r.status;
    metrics.reconciles.inc({ result: r.outcome === 'synced' || r.outcome === 'suspended' ? 'success' : 'error' });
    await writeStatus(key, { source: entry.source, status: entry.status });
    updateReadyGauge();
    log.info(r.outcome === 'synced' ? 'synced' : 'not synced', { mirror: key, reason: r.reason, message: r.message });
    switch (r.outcome) {
      case 'synced':
        queue.forget(key);
        queue.addAfter(key, jitter(r.requeueAfterMs ?? 600_000));
        break;
      case 'retry':
        queue.addRateLimited(key);
        break;
      default:
        queue.forget(key);
    }
  });

  await reload();

  let timer: NodeJS.Timeout | undefined;
  let reloading = Promise.resolve();
  const watcher: FSWatcher = watch(o.specsDir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(reload).catch((e) => log.error('reload failed', { error: describeError(e) }));
    }, o.debounceMs ?? 200);
  });

  let server: ServerHandle | undefined;
  if (o.metricsAddr !== undefined) {
    server = await startServer({
      addr: o.metricsAddr,
      metrics,
      ready: () => loadedOnce,
      routes: {
        '/status': () => ({ status: 200, contentType: 'application/json', body: JSON.stringify(snapshot(), null, 2) }),
      },
    });
  }

  const snapshot = (): Record<string, MirrorState> =>
    Object.fromEntries([...entries].map(([k, e]) => [k, { source: e.source, status: e.status, ...(e.error ? { error: e.error } : {}) }]));

  return {
    address: server?.address,
    statusDir,
    statuses: snapshot,
    reload: async () => {
      await reloading;
      await reload();
    },
    stop: async (graceMs = 30_000) => {
      watcher.close();
      clearTimeout(timer);
      await queue.shutdown({ graceMs });
      await server?.close();
      await reconciler.close();
    },
  };
}

function hash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v) ?? '').digest('hex');
}

/** ±10 %, so mirrors created together do not resync in lockstep. */
function jitter(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}
