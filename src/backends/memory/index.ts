/**
 * A backend in memory: a Map-backed blob store shared by its repositories, manifests and tags per
 * repository. It verifies what it is given as a registry does, so engine tests that do not need
 * the wire run against it in milliseconds.
 */
import { Readable } from 'node:stream';
import type {
  BackendCapabilities,
  BlobReader,
  CallOptions,
  Descriptor,
  GetManifestOptions,
  ManifestInfo,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
  Repository,
} from '../../oci/content.js';
import { sha256Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { isSha256Digest, isValidRepository, looksLikeDigest, quote } from '../../oci/names.js';
import { checkManifestPut, checkReference, mountBeforeStore, throwIfAborted } from '../local-checks.js';

export interface MemoryStoreOptions {
  /** Serve the referrers API (default true); without it referrers are found by the fallback tag. */
  referrersApi?: boolean;
  /** Allow cross-repository mounts within the store (default true). */
  mount?: boolean;
  /**
   * What deleteManifest allows, as registries differ: `tags` (default) deletes tags and digests
   * (OCI distribution 1.1); `digests` answers a tag with 400 DIGEST_INVALID as distribution 2.x
   * does; `none` answers 405 UNSUPPORTED (a registry with deletion disabled).
   */
  deletion?: 'tags' | 'digests' | 'none';
}

interface StoredManifest {
  mediaType: string;
  bytes: Uint8Array;
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface RepoState {
  blobs: Set<string>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

let storeCount = 0;

/** One blob store (a "registry"): repositories in it can mount from each other. */
export class MemoryStore {
  /** Unique per store, usable as a registry name in messages and as the blob store key. */
  readonly id: string;
  readonly capabilities: BackendCapabilities;
  /** @internal */
  readonly deletion: 'tags' | 'digests' | 'none';
  private readonly blobs = new Map<string, Uint8Array>();
  private readonly repos = new Map<string, RepoState>();

  constructor(o: MemoryStoreOptions = {}) {
    this.id = `memory-${++storeCount}`;
    this.capabilities = Object.freeze({
      mount: o.mount === false ? 'no' : 'yes',
      referrersApi: o.referrersApi === false ? 'no' : 'yes',
      tagListing: true,
    });
    this.deletion = o.deletion ?? 'tags';
  }

  repository(name: string): Repository {
    if (!isValidRepository(name)) throw new OciError({ code: 'INVALID_REFERENCE', message: `${this.id}: invalid repository name ${quote(name)}`, registry: this.id });
    return new MemoryRepository(this, name);
  }

  /** @internal */
  state(name: string, create: boolean): RepoState | undefined {
    let s = this.repos.get(name);
    if (!s && create) this.repos.set(name, (s = { blobs: new Set(), manifests: new Map(), tags: new Map() }));
    return s;
  }

  /** @internal */
  blob(digest: string): Uint8Array | undefined {
    return this.blobs.get(digest);
  }

  /** @internal */
  commitBlob(name: string, digest: string, bytes: Uint8Array): void {
    this.blobs.set(digest, bytes);
    this.state(name, true)!.blobs.add(digest);
  }
}

class MemoryRepository implements Repository {
  readonly registry: string;
  readonly blobStore: string;
  readonly identity: string;
  readonly capabilities: BackendCapabilities;

  constructor(
    private readonly store: MemoryStore,
    readonly repository: string,
  ) {
    this.registry = store.id;
    this.blobStore = store.id;
    this.identity = `${store.id}/${repository}`;
    this.capabilities = store.capabilities;
  }

  private where(reference?: string): string {
    const base = `${this.registry}/${this.repository}`;
    if (!reference) return base;
    return looksLikeDigest(reference) ? `${base}@${reference}` : `${base}:${quote(reference)}`;
  }

  private err(code: OciError['code'], what: string, detail: string): OciError {
    return new OciError({ code, message: `${what}: ${detail}`, registry: this.registry, repository: this.repository });
  }

  private checkReference(reference: string): void {
    checkReference(reference, this.where(), (c, w, d) => this.err(c, w, d));
  }

  private resolve(reference: string): { digest: string; m: StoredManifest } | undefined {
    this.checkReference(reference);
    const s = this.store.state(this.repository, false);
    const digest = looksLikeDigest(reference) ? reference : s?.tags.get(reference);
    const m = digest === undefined ? undefined : s?.manifests.get(digest);
    return m && digest ? { digest, m } : undefined;
  }

  async headManifest(reference: string, options?: CallOptions): Promise<ManifestInfo | undefined> {
    throwIfAborted(options, `HEAD ${this.where(reference)}`);
    const r = this.resolve(reference);
    return r ? { digest: r.digest, mediaType: r.m.mediaType, size: r.m.bytes.length } : undefined;
  }

  async getManifest(reference: string, options?: GetManifestOptions): Promise<RawManifest> {
    const what = `GET ${this.where(reference)}`;
    throwIfAborted(options, what);
    const r = this.resolve(reference);
    if (!r) throw this.err('MANIFEST_UNKNOWN', what, 'manifest unknown');
    if (options?.expectDigest !== undefined && options.expectDigest !== r.digest) {
      throw this.err('DIGEST_INVALID', what, `content hashes to ${r.digest}, expected ${options.expectDigest}`);
    }
    return { digest: r.digest, mediaType: r.m.mediaType, size: r.m.bytes.length, bytes: Uint8Array.from(r.m.bytes) };
  }

  async putManifest(reference: string, manifest: { mediaType: string; bytes: Uint8Array }, options?: CallOptions): Promise<string> {
    const what = `PUT ${this.where(reference)}`;
    throwIfAborted(options, what);
    this.checkReference(reference);
    type PutJson = { subject?: Descriptor; artifactType?: string; config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[]; annotations?: Record<string, string> };
    const { digest, json } = checkManifestPut<PutJson>(reference, manifest.bytes, what, (c, w, d) => this.err(c, w, d));
    const s = this.store.state(this.repository, true)!;
    // As a registry does: every blob and child a manifest names must be present first.
    for (const b of [...(json.config ? [json.config] : []), ...(json.layers ?? [])]) {
      if (!s.blobs.has(b.digest)) throw this.err('MANIFEST_BLOB_UNKNOWN', what, `blob ${b.digest} unknown`);
    }
    for (const c of json.manifests ?? []) {
      if (!s.manifests.has(c.digest)) throw this.err('MANIFEST_BLOB_UNKNOWN', what, `manifest ${c.digest} unknown`);
    }
    s.manifests.set(digest, {
      mediaType: manifest.mediaType,
      bytes: Uint8Array.from(manifest.bytes),
      ...(json.subject?.digest ? { subject: json.subject.digest } : {}),
      ...(json.artifactType ?? json.config?.mediaType ? { artifactType: json.artifactType ?? json.config?.mediaType } : {}),
      ...(json.annotations ? { annotations: json.annotations } : {}),
    });
    if (!looksLikeDigest(reference)) s.tags.set(reference, digest);
    return digest;
  }

  async deleteManifest(reference: string, options?: CallOptions): Promise<void> {
    const what = `DELETE ${this.where(reference)}`;
    throwIfAborted(options, what);
    this.checkReference(reference);
    const refuse = (status: number, code: OciError['code'], detail: string): OciError =>
      new OciError({ code, status, message: `${what}: ${status} ${detail}`, registry: this.registry, repository: this.repository });
    if (this.store.deletion === 'none') throw refuse(405, 'UNSUPPORTED', 'UNSUPPORTED: The operation is unsupported.');
    const digest = looksLikeDigest(reference);
    if (!digest && this.store.deletion === 'digests') throw refuse(400, 'DIGEST_INVALID', 'DIGEST_INVALID: provided digest did not match uploaded content');
    const s = this.store.state(this.repository, false);
    if (!digest) {
      if (!s?.tags.delete(reference)) throw refuse(404, 'MANIFEST_UNKNOWN', 'MANIFEST_UNKNOWN: manifest unknown');
      return;
    }
    // As a registry does: the manifest goes, and every tag pointing at it with it.
    if (!s?.manifests.delete(reference)) throw refuse(404, 'MANIFEST_UNKNOWN', 'MANIFEST_UNKNOWN: manifest unknown');
    for (const [tag, d] of [...s.tags]) if (d === reference) s.tags.delete(tag);
  }

  async headBlob(digest: string, options?: CallOptions): Promise<number | undefined> {
    throwIfAborted(options, `HEAD ${this.where(digest)}`);
    if (!this.store.state(this.repository, false)?.blobs.has(digest)) return undefined;
    return this.store.blob(digest)?.length;
  }

  async getBlob(digest: string, offset = 0, options?: CallOptions): Promise<BlobReader> {
    const what = `GET blob ${this.where(digest)}`;
    throwIfAborted(options, what);
    const bytes = this.store.state(this.repository, false)?.blobs.has(digest) ? this.store.blob(digest) : undefined;
    if (!bytes) throw this.err('BLOB_UNKNOWN', what, 'blob unknown');
    if (offset < 0 || offset > bytes.length) throw this.err('RANGE_INVALID', what, `offset ${offset} outside 0-${bytes.length}`);
    return { stream: Readable.from([Buffer.from(bytes.subarray(offset))]), size: bytes.length - offset };
  }

  async mountBlob(desc: Descriptor, from: string, options?: CallOptions): Promise<boolean> {
    throwIfAborted(options, `mount ${desc.digest} into ${this.where()}`);
    if (this.capabilities.mount === 'no' || from === this.repository || !isValidRepository(from)) return false;
    if (!this.store.state(from, false)?.blobs.has(desc.digest)) return false;
    const bytes = this.store.blob(desc.digest)!;
    this.store.commitBlob(this.repository, desc.digest, bytes);
    return true;
  }

  async putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult> {
    const what = `upload ${desc.digest} to ${this.where()}`;
    const mounted = await mountBeforeStore(desc, options, what, (from) => this.mountBlob(desc, from, options), (c, w, d) => this.err(c, w, d));
    if (mounted) return mounted;
    const r = await open(0);
    const chunks: Buffer[] = [];
    let seen = 0;
    for await (const chunk of r.stream as AsyncIterable<Buffer>) {
      throwIfAborted(options, what);
      seen += chunk.length;
      if (seen > desc.size) {
        r.stream.destroy();
        throw this.err('SIZE_INVALID', what, `source sent more than ${desc.size} bytes`);
      }
      chunks.push(Buffer.from(chunk));
    }
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== desc.size) throw this.err('SIZE_INVALID', what, `source sent ${bytes.length} bytes, expected ${desc.size}`);
    const got = sha256Digest(bytes);
    // Nothing is committed unless the bytes hash to the digest.
    if (got !== desc.digest) throw this.err('DIGEST_INVALID', what, `content hashes to ${got}, expected ${desc.digest}`);
    this.store.commitBlob(this.repository, desc.digest, new Uint8Array(bytes));
    return { transfer: 'upload' };
  }

  async listTags(options?: CallOptions): Promise<string[]> {
    throwIfAborted(options, `list tags of ${this.where()}`);
    return [...(this.store.state(this.repository, false)?.tags.keys() ?? [])].sort();
  }

  async referrers(digest: string, options?: CallOptions): Promise<Descriptor[] | undefined> {
    throwIfAborted(options, `referrers of ${this.where(digest)}`);
    if (this.capabilities.referrersApi === 'no') return undefined;
    const out: Descriptor[] = [];
    for (const [d, m] of this.store.state(this.repository, false)?.manifests ?? []) {
      if (m.subject !== digest) continue;
      out.push({
        mediaType: m.mediaType,
        digest: d,
        size: m.bytes.length,
        ...(m.artifactType ? { artifactType: m.artifactType } : {}),
        ...(m.annotations ? { annotations: m.annotations } : {}),
      });
    }
    return out;
  }
}
