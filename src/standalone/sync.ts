/**
 * `image-mirror sync -f FILE|DIR`: reconcile every mirror in the files once, print one line per
 * target tag as each mirror finishes (or one JSON document at the end), exit 0 when all are in sync,
 * 1 when any failed, 2 on bad usage. A bad mirror is named with its reason; the others still run.
 */
import { access, writeFile, rename } from 'node:fs/promises';
import { Metrics } from '../metrics.js';
import { createReconciler } from '../mirror/reconcile.js';
import type { TargetReport } from '../mirror/reconciler.js';
import { TargetAction } from '../copy/actions.js';
import { loadDockerConfigFile, defaultDockerConfigPath, type DockerConfig } from '../oci/docker-config.js';
import { describeError } from '../oci/errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { loadSpecFiles, STDIN_NAME, STDIN_PATH } from './spec-files.js';
import { fileCredentials } from './file-credentials.js';
import { judgeSpecs, type MirrorEntry } from './judge-specs.js';
import { closeWithin } from './bounded-close.js';

export interface SyncOptions {
  files: string[];
  dryRun?: boolean;
  output?: 'text' | 'json';
  dockerConfig?: string;
  metricsFile?: string;
  concurrency?: number;
  blobConcurrency?: number;
  registryConnections?: number;
  /** --certs-dir: replaces the default certs directories. */
  certsDir?: string;
  /** --credentials-fallback: a named Secret missing from the files means --docker-config. */
  credentialsFallback?: boolean;
  /** --registry-qps / --registry-quota-floor: one budget shared by every registry client. */
  rateLimit?: { qps?: number; floor?: number };
  /** Refuse mirrors in namespaces no ImageMirrorPolicy names. */
  requirePolicy?: boolean;
  /** Longest one reconcile may take (the reconciler's default when unset). */
  reconcileTimeoutMs?: number;
  /** Read for `-f -` (default: process.stdin). */
  stdin?: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  log?: Logger;
  metrics?: Metrics;
}

export interface MirrorResult {
  name: string;
  namespace: string;
  ready: boolean;
  reason: string;
  message: string;
  /** In a dry run, `action` is one of DRY_RUN_ACTIONS' values. */
  targets: Array<Omit<TargetReport, 'action'> & { action: ReportedAction }>;
}

export class UsageError extends Error {}

/**
 * What a dry run reports in place of each action: it wrote nothing, so nothing was copied or
 * retagged, and a conflict is one the real run would meet. Failed stays Failed (the read failed).
 */
export const DRY_RUN_ACTIONS = {
  [TargetAction.Copied]: 'WouldCopy',
  [TargetAction.Retagged]: 'WouldRetag',
  [TargetAction.UpToDate]: TargetAction.UpToDate,
  [TargetAction.Conflict]: 'WouldConflict',
  [TargetAction.Failed]: TargetAction.Failed,
} as const satisfies Record<TargetAction, string>;
export type ReportedAction = TargetAction | (typeof DRY_RUN_ACTIONS)[TargetAction];

/** The mirror reason a dry run reports instead of Synced: nothing was synced. */
export const DRY_RUN_SYNCED_REASON = 'WouldSync';

/** First line of a dry run's text output, so a log read later cannot be mistaken for a real run. */
export const DRY_RUN_HEADER = 'DRY RUN: nothing was written; ACTION is what sync would do';

export async function runSync(o: SyncOptions): Promise<{ exitCode: number; mirrors: MirrorResult[] }> {
  if (o.files.length === 0) throw new UsageError('no spec files given (use -f FILE|DIR)');
  for (const f of o.files) {
    if (f !== STDIN_PATH && !(await exists(f))) throw new UsageError(`${f}: no such file or directory`);
  }
  const metrics = o.metrics ?? new Metrics();
  const loaded = await loadSpecFiles(o.files, { stdin: o.stdin });
  const judged = judgeSpecs(loaded);
  let dockerConfig: DockerConfig | undefined;
  try {
    dockerConfig = await loadDockerConfigFile(o.dockerConfig ?? defaultDockerConfigPath());
  } catch (e) {
    o.stderr.write(`warning: ${describeError(e)}\n`);
  }
  const fileErrors = [...loaded.errors, ...judged.errors];
  if (judged.mirrors.length === 0 && fileErrors.length === 0) {
    throw new UsageError(`no ImageMirror documents found in ${o.files.map((f) => (f === STDIN_PATH ? STDIN_NAME : f)).join(', ')}`);
  }

  const out = resultWriter(o, judged.mirrors);
  const results: MirrorResult[] = [];
  for (const err of fileErrors) {
    const r: MirrorResult = { name: err.source, namespace: '', ready: false, reason: 'InvalidSpec', message: err.message, targets: [] };
    results.push(r);
    out.finished(r);
  }

  const reconciler = createReconciler({
    metrics,
    log: o.log ?? silentLogger,
    blobConcurrency: o.blobConcurrency,
    client: { connections: o.registryConnections, ...(o.rateLimit ? { rateLimit: o.rateLimit } : {}) },
    reconcileTimeoutMs: o.reconcileTimeoutMs,
    ...(o.certsDir ? { certsDirs: [o.certsDir] } : {}),
    // The operator's own host: an `az login` (or GitHub's azure/login) counts as an Azure identity.
    cloud: { hostTools: true },
  });
  const credentials = fileCredentials(loaded.secrets, dockerConfig, { fallbackForMissingSecrets: o.credentialsFallback === true });
  let next = 0;
  const byIndex = new Map<number, MirrorResult>();
  const worker = async () => {
    for (let index = next++; index < judged.mirrors.length; index = next++) {
      const entry = judged.mirrors[index]!;
      const result = await syncOne(entry);
      byIndex.set(index, result);
      out.finished(result);
    }
  };
  const syncOne = async (entry: MirrorEntry): Promise<MirrorResult> => {
    const mirror = entry.mirror;
    if (!mirror) {
      const [namespace, name] = /^[^/#]+\/[^/]+$/.test(entry.key) ? (entry.key.split('/', 2) as [string, string]) : ['', entry.source];
      return { name, namespace, ready: false, reason: 'InvalidSpec', message: `${entry.source}: ${entry.error ?? 'invalid'}`, targets: [] };
    }
    const label = `${mirror.metadata.namespace ?? 'default'}/${mirror.metadata.name}`;
    const r = await reconciler.reconcile(mirror, {
      credentials,
      dryRun: o.dryRun,
      policies: judged.policies,
      requirePolicy: o.requirePolicy,
      onProgress: out.progress ? (b) => out.progress?.(label, b) : undefined,
    });
    out.progress?.(label, undefined);
    return {
      name: mirror.metadata.name,
      namespace: mirror.metadata.namespace ?? 'default',
      ready: r.outcome === 'synced',
      reason: o.dryRun && r.outcome === 'synced' ? DRY_RUN_SYNCED_REASON : r.reason,
      message: r.message,
      targets: o.dryRun ? r.targets.map((t) => ({ ...t, action: DRY_RUN_ACTIONS[t.action] })) : r.targets,
    };
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 2) }, worker));
  } finally {
    await closeWithin(() => reconciler.close());
  }
  for (let i = 0; i < judged.mirrors.length; i++) results.push(byIndex.get(i)!);

  if (o.output === 'json') o.stdout.write(JSON.stringify({ ...(o.dryRun ? { dryRun: true } : {}), mirrors: results.map(jsonMirror) }, null, 2) + '\n');
  if (o.metricsFile) {
    const tmp = `${o.metricsFile}.tmp`;
    await writeFile(tmp, await metrics.exposition());
    await rename(tmp, o.metricsFile);
  }
  return { exitCode: results.every((r) => r.ready) ? 0 : 1, mirrors: results };
}

function label(m: MirrorResult): string {
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}

/**
 * Prints each mirror's outcome the moment it finishes, so a long run shows progress in CI logs:
 * text mode writes the mirror's table rows to stdout; JSON mode keeps stdout for the one document
 * written at the end and puts a line per mirror on stderr. A failure is one line on stderr in both.
 */
function resultWriter(o: SyncOptions, mirrors: MirrorEntry[]): {
  finished(r: MirrorResult): void;
  progress?: (mirror: string, bytes: number | undefined) => void;
} {
  const tty = (o.stderr as { isTTY?: boolean }).isTTY === true;
  const progress = tty ? progressPrinter(o.stderr) : undefined;
  const table = o.output === 'json' ? undefined : streamingTable(o.stdout, mirrors, o.dryRun === true);
  if (table && o.dryRun) o.stdout.write(`${DRY_RUN_HEADER}\n`);
  return {
    progress,
    finished(r) {
      if (tty) o.stderr.write('\r\x1b[K'); // a progress line must not run into what follows
      table?.rows(r);
      if (!r.ready || o.output === 'json') o.stderr.write(`${label(r)}: ${r.reason}: ${r.message}\n`);
    },
  };
}

/** Tag length assumed for column widths when the spec does not list tags (patterns, semver). */
const ASSUMED_TAG_LENGTH = 16;
const HEADER = ['MIRROR', 'TARGET', 'ACTION', 'DIGEST', 'COPIED', 'SAVED'];

/**
 * One table written a mirror at a time. Widths are set up front from what the specs tell (names,
 * repositories, listed tags) and only grow afterwards, so rows stay aligned unless a tag is longer
 * than any the specs list.
 */
function streamingTable(stdout: NodeJS.WritableStream, mirrors: MirrorEntry[], dryRun: boolean): { rows(r: MirrorResult): void } {
  const widths = HEADER.map((h) => h.length);
  const grow = (i: number, n: number): void => {
    widths[i] = Math.max(widths[i]!, n);
  };
  for (const e of mirrors) {
    if (!e.mirror) continue; // no rows: its error goes to stderr
    grow(0, e.key.length);
    const spec = e.mirror.spec;
    for (const t of spec.targets) {
      const tags = t.tags ?? spec.source.tags ?? [];
      grow(1, t.repository.length + 1 + (tags.length ? Math.max(...tags.map((x) => x.length)) : ASSUMED_TAG_LENGTH));
    }
  }
  grow(2, Math.max(...Object.values(dryRun ? DRY_RUN_ACTIONS : TargetAction).map((a) => a.length)));
  grow(3, 'sha256:'.length + 64);
  grow(4, '1023 KiB'.length);
  let headerWritten = false;
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n';
  return {
    rows(m) {
      if (m.targets.length === 0) return;
      const rows = m.targets.map((t) => [label(m), t.reference, t.action, digestCell(t.digest), humanBytes(t.bytesCopied), humanBytes(t.bytesSaved)]);
      for (const r of rows) r.forEach((c, i) => grow(i, c.length));
      let text = headerWritten ? '' : line(HEADER);
      headerWritten = true;
      for (const r of rows) text += line(r);
      stdout.write(text);
    },
  };
}

/** On a terminal, one rewritten line per mirror with the bytes streamed so far; nothing otherwise. */
function progressPrinter(stderr: NodeJS.WritableStream): ((mirror: string, bytes: number | undefined) => void) | undefined {
  if (!(stderr as { isTTY?: boolean }).isTTY) return undefined;
  let last = 0;
  return (mirror, bytes) => {
    const now = Date.now();
    if (bytes === undefined) {
      stderr.write('\r\x1b[K');
      return;
    }
    if (now - last < 200) return;
    last = now;
    stderr.write(`\r\x1b[K${mirror}: ${humanBytes(bytes)} streamed`);
  };
}

function jsonMirror(m: MirrorResult) {
  return {
    name: m.name,
    namespace: m.namespace,
    ready: m.ready,
    reason: m.reason,
    message: m.message,
    targets: m.targets.map((t) => ({
      reference: t.reference,
      digest: t.digest,
      action: t.action,
      bytesCopied: t.bytesCopied,
      bytesSaved: t.bytesSaved,
      blobs: t.blobs,
      ...(t.message ? { message: t.message } : {}),
    })),
  };
}

function digestCell(d: string): string {
  return d || '-';
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}


async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
