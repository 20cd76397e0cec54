/**
 * What `image-mirror --version` reports: the package version, the commit it was built from and the
 * Node version running it. The production bundle has the first two written in at build time
 * (scripts/build.mjs `define`), because a published tarball or an image has neither package.json
 * beside the code in a known place nor a .git to ask; a checkout run through tsx reads them live.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

declare const __IMAGE_MIRROR_VERSION__: string | undefined;
declare const __IMAGE_MIRROR_COMMIT__: string | undefined;

/** What a build from outside a git checkout (a source tarball, a bare docker context) records. */
export const UNKNOWN_COMMIT = 'unknown';

/** `git rev-parse` may not hang the CLI: a checkout answers in milliseconds. */
const GIT_TIMEOUT_MS = 2000;

export interface BuildInfo {
  version: string;
  commit: string;
  node: string;
}

function checkoutVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function checkoutCommit(): string {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: GIT_TIMEOUT_MS,
    }).trim();
    return /^[0-9a-f]{7,64}$/.test(out) ? out : UNKNOWN_COMMIT;
  } catch {
    return UNKNOWN_COMMIT;
  }
}

/** Computed on request only: the checkout path spawns git, which no other command should pay for. */
export function buildInfo(): BuildInfo {
  return {
    version: typeof __IMAGE_MIRROR_VERSION__ === 'string' ? __IMAGE_MIRROR_VERSION__ : checkoutVersion(),
    commit: typeof __IMAGE_MIRROR_COMMIT__ === 'string' ? __IMAGE_MIRROR_COMMIT__ : checkoutCommit(),
    node: process.version,
  };
}

/** One line: `image-mirror 0.1.0 (commit 1a2b3c…, node v20.20.0)`. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `image-mirror ${info.version} (commit ${info.commit}, node ${info.node})`;
}
