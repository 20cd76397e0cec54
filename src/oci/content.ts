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

export interface PutBlobOptions {
  /**
   * Repositories on the same registry believed to hold the blob, best first. Each is tried as a
   * cross-repository mount before uploading; a registry that answers "not mounted" gets the upload
   * in the session it opened.
   */
  mountFrom?: readonly string[];
  /** Called once per attempt that will actually read bytes from the source (for accounting). */
  signal?: AbortSignal;
}

export interface PutBlobResult {
  transfer: BlobTransfer;
  /** The repository it was mounted from, when transfer is 'mount'. */
  mountedFrom?: string;
}

export interface GetManifestOptions {
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

  /** HEAD by tag or digest; undefined when absent. Never a GET (quota, retention). */
  headManifest(reference: string): Promise<ManifestInfo | undefined>;
  /**
   * GET by tag or digest; content verified against the digest (a digest reference, or
   * `expectDigest` for a tag); throws OciError MANIFEST_UNKNOWN when absent.
   */
  getManifest(reference: string, options?: GetManifestOptions): Promise<RawManifest>;
  /** PUT the exact bytes under a tag or digest; returns the digest the registry reported. */
  putManifest(reference: string, manifest: { mediaType: string; bytes: Uint8Array }): Promise<string>;

  /** Size when present, undefined when absent. */
  headBlob(digest: string): Promise<number | undefined>;
  /** Streamed blob read; verifies nothing (the writer verifies). */
  getBlob(digest: string, offset?: number): Promise<BlobReader>;
  /**
   * Make `desc` present here: mount from `mountFrom` when possible, else upload from `open()`,
   * hashing on the fly; nothing is committed under the digest unless the bytes match it.
   * `open` is called at most once per upload attempt and not at all when a mount succeeds.
   */
  putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult>;

  /** All valid tags (paginated internally, bounded). An absent repository yields []. */
  listTags(): Promise<string[]>;
  /**
   * Referrers of `digest` through the referrers API (checked descriptors, bounded); undefined when
   * the registry has no referrers API (the caller then uses the `sha256-<hex>` fallback tag).
   */
  referrers(digest: string): Promise<Descriptor[] | undefined>;
}

/** Learned per registry, remembered for the process and exported as a metric. */
export interface RegistryCapabilities {
  /** undefined = not learned yet. false = a mount was answered 202 from a repo known to hold the blob. */
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
