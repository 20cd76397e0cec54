#!/usr/bin/env node
// Which code runs:
//  - installed from the npm tarball or in the container image (no src/): the bundle in dist/, which
//    `npm run build` (prepack) wrote;
//  - a checkout: the bundle npm's `prepare` wrote (`scripts/build.mjs --checkout`, on npm ci and
//    npm install) while every file it was built from is unchanged — it starts in a fraction of the
//    time transpiling the sources takes — else the TypeScript sources through tsx, so a stale
//    bundle is never used. Without tsx (a checkout installed with --omit=dev) the bundle it has.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { checkoutBundleIsCurrent } from './current-bundle.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sources = join(root, 'src', 'main.ts');
const bundle = join(root, 'dist', 'main.js');

/** tsx's loader, or undefined when it is not installed (a checkout set up with --omit=dev). */
async function tsxLoader() {
  try {
    return await import('tsx/esm/api');
  } catch (e) {
    if (e && e.code === 'ERR_MODULE_NOT_FOUND' && existsSync(bundle)) return undefined;
    throw e;
  }
}

const tsx = existsSync(sources) && !checkoutBundleIsCurrent(root) ? await tsxLoader() : undefined;
if (tsx) {
  tsx.register();
  await import(pathToFileURL(sources).href);
} else {
  await import(pathToFileURL(bundle).href);
}
