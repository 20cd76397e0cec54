/**
 * Where each file of a tar archive lies, read from its headers alone: one 512-byte read per entry,
 * skipping the data, so a multi-GiB archive is indexed without reading its blobs. Understands
 * POSIX ustar (with its name prefix), pax extended headers (`path`, `size`) and GNU long names —
 * what Go's archive/tar (skopeo), GNU tar and tar-stream write. Only regular files are indexed.
 */
import type { FileHandle } from 'node:fs/promises';

export const BLOCK = 512;
/**
 * The most entries indexed in one archive: the index is held in memory (a name and two numbers per
 * entry), and an archive of more blobs than this is not an image bundle anyone carries.
 */
export const MAX_TAR_ENTRIES = 1_000_000;
/** The largest pax or GNU long-name header read: they hold a few names, not data. */
const MAX_EXTENDED_HEADER = 1024 * 1024;

export interface TarEntry {
  /** Offset of the first data byte in the file. */
  offset: number;
  size: number;
}

export class TarFormatError extends Error {}

/** The regular files of the tar at `fh` (size `fileSize`) by normalised name; the last copy wins. */
export async function indexTar(fh: FileHandle, fileSize: number): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  let longName: string | undefined;
  let count = 0;
  while (pos + BLOCK <= fileSize) {
    await readFully(fh, header, pos);
    if (header.every((b) => b === 0)) return entries; // end-of-archive blocks
    if (++count > MAX_TAR_ENTRIES) throw new TarFormatError(`more than ${MAX_TAR_ENTRIES} entries`);
    checkChecksum(header, pos);
    const type = String.fromCharCode(header[156]!);
    let name = cString(header, 0, 100);
    if (header.subarray(257, 262).toString('latin1') === 'ustar' && header[345] !== 0 && header[257 + 5] === 0) {
      name = `${cString(header, 345, 155)}/${name}`;
    }
    const size = paxSize ?? octal(header, 124, 12, pos);
    const dataAt = pos + BLOCK;
    const end = dataAt + size;
    const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x' || type === 'L' || type === 'g') {
      if (size > MAX_EXTENDED_HEADER) throw new TarFormatError(`extended header at byte ${pos} is ${size} bytes`);
      if (end > fileSize) throw new TruncatedError(`extended header at byte ${pos}`, end, fileSize);
      const body = Buffer.alloc(size);
      await readFully(fh, body, dataAt);
      if (type === 'x') ({ path: paxPath, size: paxSize } = pax(body, pos));
      else if (type === 'L') longName = cString(body, 0, body.length);
      pos = next;
      continue;
    }
    const fullName = normalise(paxPath ?? longName ?? name);
    paxPath = paxSize = longName = undefined;
    if (type === '0' || type === '\0' || type === '7') {
      if (end > fileSize) throw new TruncatedError(fullName, end, fileSize);
      entries.set(fullName, { offset: dataAt, size });
    }
    pos = next;
  }
  // Go's and GNU tar end with two zero blocks; an archive without them is still whole if every
  // entry is, which the checks above made sure of.
  return entries;
}

/** An entry whose data runs past the end of the file: the archive was cut short. */
export class TruncatedError extends TarFormatError {
  constructor(
    readonly entry: string,
    readonly needed: number,
    readonly fileSize: number,
  ) {
    super(`the archive is cut short: ${entry} needs bytes up to ${needed}, the file ends at ${fileSize}`);
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new TruncatedError(`data at byte ${position}`, position + buf.length, position + off);
    off += bytesRead;
  }
}

function normalise(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.startsWith('/')) n = n.slice(1);
  return n;
}

function cString(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? slice.length : nul).toString('utf8');
}

/** A numeric field: octal text, or GNU's base-256 for values that do not fit (sizes ≥ 8 GiB). */
function octal(buf: Buffer, start: number, len: number, at: number): number {
  const field = buf.subarray(start, start + len);
  if (field[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`header at byte ${at}: size too large`);
    return v;
  }
  const text = cString(field, 0, field.length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`header at byte ${at}: invalid number ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function checkChecksum(header: Buffer, at: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  const want = octal(header, 148, 8, at);
  if (sum !== want) throw new TarFormatError(`damaged or not a tar header at byte ${at} (checksum)`);
}

/** The pax records this reader uses. */
function pax(body: Buffer, at: number): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let rest = body;
  while (rest.length > 0) {
    const sp = rest.indexOf(0x20);
    const len = sp > 0 ? Number(rest.subarray(0, sp).toString('latin1')) : NaN;
    if (!Number.isInteger(len) || len <= sp || len > rest.length) throw new TarFormatError(`pax header at byte ${at} is malformed`);
    const record = rest.subarray(sp + 1, len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) {
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (key === 'path') out.path = value;
      if (key === 'size') {
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new TarFormatError(`pax header at byte ${at}: invalid size`);
        out.size = Number(value);
      }
    }
    rest = rest.subarray(len);
  }
  return out;
}
