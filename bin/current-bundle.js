// Whether the checkout bundle (`node scripts/build.mjs --checkout`, npm's `prepare`) was built from
// exactly what a checkout holds now. scripts/build.mjs writes the record this reads.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Written beside the bundle by scripts/build.mjs --checkout. */
export const BUILD_INFO = 'build-info.json';

/**
 * True when `root`/dist holds a checkout bundle whose every recorded input (each file and directory
 * under src/, the bundled dependency files, package.json, the build script) still has its recorded
 * mtime (in whole milliseconds) and size. Exact equality, not "older than the bundle": a file put back with an old mtime
 * (cp -p, an archive, a checkout of an older commit on some tools) counts as changed too. A
 * directory's mtime changes when an entry is added, removed or renamed in it, so a new source file
 * counts as well. One stat per input: a few milliseconds.
 */
export function checkoutBundleIsCurrent(root) {
  let info;
  try {
    info = JSON.parse(readFileSync(join(root, 'dist', BUILD_INFO), 'utf8'));
  } catch {
    return false;
  }
  if (info?.checkout !== true || !Array.isArray(info.inputs) || info.inputs.length === 0) return false;
  for (const entry of info.inputs) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') return false;
    const [path, mtimeMs, size] = entry;
    const s = statSync(join(root, path), { throwIfNoEntry: false });
    if (!s || Math.floor(s.mtimeMs) !== mtimeMs || s.size !== size) return false;
  }
  return existsSync(join(root, 'dist', 'main.js'));
}
