#!/usr/bin/env node
// In a checkout (src/ present, dev dependencies installed) run the TypeScript sources through tsx,
// so a stale build is never used. Installed from the npm tarball or in the container image there is
// no src/ and no tsx: run the bundle that `npm run build` (prepack) wrote to dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

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

const tsx = existsSync(sources) ? await tsxLoader() : undefined;
if (tsx) {
  tsx.register();
  await import(pathToFileURL(sources).href);
} else {
  await import(pathToFileURL(join(root, 'dist', 'main.js')).href);
}
