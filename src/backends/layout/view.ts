/**
 * What an OCI image layout means as a Repository, whatever holds it: a directory (`oci:`) or a tar
 * file (`oci-archive:`). Manifests and blobs are stored by digest with their exact bytes; tags are
 * `org.opencontainers.image.ref.name` annotations on index.json entries, as skopeo writes them.
 * Subclasses say how bytes are found and stored; the rules (reference grammar, what a manifest may
 * name, how referrers are kept and found) live here once.
 */
import type { Readable } from 'node:stream';
import type {
  BackendCapabilities,
  BlobReader,
  CallOptions,
  Descriptor,
  GetManifestOptions,
  ManifestInfo,
  ManifestJson,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
  Repository,
} from '../../oci/content.js';
import { sha256Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { MAX_MANIFEST_BYTES, MediaType } from '../../oci/media-types.js';
import { isSha256Digest, isValidTag, looksLikeDigest, quote } from '../../oci/names.js';
import { checkManifestPut, checkReference, mountBeforeStore, throwIfAborted } from '../local-checks.js';

/** The annotation skopeo, umoci and containerd use to name an index.json entry. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const LAYOUT_VERSION = '1.0.0';
/** The most index.json entries plus their index children read to answer referrers. */
export const MAX_REFERRER_SCAN = 10_000;
/** The largest index.json read: a layout is local, but one index.json must not exhaust memory. */
export const MAX_INDEX_JSON_BYTES = 64 * 1024 * 1024;

export const LAYOUT_CAPABILITIES: BackendCapabilities = Object.freeze({ mount: 'yes', referrersApi: 'yes', tagListing: true });

export interface IndexJson {
  schemaVersion?: number;
  mediaType?: string;
  manifests: Descriptor[];
  [k: string]: unknown;
}

export const emptyIndex = (): IndexJson => ({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });

export abstract class LayoutView implements Repository {
  readonly capabilities = LAYOUT_CAPABILITIES;
  abstract readonly registry: string;
  abstract readonly repository: string;
  abstract readonly identity: string;
  abstract readonly blobStore: string;

  /**
   * Within a layout holding several repositories (a bundle), the one this view reads and writes:
   * its tags are the ref names `<scope>:<tag>`. Unscoped, a ref name is the tag itself.
   */
  protected readonly scope: string | undefined = undefined;

  // ---- what a subclass provides -------------------------------------------------------------

  /** index.json (checked with parseIndex); an absent layout reads as empty. */
  protected abstract loadIndex(what: string): Promise<IndexJson>;
  /** Size of the blob when present, else undefined. */
  protected abstract blobSize(digest: string, what: string): Promise<number | undefined>;
  /** A blob's bytes whole (only ever asked for up to MAX_MANIFEST_BYTES); undefined when absent. */
  protected abstract readBlob(digest: string, what: string): Promise<Buffer | undefined>;
  /** A blob's bytes from `offset`, `size` being its full size. */
  protected abstract blobStream(digest: string, offset: number, size: number, what: string, options?: CallOptions): Promise<Readable>;
  /** Stores manifest bytes already checked to hash to `digest`. */
  protected abstract storeManifest(digest: string, bytes: Buffer, what: string): Promise<void>;
  /** Streams a blob from `open(0)` into the store, verified against `desc` on the way. */
  protected abstract storeBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, what: string, options?: CallOptions): Promise<void>;
  /** Reads index.json, lets `edit` change it, and writes it back when `edit` returns true. */
  protected abstract editIndex(what: string, edit: (idx: IndexJson) => boolean): Promise<void>;
  /** Whether `from` names a repository of this blob store (so a "mount" from it is a presence check). */
  protected abstract sameStore(from: string): boolean;

  // ---- shared ---------------------------------------------------------------------------------

  protected where(reference?: string): string {
    const base = `${this.registry}${this.repository}`;
    if (!reference) return base;
    return looksLikeDigest(reference) ? `${base}@${reference}` : `${base}:${quote(reference)}`;
  }

  protected err(code: OciError['code'], what: string, detail: string, cause?: unknown): OciError {
    return new OciError({ code, message: `${what}: ${detail}`, registry: this.registry, repository: this.repository, ...(cause ? { cause } : {}) });
  }

  protected ioErr(what: string, e: unknown): OciError {
    if (e instanceof OciError) return e;
    const ne = e as NodeJS.ErrnoException;
    return this.err('SERVER_ERROR', what, `${ne.code ?? 'I/O error'}: ${ne.message?.split('\n')[0] ?? String(e)}`, e);
  }

  /** The ref name a tag is stored under in this view. */
  protected refName(tag: string): string {
    return this.scope === undefined ? tag : `${this.scope}:${tag}`;
  }

  /** The tag of a ref name in this view, or undefined when the entry belongs to no tag of it. */
  protected tagOf(refName: string | undefined): string | undefined {
    if (refName === undefined) return undefined;
    if (this.scope === undefined) return isValidTag(refName) ? refName : undefined;
    const prefix = `${this.scope}:`;
    if (!refName.startsWith(prefix)) return undefined;
    const tag = refName.slice(prefix.length);
    return isValidTag(tag) ? tag : undefined;
  }

  /** index.json bytes → checked structure. */
  protected parseIndex(text: Buffer, what: string): IndexJson {
    if (text.length > MAX_INDEX_JSON_BYTES) throw this.err('MANIFEST_TOO_LARGE', what, `index.json is ${text.length} bytes, over the ${MAX_INDEX_JSON_BYTES}-byte limit`);
    let json: unknown;
    try {
      json = JSON.parse(text.toString('utf8'));
    } catch {
      throw this.err('PROTOCOL', what, 'index.json is not JSON');
    }
    const idx = json as IndexJson;
    if (typeof json !== 'object' || json === null || !Array.isArray(idx.manifests)) throw this.err('PROTOCOL', what, 'index.json has no manifests list');
    for (const d of idx.manifests) {
      if (typeof d !== 'object' || d === null || !isSha256Digest(d.digest) || typeof d.size !== 'number' || typeof d.mediaType !== 'string') {
        throw this.err('PROTOCOL', what, `index.json holds an invalid descriptor ${quote(JSON.stringify(d) ?? '')}`);
      }
    }
    return idx;
  }

  /** Refuses an oci-layout file declaring a version other than the one this reads. */
  protected checkLayoutVersion(text: string | undefined, what: string): void {
    if (text === undefined) return;
    let v: unknown;
    try {
      v = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      v = undefined;
    }
    if (v !== LAYOUT_VERSION) throw this.err('UNSUPPORTED', what, `oci-layout declares imageLayoutVersion ${quote(String(v))}, only ${LAYOUT_VERSION} is supported`);
  }

  /** The last index.json entry carrying `tag` (skopeo replaces, so there is normally one). */
  private async resolveTag(tag: string, what: string): Promise<Descriptor | undefined> {
    const idx = await this.loadIndex(what);
    const name = this.refName(tag);
    return idx.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === name).pop();
  }

  /** Manifest bytes by digest, verified; undefined when absent or not a manifest. */
  protected async readManifest(digest: string, what: string): Promise<{ bytes: Buffer; json: ManifestJson } | undefined> {
    const size = await this.blobSize(digest, what);
    if (size === undefined || size > MAX_MANIFEST_BYTES) return undefined;
    const bytes = await this.readBlob(digest, what);
    if (!bytes) return undefined;
    const got = sha256Digest(bytes);
    if (got !== digest) throw this.err('DIGEST_INVALID', what, `blob ${digest} in the layout hashes to ${got}`);
    try {
      const json = JSON.parse(bytes.toString('utf8')) as unknown;
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
      return { bytes, json: json as ManifestJson };
    } catch {
      return undefined;
    }
  }

  protected mediaTypeOf(json: ManifestJson, entry?: Descriptor): string | undefined {
    if (typeof json.mediaType === 'string') return json.mediaType;
    if (entry?.mediaType) return entry.mediaType;
    if (Array.isArray(json.manifests)) return MediaType.OciIndex;
    if (json.config) return MediaType.OciManifest;
    return undefined;
  }

  private async lookup(reference: string, what: string): Promise<RawManifest | undefined> {
    checkReference(reference, this.where(), (c, w, d) => this.err(c, w, d));
    let entry: Descriptor | undefined;
    let digest = reference;
    if (!looksLikeDigest(reference)) {
      entry = await this.resolveTag(reference, what);
      if (!entry) return undefined;
      digest = entry.digest;
    }
    const m = await this.readManifest(digest, what);
    if (!m) {
      if (entry) throw this.err('MANIFEST_BLOB_UNKNOWN', what, `index.json names ${digest}, which the layout does not hold`);
      return undefined;
    }
    const mediaType = this.mediaTypeOf(m.json, entry);
    if (!mediaType) return undefined;
    return { digest, mediaType, size: m.bytes.length, bytes: new Uint8Array(m.bytes) };
  }

  async headManifest(reference: string, options?: CallOptions): Promise<ManifestInfo | undefined> {
    const what = `HEAD ${this.where(reference)}`;
    throwIfAborted(options, what);
    const m = await this.lookup(reference, what);
    return m ? { digest: m.digest, mediaType: m.mediaType, size: m.size } : undefined;
  }

  async getManifest(reference: string, options?: GetManifestOptions): Promise<RawManifest> {
    const what = `GET ${this.where(reference)}`;
    throwIfAborted(options, what);
    const m = await this.lookup(reference, what);
    if (!m) throw this.err('MANIFEST_UNKNOWN', what, 'manifest unknown');
    if (options?.expectDigest !== undefined && options.expectDigest !== m.digest) {
      throw this.err('DIGEST_INVALID', what, `content hashes to ${m.digest}, expected ${options.expectDigest}`);
    }
    return m;
  }

  async putManifest(reference: string, manifest: { mediaType: string; bytes: Uint8Array }, options?: CallOptions): Promise<string> {
    const what = `PUT ${this.where(reference)}`;
    throwIfAborted(options, what);
    checkReference(reference, this.where(), (c, w, d) => this.err(c, w, d));
    const { digest, json } = checkManifestPut<ManifestJson>(reference, manifest.bytes, what, (c, w, d) => this.err(c, w, d));
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw this.err('MANIFEST_INVALID', what, 'not a JSON object');
    for (const k of ['layers', 'manifests'] as const) {
      if (json[k] !== undefined && !Array.isArray(json[k])) throw this.err('MANIFEST_INVALID', what, `${k} is not a list`);
    }
    const list = (v: unknown): Descriptor[] => (Array.isArray(v) ? (v as Descriptor[]) : []);
    // As a registry does: a manifest is committed only over content the layout holds, so a tag
    // never names an image a reader cannot pull.
    for (const c of [...(json.config ? [json.config] : []), ...list(json.layers), ...list(json.manifests)]) {
      if (!isSha256Digest(c?.digest)) throw this.err('MANIFEST_INVALID', what, `invalid digest ${quote(String(c?.digest))}`);
      if ((await this.blobSize(c.digest, what)) === undefined) throw this.err('MANIFEST_BLOB_UNKNOWN', what, `blob ${c.digest} unknown`);
    }
    await this.storeManifest(digest, Buffer.from(manifest.bytes), what);
    const tag = looksLikeDigest(reference) ? undefined : reference;
    // A referrer pushed by digest is reachable from nothing else: index.json keeps it (with its
    // subject, so a scan finds it without reading it), as layout garbage collectors keep only
    // what index.json reaches.
    if (tag === undefined && !json.subject) return digest;
    await this.editIndex(what, (idx) => {
      const entry: Descriptor & { subject?: Descriptor } = { mediaType: manifest.mediaType, digest, size: manifest.bytes.length };
      if (tag !== undefined) {
        const name = this.refName(tag);
        idx.manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== name);
        entry.annotations = { [REF_NAME_ANNOTATION]: name };
      } else {
        if (idx.manifests.some((d) => d.digest === digest && d.annotations?.[REF_NAME_ANNOTATION] === undefined)) return false;
        const artifactType = json.artifactType ?? json.config?.mediaType;
        if (artifactType) entry.artifactType = artifactType;
        if (json.subject) entry.subject = { mediaType: json.subject.mediaType, digest: json.subject.digest, size: json.subject.size };
      }
      idx.manifests.push(entry);
      return true;
    });
    return digest;
  }

  async headBlob(digest: string, options?: CallOptions): Promise<number | undefined> {
    const what = `HEAD ${this.where(digest)}`;
    throwIfAborted(options, what);
    if (!isSha256Digest(digest)) throw this.err('DIGEST_INVALID', this.where(), `invalid digest ${quote(digest)}`);
    return this.blobSize(digest, what);
  }

  async getBlob(digest: string, offset = 0, options?: CallOptions): Promise<BlobReader> {
    const what = `GET blob ${this.where(digest)}`;
    throwIfAborted(options, what);
    if (!isSha256Digest(digest)) throw this.err('DIGEST_INVALID', what, `invalid digest ${quote(digest)}`);
    const size = await this.blobSize(digest, what);
    if (size === undefined) throw this.err('BLOB_UNKNOWN', what, this.absentBlobDetail(digest));
    if (offset < 0 || offset > size) throw this.err('RANGE_INVALID', what, `offset ${offset} outside 0-${size}`);
    return { stream: await this.blobStream(digest, offset, size, what, options), size: size - offset };
  }

  /** Why a blob is absent, for the BLOB_UNKNOWN message (an archive knows more). */
  protected absentBlobDetail(_digest: string): string {
    return 'blob unknown';
  }

  async mountBlob(desc: Descriptor, from: string, options?: CallOptions): Promise<boolean> {
    throwIfAborted(options, `mount ${desc.digest} into ${this.where()}`);
    // The layout's only blob store is its own: "mounting" from it means the blob is already here.
    if (!this.sameStore(from) || !isSha256Digest(desc.digest)) return false;
    return (await this.blobSize(desc.digest, `mount ${desc.digest}`)) === desc.size;
  }

  async putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult> {
    const what = `upload ${desc.digest} to ${this.where()}`;
    const mounted = await mountBeforeStore(desc, options, what, (from) => this.mountBlob(desc, from, options), (c, w, d) => this.err(c, w, d));
    if (mounted) return mounted;
    await this.storeBlob(desc, open, what, options);
    return { transfer: 'upload' };
  }

  async listTags(options?: CallOptions): Promise<string[]> {
    const what = `list tags of ${this.where()}`;
    throwIfAborted(options, what);
    const idx = await this.loadIndex(what);
    const tags = new Set<string>();
    for (const d of idx.manifests) {
      const tag = this.tagOf(d.annotations?.[REF_NAME_ANNOTATION]);
      if (tag !== undefined) tags.add(tag);
    }
    return [...tags].sort();
  }

  async referrers(digest: string, options?: CallOptions): Promise<Descriptor[] | undefined> {
    const what = `referrers of ${this.where(digest)}`;
    throwIfAborted(options, what);
    if (!isSha256Digest(digest)) throw this.err('DIGEST_INVALID', what, `invalid digest ${quote(digest)}`);
    const idx = await this.loadIndex(what);
    const out = new Map<string, Descriptor>();
    const seen = new Set<string>();
    const queue = idx.manifests.map((d) => d.digest);
    // index.json entries and the manifests their indexes list: what the layout keeps reachable.
    while (queue.length > 0) {
      const d = queue.shift()!;
      if (seen.has(d)) continue;
      if (seen.size >= MAX_REFERRER_SCAN) throw this.err('MANIFEST_TOO_LARGE', what, `more than ${MAX_REFERRER_SCAN} manifests to scan`);
      seen.add(d);
      throwIfAborted(options, what);
      const m = await this.readManifest(d, what);
      if (!m) continue;
      for (const c of Array.isArray(m.json.manifests) ? m.json.manifests : []) if (isSha256Digest(c?.digest)) queue.push(c.digest);
      if (m.json.subject?.digest !== digest) continue;
      const mediaType = this.mediaTypeOf(m.json);
      if (!mediaType) continue;
      const artifactType = m.json.artifactType ?? m.json.config?.mediaType;
      out.set(d, {
        mediaType,
        digest: d,
        size: m.bytes.length,
        ...(artifactType ? { artifactType } : {}),
        ...(m.json.annotations ? { annotations: m.json.annotations } : {}),
      });
    }
    return [...out.values()];
  }
}
