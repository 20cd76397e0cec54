/**
 * `image-mirror sync -f FILE|DIR`: reconcile every mirror in the files once, print one line per
 * target tag as each mirror finishes (or one JSON document at the end), exit 0 when all are in sync,
 * 1 when any failed, 2 on bad usage. A bad mirror is named with its reason; the others still run.
 */
import { access, mkdir, writeFile, rename } from 'node:fs/promises';
import { Metrics } from '../metrics.js';
import { createReconciler } from '../mirror/reconcile.js';
import type { TargetReport } from '../mirror/reconciler.js';
import { TargetAction } from '../copy/actions.js';
import { loadDockerConfigFile, defaultDockerConfigPath, type DockerConfig } from '../oci/docker-config.js';
import { describeError } from '../oci/errors.js';
import { formatRepository, parseRepository } from '../oci/reference.js';
import { mirrorKey, pruneEnabled, type ImageMirror, type ImageMirrorStatus } from '../mirror/types.js';
import { formatBytes } from '../format.js';
import { UsageError } from '../usage-error.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { loadSpecFiles, STDIN_NAME, STDIN_PATH } from './spec-files.js';
import { fileCredentials, fileSecretValue } from './file-credentials.js';
import { judgeSpecs, type MirrorEntry } from './judge-specs.js';
import { closeWithin } from './bounded-close.js';
import { readStatusFile, writeStatusFile } from './status-files.js';

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
  /**
   * --status-dir: each mirror's status is read from and written to a file here (the same files as
   * `run`), so what one invocation wrote is known to the next: prune needs that record. A dry run
   * reads them and writes none.
   */
  statusDir?: string;
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
  /** Where the mirror's document starts (`<stdin>` for standard input). */
  file: string;
  line?: number;
  ready: boolean;
  reason: string;
  message: string;
  /** In a dry run, `action` is one of DRY_RUN_ACTIONS' values. */
  targets: TargetResult[];
}

export type TargetResult = Omit<TargetReport, 'action'> & {
  action: ReportedAction;
  /** The source image this target tag is written from (undefined only if the reconciler named none). */
  source?: { reference: string; digest: string };
};

/** A spec problem that is not one mirror's: YAML syntax, unreadable files, Secrets, policies, documents without a usable name. */
export interface SpecError {
  file: string;
  /** Absent for errors about a whole file (unreadable, too large). */
  line?: number;
  message: string;
}

/** `-o json`'s document type (docs/sync-output.schema.json); a breaking change gets a new version. */
export const SYNC_OUTPUT_API_VERSION = 'cli.imagemirror.dev/v1';
export const SYNC_OUTPUT_KIND = 'SyncResult';

/** `file:line` → its parts; a bare path (an I/O error) has no line. */
export function splitSource(source: string): { file: string; line?: number } {
  const m = /^(.*):(\d+)$/.exec(source);
  return m ? { file: m[1]!, line: Number(m[2]) } : { file: source };
}

/**
 * The source image of one target row. A multi-image source (several tags, a pattern, a range)
 * cannot rename tags, so the target's tag is the source tag; a single-image source has one image.
 */
function sourceOf(mirror: ImageMirror, sourceDigests: Record<string, string> | undefined, reference: string): TargetResult['source'] {
  const images = Object.entries(sourceDigests ?? {});
  const tag = /:([^:/@]+)$/.exec(reference)?.[1];
  const found = images.length === 1 ? images[0] : images.find(([name]) => name === tag);
  if (!found) return undefined;
  const [name, digest] = found;
  let repo: string;
  try {
    repo = formatRepository(parseRepository(mirror.spec.source.repository));
  } catch {
    repo = mirror.spec.source.repository;
  }
  return { reference: name.startsWith('sha256:') || name.includes(':') ? `${repo}@${name}` : `${repo}:${name}`, digest };
}

export { UsageError } from '../usage-error.js';

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
  [TargetAction.Pruned]: 'WouldPrune',
  [TargetAction.NotPruned]: TargetAction.NotPruned,
} as const satisfies Record<TargetAction, string>;
export type ReportedAction = TargetAction | (typeof DRY_RUN_ACTIONS)[TargetAction];

/** The mirror reason a dry run reports instead of Synced: nothing was synced. */
export const DRY_RUN_SYNCED_REASON = 'WouldSync';

/** First line of a dry run's text output, so a log read later cannot be mistaken for a real run. */
export const DRY_RUN_HEADER = 'DRY RUN: nothing was written; ACTION is what sync would do';

export async function runSync(o: SyncOptions): Promise<{ exitCode: number; mirrors: MirrorResult[]; errors: SpecError[] }> {
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
  if (o.statusDir === undefined) refusePruneWithoutStatusDir(judged.mirrors);

  const out = resultWriter(o, judged.mirrors);
  const results: MirrorResult[] = [];
  // A document without a usable name is no mirror: its problem is a spec error like a syntax error.
  const unnamed = judged.mirrors.filter((e) => !e.mirror && !isMirrorKey(e.key));
  const runnable = judged.mirrors.filter((e) => e.mirror || isMirrorKey(e.key));
  const errors: SpecError[] = [
    ...fileErrors.map((e) => ({ ...splitSource(e.source), message: e.message })),
    ...unnamed.map((e) => ({ ...splitSource(e.source), message: `ImageMirror without a usable name: ${e.error ?? 'invalid'}` })),
  ];
  for (const e of errors) out.specError(e);

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
  const secretValue = fileSecretValue(loaded.secrets);
  // What earlier invocations recorded, read before anything runs so every mirror's target-tag
  // claims are known up front (as `run` and the controller seed them from stored statuses).
  const stored = new Map<string, ImageMirrorStatus>();
  if (o.statusDir !== undefined) {
    try {
      if (!o.dryRun) await mkdir(o.statusDir, { recursive: true });
      for (const e of runnable) {
        if (!e.mirror) continue;
        const status = await readStatusFile(o.statusDir, mirrorKey(e.mirror));
        if (status === undefined) continue;
        stored.set(mirrorKey(e.mirror), status);
        reconciler.seedClaims({ ...e.mirror, status });
      }
    } catch (e) {
      await closeWithin(() => reconciler.close());
      throw e;
    }
  }
  let next = 0;
  const byIndex = new Map<number, MirrorResult>();
  const worker = async () => {
    for (let index = next++; index < runnable.length; index = next++) {
      const entry = runnable[index]!;
      const result = await syncOne(entry);
      byIndex.set(index, result);
      out.finished(result);
    }
  };
  const syncOne = async (entry: MirrorEntry): Promise<MirrorResult> => {
    const mirror = entry.mirror;
    const at = splitSource(entry.source);
    if (!mirror) {
      const [namespace, name] = entry.key.split('/', 2) as [string, string];
      return { name, namespace, ...at, ready: false, reason: 'InvalidSpec', message: `${entry.source}: ${entry.error ?? 'invalid'}`, targets: [] };
    }
    const label = `${mirror.metadata.namespace ?? 'default'}/${mirror.metadata.name}`;
    const status = stored.get(mirrorKey(mirror));
    const r = await reconciler.reconcile(status ? { ...mirror, status } : mirror, {
      credentials,
      secretValue,
      dryRun: o.dryRun,
      policies: judged.policies,
      requirePolicy: o.requirePolicy,
      localPaths: true,
      onProgress: out.progress ? (b) => out.progress?.(label, b) : undefined,
    });
    out.progress?.(label, undefined);
    if (o.statusDir !== undefined && !o.dryRun) await writeStatusFile(o.statusDir, { key: mirrorKey(mirror), source: entry.source, status: r.status });
    return {
      name: mirror.metadata.name,
      namespace: mirror.metadata.namespace ?? 'default',
      ...at,
      ready: r.outcome === 'synced',
      reason: o.dryRun && r.outcome === 'synced' ? DRY_RUN_SYNCED_REASON : r.reason,
      message: r.message,
      targets: r.targets.map((t) => ({
        ...t,
        action: o.dryRun ? DRY_RUN_ACTIONS[t.action] : t.action,
        // A pruned tag left the selection: no source image writes it.
        source: t.action === TargetAction.Pruned || t.action === TargetAction.NotPruned ? undefined : sourceOf(mirror, r.status.sourceDigests, t.reference),
      })),
    };
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 2) }, worker));
  } finally {
    await closeWithin(() => reconciler.close());
  }
  for (let i = 0; i < runnable.length; i++) results.push(byIndex.get(i)!);

  if (o.output === 'json') {
    const doc = { apiVersion: SYNC_OUTPUT_API_VERSION, kind: SYNC_OUTPUT_KIND, dryRun: o.dryRun === true, errors, mirrors: results.map(jsonMirror) };
    o.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  }
  if (o.metricsFile) {
    const tmp = `${o.metricsFile}.tmp`;
    await writeFile(tmp, await metrics.exposition());
    await rename(tmp, o.metricsFile);
  }
  return { exitCode: errors.length === 0 && results.every((r) => r.ready) ? 0 : 1, mirrors: results, errors };
}

/**
 * Without --status-dir, sync forgets what it wrote the moment it exits, and prune deletes only
 * tags a mirror wrote: a mirror asking for prune is refused before anything runs.
 */
function refusePruneWithoutStatusDir(mirrors: readonly MirrorEntry[]): void {
  const pruning = mirrors.filter((e) => e.mirror?.spec?.targets?.some((t) => t && pruneEnabled(t)));
  if (pruning.length === 0) return;
  const first = pruning[0]!;
  const i = first.mirror!.spec.targets.findIndex((t) => t && pruneEnabled(t));
  const more = pruning.length > 1 ? ` (and ${pruning.length - 1} more mirror${pruning.length > 2 ? 's' : ''})` : '';
  throw new UsageError(
    `${first.key} (${first.source}): targets[${i}].prune needs --status-dir DIR, where sync keeps the record of the tags it wrote (prune deletes only those)${more}`,
  );
}

function isMirrorKey(key: string): boolean {
  return /^[^/#]+\/[^/]+$/.test(key);
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
  specError(e: SpecError): void;
  progress?: (mirror: string, bytes: number | undefined) => void;
} {
  const tty = (o.stderr as { isTTY?: boolean }).isTTY === true;
  const progress = tty ? progressPrinter(o.stderr) : undefined;
  const table = o.output === 'json' ? undefined : streamingTable(o.stdout, mirrors, o.dryRun === true);
  if (table && o.dryRun) o.stdout.write(`${DRY_RUN_HEADER}\n`);
  return {
    progress,
    specError(e) {
      o.stderr.write(`${e.file}${e.line === undefined ? '' : `:${e.line}`}: ${e.message}\n`);
    },
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
    file: m.file,
    ...(m.line === undefined ? {} : { line: m.line }),
    ready: m.ready,
    reason: m.reason,
    message: m.message,
    targets: m.targets.map((t) => ({
      reference: t.reference,
      digest: t.digest,
      ...(t.source ? { source: t.source } : {}),
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

/** The CLI's byte cells; the same formatting as the controller's events. */
export const humanBytes = formatBytes;


async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
