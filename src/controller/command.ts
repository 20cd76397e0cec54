/**
 * `image-mirror controller`: CLI flags → KubeConfig, reconciler, controller and HTTP server.
 * The blob-location cache is fed from every ImageMirror's status, so a mirror can mount from another
 * mirror's target repository, across restarts and replicas.
 */
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { createReconciler } from '../mirror/reconcile.js';
import { parseDuration } from '../mirror/duration.js';
import { startServer, type ServerHandle } from '../server.js';
import { runController, type ControllerHandle } from './controller.js';
import { listObjects } from './kube-http.js';
import { errorLine } from './reflector.js';
import { GROUP, PLURAL, VERSION } from '../mirror/types.js';

export interface ControllerCommandOptions {
  kubeconfig?: string;
  namespace: string[];
  selector?: string;
  concurrency: number;
  leaderElect?: boolean;
  leaderElectNamespace?: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  metricsAddr: string;
  shutdownGrace: string;
  blobConcurrency?: number;
  registryConnections?: number;
  /** --require-policy: deny mirrors in namespaces no ImageMirrorPolicy names. */
  requirePolicy?: boolean;
  /** --reconcile-timeout: Go-style duration; default DEFAULT_RECONCILE_TIMEOUT_MS (30m). */
  reconcileTimeout?: string;
  log: Logger;
  /** For tests: the KubeConfig to use instead of loading one. */
  kubeConfigObject?: KubeConfig;
  env?: NodeJS.ProcessEnv;
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export async function startControllerCommand(o: ControllerCommandOptions): Promise<{ stop(): Promise<void>; controller: ControllerHandle; server: ServerHandle }> {
  const env = o.env ?? process.env;
  // A bad duration is a usage error: say so before touching the network.
  const reconcileTimeoutMs = o.reconcileTimeout === undefined ? undefined : flagDuration('--reconcile-timeout', o.reconcileTimeout);
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST) && !o.kubeconfig;
  const kc = o.kubeConfigObject ?? new KubeConfig();
  if (!o.kubeConfigObject) {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault();
    allowPlainHttp(kc);
  }
  // Fail fast, in one line, when the API server is unreachable or refuses us: the reflectors would
  // otherwise retry forever behind a process that looks started.
  await probeApiServer(kc, o.namespace[0]);
  const metrics = new Metrics({ defaultMetrics: true });
  const reconciler = createReconciler({
    metrics,
    log: o.log,
    blobConcurrency: o.blobConcurrency,
    client: { connections: o.registryConnections },
    reconcileTimeoutMs,
  });
  let handle: ControllerHandle | undefined;
  const server = await startServer({
    addr: o.metricsAddr,
    metrics,
    ready: () => handle?.ready() ?? false,
    healthy: () => handle?.healthy() ?? true,
  });
  try {
    handle = await runController({
      kubeconfig: kc,
      namespaces: o.namespace,
      selector: o.selector,
      concurrency: o.concurrency,
      leaderElect: o.leaderElect ?? inCluster,
      leaseNamespace: o.leaderElectNamespace ?? env.POD_NAMESPACE ?? serviceAccountNamespace() ?? 'default',
      leaseDurationMs: parseDuration(o.leaseDuration),
      renewDeadlineMs: parseDuration(o.renewDeadline),
      retryPeriodMs: parseDuration(o.retryPeriod),
      shutdownGraceMs: parseDuration(o.shutdownGrace),
      reconciler,
      metrics,
      requirePolicy: o.requirePolicy,
      onImageLocation: (registry, repository, digest) => reconciler.locations.recordImage(registry, repository, digest),
      log: o.log,
    });
  } catch (e) {
    await server.close();
    await reconciler.close();
    throw e;
  }
  o.log.info('controller started', { identity: handle.identity, metrics: server.address });
  const controller = handle;
  return {
    controller,
    server,
    stop: async () => {
      await controller.stop();
      await server.close();
      await reconciler.close();
    },
  };
}

/**
 * client-node refuses an http:// cluster unless skipTLSVerify is set, while kubectl accepts it (e.g.
 * `kubectl proxy`'s http://127.0.0.1:8001); there is no TLS to verify on plain HTTP, so allow it.
 */
function allowPlainHttp(kc: KubeConfig): void {
  if (!kc.clusters.some((c) => c.server.startsWith('http://') && !c.skipTLSVerify)) return;
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
}

/** One list of ImageMirrors (limit 1): the server answers, accepts our credentials, and serves the CRD. */
async function probeApiServer(kc: KubeConfig, namespace: string | undefined): Promise<void> {
  const server = kc.getCurrentCluster()?.server ?? '(no cluster in kubeconfig)';
  const path = namespace
    ? `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}`
    : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  try {
    await listObjects(kc, path, { limit: 1 }, AbortSignal.timeout(15_000));
  } catch (e) {
    throw new Error(`Kubernetes API server ${server}: ${errorLine(e)}`);
  }
}

function flagDuration(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (e) {
    throw new Error(`${flag}: ${errorLine(e)}`);
  }
}

function serviceAccountNamespace(): string | undefined {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
