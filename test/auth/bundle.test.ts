/**
 * The production bundle (scripts/build.mjs, what the container image runs) leaves the cloud SDKs
 * out and imports them from node_modules when a mirror uses them: each lazy import resolves from
 * where the bundle lives, and the built CLI mirrors an image with `credentials.provider: gcp`
 * through a registry that takes only tokens the (fake) GKE metadata server issued.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GCP_USERNAME } from '../../src/auth/gcp.js';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startCloudFront, type CloudFront } from '../support/cloud/front.js';
import { startFakeMetadata, type FakeMetadata } from '../support/cloud/gcp.js';
import { skopeoDigest, startMirrorScene, type MirrorScene } from '../support/cloud/mirror.js';
import { TokenLedger } from '../support/cloud/tokens.js';

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SDKS = ['@aws-sdk/client-ecr', '@aws-sdk/client-ecr-public', '@aws-sdk/credential-providers', '@azure/identity', 'google-auth-library'];

describe('bundle: cloud SDKs stay out of it and load from node_modules', function () {
  this.timeout(120_000);
  let out: string;
  let js: string;
  let scene: MirrorScene;
  let ledger: TokenLedger;
  let metadata: FakeMetadata;
  let front: CloudFront;
  let env: CloudEnv;

  before(async () => {
    // Inside the checkout (a git-ignored directory), so bare imports resolve from its node_modules
    // as they do from /app/dist in the image.
    await mkdir(join(ROOT, '.bundle-test'), { recursive: true });
    out = await mkdtemp(join(ROOT, '.bundle-test', 'cloud-'));
    ledger = new TokenLedger();
    [scene, metadata] = await Promise.all([
      startMirrorScene(),
      startFakeMetadata({ ledger }),
      execFileP(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), out], { cwd: ROOT }),
    ]);
    front = await startCloudFront(scene.target, { ledger, username: GCP_USERNAME, kinds: ['gcp'] });
    const files = (await readdir(out)).filter((f) => f.endsWith('.js'));
    js = (await Promise.all(files.map((f) => readFile(join(out, f), 'utf8')))).join('\n');
  });
  after(async () => {
    await front?.stop();
    await metadata?.stop();
    await scene?.stop();
    if (out) await rm(out, { recursive: true, force: true });
  });
  beforeEach(() => {
    env = cloudEnv();
  });
  afterEach(() => env.restore());

  it('imports each SDK by name at run time, bundling none of it, and each name resolves from the bundle directory', async () => {
    for (const name of SDKS) assert.ok(js.includes(`import("${name}")`), `${name} is not a lazy external import`);
    // Marker strings from inside the SDKs: present only if their code were bundled.
    for (const marker of ['AmazonEC2ContainerRegistry_V20150921', 'ManagedIdentityCredential: ', 'metadata-flavor']) {
      assert.ok(!js.toLowerCase().includes(marker.toLowerCase()), `SDK code bundled (${marker})`);
    }
    const probe = join(out, 'resolve-probe.mjs');
    await writeFile(probe, `for (const n of ${JSON.stringify(SDKS)}) console.log(import.meta.resolve(n));\n`);
    const { stdout } = await execFileP(process.execPath, [probe]);
    const resolved = stdout.trim().split('\n');
    assert.equal(resolved.length, SDKS.length);
    for (const url of resolved) assert.match(url, new RegExp(`^file://${ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}node_modules/`));
  });

  it('the built `sync` mirrors with credentials.provider: gcp, loading google-auth-library from node_modules', async () => {
    const spec = join(out, 'mirror.yaml');
    await writeFile(
      spec,
      `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: gke, namespace: team-a}\nspec:\n` +
        `  source: {repository: ${scene.source.host}/app, tags: [v1]}\n` +
        `  targets: [{repository: ${front.host}/bundle/app, credentials: {provider: gcp}}]\n  referrers: false\n`,
    );
    env.set({ GCE_METADATA_HOST: metadata.host, GOOGLE_CLOUD_PROJECT: 'imc-test-project' });
    const r = await execFileP(process.execPath, [join(out, 'main.js'), 'sync', '-f', spec, '--docker-config', join(out, 'absent.json')], { env: { ...process.env } }).catch(
      (e: { code?: number; stdout?: string; stderr?: string }) => e,
    );
    assert.equal((r as { code?: number }).code ?? 0, 0, `sync failed: ${r.stderr}`);
    assert.match(r.stdout ?? '', /Copied/);
    assert.equal(await skopeoDigest(scene.target, 'bundle/app:v1'), scene.image.digest);
    assert.ok(ledger.issued('gcp').some((t) => t.uses > 0));
  });
});
