/**
 * Where `run` keeps one mirror's status: a file directly inside --status-dir, whatever the key.
 *
 * Keys come from spec files written by many people: `namespace/name` for a mirror whose name is
 * usable, `file#docIndex` for one without. A key is never joined into a path as it is, so no key can
 * name a file elsewhere (`../../etc/x`), a subdirectory, or an over-long file name.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { PATTERNS } from '../mirror/validate.js';

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
