/**
 * `image-mirror sync -f FILE|DIR`: reconcile every mirror in the files once, print one line per
 * target tag (or one JSON document), exit 0 when all are in sync, 1 when any failed, 2 on bad usage.
 * A bad mirror is named with its reason; the others still run.
 */
import { access, writeFile, rename } from 'node:fs/promises';
import { Metrics } from '../metrics.js';
import { createReconciler } from '../mirror/reconcile.js';
import { validateMirror } from '../mirror/validate.js';
import type { ReconcileResult, TargetReport } from '../mirror/reconciler.js';
import type { ImageMirror } from '../mirror/types.js';
import { loadDockerConfigFile, defaultDockerConfigPath, type DockerConfig } from '../oci/docker-config.js';
import { describeError } from '../oci/errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { loadSpecFiles } from './spec-files.js';
import { fileCredentials } from './file-credentials.js';

export interface SyncOptions {
  files: string[];
  dryRun?: boolean;
  output?: 'text' | 'json';
  dockerConfig?: string;
  metricsFile?: string;
  concurrency?: number;
  blobConcurrency?: number;
  registryConnections?: number;
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
  targets: TargetReport[];
}

export class UsageError extends Error {}

export async function runSync(o: SyncOptions): Promise<{ exitCode: number; mirrors: MirrorResult[] }> {
  if (o.files.length === 0) throw new UsageError('no spec files given (use -f FILE|DIR)');
  for (const f of o.files) {
    if (!(await exists(f))) throw new UsageError(`${f}: no such file or directory`);
  }
  const metrics = o.metrics ?? new Metrics();
  const loaded = await loadSpecFiles(o.files);
  let dockerConfig: DockerConfig | undefined;
  try {
    dockerConfig = await loadDockerConfigFile(o.dockerConfig ?? defaultDockerConfigPath());
  } catch (e) {
    o.stderr.write(`warning: ${describeError(e)}\n`);
  }
  const results: MirrorResult[] = [];
  for (const err of loaded.errors) {
    results.push({ name: err.source, namespace: '', ready: false, reason: 'InvalidSpec', message: err.message, targets: [] });
  }
  if (loaded.mirrors.length === 0 && loaded.errors.length === 0) {
    throw new UsageError(`no ImageMirror documents found in ${o.files.join(', ')}`);
  }

  const reconciler = createReconciler({ metrics, log: o.log ?? silentLogger, blobConcurrency: o.blobConcurrency, client: { connections: o.registryConnections } });
  const credentials = fileCredentials(loaded.secrets, dockerConfig);
  const progress = progressPrinter(o.stderr);
  let next = 0;
  const byIndex = new Map<number, MirrorResult>();
  const worker = async () => {
    for (let index = next++; index < loaded.mirrors.length; index = next++) {
      const item = loaded.mirrors[index]!;
      const v = validateMirror(item.doc);
      if (!v.ok) {
        const [namespace, name] = v.name.includes('/') ? v.name.split('/', 2) as [string, string] : ['', v.name];
        byIndex.set(index, { name, namespace, ready: false, reason: 'InvalidSpec', message: `${item.source}: ${v.errors.join('; ')}`, targets: [] });
        continue;
      }
      const mirror: ImageMirror = v.mirror;
      const label = `${mirror.metadata.namespace ?? 'default'}/${mirror.metadata.name}`;
      const r: ReconcileResult = await reconciler.reconcile(mirror, { credentials, dryRun: o.dryRun, onProgress: progress ? (b) => progress(label, b) : undefined });
      progress?.(label, undefined);
      byIndex.set(index, {
        name: mirror.metadata.name,
        namespace: mirror.metadata.namespace ?? 'default',
        ready: r.outcome === 'synced',
        reason: r.reason,
        message: r.message,
        targets: r.targets,
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 2) }, worker));
  } finally {
    await reconciler.close();
  }
  for (let i = 0; i < loaded.mirrors.length; i++) results.push(byIndex.get(i)!);

  if (o.output === 'json') {
    o.stdout.write(JSON.stringify({ mirrors: results.map(jsonMirror) }, null, 2) + '\n');
  } else {
    o.stdout.write(textTable(results));
  }
  for (const m of results) {
    if (!m.ready) o.stderr.write(`${m.namespace ? `${m.namespace}/${m.name}` : m.name}: ${m.reason}: ${m.message}\n`);
  }
  if (o.metricsFile) {
    const tmp = `${o.metricsFile}.tmp`;
    await writeFile(tmp, await metrics.exposition());
    await rename(tmp, o.metricsFile);
  }
  return { exitCode: results.every((r) => r.ready) ? 0 : 1, mirrors: results };
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

function textTable(results: MirrorResult[]): string {
  const rows: string[][] = [['MIRROR', 'TARGET', 'ACTION', 'DIGEST', 'COPIED', 'SAVED']];
  for (const m of results) {
    const name = m.namespace ? `${m.namespace}/${m.name}` : m.name;
    for (const t of m.targets) {
      rows.push([name, t.reference, t.action, digestCell(t.digest), humanBytes(t.bytesCopied), humanBytes(t.bytesSaved)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.length > 1 ? rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')) : [];
  return lines.map((l) => l + '\n').join('');
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
