/**
 * An OCI image layout directory as a Repository: `oci-layout`, `index.json`, `blobs/sha256/<hex>`
 * (the image-spec's image-layout); what that means as a repository is in view.ts. One layout is one
 * repository: it has no other repositories to mount from, so a mount succeeds only from itself,
 * when the blob is already there.
 *
 * Every file is written to a temporary name, flushed to disk, then renamed over its final name:
 * after a crash a reader finds the old file or the new one, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobReader, CallOptions, Descriptor } from '../../oci/content.js';
import { VerifyingStream, sha256Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { KeyedLock } from '../../util/keyed-lock.js';
import { LAYOUT_VERSION, LayoutView, MAX_INDEX_JSON_BYTES, emptyIndex, type IndexJson } from './view.js';

export { LAYOUT_VERSION, MAX_INDEX_JSON_BYTES, MAX_REFERRER_SCAN, REF_NAME_ANNOTATION } from './view.js';

/** The registry name every layout reports; with the path it reads `oci:/abs/path` in messages. */
export const LAYOUT_REGISTRY = 'oci:';

const locks = new KeyedLock();

/**
 * The layout at `path` (created on first write when absent). Two paths naming the same directory
 * (a symlink, `..`) give the same blob store key and share one index.json lock.
 */
export async function openLayout(path: string): Promise<LayoutRepository> {
  const abs = resolve(path);
  let real = abs;
  try {
    real = await realpath(abs);
  } catch {
    // Absent: it is created on first write; its resolved path is its name until then.
  }
  return new LayoutRepository(real);
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class LayoutRepository extends LayoutView {
  readonly registry = LAYOUT_REGISTRY;
  readonly identity: string;
  readonly blobStore: string;

  constructor(readonly repository: string) {
    super();
    this.identity = `oci:${repository}`;
    this.blobStore = `oci:${repository}`;
  }

  private blobPath(digest: string): string {
    return join(this.repository, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  protected sameStore(from: string): boolean {
    return from === this.repository;
  }

  protected async loadIndex(what: string): Promise<IndexJson> {
    let layout: string | undefined;
    try {
      layout = await readFile(join(this.repository, 'oci-layout'), 'utf8');
    } catch (e) {
      if (!isMissing(e)) throw this.ioErr(what, e);
    }
    this.checkLayoutVersion(layout, what);
    let text: Buffer;
    try {
      const st = await stat(join(this.repository, 'index.json'));
      // Checked before reading: the file's size alone says it is too large.
      if (st.size > MAX_INDEX_JSON_BYTES) throw this.err('MANIFEST_TOO_LARGE', what, `index.json is ${st.size} bytes, over the ${MAX_INDEX_JSON_BYTES}-byte limit`);
      text = await readFile(join(this.repository, 'index.json'));
    } catch (e) {
      if (isMissing(e)) return emptyIndex();
      throw this.ioErr(what, e);
    }
    return this.parseIndex(text, what);
  }

  protected async editIndex(what: string, edit: (idx: IndexJson) => boolean): Promise<void> {
    await locks.run(this.repository, async () => {
      const idx = await this.loadIndex(what);
      if (!edit(idx)) return;
      await this.writeIndex(idx, what);
    });
  }

  /** Replaces index.json atomically: a reader sees the old file or the new one, never a mix. */
  private async writeIndex(idx: IndexJson, what: string): Promise<void> {
    const tmp = join(this.repository, `.index.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await this.ensureLayout();
      await writeFile(tmp, JSON.stringify(idx), { flush: true });
      await rename(tmp, join(this.repository, 'index.json'));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw this.ioErr(what, e);
    }
  }

  private async ensureLayout(): Promise<void> {
    await mkdir(join(this.repository, 'blobs', 'sha256'), { recursive: true });
    try {
      await writeFile(join(this.repository, 'oci-layout'), JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }), { flag: 'wx', flush: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }

  protected async blobSize(digest: string, what: string): Promise<number | undefined> {
    try {
      const st = await stat(this.blobPath(digest));
      return st.isFile() ? st.size : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw this.ioErr(what, e);
    }
  }

  protected async readBlob(digest: string, what: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw this.ioErr(what, e);
    }
  }

  protected async blobStream(digest: string, offset: number, _size: number, _what: string, options?: CallOptions): Promise<Readable> {
    return createReadStream(this.blobPath(digest), { start: offset, ...(options?.signal ? { signal: options.signal } : {}) });
  }

  /** Writes verified bytes under their digest (temp file, flushed, then rename). */
  protected async storeManifest(digest: string, bytes: Buffer, what: string): Promise<void> {
    // Kept only when what is there hashes right: a damaged copy is replaced, not trusted.
    if ((await this.blobSize(digest, what)) === bytes.length) {
      const there = await readFile(this.blobPath(digest)).catch(() => undefined);
      if (there && sha256Digest(there) === digest) return;
    }
    const tmp = this.tempPath();
    try {
      await this.ensureLayout();
      await writeFile(tmp, bytes, { flush: true });
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

  protected async storeBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, what: string, options?: CallOptions): Promise<void> {
    try {
      await this.ensureLayout();
    } catch (e) {
      throw this.ioErr(what, e);
    }
    const r = await open(0);
    const tmp = this.tempPath();
    try {
      // The digest is checked while streaming: the temp file is renamed to the digest's name only
      // after the whole stream hashed to it (and reached the disk), so a wrong or torn blob is never
      // visible under that name.
      await pipeline(r.stream, new VerifyingStream(desc.digest, desc.size, what), createWriteStream(tmp, { flush: true }), options?.signal ? { signal: options.signal } : {});
      await rename(tmp, this.blobPath(desc.digest));
    } catch (e) {
      r.stream.destroy();
      await unlink(tmp).catch(() => undefined);
      if (e instanceof OciError) throw this.err(e.code, what, e.message.startsWith(`${what}: `) ? e.message.slice(what.length + 2) : e.message);
      if (options?.signal?.aborted) throw this.err('CANCELLED', what, 'cancelled');
      throw this.ioErr(what, e);
    }
  }
}
