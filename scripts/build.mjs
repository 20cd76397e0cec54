// Production build: one ESM bundle (plus a lazily loaded chunk for the controller command, which
// alone needs @kubernetes/client-node). Bundling halves start-up time (~0.23 s → ~0.12 s), which a
// CLI run from CI pipelines pays on every invocation.
//
//   node scripts/build.mjs [OUTDIR]              the packaged bundle: version and commit written in
//   node scripts/build.mjs --checkout [OUTDIR]   npm's `prepare` (npm ci / npm install in a checkout):
//       version and commit are read live, as from the sources, and bin/image-mirror.js runs it only
//       while every input is exactly as it was built from (OUTDIR/build-info.json)
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** What src/auth imports lazily, when a mirror uses that cloud provider. */
const CLOUD_SDKS = ['@aws-sdk/client-ecr', '@aws-sdk/client-ecr-public', '@aws-sdk/credential-providers', '@azure/identity', 'google-auth-library'];

/**
 * What src/ uses of undici, in place of its index: the index also loads fetch, WebSocket, cookies,
 * EventSource, mocks and cache stores, which the CLI never uses and which were the largest single
 * part of start-up (about a sixth of a no-op sync's CPU). Named ESM exports, so a src/ import of
 * anything else fails the build rather than the run. `request` is the index's own wrapper.
 */
const UNDICI_SUBSET = `
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import Pool from 'undici/lib/dispatcher/pool.js';
import ProxyAgent from 'undici/lib/dispatcher/proxy-agent.js';
import redirect from 'undici/lib/interceptor/redirect.js';
import errors from 'undici/lib/core/errors.js';
import util from 'undici/lib/core/util.js';
import globals from 'undici/lib/global.js';

Object.assign(Dispatcher.prototype, api);

export { Agent, Dispatcher, Pool, ProxyAgent };
export const interceptors = { redirect };

function makeDispatcher(fn) {
  return (url, opts, handler) => {
    if (typeof opts === 'function') {
      handler = opts;
      opts = null;
    }
    if (!url || (typeof url !== 'string' && typeof url !== 'object' && !(url instanceof URL))) {
      throw new errors.InvalidArgumentError('invalid url');
    }
    if (opts != null && typeof opts !== 'object') throw new errors.InvalidArgumentError('invalid opts');
    if (opts && opts.path != null) {
      if (typeof opts.path !== 'string') throw new errors.InvalidArgumentError('invalid opts.path');
      let path = opts.path;
      if (!opts.path.startsWith('/')) path = '/' + path;
      url = new URL(util.parseOrigin(url).origin + path);
    } else {
      if (!opts) opts = typeof url === 'object' ? url : {};
      url = util.parseURL(url);
    }
    const { agent, dispatcher = globals.getGlobalDispatcher() } = opts;
    if (agent) throw new errors.InvalidArgumentError('unsupported opts.agent. Did you mean opts.client?');
    return fn.call(dispatcher, { ...opts, origin: url.origin, path: url.search ? url.pathname + url.search : url.pathname, method: opts.method || (opts.body ? 'PUT' : 'GET') }, handler);
  };
}
export const request = makeDispatcher(api.request);
`;

/** `undici` imported from src/ resolves to UNDICI_SUBSET; dependencies that import it get the real one. */
const undiciSubset = {
  name: 'undici-subset',
  setup(b) {
    const src = join(process.cwd(), 'src') + sep;
    b.onResolve({ filter: /^undici$/ }, (a) => (a.importer.startsWith(src) ? { path: 'undici', namespace: 'undici-subset' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'undici-subset' }, () => ({ contents: UNDICI_SUBSET, resolveDir: process.cwd(), loader: 'js' }));
  },
};

/** Written beside the bundle; bin/current-bundle.js reads it (the same name there). */
const BUILD_INFO = 'build-info.json';

const args = process.argv.slice(2);
const checkout = args.includes('--checkout');
const outdir = args.find((a) => !a.startsWith('--')) ?? 'dist';

if (checkout && ['pack', 'publish'].includes(process.env.npm_command ?? '')) {
  // npm runs `prepare` after `prepack` when packing: the packaged bundle prepack wrote stays.
  process.exit(0);
}

let build;
try {
  ({ build } = await import('esbuild'));
} catch (e) {
  if (!checkout || e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  // An install without dev dependencies: no bundle for the checkout, the CLI runs as before.
  process.stderr.write('build: esbuild is not installed (--omit=dev); no checkout bundle written\n');
  process.exit(0);
}

const { version } = JSON.parse(await readFile('package.json', 'utf8'));

/**
 * The commit `--version` names: IMAGE_MIRROR_COMMIT when the builder knows it but has no .git (a
 * docker build context), else `git rev-parse HEAD`, else "unknown" (a build from a source tarball).
 */
function commit() {
  const given = process.env.IMAGE_MIRROR_COMMIT?.trim();
  if (given && /^[0-9a-f]{7,64}$/i.test(given)) return given.toLowerCase();
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    return /^[0-9a-f]{7,64}$/.test(head) ? head : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * [path, mtime in whole ms, size] of `path`, relative to the project with `/` separators. Whole
 * milliseconds: what a restore (utimes, tar, cp -p) can put back exactly.
 */
function stamp(path) {
  const s = statSync(path);
  return [path.split(sep).join('/'), Math.floor(s.mtimeMs), s.size];
}

/** Every file and directory under `dir` (a directory's mtime changes when an entry is added or removed). */
function walk(dir, out = []) {
  out.push(stamp(dir));
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(stamp(p));
  }
  return out;
}

// Taken before building: a source edited while esbuild runs then no longer matches, and the
// bundle counts as stale rather than passing for the edited source.
const sources = checkout ? walk('src') : [];

// A checkout bundle is built beside the old one and swapped in, so that a CLI starting meanwhile
// finds either the old bundle with its record or the new one, never half of one.
const target = checkout ? `${outdir}.building-${process.pid}` : outdir;
await rm(target, { recursive: true, force: true });
let result;
try {
  result = await build({
    entryPoints: ['src/main.ts'],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir: target,
    // client-node is large and ESM-only; loading it from node_modules keeps it out of sync/run start-up.
    // The cloud SDKs (credentials.provider) are imported only when a mirror uses one; bundled they
    // would be most of the output (about 10 MB of the 16 MB), so they load from node_modules too.
    external: ['@kubernetes/client-node', ...CLOUD_SDKS],
    // CommonJS dependencies (winston, …) call require(); ESM chunks get one from createRequire.
    banner: { js: "import { createRequire as __imcCreateRequire } from 'node:module'; const require = __imcCreateRequire(import.meta.url);" },
    // Read by src/version.ts: a tarball or an image has no .git and no package.json at a known place.
    // A checkout bundle leaves them out, so src/version.ts asks package.json and git as the sources do
    // (a commit written in would be wrong after the next `git commit`).
    define: checkout ? {} : { __IMAGE_MIRROR_VERSION__: JSON.stringify(version), __IMAGE_MIRROR_COMMIT__: JSON.stringify(commit()) },
    plugins: [undiciSubset],
    sourcemap: true,
    metafile: checkout,
    logLevel: 'warning',
  });
} catch (e) {
  if (checkout) await rm(target, { recursive: true, force: true });
  throw e;
}

if (checkout) {
  // Dependencies bundled in (node_modules/…), and what decides how they are bundled.
  // (Inputs that are not files — `<stdin>`, `(disabled):…`, a plugin's `namespace:path` — are left
  // out; the undici subset is part of this script.)
  const others = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('src/') && !/^[<(]|^[a-z-]+:/.test(p));
  const inputs = [...sources, ...[...others, 'package.json', relative('.', 'scripts/build.mjs')].map(stamp)];
  await writeFile(join(target, BUILD_INFO), JSON.stringify({ checkout: true, inputs }) + '\n');
  const old = `${outdir}.old-${process.pid}`;
  await rename(outdir, old).catch((e) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await rename(target, outdir);
  await rm(old, { recursive: true, force: true });
}
