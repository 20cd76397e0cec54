/**
 * Where `run` (and `sync --status-dir`) keep one mirror's status: a file directly inside the
 * status directory, whatever the key.
 *
 * Keys come from spec files written by many people: `namespace/name` for a mirror whose name is
 * usable, `file#docIndex` for one without. A key is never joined into a path as it is, so no key can
 * name a file elsewhere (`../../etc/x`), a subdirectory, or an over-long file name.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PATTERNS } from '../mirror/validate.js';
import type { ImageMirrorStatus, OwnedTags } from '../mirror/types.js';

const DNS1123_LABEL = new RegExp(PATTERNS.dns1123Label);
const DNS1123_SUBDOMAIN = new RegExp(PATTERNS.dns1123Subdomain);
/** File names longer than this are refused by common file systems (ext4, xfs, btrfs: 255 bytes). */
export const MAX_STATUS_FILE_NAME = 255;
/** Readable part kept in a hashed file name, so a person listing the directory still sees which file it was. */
const SLUG_LENGTH = 64;

/**
 * `namespace_name.json` for a well-formed `namespace/name` key (neither part can hold `_`, `/` or
 * start with `.`); otherwise `_<readable slug>-<sha256 prefix>.json` (the leading `_` keeps the two
 * forms from ever meeting).
 */
export function statusFileName(key: string): string {
  const slash = key.indexOf('/');
  if (slash > 0) {
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const plain = `${ns}_${name}.json`;
    if (DNS1123_LABEL.test(ns) && DNS1123_SUBDOMAIN.test(name) && Buffer.byteLength(plain) <= MAX_STATUS_FILE_NAME) return plain;
  }
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 32);
  const slug = key
    .slice(-SLUG_LENGTH)
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '');
  return `_${slug}-${digest}.json`;
}

/** Absolute path of the key's status file; throws if it would not sit directly in statusDir. */
export function statusFilePath(statusDir: string, key: string): string {
  const dir = resolve(statusDir);
  const path = resolve(dir, statusFileName(key));
  if (dirname(path) !== dir) throw new Error(`status file for ${JSON.stringify(key)} would fall outside ${dir}`);
  return path;
}

/** What one status file holds. */
export interface StatusDocument {
  key: string;
  /** Where the mirror's document starts (`file:line`). */
  source: string;
  status: ImageMirrorStatus;
  /** Set when the document itself is invalid. */
  error?: string;
}

/**
 * Largest status file read back. Ours stay far below it (rows are capped; status.owned holds at
 * most OWNED_TAGS_CAP tags per target repository); anything bigger was not written by us.
 */
export const MAX_STATUS_FILE_BYTES = 16 * 1024 * 1024;

/** Writes the key's status file atomically (a temporary file renamed over it). */
export async function writeStatusFile(statusDir: string, doc: StatusDocument): Promise<void> {
  const file = statusFilePath(statusDir, doc.key);
  await writeFile(`${file}.tmp`, JSON.stringify(doc, null, 2) + '\n');
  await rename(`${file}.tmp`, file);
}

/**
 * The status stored for `key`, or undefined when there is none. A file that is unreadable, too
 * large, not JSON or written for another key throws a one-line Error naming it. status.owned
 * decides what prune may delete, so an entry of the wrong shape is dropped, never guessed at.
 */
export async function readStatusFile(statusDir: string, key: string): Promise<ImageMirrorStatus | undefined> {
  const file = statusFilePath(statusDir, key);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`status file ${file}: ${(e as Error).message}`);
  }
  if (size > MAX_STATUS_FILE_BYTES) throw new Error(`status file ${file}: ${size} bytes, more than the ${MAX_STATUS_FILE_BYTES} read back`);
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`status file ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const d = doc as Partial<StatusDocument> | null;
  if (typeof d !== 'object' || d === null || d.key !== key || typeof d.status !== 'object' || d.status === null || Array.isArray(d.status)) {
    throw new Error(`status file ${file}: not a status document for ${JSON.stringify(key)}`);
  }
  const status: ImageMirrorStatus = { ...d.status };
  if (status.owned !== undefined) status.owned = wellFormedOwned(status.owned);
  return status;
}

/**
 * The entries of status.owned that have its shape. digests may be absent (a file written before
 * digests were recorded; the reconcile then dates those tags from the status rows); present, it
 * must be strings parallel to tags, else the entry is dropped: a digest paired with the wrong tag
 * could let prune delete a tag that was pushed over. A tag or digest that is not a string drops
 * that pair.
 */
function wellFormedOwned(owned: unknown): OwnedTags[] {
  if (!Array.isArray(owned)) return [];
  return owned.flatMap((o: unknown) => {
    const e = o as Partial<Record<keyof OwnedTags, unknown>> | null;
    if (typeof e !== 'object' || e === null || typeof e.repository !== 'string' || !Array.isArray(e.tags)) return [];
    const tags: unknown[] = e.tags;
    if (e.digests === undefined) return [{ repository: e.repository, tags: tags.filter((t): t is string => typeof t === 'string') }];
    if (!Array.isArray(e.digests) || e.digests.length !== tags.length) return [];
    const digests: unknown[] = e.digests;
    const pairs = tags.flatMap((t, i) => {
      const d = digests[i];
      return typeof t === 'string' && typeof d === 'string' ? [[t, d] as const] : [];
    });
    return [{ repository: e.repository, tags: pairs.map(([t]) => t), digests: pairs.map(([, d]) => d) }];
  });
}
