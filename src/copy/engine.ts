/**
 * The copy engine: for every target tag of one source image, the cheapest correct
 * step — up to date (HEAD), manifest-only retag, or copy (children before parents, blobs before
 * the manifest naming them; per blob: exists → mount → upload, with no HEAD before a mount from a
 * repository whose manifest names the blob, since its answer says whether the blob is there). Nothing is tagged until all it
 * references is present; manifests are pushed as the exact bytes fetched (the one exception: the
 * new index a `platforms` choice writes, see platforms.ts).
 *
 * Every step is decided by the planner (plan.ts: reads only) and carried out by an executor
 * (execute.ts). A dry run is the same plan carried out by an executor that writes nothing, so it
 * reports what a real run would do.
 *
 * One engine is meant to live as long as the process (or a sync run): its blob locations,
 * manifest cache and learned referrers-API capability are shared by every copyImage call, and
 * concurrent calls share the blob-transfer limit and the per (target registry, blob) single
 * flight. "One upload per (target registry, blob)" follows from the locations: once a blob has
 * reached one repository of a registry, every later copy to that registry mounts from there.
 *
 * Targets are copied in parallel, except on a registry that mounts a blob only once a pushed
 * manifest references it (ECR): there the first target repository is written completely, and the
 * others then mount from it instead of each uploading every blob.
 *
 * Shared across tenants, it never hands one mirror content another read: source manifests are
 * cached per reader identity (repository + credentials, see Repository.identity), so a source that
 * merely names another tenant's digest still has to serve the bytes itself. Blob locations are
 * shared, but they only ever become mount candidates: the registry checks on every mount that the
 * target's credentials may pull from the `from` repository, and refuses (we then upload from our
 * own source) when they may not.
 */
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import type { BlobReader, CallOptions, Descriptor, ManifestInfo, ManifestJson, RawManifest, Repository } from '../oci/content.js';
import { checkReferrerList } from '../oci/descriptor.js';
import { OciError, describeError, isNotFound, isOciError } from '../oci/errors.js';
import { MAX_REFERRERS_PER_SUBJECT } from '../oci/listing.js';
import { MediaType, isIndexMediaType } from '../oci/media-types.js';
import { looksLikeDigest, requireDigest } from '../oci/names.js';
import { MOUNT_REPROBE_MS } from '../oci/upload.js';
import { TargetAction, type BlobAction } from './actions.js';
import { TargetTally, failure } from './accounting.js';
import { BlobLocations } from './blob-locations.js';
import { DryRunExecutor, LiveExecutor, type Executor } from './execute.js';
import type { CopyObserver } from './observer.js';
import { Planner, type TagPlan } from './plan.js';
import { configPlatform, filterIndex, formatPlatform, indexPlatforms, parsePlatform, platformMatches, type PlatformChoice } from './platforms.js';
import { LruMap } from './lru.js';

/**
 * Single-platform images whose config platform is remembered: a re-sync of a mirror with
 * `platforms` then reads no config blob. Each entry is a few dozen bytes.
 */
const CONFIG_PLATFORMS_MAX = 4096;
import type { TargetReport } from './report.js';
import { ImageReader, ManifestCache, allBlobs, allNodes, parseManifest, type ImageNode } from './image-tree.js';
import { buildFallbackIndex, cosignTags, fallbackTag, mergeFallbackIndex } from './referrers.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { Semaphore, mapLimit, throwIfAborted, type Slot } from './semaphore.js';

export interface CopyTarget {
  repository: Repository;
  /** Tag names to write in this repository (at least one). */
  tags: string[];
}

export interface CopyProgress {
  /** Blob bytes streamed from the source so far in this copyImage call. */
  bytes: number;
  /** The blob the last bytes belonged to. */
  digest: string;
}

export interface CopyImageRequest {
  source: Repository;
  /** Tag or digest in the source repository. */
  reference: string;
  /** The digest the caller already got from a HEAD of `reference`: saves a second HEAD. */
  sourceDigest?: string;
  /**
   * The source repository's tag list, when the caller has it: reveals the referrers fallback tag
   * and cosign `.sig/.att/.sbom` tags without more requests. Listed once when absent and needed.
   */
  sourceTags?: readonly string[];
  targets: CopyTarget[];
  /** Also copy referrers (fallback index or API) and cosign tags of the image. */
  referrers: boolean;
  /** false: a target tag pointing elsewhere is left alone and reported as Conflict. */
  overwrite: boolean;
  /** Decide everything (HEADs only), write nothing; reports say what would be done. */
  dryRun?: boolean;
  /**
   * `os/arch[/variant]`: from an index, copy only the matching children under a new index holding
   * exactly them (see platforms.ts for matching, attestations and the bytes). A single-platform
   * image must match, else copyImage rejects. Unset or empty: the image as it is.
   */
  platforms?: readonly string[];
  /** Aborted: no new blob or manifest is started; a tag is never written over missing content. */
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
}

export interface CopyImageResult {
  /** The source image's digest. */
  sourceDigest: string;
  /** The digest the target tags are to point at: sourceDigest, or that of the platform-filtered index. */
  digest: string;
  /** One per target tag, in request order (targets, then their tags). */
  targets: TargetReport[];
}

export interface CopyEngineOptions {
  /** Where counts go (blobs, bytes, target results, learned capabilities): the process's Metrics, say. */
  metrics?: CopyObserver;
  /** Shared with the controller, which feeds it each ImageMirror's status. Default: a private one. */
  locations?: BlobLocations;
  /** Blob transfers (HEAD + mount/upload) running at once across the engine. Default 4. */
  blobConcurrency?: number;
  /** Blob transfers at once for one manifest, and child manifests at once for one index. Default 4. */
  manifestConcurrency?: number;
  /** Mount candidates passed per blob. Default 3. */
  maxMountCandidates?: number;
  /** Source manifests kept by (reader identity, digest). Default 64 MiB. */
  manifestCacheBytes?: number;
}

/** State of one copyImage call. */
interface CopyRun {
  req: CopyImageRequest;
  sourceDigest: string;
  /** What target tags point at: sourceDigest, or the platform-filtered index's. */
  digest: string;
  /** Decides with reads only; the same in a real and a dry run. */
  planner: Planner;
  /** Carries the plan out (writes), or for a dry run records what it would write. */
  exec: Executor;
  /** Per (target repo, blob): the action taken, so a blob shared by children is handled once. */
  blobMemo: Map<string, Promise<BlobAction>>;
  /** Per (target repo, manifest digest): present or made present. */
  manifestMemo: Map<string, Promise<void>>;
  progressBytes: number;
  tree?: Promise<ImageNode>;
  /** Referrers per subject digest. */
  referrerPlans: Map<string, Promise<ReferrerPlan>>;
  sourceTagList?: Promise<readonly string[]>;
  sourceHeads: Map<string, Promise<string | undefined>>;
}

interface ReferrerPlan {
  descriptors: Descriptor[];
  /** The source's fallback index, copied byte-exact when the target has none. */
  fallback?: RawManifest;
  cosign: string[];
}

function repoName(r: Repository): string {
  return `${r.registry}/${r.repository}`;
}

/** The report action for a tag plan carried out. */
const ACTION_OF = { 'up-to-date': TargetAction.UpToDate, retag: TargetAction.Retagged, copy: TargetAction.Copied } as const;

export class CopyEngine {
  readonly locations: BlobLocations;
  private readonly observer: CopyObserver | undefined;
  private readonly blobSlots: Semaphore;
  private readonly blobFlight = new KeyedLock();
  private readonly reader: ImageReader;
  private readonly manifestConcurrency: number;
  private readonly maxMountCandidates: number;
  /** Learned per registry: has the referrers API (true) or only the fallback tag (false). */
  private readonly referrersApi = new Map<string, boolean>();
  /**
   * Learned per registry: mounts only blobs a pushed manifest references (ECR,
   * aws/containers-roadmap#2860), seen as a refused mount from a repository the blob was just
   * uploaded to.
   */
  private readonly mountsNeedManifest = new Set<string>();
  /**
   * Learned per registry: when it last uploaded instead of mounting from a repository whose
   * manifest names the blob. Until MOUNT_REPROBE_MS later, blobs get a HEAD before the mount again.
   */
  private readonly mountDeclinedAt = new Map<string, number>();
  /** The platform a single-platform image's config names, by (reader identity, config digest); null: none. */
  private readonly configPlatforms = new LruMap<string, PlatformChoice | null>(CONFIG_PLATFORMS_MAX);

  constructor(o: CopyEngineOptions = {}) {
    this.observer = o.metrics;
    this.locations = o.locations ?? new BlobLocations();
    this.blobSlots = new Semaphore(o.blobConcurrency ?? 4);
    this.manifestConcurrency = o.manifestConcurrency ?? 4;
    this.maxMountCandidates = o.maxMountCandidates ?? 3;
    this.reader = new ImageReader(new ManifestCache(o.manifestCacheBytes));
  }

  /**
   * What this engine learned about a blob store's referrers API (undefined: not probed yet, or
   * declared by the backend). A registry's blob store is its host.
   */
  referrersApiOf(blobStore: string): boolean | undefined {
    return this.referrersApi.get(blobStore);
  }

  /** Whether this engine learned that `blobStore` mounts only blobs a pushed manifest references. */
  mountsNeedManifestOf(blobStore: string): boolean {
    return this.mountsNeedManifest.has(blobStore);
  }

  /**
   * Copies one source image to every target tag. Rejects only when the source image cannot be
   * resolved (not found, unauthorized…); every per-target failure is a Failed report instead.
   */
  async copyImage(req: CopyImageRequest): Promise<CopyImageResult> {
    throwIfAborted(req.signal, `copying ${repoName(req.source)}:${req.reference}`);
    const sourceDigest = await this.resolveSource(req);
    // With platforms the image to write is decided first: its digest is what target tags must show.
    const chosen = req.platforms?.length ? await this.choosePlatforms(req, sourceDigest, req.platforms) : undefined;
    const digest = chosen?.digest ?? sourceDigest;
    const exec: Executor = req.dryRun
      ? new DryRunExecutor(this.locations)
      : new LiveExecutor({
          locations: this.locations,
          observer: this.observer,
          source: req.source,
          counting: (digest, r) => this.counting(run, digest, r),
          onMountsNeedManifest: (blobStore) => this.mountsNeedManifest.add(blobStore),
          onMountDeclined: (blobStore) => this.mountDeclinedAt.set(blobStore, Date.now()),
        });
    const planner = new Planner({
      source: req.source,
      digest,
      overwrite: req.overwrite,
      presence: exec.presence,
      maxMountCandidates: this.maxMountCandidates,
      mountsNeedManifest: (blobStore) => this.mountsNeedManifest.has(blobStore),
      mountsDependable: (blobStore) => this.mountsDependable(blobStore),
      call: () => this.call(run),
    });
    const run: CopyRun = {
      req,
      sourceDigest,
      digest,
      planner,
      exec,
      blobMemo: new Map(),
      manifestMemo: new Map(),
      progressBytes: 0,
      referrerPlans: new Map(),
      sourceHeads: new Map(),
      ...(chosen?.tree ? { tree: chosen.tree() } : {}),
    };
    // On a registry that mounts only referenced blobs, the first repository goes first (blobs and
    // manifest), so the others mount what its manifest now references.
    const leaders = new Map<string, Promise<unknown>>();
    const perTarget = await Promise.all(
      req.targets.map((t) => {
        const registry = t.repository.blobStore;
        const leader = leaders.get(registry);
        if (!leader) {
          const p = this.copyToRepository(run, t);
          leaders.set(registry, p.catch(() => undefined));
          return p;
        }
        if (!this.mountsNeedManifest.has(registry)) return this.copyToRepository(run, t);
        return leader.then(() => this.copyToRepository(run, t));
      }),
    );
    const targets = perTarget.flat();
    for (const r of targets) run.exec.observer?.countTarget(r.action);
    if (digest !== sourceDigest) for (const r of targets) r.sourceDigest = sourceDigest;
    return { sourceDigest, digest, targets };
  }

  /**
   * The image to write for `platforms`: an index's matching children under a new index (the
   * source index itself when every child matches), or a single-platform image that matches.
   * Only the index is read to decide (a re-sync that finds the target up to date reads no child);
   * the tree below a new index holds the kept children only. Rejects naming what the source holds
   * when nothing matches.
   */
  private async choosePlatforms(req: CopyImageRequest, sourceDigest: string, platforms: readonly string[]): Promise<{ digest: string; tree?: () => Promise<ImageNode> }> {
    const where = `${repoName(req.source)}:${req.reference}`;
    const wanted = platforms.map((p) => parsePlatform(p));
    const call = req.signal ? { signal: req.signal } : {};
    const raw = await this.reader.manifest(req.source, sourceDigest, call);
    const json = parseManifest(raw, where);
    const fail = (detail: string): OciError =>
      new OciError({ code: 'MANIFEST_UNKNOWN', message: `${where}: ${detail}`, registry: req.source.registry, repository: req.source.repository });
    if (isIndexMediaType(raw.mediaType) || isIndexMediaType(json.mediaType ?? '') || (Array.isArray(json.manifests) && !json.config)) {
      const filtered = filterIndex(raw, json, wanted);
      if (!filtered) throw fail(`no child of the index matches platforms ${platforms.join(', ')} (it holds ${indexPlatforms(json).join(', ') || 'none'})`);
      if (filtered === raw) return { digest: sourceDigest };
      return { digest: filtered.digest, tree: () => this.loadTree(req.source, filtered.digest, call, filtered) };
    }
    const key = `${req.source.identity}@${json.config?.digest ?? sourceDigest}`;
    let own = this.configPlatforms.get(key);
    if (own === undefined) {
      own = (await configPlatform(req.source, json, call)) ?? null;
      this.configPlatforms.set(key, own);
    }
    if (!own) throw fail(`a single-platform image whose config names no platform; platforms ${platforms.join(', ')} cannot be checked`);
    if (!wanted.some((w) => platformMatches(w, own))) throw fail(`a single-platform image for ${formatPlatform(own)}, not one of platforms ${platforms.join(', ')}`);
    return { digest: sourceDigest };
  }

  private async resolveSource(req: CopyImageRequest): Promise<string> {
    const ctx = { registry: req.source.registry, repository: req.source.repository, what: `${repoName(req.source)}:${req.reference}` };
    if (looksLikeDigest(req.reference)) return requireDigest(req.reference, ctx);
    if (req.sourceDigest) return requireDigest(req.sourceDigest, ctx);
    const head = await req.source.headManifest(req.reference, req.signal ? { signal: req.signal } : {});
    if (!head) {
      throw new OciError({
        code: 'MANIFEST_UNKNOWN',
        message: `${repoName(req.source)}:${req.reference}: source image not found`,
        registry: req.source.registry,
        repository: req.source.repository,
      });
    }
    return head.digest;
  }

  private mountsDependable(blobStore: string): boolean {
    const at = this.mountDeclinedAt.get(blobStore);
    if (at === undefined) return true;
    // The same window after which the registry client itself tries mounting again.
    if (Date.now() - at < MOUNT_REPROBE_MS) return false;
    this.mountDeclinedAt.delete(blobStore);
    return true;
  }

  /** Per-call options of a run's registry requests. */
  private call(run: CopyRun, slot?: Slot): CallOptions {
    return { ...(run.req.signal ? { signal: run.req.signal } : {}), ...(slot ? { whileWaiting: (w: Promise<void>) => slot.yieldDuring(w) } : {}) };
  }

  private tree(run: CopyRun): Promise<ImageNode> {
    run.tree ??= this.loadTree(run.req.source, run.digest, this.call(run));
    return run.tree;
  }

  /** `root`: a manifest made here (a platform-filtered index), which is not in `source`. */
  private async loadTree(source: Repository, digest: string, call: CallOptions, root?: RawManifest): Promise<ImageNode> {
    const node = root ? await this.reader.treeOf(source, root, call) : await this.reader.tree(source, digest, call);
    // Each distinct manifest once: the tree is a DAG, and a child listed many times is one node.
    for (const n of allNodes(node)) {
      if (n.raw === root) continue;
      this.locations.recordImage(source.blobStore, source.repository, n.digest, allBlobs(n).map((b) => b.digest));
    }
    return node;
  }

  private async copyToRepository(run: CopyRun, target: CopyTarget): Promise<TargetReport[]> {
    const repo = target.repository;
    const call = this.call(run);
    const reports: Array<{ report: TargetReport; tally: TargetTally }> = [];
    // Whether the manifest is (or, in a dry run, would be) in this repository already.
    let present = false;
    for (const tag of target.tags) {
      const tally = new TargetTally(run.exec.observer);
      const reference = `${repoName(repo)}:${tag}`;
      let plan: TagPlan | undefined;
      try {
        throwIfAborted(run.req.signal, `syncing ${reference}`);
        plan = await run.planner.tag(repo, tag, present);
        if (plan.kind === 'up-to-date') {
          present = true;
          this.locations.recordImage(repo.blobStore, repo.repository, run.digest);
          reports.push({ report: tally.report(reference, run.digest, TargetAction.UpToDate), tally });
          continue;
        }
        if (plan.kind === 'conflict') {
          const msg = `tag points to ${plan.head.digest}, source is ${run.digest}; overwrite is false`;
          reports.push({ report: tally.report(reference, plan.head.digest, TargetAction.Conflict, msg), tally });
          continue;
        }
        const tree = await this.tree(run);
        if (plan.kind === 'retag') tally.retag(allBlobs(tree));
        else await this.ensureChildrenAndBlobs(run, repo, tree, tally);
        throwIfAborted(run.req.signal, `tagging ${reference}`);
        await run.exec.putManifest(repo, tag, { mediaType: tree.raw.mediaType, bytes: tree.raw.bytes }, call);
        present = true;
        run.exec.presence.recordImage(repo, tree);
        reports.push({ report: tally.report(reference, run.digest, ACTION_OF[plan.kind]), tally });
      } catch (e) {
        const head = plan && plan.kind !== 'up-to-date' ? plan.head : undefined;
        if (isOciError(e) && e.code === 'TAG_INVALID' && head) {
          // ECR answers TAG_INVALID for a tag that exists in a repository with immutable tags
          // (aws/containers-roadmap#862): the tag points elsewhere and cannot be moved.
          const msg = `tag points to ${head.digest}, source is ${run.digest}; the registry refuses to move it (immutable tags): ${describeError(e)}`;
          reports.push({ report: tally.report(reference, head.digest, TargetAction.Conflict, msg, 'TAG_INVALID'), tally });
          continue;
        }
        const f = failure(e);
        reports.push({ report: tally.report(reference, run.digest, TargetAction.Failed, f.message, f.errorCode), tally });
      }
    }
    const carrier = reports.find((r) => r.report.action !== TargetAction.Failed && r.report.action !== TargetAction.Conflict);
    if (run.req.referrers && present && carrier) {
      try {
        const warnings: string[] = [];
        await this.syncReferrers(run, repo, carrier.tally, warnings);
        // Referrer blobs are accounted on the first successful tag of the repository.
        const r = carrier.report;
        Object.assign(r, carrier.tally.report(r.reference, r.digest, r.action, r.message, r.errorCode));
        if (warnings.length > 0) {
          // What the target would not take is not the tags' fault: they stay in sync, and say so.
          const warning = warnings.length > 1 ? `${warnings[0]!} (and ${warnings.length - 1} more)` : warnings[0]!;
          for (const x of reports) if (x.report.action !== TargetAction.Failed && x.report.action !== TargetAction.Conflict) x.report.warning = warning;
        }
      } catch (e) {
        const f = failure(e);
        for (const r of reports) {
          if (r.report.action === TargetAction.Failed || r.report.action === TargetAction.Conflict) continue;
          const fresh = r.tally.report(r.report.reference, r.report.digest, TargetAction.Failed, `referrers: ${f.message}`, f.errorCode);
          Object.assign(r.report, fresh);
        }
      }
    }
    return reports.map((r) => r.report);
  }

  /** Children (by digest, never tagged), then the manifest's own blobs. The caller PUTs `node`. */
  private async ensureChildrenAndBlobs(run: CopyRun, repo: Repository, node: ImageNode, tally: TargetTally): Promise<void> {
    await mapLimit(node.children, this.manifestConcurrency, (child) => this.ensureManifest(run, repo, child, tally));
    await mapLimit(node.blobs, this.manifestConcurrency, (b) => this.ensureBlob(run, repo, b, tally, node.digest));
  }

  /** Makes a manifest present by digest: HEAD, else its content then a PUT by digest. */
  private async ensureManifest(run: CopyRun, repo: Repository, node: ImageNode, tally: TargetTally): Promise<void> {
    const key = `${repoName(repo)}@${node.digest}`;
    let p = run.manifestMemo.get(key);
    if (!p) {
      p = (async () => {
        throwIfAborted(run.req.signal, `copying manifest ${node.digest} to ${repoName(repo)}`);
        if ((await run.planner.manifest(repo, node.digest)) === 'push') {
          await this.ensureChildrenAndBlobs(run, repo, node, tally);
          throwIfAborted(run.req.signal, `pushing manifest ${node.digest} to ${repoName(repo)}`);
          await run.exec.putManifest(repo, node.digest, { mediaType: node.raw.mediaType, bytes: node.raw.bytes }, this.call(run));
        }
        run.exec.presence.recordImage(repo, node);
      })();
      run.manifestMemo.set(key, p);
    }
    await p;
    // A manifest found present implies its blobs are: saved by `exists` for this target.
    for (const b of allBlobs(node)) tally.blob('exists', b);
  }

  private async ensureBlob(run: CopyRun, repo: Repository, desc: Descriptor, tally: TargetTally, imageDigest: string): Promise<void> {
    const key = `${repoName(repo)}@${desc.digest}`;
    let p = run.blobMemo.get(key);
    if (!p) {
      // Single flight per (target registry, blob), taken before a transfer slot so that a waiter
      // never holds a slot the holder needs. The plan is made inside it: a blob another target
      // of this registry just received is then a mount candidate.
      p = this.blobFlight.run(`${repo.blobStore}@${desc.digest}`, () =>
        this.blobSlots.run((slot) => this.transferBlob(run, repo, desc, imageDigest, slot)),
      );
      run.blobMemo.set(key, p);
    }
    tally.blob(await p, desc);
  }

  private async transferBlob(run: CopyRun, repo: Repository, desc: Descriptor, imageDigest: string, slot: Slot): Promise<BlobAction> {
    throwIfAborted(run.req.signal, `copying blob ${desc.digest} to ${repoName(repo)}`);
    // Waiting for a registry (Retry-After, request budget) gives the transfer slot up meanwhile.
    const call = this.call(run, slot);
    const plan = await run.planner.blob(repo, desc, imageDigest, call);
    if (plan.kind === 'exists') {
      run.exec.presence.recordBlob(repo, desc.digest);
      return 'exists';
    }
    return run.exec.transferBlob(repo, desc, plan, call);
  }

  /** Counts bytes read from the source for progress, without changing the stream. */
  private counting(run: CopyRun, digest: string, r: BlobReader): BlobReader['stream'] {
    const onProgress = run.req.onProgress;
    // Without a listener a pass-through stage would only cost CPU per chunk on the hot path.
    if (!onProgress) return r.stream;
    const counter = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        run.progressBytes += chunk.length;
        onProgress({ bytes: run.progressBytes, digest });
        cb(null, chunk);
      },
    });
    // pipeline forwards a source error to `counter`, so the uploader sees it.
    pipeline(r.stream, counter, () => undefined);
    return counter;
  }

  // ---- referrers ---------------------------------------------------------------------------

  private referrerPlan(run: CopyRun, subject: string): Promise<ReferrerPlan> {
    let p = run.referrerPlans.get(subject);
    if (!p) run.referrerPlans.set(subject, (p = this.loadReferrerPlan(run, subject)));
    return p;
  }

  private sourceTags(run: CopyRun): Promise<readonly string[]> {
    if (run.req.sourceTags) return Promise.resolve(run.req.sourceTags);
    run.sourceTagList ??= run.req.source.listTags(this.call(run));
    return run.sourceTagList;
  }

  private async loadReferrerPlan(run: CopyRun, subject: string): Promise<ReferrerPlan> {
    const source = run.req.source;
    const call = this.call(run);
    const tags = await this.sourceTags(run);
    const plan: ReferrerPlan = { descriptors: [], cosign: cosignTags(subject, tags) };
    if (this.mayAskReferrers(source)) {
      const list = await source.referrers(subject, call);
      if (source.capabilities.referrersApi === 'learn') this.learnReferrersApi(source.blobStore, list !== undefined);
      if (list !== undefined) {
        plan.descriptors = list;
        return plan;
      }
    }
    const tag = fallbackTag(subject);
    if (!tags.includes(tag)) return plan;
    try {
      const raw = await source.getManifest(tag, call);
      // GitLab resolves `sha256-<hex>` to the subject itself (oras-project/oras-go#1396): only an
      // OCI index other than the subject is a list of referrers; anything else lists none.
      if (!isReferrersIndex(raw, subject)) return plan;
      const where = `${repoName(source)}:${tag}`;
      const json = parseManifest(raw, where);
      // The same checks and bound as a referrers API answer: these descriptors are written back.
      const list = checkReferrerList(json.manifests, 'manifests', { registry: source.registry, repository: source.repository, where: `${where}: manifest ${raw.digest}` });
      if (list.length > MAX_REFERRERS_PER_SUBJECT) {
        throw new OciError({ code: 'PROTOCOL', message: `${where}: more than ${MAX_REFERRERS_PER_SUBJECT} referrers`, registry: source.registry, repository: source.repository });
      }
      plan.fallback = raw;
      plan.descriptors = list;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    return plan;
  }

  /**
   * Whether to call the referrers API of `repo`: a backend that declares it has one (or has none)
   * is believed; one that must learn it is asked until it answered "none".
   */
  private mayAskReferrers(repo: Repository): boolean {
    const api = repo.capabilities.referrersApi;
    return api === 'yes' || (api === 'learn' && this.referrersApi.get(repo.blobStore) !== false);
  }

  private learnReferrersApi(registry: string, has: boolean): void {
    if (this.referrersApi.get(registry) === has) return;
    this.referrersApi.set(registry, has);
    this.observer?.setCapability(registry, 'referrers_api', has);
  }

  /**
   * Copies the image's referrers and cosign tags to `repo`, where the image is present. What the
   * target refuses to store is added to `warnings` instead of failing the image's tags.
   */
  private async syncReferrers(run: CopyRun, repo: Repository, tally: TargetTally, warnings: string[]): Promise<void> {
    if (run.digest === run.sourceDigest) return this.syncReferrersOf(run, repo, run.digest, tally, warnings);
    // A platform-filtered index: what refers to the source index (signatures of its digest) would
    // be false of the new one, so it stays behind; what refers to a kept child is still true.
    const ofIndex = await this.referrerPlan(run, run.sourceDigest);
    const left = [
      ...(ofIndex.descriptors.length > 0 ? [`${ofIndex.descriptors.length} referrer${ofIndex.descriptors.length === 1 ? '' : 's'}`] : []),
      ...(ofIndex.cosign.length > 0 ? [`cosign tag${ofIndex.cosign.length === 1 ? '' : 's'} ${ofIndex.cosign.join(', ')}`] : []),
    ];
    if (left.length > 0) {
      warnings.unshift(`signatures of the source index ${run.sourceDigest} not copied (${left.join('; ')}): they sign the unfiltered index, not the platform-filtered ${run.digest}`);
    }
    for (const child of (await this.tree(run)).children) await this.syncReferrersOf(run, repo, child.digest, tally, warnings);
  }

  /** Copies the referrers and cosign tags of `subject`, a manifest present in `repo`. */
  private async syncReferrersOf(run: CopyRun, repo: Repository, subject: string, tally: TargetTally, warnings: string[]): Promise<void> {
    const plan = await this.referrerPlan(run, subject);
    if (plan.descriptors.length > 0) await this.syncReferrerList(run, repo, subject, plan, tally, warnings);
    for (const tag of plan.cosign) await this.syncCosignTag(run, repo, tag, tally, warnings);
  }

  private async copyArtifact(run: CopyRun, repo: Repository, digest: string, tally: TargetTally): Promise<void> {
    const node = await this.reader.tree(run.req.source, digest, this.call(run));
    await this.ensureManifest(run, repo, node, tally);
  }

  /** Copies one referrer; false (with a warning) when the target refuses it. */
  private async tryCopyReferrer(run: CopyRun, repo: Repository, d: Descriptor, tally: TargetTally, warnings: string[]): Promise<boolean> {
    try {
      await this.copyArtifact(run, repo, d.digest, tally);
      return true;
    } catch (e) {
      if (!refusedByTarget(e)) throw e;
      warnings.push(`referrer ${d.digest} (${d.artifactType ?? d.mediaType}) not copied: ${describeError(e)}`);
      return false;
    }
  }

  private async syncReferrerList(run: CopyRun, repo: Repository, subject: string, plan: ReferrerPlan, tally: TargetTally, warnings: string[]): Promise<void> {
    const call = this.call(run);
    if (this.mayAskReferrers(repo)) {
      const listed = await repo.referrers(subject, call);
      if (repo.capabilities.referrersApi === 'learn') this.learnReferrersApi(repo.blobStore, listed !== undefined);
      if (listed !== undefined) {
        // The registry indexes a pushed manifest by its subject: pushing what is missing is enough.
        const have = new Set(listed.map((d) => d.digest));
        for (const d of plan.descriptors) if (!have.has(d.digest)) await this.tryCopyReferrer(run, repo, d, tally, warnings);
        return;
      }
    }
    const tag = fallbackTag(subject);
    const desired = plan.fallback
      ? { mediaType: plan.fallback.mediaType, bytes: plan.fallback.bytes, digest: plan.fallback.digest }
      : buildFallbackIndex(plan.descriptors);
    const head = await repo.headManifest(tag, call);
    // An index we wrote is only ever written after the artifacts it lists: equal means done.
    if (head?.digest === desired.digest) return;
    if (head && !isReferrersIndex(head, subject)) {
      // Never merged into, never replaced: it is not ours to change (and on GitLab, the image).
      warnings.push(`referrers not copied: ${repoName(repo)}:${tag} is ${head.digest === subject ? 'the image itself' : `a ${head.mediaType}`}, not an index of referrers`);
      return;
    }
    let existing: ManifestJson | undefined;
    if (head) existing = parseManifest(await repo.getManifest(tag, { ...call, expectDigest: head.digest }), `${repoName(repo)}:${tag}`);
    const have = new Set((existing?.manifests ?? []).map((d) => d.digest));
    const copied: Descriptor[] = [];
    for (const d of plan.descriptors) {
      if (have.has(d.digest)) continue;
      if (await this.tryCopyReferrer(run, repo, d, tally, warnings)) copied.push(d);
    }
    throwIfAborted(run.req.signal, `writing ${repoName(repo)}:${tag}`);
    if (existing) {
      const merge = mergeFallbackIndex(existing, copied);
      if (!merge) return;
      const bytes = new TextEncoder().encode(JSON.stringify(merge.json));
      await run.exec.putManifest(repo, tag, { mediaType: merge.json.mediaType ?? MediaType.OciIndex, bytes }, call);
    } else if (copied.length === plan.descriptors.length) {
      await run.exec.putManifest(repo, tag, { mediaType: desired.mediaType, bytes: desired.bytes }, call);
    } else if (copied.length > 0) {
      // Some were refused: list only what is there (a registry may reject an index naming missing manifests).
      const index = buildFallbackIndex(copied);
      await run.exec.putManifest(repo, tag, { mediaType: index.mediaType, bytes: index.bytes }, call);
    }
  }

  private sourceHead(run: CopyRun, tag: string): Promise<string | undefined> {
    let p = run.sourceHeads.get(tag);
    if (!p) {
      p = run.req.source.headManifest(tag, this.call(run)).then((h) => h?.digest);
      run.sourceHeads.set(tag, p);
    }
    return p;
  }

  /** cosign's `sha256-<hex>.sig` style tags are copied as tags, like the image itself. */
  private async syncCosignTag(run: CopyRun, repo: Repository, tag: string, tally: TargetTally, warnings: string[]): Promise<void> {
    const call = this.call(run);
    const srcDigest = await this.sourceHead(run, tag);
    if (!srcDigest) return;
    const head = await repo.headManifest(tag, call);
    if (head?.digest === srcDigest) return;
    // A cosign tag accumulates signatures; never replace another signer's when told not to.
    if (head && !run.req.overwrite) return;
    try {
      const node = await this.reader.tree(run.req.source, srcDigest, call);
      await this.ensureManifest(run, repo, node, tally);
      throwIfAborted(run.req.signal, `tagging ${repoName(repo)}:${tag}`);
      await run.exec.putManifest(repo, tag, { mediaType: node.raw.mediaType, bytes: node.raw.bytes }, call);
    } catch (e) {
      if (!refusedByTarget(e)) throw e;
      warnings.push(`${repoName(repo)}:${tag} not copied: ${describeError(e)}`);
    }
  }
}

/**
 * A referrers fallback index: an OCI index that is not the subject itself. GitLab resolves
 * `sha256-<hex>` to the subject (oras-project/oras-go#1396, #1403 checks the same two things).
 */
function isReferrersIndex(m: Pick<ManifestInfo, 'digest' | 'mediaType'>, subject: string): boolean {
  return m.digest !== subject && m.mediaType === MediaType.OciIndex;
}

/**
 * The target would not store a referrer: Quay takes only allow-listed artifact types and answers
 * 400 MANIFEST_INVALID (quay/quay#2597, oras-project/oras#738), others 415 for an unknown media
 * type, ECR TAG_INVALID for an immutable cosign tag. Not a fault of the image or its tags.
 */
function refusedByTarget(e: unknown): boolean {
  if (!isOciError(e)) return false;
  if (e.code === 'TAG_INVALID' || e.code === 'UNSUPPORTED' || e.status === 415) return true;
  return e.status === 400 && (e.code === 'MANIFEST_INVALID' || e.code === 'PROTOCOL');
}
