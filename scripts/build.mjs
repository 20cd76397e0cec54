// Production build: one ESM bundle (plus a lazily loaded chunk for the controller command, which
// alone needs @kubernetes/client-node). Bundling halves start-up time (~0.23 s → ~0.12 s), which a
// CLI run from CI pipelines pays on every invocation. Usage: node scripts/build.mjs [OUTDIR]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';

/** What src/auth imports lazily, when a mirror uses that cloud provider. */
const CLOUD_SDKS = ['@aws-sdk/client-ecr', '@aws-sdk/client-ecr-public', '@aws-sdk/credential-providers', '@azure/identity', 'google-auth-library'];

const outdir = process.argv[2] ?? 'dist';
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

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir,
  // client-node is large and ESM-only; loading it from node_modules keeps it out of sync/run start-up.
  // The cloud SDKs (credentials.provider) are imported only when a mirror uses one; bundled they
  // would be most of the output (about 10 MB of the 16 MB), so they load from node_modules too.
  external: ['@kubernetes/client-node', ...CLOUD_SDKS],
  // CommonJS dependencies (winston, …) call require(); ESM chunks get one from createRequire.
  banner: { js: "import { createRequire as __imcCreateRequire } from 'node:module'; const require = __imcCreateRequire(import.meta.url);" },
  // Read by src/version.ts: a tarball or an image has no .git and no package.json at a known place.
  define: { __IMAGE_MIRROR_VERSION__: JSON.stringify(version), __IMAGE_MIRROR_COMMIT__: JSON.stringify(commit()) },
  sourcemap: true,
  logLevel: 'warning',
});
