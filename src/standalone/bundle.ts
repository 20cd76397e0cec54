/**
 * `image-mirror bundle -f FILE|DIR --to bundle.tar [--since previous.tar | --have lock.json]`:
 * the source images of a set of mirrors, in one OCI image archive to carry across an air gap.
 *
 * Each mirror is reconciled as it would be by `sync`, with the archive as its only target (its
 * source tags kept as they are: the mirror's own targets are on the far side). Selection, referrers,
 * verification and platforms apply as they do everywhere.
 *
 * - One source repository: the bundle is a plain OCI archive of it, tags as ref names, readable by
 *   `skopeo copy oci-archive:bundle.tar:TAG` and imported by a mirror from `oci-archive:bundle.tar`.
 * - Several: one archive, one blob store shared by all (a layer two repositories share is carried
 *   once), ref names `REPOSITORY:TAG` where REPOSITORY is the source repository's path
 *   (`team/web:1.4.2`; skopeo reads `oci-archive:bundle.tar:team/web:1.4.2`), and the part for one
 *   repository is `oci-archive:bundle.tar#team/web` (its tags are then plain tags again). Two source
 *   repositories with the same path on different registries cannot share a bundle.
 *
 * With `--since` (an earlier bundle) or `--have` (a lock), blobs the far side already holds are
 * left out: it imported everything the earlier bundle's lock lists. Manifests are always carried,
 * so the importer can walk every image from the archive alone. The lock of this bundle — every
 * digest and size its images need, and whether it carries each — goes inside the archive
 * (`image-mirror.lock.json`) and beside it (`<bundle>.lock.json`).
 *
 * Nothing is written unless every mirror made it: a bundle missing a mirror's images would be
 * carried across believed complete.
 */
import { access, readFile, rename, writeFile } from 'node:fs/promises';
import { openArchive, type ArchiveRepository } from '../backends/archive/index.js';
import { LOCK_API_VERSION, LOCK_ENTRY, LOCK_KIND, parseLock, type BundleLock, type LockBlob, type LockImage } from '../backends/archive/lock.js';
import { archiveOf, backendOf } from '../backends/open.js';
import { formatBytes } from '../format.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { createReconciler } from '../mirror/reconcile.js';
import type { ImageMirror } from '../mirror/types.js';
import { loadDockerConfigFile, defaultDockerConfigPath, type DockerConfig } from '../oci/docker-config.js';
import { OciError, describeError } from '../oci/errors.js';
import { parseRepository } from '../oci/reference.js';
import { UsageError } from '../usage-error.js';
import { closeWithin } from './bounded-close.js';
import { fileCredentials, fileSecretValue } from './file-credentials.js';
import { judgeSpecs, type MirrorEntry } from './judge-specs.js';
import { loadSpecFiles } from './spec-files.js';

export interface BundleOptions {
  files: string[];
  /** The archive to write (replaced whole when it exists). */
  to: string;
  /** An earlier bundle the far side has imported: its lock (or its content) is what it holds. */
  since?: string;
  /** A lock listing what the far side holds. */
  have?: string;
  dockerConfig?: string;
  credentialsFallback?: boolean;
  blobConcurrency?: number;
  registryConnections?: number;
  certsDir?: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  log?: Logger;
}

export interface BundleResult {
  exitCode: number;
  /** The bundle's lock (undefined when nothing was written). */
  lock?: BundleLock;
  bytesWritten: number;
  /** Bytes of blobs the images need that the far side holds, so not carried. */
  bytesLeftOut: number;
  /** Where a mirror on the far side imports each source repository from. */
  imports: Array<{ repository: string; from: string }>;
}

/** The lock beside a bundle: `bundle.tar` → `bundle.tar.lock.json`. */
export function lockPathOf(bundle: string): string {
  return `${bundle}.lock.json`;
}

/** The blobs (not manifests) the far side holds, from `--since` or `--have`. */
async function farSide(o: BundleOptions): Promise<Map<string, number>> {
  const have = new Map<string, number>();
  let lock: BundleLock | undefined;
  if (o.have !== undefined) {
    let text: string;
    try {
      text = await readFile(o.have, 'utf8');
    } catch (e) {
      throw new UsageError(`--have ${o.have}: ${describeError(e)}`);
    }
    try {
      lock = parseLock(text);
    } catch (e) {
      throw new UsageError(`--have ${o.have}: ${(e as Error).message}`);
    }
  } else if (o.since !== undefined) {
    const prev = await openArchive(o.since);
    try {
      lock = await prev.lock();
      if (!lock) {
        // An archive made by another tool: the far side holds what it carries.
        for (const b of await prev.reachable()) if (!b.manifest) have.set(b.digest, b.size);
        return have;
      }
    } catch (e) {
      throw new UsageError(`--since ${o.since}: ${describeError(e)}`);
    } finally {
      await prev.close();
    }
  }
  for (const b of lock?.blobs ?? []) if (!b.manifest) have.set(b.digest, b.size);
  return have;
}

/** The repository path a source is filed under in a bundle of several repositories. */
function scopeOf(repository: string): string {
  return parseRepository(repository).repository;
}

export async function runBundle(o: BundleOptions): Promise<BundleResult> {
  if (o.files.length === 0) throw new UsageError('no spec files given (use -f FILE|DIR)');
  if (o.since !== undefined && o.have !== undefined) throw new UsageError('--since and --have both say what the far side holds: give one');
  if (o.to.includes(':')) throw new UsageError(`--to ${o.to}: an archive path cannot contain ':'`);
  for (const f of [...o.files, ...(o.since === undefined ? [] : [o.since]), ...(o.have === undefined ? [] : [o.have])]) {
    try {
      await access(f);
    } catch {
      throw new UsageError(`${f}: no such file or directory`);
    }
  }
  const none: BundleResult = { exitCode: 1, bytesWritten: 0, bytesLeftOut: 0, imports: [] };

  const loaded = await loadSpecFiles(o.files, {});
  const judged = judgeSpecs(loaded);
  for (const e of [...loaded.errors, ...judged.errors]) o.stderr.write(`${e.source}: ${e.message}\n`);
  const bad = judged.mirrors.filter((e) => !e.mirror);
  for (const e of bad) o.stderr.write(`${e.key}: InvalidSpec: ${e.error ?? 'invalid'}\n`);
  const mirrors = judged.mirrors.filter((e): e is MirrorEntry & { mirror: ImageMirror } => e.mirror !== undefined && e.mirror.spec.suspend !== true);
  if (mirrors.length === 0) throw new UsageError(`no ImageMirror to bundle in ${o.files.join(', ')}`);
  if (bad.length > 0 || loaded.errors.length > 0 || judged.errors.length > 0) return none;

  // Source repositories, and the part of the bundle each goes into.
  const sources = new Map<string, string>();
  for (const { key, mirror } of mirrors) {
    const repo = mirror.spec.source.repository;
    if (backendOf(repo) !== 'registry') {
      o.stderr.write(`${key}: source ${repo} is a local path; a bundle carries registry sources (copy a layout with sync)\n`);
      return none;
    }
    const ref = parseRepository(repo);
    sources.set(`${ref.registry}/${ref.repository}`, repo);
  }
  const byScope = new Map<string, string>();
  for (const canonical of sources.keys()) {
    const scope = scopeOf(canonical);
    const other = byScope.get(scope);
    if (other !== undefined) {
      throw new UsageError(`source repositories ${other} and ${canonical} share the path ${scope}, which names the repository inside a bundle: bundle them separately`);
    }
    byScope.set(scope, canonical);
  }
  const scoped = sources.size > 1;

  const presume = await farSide(o);
  let dockerConfig: DockerConfig | undefined;
  try {
    dockerConfig = await loadDockerConfigFile(o.dockerConfig ?? defaultDockerConfigPath());
  } catch (e) {
    o.stderr.write(`warning: ${describeError(e)}\n`);
  }
  const credentials = fileCredentials(loaded.secrets, dockerConfig, { fallbackForMissingSecrets: o.credentialsFallback === true });
  const secretValue = fileSecretValue(loaded.secrets);

  // This handle keeps the archive open across every mirror's reconcile: it is finished (or dropped)
  // once, at the end.
  const archive = await openArchive(o.to, undefined, { fresh: true, presume });
  const path = archive.path;
  const refOf = (repo: string): string => {
    const ref = parseRepository(repo);
    return scoped ? `oci-archive:${path}#${scopeOf(`${ref.registry}/${ref.repository}`)}` : `oci-archive:${path}`;
  };

  const images: LockImage[] = [];
  let failed = 0;
  try {
    for (const { key, mirror } of mirrors) {
      // A reconciler per mirror: two mirrors of one source selecting the same tag both write it
      // (the same image), which one reconciler's one-owner-per-tag rule would refuse.
      const reconciler = createReconciler({
        metrics: new Metrics(),
        log: o.log ?? silentLogger,
        blobConcurrency: o.blobConcurrency,
        client: { connections: o.registryConnections },
        ...(o.certsDir ? { certsDirs: [o.certsDir] } : {}),
        cloud: { hostTools: true },
      });
      const target = refOf(mirror.spec.source.repository);
      const carried: ImageMirror = {
        ...mirror,
        spec: { ...mirror.spec, overwrite: true, targets: [{ repository: target }] },
        status: {},
      };
      try {
        const r = await reconciler.reconcile(carried, { credentials, secretValue, policies: judged.policies, localPaths: true });
        if (r.outcome !== 'synced') {
          failed++;
          o.stderr.write(`${key}: ${r.reason}: ${r.message}\n`);
          continue;
        }
        for (const t of r.targets) {
          const tag = t.reference.slice(t.reference.lastIndexOf(':') + 1);
          const scope = archiveOf(target).scope;
          images.push({ repository: mirror.spec.source.repository, tag, refName: scope === undefined ? tag : `${scope}:${tag}`, digest: t.digest });
        }
        o.stdout.write(`${key}: ${r.targets.length} tag${r.targets.length === 1 ? '' : 's'} from ${mirror.spec.source.repository}\n`);
      } finally {
        await closeWithin(() => reconciler.close());
      }
    }
    if (failed > 0) {
      archive.abandon(`${failed} mirror${failed === 1 ? '' : 's'} failed`);
      await archive.close().catch(() => undefined);
      o.stderr.write(`${o.to}: not written: ${failed} of ${mirrors.length} mirror${mirrors.length === 1 ? '' : 's'} failed\n`);
      return none;
    }
    const lock = await lockOf(archive, images);
    const bytes = Buffer.from(JSON.stringify(lock, null, 1) + '\n');
    archive.attachFile(LOCK_ENTRY, bytes);
    const stats = archive.stats();
    await archive.close();
    const beside = lockPathOf(o.to);
    await writeFile(`${beside}.tmp`, bytes, { flush: true });
    await rename(`${beside}.tmp`, beside);

    const bytesLeftOut = lock.blobs.filter((b) => !b.included).reduce((n, b) => n + b.size, 0);
    const carriedCount = lock.blobs.filter((b) => b.included).length;
    const imports = [...sources.entries()].map(([canonical, repository]) => ({
      repository,
      from: scoped ? `oci-archive:${o.to}#${scopeOf(canonical)}` : `oci-archive:${o.to}`,
    }));
    o.stdout.write(
      `${o.to}: ${images.length} tag${images.length === 1 ? '' : 's'} from ${sources.size} repositor${sources.size === 1 ? 'y' : 'ies'}; ` +
        `${carriedCount} of ${lock.blobs.length} blobs carried, ${formatBytes(stats.bytesWritten)} written, ` +
        `${formatBytes(bytesLeftOut)} left out (the far side holds them)\n`,
    );
    for (const i of imports) o.stdout.write(`  import ${i.repository} from ${i.from}\n`);
    o.stdout.write(`  lock: ${beside}\n`);
    return { exitCode: 0, lock, bytesWritten: stats.bytesWritten, bytesLeftOut, imports };
  } catch (e) {
    archive.abandon(describeError(e));
    await archive.close().catch(() => undefined);
    if (e instanceof UsageError) throw e;
    o.stderr.write(`${o.to}: not written: ${describeError(e)}\n`);
    return none;
  }
}

/** Every digest the archive's images need, and whether the archive carries it. */
async function lockOf(archive: ArchiveRepository, images: LockImage[]): Promise<BundleLock> {
  const blobs: LockBlob[] = [];
  for (const b of await archive.reachable()) {
    const included = await archive.carries(b.digest);
    if (b.manifest && !included) {
      throw new OciError({ code: 'MANIFEST_BLOB_UNKNOWN', message: `manifest ${b.digest} is not in the bundle` });
    }
    blobs.push({ digest: b.digest, size: b.size, ...(b.manifest ? { manifest: true as const } : {}), included });
  }
  blobs.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  images.sort((a, b) => (a.refName < b.refName ? -1 : a.refName > b.refName ? 1 : 0));
  return { apiVersion: LOCK_API_VERSION, kind: LOCK_KIND, images, blobs };
}
