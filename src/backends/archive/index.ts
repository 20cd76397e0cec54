/**
 * An OCI image layout as one tar file (`oci-archive:PATH`, skopeo's form) as a Repository.
 *
 * Reading streams from the file: its tar headers are indexed once (a 512-byte read per entry), and
 * a blob is read by offset and length; nothing is extracted to disk.
 *
 * Writing streams too: each blob goes into a temporary tar next to the archive as it arrives,
 * digest and size checked on the way. A tar entry's size is in its header, written before its
 * bytes; a blob that turns out short or not to match is taken back by cutting the temporary file
 * to where its entry began (nothing after it was written yet, entries go one at a time). Only a
 * failure to do that fails the whole archive: closing it then reports why and writes nothing.
 * index.json and oci-layout are written last, on close(), and only then is the file flushed and
 * renamed into place: a failed or interrupted run never leaves a partial archive under the name.
 *
 * Writing to an archive that exists rewrites it: the new blobs first, then every blob of the old
 * archive not written again (copied by offset, still unextracted), then the merged index.json, all
 * into the temporary file, renamed over the old one at the end. Readers of the old file are never
 * disturbed, and an archive is never edited in place.
 *
 * All the Repository objects of one archive path in this process share one state: one writer, one
 * index. The archive is finished when the last of them is closed, so several mirrors (or a bundle
 * of several source repositories) can write into one archive.
 *
 * `oci-archive:PATH#SCOPE` is the part of the archive holding the repository SCOPE: its tags are
 * the ref names `SCOPE:TAG` (a bundle of several source repositories; see the bundle command).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open as openFile, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { BlobReader, CallOptions, Descriptor } from '../../oci/content.js';
import { VerifyingStream } from '../../oci/digest.js';
import { OciError, describeError } from '../../oci/errors.js';
import { MAX_MANIFEST_BYTES } from '../../oci/media-types.js';
import { KeyedLock } from '../../util/keyed-lock.js';
import { LAYOUT_VERSION, LayoutView, MAX_INDEX_JSON_BYTES, emptyIndex, type IndexJson } from '../layout/view.js';
import { LOCK_ENTRY, MAX_LOCK_BYTES, parseLock, type BundleLock } from './lock.js';
import { BLOCK, TarFormatError, TruncatedError, indexTar, type TarEntry } from './tar-index.js';

/** The registry name every archive reports; with the path it reads `oci-archive:/abs/file.tar`. */
export const ARCHIVE_REGISTRY = 'oci-archive:';

const BLOB_PREFIX = 'blobs/sha256/';
/** Entries are dated 1970 so two runs writing the same content write the same archive. */
const ENTRY_MTIME = new Date(0);

/** How a writer opening an archive wants it written (the bundle command; others take the defaults). */
export interface ArchiveWriteOptions {
  /** Start empty: an existing file at the path is replaced, not merged into. */
  fresh?: boolean;
  /**
   * Blobs (not manifests) the reader of this archive already holds: they count as present here
   * (a copy finds them `exists`) and are never written. Digest → size.
   */
  presume?: ReadonlyMap<string, number>;
}

/** What one finished archive holds, for a report. */
export interface ArchiveStats {
  /** Blob and manifest bytes this run wrote into the archive (copied old entries excluded). */
  bytesWritten: number;
  blobsWritten: number;
  /** Presumed blobs a manifest in the archive named: counted present, not carried. */
  leftOut: Map<string, number>;
}

interface SourceFile {
  stamp: string;
  entries: Map<string, TarEntry>;
  index: IndexJson;
  layout?: string;
  lock?: BundleLock;
}

interface Session {
  tmp: string;
  pack: tar.Pack;
  file: FileSink;
  /** Settles when the temporary file is written and flushed. */
  done: Promise<void>;
  /** Where the next entry's header goes in the temporary file. */
  pos: number;
  index: IndexJson;
  /** Blobs and manifests written by this session: digest → size. */
  written: Map<string, number>;
  /** Anything written or tagged: a session that did nothing leaves the file as it was. */
  changed: boolean;
  /** Where they are in the temporary file. */
  offsets: Map<string, TarEntry>;
  manifests: Map<string, Buffer>;
  failed?: OciError;
  bytesWritten: number;
}

/** The shared state of one archive path. */
class ArchiveState {
  holders = 0;
  source: SourceFile | undefined;
  session: Session | undefined;
  extraFiles = new Map<string, Buffer>();
  options: ArchiveWriteOptions = {};
  leftOut = new Map<string, number>();
  /** Tar entries are written one at a time, in order. */
  readonly serial = new KeyedLock();

  constructor(readonly path: string) {}
}

const states = new Map<string, ArchiveState>();

/** The absolute path an archive reference names, its symlinked directory resolved. */
async function canonicalPath(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    try {
      return join(await realpath(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

/**
 * The archive at `path` (created on close when written and absent). `scope` selects one repository
 * of a multi-repository bundle. The caller closes it once.
 */
export async function openArchive(path: string, scope?: string, write?: ArchiveWriteOptions): Promise<ArchiveRepository> {
  const abs = await canonicalPath(path);
  let state = states.get(abs);
  if (!state) states.set(abs, (state = new ArchiveState(abs)));
  if (write) {
    if (state.session || state.holders > 0) {
      throw new OciError({ code: 'UNSUPPORTED', message: `${ARCHIVE_REGISTRY}${abs}: already open in this process; a fresh write must open it first` });
    }
    state.options = write;
  }
  state.holders++;
  return new ArchiveRepository(state, scope);
}

export class ArchiveRepository extends LayoutView {
  readonly registry = ARCHIVE_REGISTRY;
  readonly repository: string;
  readonly identity: string;
  readonly blobStore: string;
  protected override readonly scope: string | undefined;
  private closed = false;

  constructor(
    private readonly state: ArchiveState,
    scope: string | undefined,
  ) {
    super();
    this.scope = scope;
    this.repository = scope === undefined ? state.path : `${state.path}#${scope}`;
    this.identity = `${ARCHIVE_REGISTRY}${this.repository}`;
    // One file, one blob store, whatever part of it a view reads.
    this.blobStore = `${ARCHIVE_REGISTRY}${state.path}`;
  }

  /** The archive file. */
  get path(): string {
    return this.state.path;
  }

  protected sameStore(from: string): boolean {
    return from === this.state.path || from.startsWith(`${this.state.path}#`);
  }

  /** A file other than the layout's (a bundle's lock) to write next to index.json on close. */
  attachFile(name: string, bytes: Buffer): void {
    this.state.extraFiles.set(name, bytes);
  }

  /** The lock inside the archive read from disk, if it has one. */
  async lock(): Promise<BundleLock | undefined> {
    return (await this.loadSource(`read ${this.where()}`))?.lock;
  }

  /**
   * Drops this run's writes: the last close writes nothing, whatever else was written through
   * other objects of this archive (a bundle whose one mirror failed is not carried incomplete).
   */
  abandon(reason: string): void {
    const s = this.state.session;
    if (s) s.failed ??= this.err('CANCELLED', `${ARCHIVE_REGISTRY}${this.state.path}`, `not written: ${reason}`);
  }

  /** Whether the archive, as it will be written, holds this blob itself (not merely presumed). */
  async carries(digest: string): Promise<boolean> {
    if (this.state.session?.written.has(digest)) return true;
    return (await this.oldEntries(`read ${this.where()}`))?.entries.has(BLOB_PREFIX + digest.slice('sha256:'.length)) === true;
  }

  /** What the current write session has done so far. */
  stats(): ArchiveStats {
    const s = this.state.session;
    return { bytesWritten: s?.bytesWritten ?? 0, blobsWritten: s?.written.size ?? 0, leftOut: new Map(this.state.leftOut) };
  }

  /** Every manifest and blob digest this view's index reaches, with sizes: what a lock lists. */
  async reachable(what = `walk ${this.where()}`): Promise<Array<{ digest: string; size: number; manifest: boolean }>> {
    const idx = await this.loadIndex(what);
    const out = new Map<string, { digest: string; size: number; manifest: boolean }>();
    const queue: Descriptor[] = [...idx.manifests];
    while (queue.length > 0) {
      const d = queue.shift()!;
      if (out.has(d.digest)) continue;
      out.set(d.digest, { digest: d.digest, size: d.size, manifest: true });
      const m = await this.readManifest(d.digest, what);
      if (!m) throw this.err('MANIFEST_BLOB_UNKNOWN', what, `manifest ${d.digest} is not in the archive`);
      for (const c of Array.isArray(m.json.manifests) ? m.json.manifests : []) queue.push(c);
      for (const b of [...(m.json.config ? [m.json.config] : []), ...(Array.isArray(m.json.layers) ? m.json.layers : [])]) {
        if (!out.has(b.digest)) out.set(b.digest, { digest: b.digest, size: b.size, manifest: false });
      }
    }
    return [...out.values()];
  }

  // ---- reading ------------------------------------------------------------------------------

  private fileErr(what: string, e: unknown): OciError {
    if (e instanceof OciError) return e;
    if (e instanceof TruncatedError) {
      const blob = e.entry.startsWith(BLOB_PREFIX) ? `blob sha256:${e.entry.slice(BLOB_PREFIX.length)}` : e.entry;
      return this.err('BLOB_UNKNOWN', what, `the archive is cut short: ${blob} needs bytes up to ${e.needed}, the file ends at ${e.fileSize}`);
    }
    if (e instanceof TarFormatError) return this.err('PROTOCOL', what, `not a readable tar archive: ${e.message}`);
    return this.ioErr(what, e);
  }

  /** The archive on disk, indexed; undefined when there is no file. Re-read when the file changed. */
  private async loadSource(what: string): Promise<SourceFile | undefined> {
    const st = this.state;
    let info;
    try {
      info = await stat(st.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.ioErr(what, e);
    }
    if (!info.isFile()) throw this.err('PROTOCOL', what, 'not a file (an OCI image layout directory is oci:PATH)');
    const stamp = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
    if (st.source?.stamp === stamp) return st.source;
    let fh;
    try {
      fh = await openFile(st.path, 'r');
    } catch (e) {
      throw this.ioErr(what, e);
    }
    try {
      const entries = await indexTar(fh, info.size);
      const read = async (name: string, max: number): Promise<Buffer | undefined> => {
        const e = entries.get(name);
        if (!e) return undefined;
        if (e.size > max) throw this.err('MANIFEST_TOO_LARGE', what, `${name} is ${e.size} bytes, over the ${max}-byte limit`);
        const buf = Buffer.alloc(e.size);
        await fh!.read(buf, 0, e.size, e.offset);
        return buf;
      };
      const layout = (await read('oci-layout', 64 * 1024))?.toString('utf8');
      this.checkLayoutVersion(layout, what);
      const indexBytes = await read('index.json', MAX_INDEX_JSON_BYTES);
      if (!indexBytes) throw this.err('PROTOCOL', what, 'the archive has no index.json: not an OCI image layout archive');
      const index = this.parseIndex(indexBytes, what);
      const lockBytes = await read(LOCK_ENTRY, MAX_LOCK_BYTES);
      let lock: BundleLock | undefined;
      if (lockBytes) {
        try {
          lock = parseLock(lockBytes.toString('utf8'));
        } catch (e) {
          throw this.err('PROTOCOL', what, `${LOCK_ENTRY}: ${(e as Error).message}`);
        }
      }
      st.source = { stamp, entries, index, ...(layout !== undefined ? { layout } : {}), ...(lock ? { lock } : {}) };
      return st.source;
    } catch (e) {
      throw this.fileErr(what, e);
    } finally {
      await fh.close();
    }
  }

  /** The old archive's entries this state may still use (none when writing fresh). */
  private async oldEntries(what: string): Promise<SourceFile | undefined> {
    if (this.state.options.fresh) return undefined;
    return this.loadSource(what);
  }

  protected async loadIndex(what: string): Promise<IndexJson> {
    const s = this.state.session;
    if (s) return s.index;
    return (await this.oldEntries(what))?.index ?? emptyIndex();
  }

  protected async blobSize(digest: string, what: string): Promise<number | undefined> {
    const s = this.state.session;
    const w = s?.written.get(digest);
    if (w !== undefined) return w;
    const e = (await this.oldEntries(what))?.entries.get(BLOB_PREFIX + digest.slice('sha256:'.length));
    if (e) return e.size;
    const presumed = this.state.options.presume?.get(digest);
    if (presumed !== undefined) this.state.leftOut.set(digest, presumed);
    return presumed;
  }

  protected async readBlob(digest: string, what: string): Promise<Buffer | undefined> {
    const m = this.state.session?.manifests.get(digest);
    if (m) return m;
    const e = (await this.oldEntries(what))?.entries.get(BLOB_PREFIX + digest.slice('sha256:'.length));
    if (!e) return undefined;
    const buf = Buffer.alloc(e.size);
    try {
      const fh = await openFile(this.state.path, 'r');
      try {
        const { bytesRead } = await fh.read(buf, 0, e.size, e.offset);
        if (bytesRead !== e.size) throw this.err('BLOB_UNKNOWN', what, `the archive is cut short: blob ${digest} ends early`);
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw this.fileErr(what, err);
    }
    return buf;
  }

  protected async blobStream(digest: string, offset: number, size: number, what: string, options?: CallOptions): Promise<Readable> {
    const m = this.state.session?.manifests.get(digest);
    if (m) return Readable.from([m.subarray(offset)]);
    const s = this.state.session;
    const fresh = s?.offsets.get(digest);
    if (s && fresh) {
      // Written by this run into the temporary file: readable there once it reached the file.
      await s.file.reached(fresh.offset + fresh.size);
      if (offset === size) return Readable.from([]);
      return createReadStream(s.tmp, { start: fresh.offset + offset, end: fresh.offset + size - 1, ...(options?.signal ? { signal: options.signal } : {}) });
    }
    const e = (await this.oldEntries(what))?.entries.get(BLOB_PREFIX + digest.slice('sha256:'.length));
    if (!e) throw this.err('BLOB_UNKNOWN', what, 'blob unknown');
    if (offset === size) return Readable.from([]);
    return createReadStream(this.state.path, { start: e.offset + offset, end: e.offset + size - 1, ...(options?.signal ? { signal: options.signal } : {}) });
  }

  protected override absentBlobDetail(digest: string): string {
    const left = this.state.source?.lock?.blobs.find((b) => b.digest === digest && !b.included);
    if (left) return 'left out of this delta bundle (the far side held it when the bundle was made), and the target does not hold it: import the bundle it was made against first';
    return 'blob unknown';
  }

  // ---- writing ------------------------------------------------------------------------------

  private async session(what: string): Promise<Session> {
    const st = this.state;
    return st.serial.run('session', async () => {
      if (st.session) return st.session;
      if (this.closed) throw this.err('UNSUPPORTED', what, 'closed');
      // The old archive is indexed before the first write: its index.json is merged into, and its
      // blobs are copied over on close.
      const old = st.options.fresh ? undefined : await this.loadSource(what);
      const tmp = join(dirname(st.path), `.${basename(st.path)}.${process.pid}.${randomBytes(6).toString('hex')}.partial`);
      const pack = tar.pack();
      let fh: FileHandle;
      try {
        fh = await openFile(tmp, 'wx');
      } catch (e) {
        throw this.ioErr(what, e);
      }
      const file = new FileSink(fh);
      const done = pipeline(pack, file);
      done.catch(() => undefined);
      st.session = {
        tmp,
        pack,
        file,
        done,
        pos: 0,
        index: old ? structuredClone(old.index) : emptyIndex(),
        written: new Map(),
        changed: false,
        offsets: new Map(),
        manifests: new Map(),
        bytesWritten: 0,
      };
      for (const dir of ['blobs/', BLOB_PREFIX]) {
        await entry(pack, { name: dir, type: 'directory', mode: 0o755, mtime: ENTRY_MTIME });
        st.session.pos += BLOCK;
      }
      return st.session;
    });
  }

  private failSession(s: Session, e: OciError): OciError {
    s.failed ??= this.err(e.code, `${ARCHIVE_REGISTRY}${this.state.path}`, `not written: ${describeError(e)}`);
    return e;
  }

  protected async storeManifest(digest: string, bytes: Buffer, what: string): Promise<void> {
    const s = await this.session(what);
    await this.state.serial.run('entry', async () => {
      if (s.failed) throw s.failed;
      if (s.written.has(digest)) return;
      if ((await this.oldEntries(what))?.entries.has(BLOB_PREFIX + digest.slice('sha256:'.length))) return;
      try {
        await entry(s.pack, { name: BLOB_PREFIX + digest.slice('sha256:'.length), size: bytes.length, mode: 0o644, mtime: ENTRY_MTIME }, bytes);
      } catch (e) {
        throw this.failSession(s, this.ioErr(what, e));
      }
      this.advance(s, digest, bytes.length);
      if (bytes.length <= MAX_MANIFEST_BYTES) s.manifests.set(digest, bytes);
    });
  }

  protected async storeBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, what: string, options?: CallOptions): Promise<void> {
    const s = await this.session(what);
    await this.state.serial.run('entry', async () => {
      if (s.failed) throw s.failed;
      // Another writer of this archive stored it meanwhile.
      if (s.written.has(desc.digest)) return;
      if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw this.err('SIZE_INVALID', what, `invalid size ${desc.size}`);
      const r = await open(0);
      try {
        // A failed entry destroys the pack with whatever it still holds: everything before this
        // entry is in the file first, so a rollback loses nothing else.
        await s.file.reached(s.pos);
        const sink = s.pack.entry({ name: BLOB_PREFIX + desc.digest.slice('sha256:'.length), size: desc.size, mode: 0o644, mtime: ENTRY_MTIME });
        // Checked on the way in; the entry's header already promised desc.size bytes under this
        // digest, so a mismatch fails the archive (see the module comment).
        await pipeline(r.stream, new VerifyingStream(desc.digest, desc.size, what), sink, options?.signal ? { signal: options.signal } : {});
      } catch (e) {
        r.stream.destroy();
        const err = e instanceof OciError ? e : options?.signal?.aborted ? this.err('CANCELLED', what, 'cancelled') : this.ioErr(what, e);
        // The entry's header promised bytes that did not come (or did not match): the file is cut
        // back to where the entry began and a new writer goes on from there, as if it never was.
        try {
          await this.rollback(s);
        } catch (re) {
          throw this.failSession(s, this.ioErr(what, re));
        }
        throw err;
      }
      this.advance(s, desc.digest, desc.size);
    });
  }

  /** Drops the temporary file: nothing is written under the archive's name. */
  private async discard(s: Session): Promise<void> {
    s.pack.destroy();
    await s.done.catch(() => undefined);
    await s.file.fileClosed;
    await unlink(s.tmp).catch(() => undefined);
  }

  /** Drops everything after `s.pos`: the writer is replaced by one continuing at `s.pos`. */
  private async rollback(s: Session): Promise<void> {
    s.pack.destroy();
    await s.done.catch(() => undefined);
    await s.file.fileClosed;
    const fh = await openFile(s.tmp, 'r+');
    try {
      await fh.truncate(s.pos);
    } catch (e) {
      await fh.close();
      throw e;
    }
    s.pack = tar.pack();
    s.file = new FileSink(fh, s.pos);
    s.done = pipeline(s.pack, s.file);
    s.done.catch(() => undefined);
  }

  /** Records an entry just written (names are short: one 512-byte ustar header each). */
  private advance(s: Session, digest: string, size: number): void {
    s.written.set(digest, size);
    s.changed = true;
    s.offsets.set(digest, { offset: s.pos + BLOCK, size });
    s.pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    s.bytesWritten += size;
  }

  protected async editIndex(what: string, edit: (idx: IndexJson) => boolean): Promise<void> {
    const s = await this.session(what);
    if (s.failed) throw s.failed;
    if (edit(s.index)) s.changed = true;
  }

  /**
   * Releases this object; the last one of the archive finishes it: old blobs copied over, extra
   * files, index.json and oci-layout written, the file flushed and renamed into place. A failed
   * write throws here and leaves the old archive (or none) as it was.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const st = this.state;
    if (--st.holders > 0) return;
    states.delete(st.path);
    const s = st.session;
    st.session = undefined;
    if (!s) return;
    const what = `write ${ARCHIVE_REGISTRY}${st.path}`;
    try {
      if (s.failed) throw s.failed;
      if (!s.changed && !st.options.fresh) {
        await this.discard(s);
        return;
      }
      const old = st.options.fresh ? undefined : st.source;
      if (old) {
        for (const [name, e] of old.entries) {
          if (!name.startsWith(BLOB_PREFIX) || s.written.has(`sha256:${name.slice(BLOB_PREFIX.length)}`)) continue;
          const sink = s.pack.entry({ name, size: e.size, mode: 0o644, mtime: ENTRY_MTIME });
          await pipeline(e.size === 0 ? Readable.from([]) : createReadStream(st.path, { start: e.offset, end: e.offset + e.size - 1 }), sink);
        }
      }
      for (const [name, bytes] of st.extraFiles) await entry(s.pack, { name, size: bytes.length, mode: 0o644, mtime: ENTRY_MTIME }, bytes);
      const index = Buffer.from(JSON.stringify(s.index));
      await entry(s.pack, { name: 'index.json', size: index.length, mode: 0o644, mtime: ENTRY_MTIME }, index);
      const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
      await entry(s.pack, { name: 'oci-layout', size: layout.length, mode: 0o644, mtime: ENTRY_MTIME }, layout);
      s.pack.finalize();
      await s.done;
      await rename(s.tmp, st.path);
      await syncDir(dirname(st.path));
    } catch (e) {
      await this.discard(s);
      if (e instanceof OciError) throw e;
      throw this.err('SERVER_ERROR', what, `not written: ${describeError(e)}`);
    }
  }
}

/**
 * The temporary archive file: written in order, flushed to disk before it is closed, and able to
 * tell when a given number of bytes reached it (so this run can read back what it wrote).
 */
class FileSink extends Writable {
  private written = 0;
  private readonly waiters: Array<{ n: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private error: Error | undefined;

  /** Settles once the file handle is closed (flushed first when the stream ended normally). */
  readonly fileClosed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    private readonly fh: FileHandle,
    start = 0,
  ) {
    super();
    this.written = start;
    this.fileClosed = new Promise((resolve) => (this.markClosed = resolve));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.fh.write(chunk, 0, chunk.length, this.written).then(
      ({ bytesWritten }) => {
        if (bytesWritten !== chunk.length) return cb(new Error(`short write: ${bytesWritten} of ${chunk.length} bytes`));
        this.written += chunk.length;
        for (const w of this.waiters.filter((x) => x.n <= this.written)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
        cb();
      },
      (e: Error) => cb(e),
    );
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.fh.sync().then(() => this.fh.close()).then(
      () => {
        this.markClosed();
        cb();
      },
      (e: Error) => {
        this.markClosed();
        cb(e);
      },
    );
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    this.error = e ?? new Error('archive writer closed');
    for (const w of this.waiters.splice(0)) w.reject(this.error);
    // close() waits for a write in flight, so nothing lands after `closed` settles.
    const done = (): void => {
      this.markClosed();
      cb(e);
    };
    this.fh.close().then(done, done);
  }

  /** Resolves once the first `n` bytes are in the file. */
  reached(n: number): Promise<void> {
    if (this.written >= n) return Promise.resolve();
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }));
  }
}

/** Adds one entry with known content; resolves once the pack took it. */
function entry(pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], bytes?: Buffer): Promise<void> {
  return new Promise((resolveEntry, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolveEntry());
    if (bytes) pack.entry(header, bytes, cb);
    else pack.entry(header, cb).end(undefined);
  });
}

/** The rename is durable only once the directory is flushed too. */
async function syncDir(dir: string): Promise<void> {
  const fh = await openFile(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the file itself is already on disk.
  } finally {
    await fh.close();
  }
}
