/**
 * The copy engine: for every target tag of one source image, the cheapest correct
 * step — up to date (HEAD), manifest-only retag, or copy (children before parents, blobs before
 * the manifest naming them; per blob: exists → mount → upload). Nothing is tagged until all it
 * references is present; manifests are pushed as the exact bytes fetched.
 *
 * One engine is meant to live as long as the process (or a sync run): its blob locations,
 * manifest cache and learned referrers-API capability are shared by every copyImage call, and
 * concurrent calls share the blob-transfer limit and the per (target registry, blob) single
 * flight. "One upload per (target registry, blob)" follows from the locations: once a blob has
 * reached one repository of a registry, every later copy to that registry mounts from there.
 *
 * Shared across tenants, it never hands one mirror content another read: source manifests are
 * cached per reader identity (repository + credentials, see Repository.identity), so a source that
 * merely names another tenant's digest still has to serve the bytes itself. Blob locations are
 * shared, but they only ever become mount candidates: the registry checks on every mount that the
 * target's credentials may pull from the `from` repository, and refuses (we then upload from our
 * own source) when they may not.
 */
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import type { BlobReader, Descriptor, ManifestJson, RawManifest, Repository } from '../oci/content.js';
import { checkReferrerList } from '../oci/descriptor.js';
import { OciError, isNotFound } from '../oci/errors.js';
import { MAX_REFERRERS_PER_SUBJECT } from '../oci/listing.js';
import { MediaType } from '../oci/media-types.js';
import { looksLikeDigest, requireDigest } from '../oci/names.js';
import type { Metrics } from '../metrics.js';
import type { TargetReport } from '../mirror/reconciler.js';
import { TargetAction, type BlobAction } from './actions.js';
import { TargetTally, failure } from './accounting.js';
import { BlobLocations } from './blob-locations.js';
import { ImageReader, ManifestCache, allBlobs, allNodes, parseManifest, type ImageNode } from './image-tree.js';
import { buildFallbackIndex, cosignTags, fallbackTag, mergeFallbackIndex } from './referrers.js';
import { KeyedLock } from './single-flight.js';
import { Semaphore, mapLimit, throwIfAborted } from './semaphore.js';

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
  /** Aborted: no new blob or manifest is started; a tag is never written over missing content. */
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
}

export interface CopyImageResult {
  sourceDigest: string;
  /** One per target tag, in request order (targets, then their tags). */
  targets: TargetReport[];
}

export interface CopyEngineOptions {
  metrics?: Metrics;
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
  dryRun: boolean;
  /** Per (target repo, blob): the action taken, so a blob shared by children is handled once. */
  blobMemo: Map<string, Promise<BlobAction>>;
  /** Per (target repo, manifest digest): present or made present. */
  manifestMemo: Map<string, Promise<void>>;
  /** Dry run only: where blobs would be by now, for planning mounts. */
  planned: Map<string, string[]>;
  progressBytes: number;
  tree?: Promise<ImageNode>;
  referrerPlan?: Promise<ReferrerPlan>;
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

function sameRepository(a: Repository, b: Repository): boolean {
  return a.registry === b.registry && a.repository === b.repository;
}

export class CopyEngine {
  readonly locations: BlobLocations;
  private readonly metrics: Metrics | undefined;
  private readonly blobSlots: Semaphore;
  private readonly blobFlight = new KeyedLock();
  private readonly reader: ImageReader;
  private readonly manifestConcurrency: number;
  private readonly maxMountCandidates: number;
  /** Learned per registry: has the referrers API (true) or only the fallback tag (false). */
  private readonly referrersApi = new Map<string, boolean>();

  constructor(o: CopyEngineOptions = {}) {
    this.metrics = o.metrics;
    this.locations = o.locations ?? new BlobLocations();
    this.blobSlots = new Semaphore(o.blobConcurrency ?? 4);
    this.manifestConcurrency = o.manifestConcurrency ?? 4;
    this.maxMountCandidates = o.maxMountCandidates ?? 3;
    this.reader = new ImageReader(new ManifestCache(o.manifestCacheBytes));
  }

  /** What this engine learned about a registry's referrers API (undefined: not probed yet). */
  referrersApiOf(registry: string): boolean | undefined {
    return this.referrersApi.get(registry);
  }

  /**
   * Copies one source image to every target tag. Rejects only when the source image cannot be
   * resolved (not found, unauthorized…); every per-target failure is a Failed report instead.
   */
  async copyImage(req: CopyImageRequest): Promise<CopyImageResult> {
    throwIfAborted(req.signal, `copying ${repoName(req.source)}:${req.reference}`);
    const sourceDigest = await this.resolveSource(req);
    const run: CopyRun = {
      req,
      sourceDigest,
      dryRun: req.dryRun === true,
      blobMemo: new Map(),
      manifestMemo: new Map(),
      planned: new Map(),
      progressBytes: 0,
      sourceHeads: new Map(),
    };
    const perTarget = await Promise.all(req.targets.map((t) => this.copyToRepository(run, t)));
    const targets = perTarget.flat();
    if (!run.dryRun) for (const r of targets) this.metrics?.countTarget(r.action);
    return { sourceDigest, targets };
  }

  private async resolveSource(req: CopyImageRequest): Promise<string> {
    const ctx = { registry: req.source.registry, repository: req.source.repository, what: `${repoName(req.source)}:${req.reference}` };
    if (looksLikeDigest(req.reference)) return requireDigest(req.reference, ctx);
    if (req.sourceDigest) return requireDigest(req.sourceDigest, ctx);
    const head = await req.source.headManifest(req.reference);
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

  private tree(run: CopyRun): Promise<ImageNode> {
    run.tree ??= this.loadTree(run.req.source, run.sourceDigest);
    return run.tree;
  }

  private async loadTree(source: Repository, digest: string): Promise<ImageNode> {
    const node = await this.reader.tree(source, digest);
    // Each distinct manifest once: the tree is a DAG, and a child listed many times is one node.
    for (const n of allNodes(node)) {
      this.locations.recordImage(source.registry, source.repository, n.digest, allBlobs(n).map((b) => b.digest));
    }
    return node;
  }

  private async copyToRepository(run: CopyRun, target: CopyTarget): Promise<TargetReport[]> {
    const repo = target.repository;
    const reports: Array<{ report: TargetReport; tally: TargetTally }> = [];
    // Whether the source manifest is (or, in a dry run, would be) in this repository already.
    let present = sameRepository(run.req.source, repo);
    for (const tag of target.tags) {
      const tally = new TargetTally(run.dryRun ? undefined : this.metrics);
      const reference = `${repoName(repo)}:${tag}`;
      try {
        throwIfAborted(run.req.signal, `syncing ${reference}`);
        const head = await repo.headManifest(tag);
        if (head?.digest === run.sourceDigest) {
          present = true;
          this.locations.recordImage(repo.registry, repo.repository, run.sourceDigest);
          reports.push({ report: tally.report(reference, run.sourceDigest, TargetAction.UpToDate), tally });
          continue;
        }
        if (head && !run.req.overwrite) {
          const msg = `tag points to ${head.digest}, source is ${run.sourceDigest}; overwrite is false`;
          reports.push({ report: tally.report(reference, head.digest, TargetAction.Conflict, msg), tally });
          continue;
        }
        if (!present) present = (await repo.headManifest(run.sourceDigest)) !== undefined;
        const tree = await this.tree(run);
        let action: TargetAction;
        if (present) {
          tally.retag(allBlobs(tree));
          action = TargetAction.Retagged;
        } else {
          await this.ensureChildrenAndBlobs(run, repo, tree, tally);
          action = TargetAction.Copied;
        }
        throwIfAborted(run.req.signal, `tagging ${reference}`);
        if (!run.dryRun) await repo.putManifest(tag, { mediaType: tree.raw.mediaType, bytes: tree.raw.bytes });
        present = true;
        this.recordManifest(run, repo, tree);
        reports.push({ report: tally.report(reference, run.sourceDigest, action), tally });
      } catch (e) {
        const f = failure(e);
        reports.push({ report: tally.report(reference, run.sourceDigest, TargetAction.Failed, f.message, f.errorCode), tally });
      }
    }
    const carrier = reports.find((r) => r.report.action !== TargetAction.Failed && r.report.action !== TargetAction.Conflict);
    if (run.req.referrers && present && carrier) {
      try {
        await this.syncReferrers(run, repo, carrier.tally);
        // Referrer blobs are accounted on the first successful tag of the repository.
        const r = carrier.report;
        Object.assign(r, carrier.tally.report(r.reference, r.digest, r.action, r.message, r.errorCode));
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

  /** `node` is in the target (present before or just written): remember its blobs are there. */
  private recordManifest(run: CopyRun, repo: Repository, node: ImageNode): void {
    const blobs = allBlobs(node).map((b) => b.digest);
    if (run.dryRun) {
      for (const b of blobs) this.plan(run, repo, b);
      return;
    }
    this.locations.recordImage(repo.registry, repo.repository, node.digest, blobs);
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
        if (await repo.headManifest(node.digest)) {
          this.recordManifest(run, repo, node);
          return;
        }
        await this.ensureChildrenAndBlobs(run, repo, node, tally);
        throwIfAborted(run.req.signal, `pushing manifest ${node.digest} to ${repoName(repo)}`);
        if (!run.dryRun) await repo.putManifest(node.digest, { mediaType: node.raw.mediaType, bytes: node.raw.bytes });
        this.recordManifest(run, repo, node);
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
      // never holds a slot the holder needs.
      p = this.blobFlight.run(`${repo.registry}@${desc.digest}`, () =>
        this.blobSlots.run(() => this.transferBlob(run, repo, desc, imageDigest)),
      );
      run.blobMemo.set(key, p);
    }
    tally.blob(await p, desc);
  }

  private async transferBlob(run: CopyRun, repo: Repository, desc: Descriptor, imageDigest: string): Promise<BlobAction> {
    throwIfAborted(run.req.signal, `copying blob ${desc.digest} to ${repoName(repo)}`);
    if ((await repo.headBlob(desc.digest)) !== undefined) {
      if (run.dryRun) this.plan(run, repo, desc.digest);
      else this.locations.recordBlob(repo.registry, repo.repository, desc.digest);
      return 'exists';
    }
    const mountFrom = this.mountCandidates(run, repo, desc.digest, imageDigest);
    if (run.dryRun) {
      this.plan(run, repo, desc.digest);
      return mountFrom.length > 0 ? 'mount' : 'upload';
    }
    const source = run.req.source;
    const open = async (offset: number): Promise<BlobReader> => {
      const r = await source.getBlob(desc.digest, offset);
      return { size: r.size, stream: this.counting(run, desc.digest, r) };
    };
    const res = await repo.putBlob(desc, open, { mountFrom, ...(run.req.signal ? { signal: run.req.signal } : {}) });
    this.locations.recordBlob(repo.registry, repo.repository, desc.digest);
    return res.transfer;
  }

  /** Candidates may be other tenants' repositories: a mount is the registry's access decision. */
  private mountCandidates(run: CopyRun, repo: Repository, digest: string, imageDigest: string): string[] {
    const source = run.req.source;
    const known = this.locations.candidates(repo.registry, digest, { imageDigests: [imageDigest, run.sourceDigest] });
    const list = run.dryRun ? [...(run.planned.get(`${repo.registry}@${digest}`) ?? []), ...known] : known;
    if (source.registry === repo.registry && !list.includes(source.repository)) list.push(source.repository);
    return [...new Set(list)].filter((r) => r !== repo.repository).slice(0, this.maxMountCandidates);
  }

  private plan(run: CopyRun, repo: Repository, digest: string): void {
    const key = `${repo.registry}@${digest}`;
    const list = run.planned.get(key) ?? [];
    if (!list.includes(repo.repository)) list.unshift(repo.repository);
    run.planned.set(key, list);
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

  private referrerPlan(run: CopyRun): Promise<ReferrerPlan> {
    run.referrerPlan ??= this.loadReferrerPlan(run);
    return run.referrerPlan;
  }

  private sourceTags(run: CopyRun): Promise<readonly string[]> {
    if (run.req.sourceTags) return Promise.resolve(run.req.sourceTags);
    run.sourceTagList ??= run.req.source.listTags();
    return run.sourceTagList;
  }

  private async loadReferrerPlan(run: CopyRun): Promise<ReferrerPlan> {
    const source = run.req.source;
    const subject = run.sourceDigest;
    const tags = await this.sourceTags(run);
    const plan: ReferrerPlan = { descriptors: [], cosign: cosignTags(subject, tags) };
    if (this.referrersApi.get(source.registry) !== false) {
      const list = await source.referrers(subject);
      this.learnReferrersApi(source.registry, list !== undefined);
      if (list !== undefined) {
        plan.descriptors = list;
        return plan;
      }
    }
    const tag = fallbackTag(subject);
    if (!tags.includes(tag)) return plan;
    try {
      const raw = await source.getManifest(tag);
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

  private learnReferrersApi(registry: string, has: boolean): void {
    if (this.referrersApi.get(registry) === has) return;
    this.referrersApi.set(registry, has);
    this.metrics?.setCapability(registry, 'referrers_api', has);
  }

  /** Copies the image's referrers and cosign tags to `repo`, where the image is present. */
  private async syncReferrers(run: CopyRun, repo: Repository, tally: TargetTally): Promise<void> {
    const plan = await this.referrerPlan(run);
    if (plan.descriptors.length > 0) await this.syncReferrerList(run, repo, plan, tally);
    for (const tag of plan.cosign) await this.syncCosignTag(run, repo, tag, tally);
  }

  private async copyArtifact(run: CopyRun, repo: Repository, digest: string, tally: TargetTally): Promise<void> {
    const node = await this.reader.tree(run.req.source, digest);
    await this.ensureManifest(run, repo, node, tally);
  }

  private async syncReferrerList(run: CopyRun, repo: Repository, plan: ReferrerPlan, tally: TargetTally): Promise<void> {
    const subject = run.sourceDigest;
    if (this.referrersApi.get(repo.registry) !== false) {
      const listed = await repo.referrers(subject);
      this.learnReferrersApi(repo.registry, listed !== undefined);
      if (listed !== undefined) {
        // The registry indexes a pushed manifest by its subject: pushing what is missing is enough.
        const have = new Set(listed.map((d) => d.digest));
        for (const d of plan.descriptors) if (!have.has(d.digest)) await this.copyArtifact(run, repo, d.digest, tally);
        return;
      }
    }
    const tag = fallbackTag(subject);
    const desired = plan.fallback
      ? { mediaType: plan.fallback.mediaType, bytes: plan.fallback.bytes, digest: plan.fallback.digest }
      : buildFallbackIndex(plan.descriptors);
    const head = await repo.headManifest(tag);
    // An index we wrote is only ever written after the artifacts it lists: equal means done.
    if (head?.digest === desired.digest) return;
    let existing: ManifestJson | undefined;
    if (head) existing = parseManifest(await repo.getManifest(tag, { expectDigest: head.digest }), `${repoName(repo)}:${tag}`);
    const merge = existing ? mergeFallbackIndex(existing, plan.descriptors) : undefined;
    const toCopy = existing ? (merge?.added ?? []) : plan.descriptors;
    for (const d of toCopy) await this.copyArtifact(run, repo, d.digest, tally);
    if (existing && !merge) return;
    throwIfAborted(run.req.signal, `writing ${repoName(repo)}:${tag}`);
    if (run.dryRun) return;
    if (merge) {
      const bytes = new TextEncoder().encode(JSON.stringify(merge.json));
      await repo.putManifest(tag, { mediaType: merge.json.mediaType ?? MediaType.OciIndex, bytes });
    } else {
      await repo.putManifest(tag, { mediaType: desired.mediaType, bytes: desired.bytes });
    }
  }

  private sourceHead(run: CopyRun, tag: string): Promise<string | undefined> {
    let p = run.sourceHeads.get(tag);
    if (!p) {
      p = run.req.source.headManifest(tag).then((h) => h?.digest);
      run.sourceHeads.set(tag, p);
    }
    return p;
  }

  /** cosign's `sha256-<hex>.sig` style tags are copied as tags, like the image itself. */
  private async syncCosignTag(run: CopyRun, repo: Repository, tag: string, tally: TargetTally): Promise<void> {
    const srcDigest = await this.sourceHead(run, tag);
    if (!srcDigest) return;
    const head = await repo.headManifest(tag);
    if (head?.digest === srcDigest) return;
    // A cosign tag accumulates signatures; never replace another signer's when told not to.
    if (head && !run.req.overwrite) return;
    const node = await this.reader.tree(run.req.source, srcDigest);
    await this.ensureManifest(run, repo, node, tally);
    throwIfAborted(run.req.signal, `tagging ${repoName(repo)}:${tag}`);
    if (!run.dryRun) await repo.putManifest(tag, { mediaType: node.raw.mediaType, bytes: node.raw.bytes });
  }
}
