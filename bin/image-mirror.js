#!/usr/bin/env node
// In a checkout (src/ present) run the TypeScript sources through tsx, so a stale build is never
// used; in the container image (no src/) run the bundle that `npm run build` wrote to dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sources = join(root, 'src', 'main.ts');
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(sources).href);
} else {
  await import(pathToFileURL(join(root, 'dist', 'main.js')).href);
}
