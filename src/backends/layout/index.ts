/**
 * An OCI image layout directory as a Repository: `oci-layout`, `index.json`, `blobs/sha256/<hex>`
 * (the image-spec's image-layout). Manifests and blobs are stored by digest with their exact bytes;
 * tags are `org.opencontainers.image.ref.name` annotations on index.json entries, as skopeo writes
 * them. One layout is one repository: it has no other repositories to mount from, so a mount
 * succeeds only from itself, when the blob is already there.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
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
import { VerifyingStream, sha256Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { MAX_MANIFEST_BYTES, MediaType } from '../../oci/media-types.js';
import { isSha256Digest, isValidTag, looksLikeDigest, quote } from '../../oci/names.js';
import { KeyedLock } from '../../util/keyed-lock.js';
import { checkManifestPut, checkReference } from '../local-checks.js';

/** The annotation skopeo, umoci and containerd use to name an index.json entry. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const LAYOUT_VERSION = '1.0.0';
/** The most index.json entries plus their index children read to answer referrers. */
export const MAX_REFERRER_SCAN = 10_000;
/** The largest index.json read: a layout is local, but one index.json must not exhaust memory. */
export const MAX_INDEX_JSON_BYTES = 64 * 1024 * 1024;

/** The registry name every layout reports; with the path it reads `oci://abs/path` in messages. */
export const LAYOUT_REGISTRY = 'oci:';

const CAPABILITIES: BackendCapabilities = Object.freeze({ mount: 'yes', referrersApi: 'yes', tagListing: true });

interface IndexJson {
  schemaVersion?: number;
  mediaType?: string;
  manifests: Descriptor[];
  [k: string]: unknown;
}

const locks = new KeyedLock();

/**
 * The layout at `path` (created on first write when absent). Two paths naming the same directory
 * (a symlink, `..`) give the same blob store key and share one index.json lock.
 */
export async function openLayout(path: string): Promise<Repository> {
  const abs = resolve(path);
  let real = abs;
  try {
    real = await realpath(abs);
  } catch {
    // Absent: it is created on first write; its resolved path is its name until then.
  }
  return new LayoutRepository(real);
}

function throwIfAborted(o: CallOptions | undefined, what: string): void {
  if (o?.signal?.aborted) throw new OciError({ code: 'CANCELLED', message: `${what}: cancelled` });
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

class LayoutRepository implements Repository {
  readonly registry = LAYOUT_REGISTRY;
  readonly identity: string;
  readonly blobStore: string;
  readonly capabilities = CAPABILITIES;

  constructor(readonly repository: string) {
    this.identity = `oci:${repository}`;
    this.blobStore = `oci:${repository}`;
  }

  private where(reference?: string): string {
    const base = `oci:${this.repository}`;
    if (!reference) return base;
    return looksLikeDigest(reference) ? `${base}@${reference}` : `${base}:${quote(reference)}`;
  }

  private err(code: OciError['code'], what: string, detail: string, cause?: unknown): OciError {
    return new OciError({ code, message: `${what}: ${detail}`, registry: this.registry, repository: this.repository, ...(cause ? { cause } : {}) });
  }

  private ioErr(what: string, e: unknown): OciError {
    const ne = e as NodeJS.ErrnoException;
    return this.err('SERVER_ERROR', what, `${ne.code ?? 'I/O error'}: ${ne.message?.split('\n')[0] ?? String(e)}`, e);
  }

  private blobPath(digest: string): string {
    return join(this.repository, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  private checkReference(reference: string): void {
    checkReference(reference, this.where(), (c, w, d) => this.err(c, w, d));
  }

  /** index.json, checked; an absent layout reads as empty. */
  private async readIndex(what: string): Promise<IndexJson> {
    await this.checkLayoutVersion(what);
    let text: Buffer;
    try {
      const st = await stat(join(this.repository, 'index.json'));
      if (st.size > MAX_INDEX_JSON_BYTES) throw this.err('MANIFEST_TOO_LARGE', what, `index.json is ${st.size} bytes, over the ${MAX_INDEX_JSON_BYTES}-byte limit`);
      text = await readFile(join(this.repository, 'index.json'));
    } catch (e) {
      if (isMissing(e)) return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      if (e instanceof OciError) throw e;
      throw this.ioErr(what, e);
    }
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

  private async checkLayoutVersion(what: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(join(this.repository, 'oci-layout'), 'utf8');
    } catch (e) {
      if (isMissing(e)) return;
      throw this.ioErr(what, e);
    }
    let v: unknown;
    try {
      v = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      v = undefined;
    }
    if (v !== LAYOUT_VERSION) throw this.err('UNSUPPORTED', what, `oci-layout declares imageLayoutVersion ${quote(String(v))}, only ${LAYOUT_VERSION} is supported`);
  }

  /** Replaces index.json atomically: a reader sees the old file or the new one, never a mix. */
  private async writeIndex(idx: IndexJson, what: string): Promise<void> {
    try {
      await this.ensureLayout();
      const tmp = join(this.repository, `.index.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
      await writeFile(tmp, JSON.stringify(idx));
      await rename(tmp, join(this.repository, 'index.json'));
    } catch (e) {
      throw this.ioErr(what, e);
    }
  }

  private async ensureLayout(): Promise<void> {
    await mkdir(join(this.repository, 'blobs', 'sha256'), { recursive: true });
    try {
      await writeFile(join(this.repository, 'oci-layout'), JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }), { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }

  private async blobSize(digest: string): Promise<number | undefined> {
    try {
      const st = await stat(this.blobPath(digest));
      return st.isFile() ? st.size : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw this.ioErr(`stat ${this.where(digest)}`, e);
    }
  }

  /** The last index.json entry carrying `tag` (skopeo replaces, so there is normally one). */
  private async resolveTag(tag: string, what: string): Promise<Descriptor | undefined> {
    const idx = await this.readIndex(what);
    return idx.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag).pop();
  }

  /** Manifest bytes by digest, verified; undefined when absent or not a manifest. */
  private async readManifest(digest: string, what: string): Promise<{ bytes: Buffer; json: ManifestJson } | undefined> {
    const size = await this.blobSize(digest);
    if (size === undefined || size > MAX_MANIFEST_BYTES) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw this.ioErr(what, e);
    }
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

  private mediaTypeOf(json: ManifestJson, entry?: Descriptor): string | undefined {
    if (typeof json.mediaType === 'string') return json.mediaType;
    if (entry?.mediaType) return entry.mediaType;
    if (Array.isArray(json.manifests)) return MediaType.OciIndex;
    if (json.config) return MediaType.OciManifest;
    return undefined;
  }

  private async lookup(reference: string, what: string): Promise<RawManifest | undefined> {
    this.checkReference(reference);
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
    this.checkReference(reference);
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
      if ((await this.blobSize(c.digest)) === undefined) throw this.err('MANIFEST_BLOB_UNKNOWN', what, `blob ${c.digest} unknown`);
    }
    await this.commitBytes(digest, Buffer.from(manifest.bytes), what);
    const tag = looksLikeDigest(reference) ? undefined : reference;
    // A referrer pushed by digest is reachable from nothing else: index.json keeps it (with its
    // subject, so a scan finds it without reading it), as layout garbage collectors keep only
    // what index.json reaches.
    if (tag === undefined && !json.subject) return digest;
    await locks.run(this.repository, async () => {
      const idx = await this.readIndex(what);
      const entry: Descriptor & { subject?: Descriptor } = { mediaType: manifest.mediaType, digest, size: manifest.bytes.length };
      if (tag !== undefined) {
        idx.manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
        entry.annotations = { [REF_NAME_ANNOTATION]: tag };
      } else {
        if (idx.manifests.some((d) => d.digest === digest && d.annotations?.[REF_NAME_ANNOTATION] === undefined)) return;
        const artifactType = json.artifactType ?? json.config?.mediaType;
        if (artifactType) entry.artifactType = artifactType;
        if (json.subject) entry.subject = { mediaType: json.subject.mediaType, digest: json.subject.digest, size: json.subject.size };
      }
      idx.manifests.push(entry);
      await this.writeIndex(idx, what);
    });
    return digest;
  }

  /** Writes verified bytes under their digest (temp file, then rename). */
  private async commitBytes(digest: string, bytes: Buffer, what: string): Promise<void> {
    // Kept only when what is there hashes right: a damaged copy is replaced, not trusted.
    if ((await this.blobSize(digest)) === bytes.length) {
      const there = await readFile(this.blobPath(digest)).catch(() => undefined);
      if (there && sha256Digest(there) === digest) return;
    }
    const tmp = this.tempPath();
    try {
      await this.ensureLayout();
      await writeFile(tmp, bytes);
      await rename(tmp, this.blobPath(digest));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw this.ioErr(what, e);
    }
  }

  /** Next to the blobs (same file system, so rename is atomic), named so it is never a digest. */
  private tempPath(): string {
    return join(this.repository, 'blobs', 'sha256', `.partial-${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  async headBlob(digest: string, options?: CallOptions): Promise<number | undefined> {
    throwIfAborted(options, `HEAD ${this.where(digest)}`);
    if (!isSha256Digest(digest)) throw this.err('DIGEST_INVALID', this.where(), `invalid digest ${quote(digest)}`);
    return this.blobSize(digest);
  }

  async getBlob(digest: string, offset = 0, options?: CallOptions): Promise<BlobReader> {
    const what = `GET blob ${this.where(digest)}`;
    throwIfAborted(options, what);
    if (!isSha256Digest(digest)) throw this.err('DIGEST_INVALID', what, `invalid digest ${quote(digest)}`);
    const size = await this.blobSize(digest);
    if (size === undefined) throw this.err('BLOB_UNKNOWN', what, 'blob unknown');
    if (offset < 0 || offset > size) throw this.err('RANGE_INVALID', what, `offset ${offset} outside 0-${size}`);
    const stream = createReadStream(this.blobPath(digest), { start: offset, ...(options?.signal ? { signal: options.signal } : {}) });
    return { stream, size: size - offset };
  }

  async mountBlob(desc: Descriptor, from: string, options?: CallOptions): Promise<boolean> {
    throwIfAborted(options, `mount ${desc.digest} into ${this.where()}`);
    // The layout's only repository is itself: "mounting" from it means the blob is already here.
    if (from !== this.repository || !isSha256Digest(desc.digest)) return false;
    return (await this.blobSize(desc.digest)) === desc.size;
  }

  async putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult> {
    const what = `upload ${desc.digest} to ${this.where()}`;
    throwIfAborted(options, what);
    if (!isSha256Digest(desc.digest)) throw this.err('DIGEST_INVALID', what, 'not a sha256 digest');
    for (const from of options?.mountFrom ?? []) {
      if (await this.mountBlob(desc, from, options)) return { transfer: 'mount', mountedFrom: from };
      options?.onMountRefused?.(from);
    }
    try {
      await this.ensureLayout();
    } catch (e) {
      throw this.ioErr(what, e);
    }
    const r = await open(0);
    const tmp = this.tempPath();
    try {
      // The digest is checked while streaming: the temp file is renamed to the digest's name only
      // after the whole stream hashed to it, so a wrong blob is never visible under that name.
      await pipeline(r.stream, new VerifyingStream(desc.digest, desc.size, what), createWriteStream(tmp), options?.signal ? { signal: options.signal } : {});
      await rename(tmp, this.blobPath(desc.digest));
    } catch (e) {
      r.stream.destroy();
      await unlink(tmp).catch(() => undefined);
      if (e instanceof OciError) throw this.err(e.code, what, e.message.startsWith(`${what}: `) ? e.message.slice(what.length + 2) : e.message);
      if (options?.signal?.aborted) throw this.err('CANCELLED', what, 'cancelled');
      throw this.ioErr(what, e);
    }
    return { transfer: 'upload' };
  }

  async listTags(options?: CallOptions): Promise<string[]> {
    const what = `list tags of ${this.where()}`;
    throwIfAborted(options, what);
    const idx = await this.readIndex(what);
    const tags = new Set<string>();
    for (const d of idx.manifests) {
      const name = d.annotations?.[REF_NAME_ANNOTATION];
      if (isValidTag(name)) tags.add(name);
    }
    return [...tags].sort();
  }

  async referrers(digest: string, options?: CallOptions): Promise<Descriptor[] | undefined> {
    const what = `referrers of ${this.where(digest)}`;
    throwIfAborted(options, what);
    if (!isSha256Digest(digest)) throw this.err('DIGEST_INVALID', what, `invalid digest ${quote(digest)}`);
    const idx = await this.readIndex(what);
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
