/**
 * The content interface the copy engine speaks. The registry client implements it; an OCI image
 * layout on disk will too. Registry-only details (auth, status codes, upload sessions) stay behind it.
 */
import type { Readable } from 'node:stream';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
  urls?: string[];
}

/** What a HEAD (or a GET) tells about a manifest, without its body. */
export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

/** A manifest exactly as the registry stored it: `bytes` are never re-serialized. */
export interface RawManifest extends ManifestInfo {
  bytes: Uint8Array;
}

export interface BlobReader {
  /** Bytes from `offset` (0 unless resuming) to the end. */
  stream: Readable;
  size: number;
}

/** How a blob reached the target. `exists` is decided by the caller with headBlob. */
export type BlobTransfer = 'mount' | 'upload';

/** Per call: cancellation, and what to do while the registry makes the call wait. */
export interface CallOptions {
  /** Aborted: the call ends with CANCELLED, also while it waits for the registry. */
  signal?: AbortSignal;
  /**
   * Wraps each wait before a request is sent (a registry's Retry-After pause, a request budget):
   * resolves when the call may go on. A caller holding a concurrency slot gives it up meanwhile, so
   * work on other registries is not held up by this one.
   */
  whileWaiting?: (wait: Promise<void>) => Promise<void>;
}

export interface PutBlobOptions extends CallOptions {
  /**
   * Repositories on the same registry believed to hold the blob, best first. Each is tried as a
   * cross-repository mount before uploading; a registry that answers "not mounted" gets the upload
   * in the session it opened.
   */
  mountFrom?: readonly string[];
  /**
   * Those of `mountFrom` that hold the blob only as an upload no pushed manifest references yet.
   * A registry may refuse to mount from them (ECR mounts only referenced blobs) and still mount
   * fine: their refusals do not count toward giving up on mounting.
   */
  provisionalMountFrom?: readonly string[];
  /** Told each candidate the registry would not mount from (a 202, or an error answer). */
  onMountRefused?: (from: string) => void;
}

export interface PutBlobResult {
  transfer: BlobTransfer;
  /** The repository it was mounted from, when transfer is 'mount'. */
  mountedFrom?: string;
}

/**
 * What a backend can do, declared up front so the engine does not learn it by trying: 'yes'/'no'
 * are known without a request; 'learn' means only the remote side can tell (a registry answers a
 * mount with 201 or 202, a referrers call with an index or a 404), and the backend learns it.
 */
export type Support = 'yes' | 'no' | 'learn';

export interface BackendCapabilities {
  /** Cross-repository mount within the same blob store. */
  readonly mount: Support;
  /** The referrers API (else referrers are found through the `sha256-<hex>` fallback tag). */
  readonly referrersApi: Support;
  /** The repository's tags can be listed. */
  readonly tagListing: boolean;
}

export interface GetManifestOptions extends CallOptions {
  /**
   * For a GET by tag: the digest a HEAD (or an index) promised for it. The content must hash to it,
   * so a registry cannot answer a HEAD with one manifest and the GET with another.
   */
  expectDigest?: string;
}

/**
 * One repository in one registry (or one layout). Every string and structure it returns from the
 * remote side is checked: tags are in the tag grammar, digests are sha256 digests, descriptors have
 * the shape the spec gives them.
 */
export interface Repository {
  /** Canonical registry host (`docker.io`, `localhost:5000`, `[::1]:5000`). */
  readonly registry: string;
  /** Repository path (`library/nginx`). */
  readonly repository: string;
  /**
   * Who reads what through this object: equal for two Repository objects only when they read the
   * same repository with the same credentials (and transport settings). Content read through one
   * may be served from a cache to the other; never across identities, since a digest is not a
   * secret and knowing one must not be enough to receive the content.
   */
  readonly identity: string;
  /**
   * The blob store this repository's blobs live in: two repositories with the same key can mount
   * from each other, and what is known about where blobs live, single flights and learned
   * behaviour are keyed by it. For a registry, its canonical host; for a memory store, its unique id.
   */
  readonly blobStore: string;
  /** What this backend can do (see BackendCapabilities). */
  readonly capabilities: BackendCapabilities;

  /** HEAD by tag or digest; undefined when absent. Never a GET (quota, retention). */
  headManifest(reference: string, options?: CallOptions): Promise<ManifestInfo | undefined>;
  /**
   * GET by tag or digest; content verified against the digest (a digest reference, or
   * `expectDigest` for a tag); throws OciError MANIFEST_UNKNOWN when absent.
   */
  getManifest(reference: string, options?: GetManifestOptions): Promise<RawManifest>;
  /** PUT the exact bytes under a tag or digest; returns the digest the registry reported. */
  putManifest(reference: string, manifest: { mediaType: string; bytes: Uint8Array }, options?: CallOptions): Promise<string>;

  /**
   * Size when present, undefined when absent. A size other than the descriptor's is not the blob
   * (zot's deduplicated storage can answer 200 with a 0-byte stub, project-zot/zot#4427).
   */
  headBlob(digest: string, options?: CallOptions): Promise<number | undefined>;
  /** Streamed blob read; verifies nothing (the writer verifies). */
  getBlob(digest: string, offset?: number, options?: CallOptions): Promise<BlobReader>;
  /**
   * Make `desc` present here: mount from `mountFrom` when possible, else upload from `open()`,
   * hashing on the fly; nothing is committed under the digest unless the bytes match it.
   * `open` is called at most once per upload attempt and not at all when a mount succeeds.
   */
  putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult>;
  /**
   * Mount `desc` from repository `from` of the same blob store, without transferring bytes. True
   * when it is now present here; false when the store would not mount it (the blob is absent
   * there, mounting is refused or unsupported). Never uploads.
   */
  mountBlob(desc: Descriptor, from: string, options?: CallOptions): Promise<boolean>;

  /**
   * All valid tags (paginated internally, bounded). An absent repository yields []; a later page
   * that fails is an error, never a shorter list.
   */
  listTags(options?: CallOptions): Promise<string[]>;
  /**
   * Referrers of `digest` through the referrers API (checked descriptors, bounded); undefined when
   * the registry has no referrers API (the caller then uses the `sha256-<hex>` fallback tag): a 404,
   * or a first page that is not a referrers index at all (a redirect, 400, 401, 403, an HTML page).
   */
  referrers(digest: string, options?: CallOptions): Promise<Descriptor[] | undefined>;
  /**
   * Deletes a tag (OCI distribution 1.1: the manifest stays) or a manifest by digest (every tag
   * pointing at it goes with it). Refusals are OciErrors carrying the status: registries without
   * tag deletion answer a tag with 400 (distribution 2.x: DIGEST_INVALID) or 405, and a registry
   * that allows no deletion at all answers 405 UNSUPPORTED. Absent on backends that cannot delete.
   */
  deleteManifest?(reference: string, options?: CallOptions): Promise<void>;
  /**
   * Finishes what was written through this object; whoever opened it calls it once, when done.
   * Backends that finish on close have it: an `oci-archive:` target writes index.json and renames
   * the archive into place only here, so a run that fails never leaves a partial archive, and a
   * close that fails means nothing was written.
   */
  close?(): Promise<void>;
}

/** Learned per registry, remembered for the process and exported as a metric. */
export interface RegistryCapabilities {
  /**
   * undefined = not learned yet. false = mounts from repositories known to hold the blob were
   * refused repeatedly (tried again after a while, see MOUNT_REPROBE_MS).
   */
  mount?: boolean;
  referrersApi?: boolean;
}

/** Parsed view of a manifest's JSON, for walking children; never written back. */
export interface ManifestJson {
  schemaVersion?: number;
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}
