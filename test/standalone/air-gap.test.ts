/**
 * Air-gapped mirroring end to end through `sync`: a multi-arch image with a referrer goes from a
 * registry into an OCI layout directory, from there into an OCI archive, and from the archive into
 * a second registry, with byte-identical manifests (checked with skopeo), pullable, the referrer
 * listed. Along the way: tag selection, dry run, and a blob already in a layout counted as exists.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { REF_NAME_ANNOTATION } from '../../src/backends/layout/index.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import { LOCAL_PATHS_REFUSED } from '../../src/mirror/validate.js';
import type { ImageMirror } from '../../src/mirror/types.js';
import { anonymous } from '../../src/oci/credentials.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { runSync, type MirrorResult } from '../../src/standalone/sync.js';
import { buildIndex, fallbackTagOf, pushIndex, pushReferrer, type BuiltIndex, type BuiltReferrer } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const run = promisify(execFile);

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

const mirror = (name: string, spec: string): string => `---
apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${name}, namespace: air}
spec:
${spec}
`;

describe('air-gapped mirroring through sync (registry → oci: → oci-archive: → registry)', function () {
  this.timeout(120_000);
  let a: TestRegistry;
  let b: TestRegistry;
  let dir: string;
  let client: RegistryClient;
  let idx: BuiltIndex;
  let ref: BuiltReferrer;
  let layout: string;
  let archive: string;

  async function sync(name: string, spec: string, dryRun = false): Promise<MirrorResult> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, mirror(name, spec));
    const out = new PassThrough();
    const err = new PassThrough();
    let stderr = '';
    err.on('data', (c: Buffer) => (stderr += c.toString()));
    out.resume();
    const r = await runSync({ files: [file], dryRun, output: 'json', dockerConfig: '/nonexistent/config.json', stdout: out, stderr: err });
    const m = r.mirrors[0]!;
    assert.equal(r.exitCode, 0, `${m.reason}: ${m.message} ${stderr}`);
    return m;
  }

  before(async () => {
    a = await startRegistry();
    b = await startRegistry();
    client = new RegistryClient(a.host);
    const repo = client.repository('dev/app');
    idx = await pushIndex(repo, buildIndex({ layers: [3000, 5000] }), 'v1');
    await pushIndex(repo, buildIndex({ layers: [3001] }), 'v0');
    ref = await pushReferrer(repo, idx.descriptor);
    dir = await realpath(await mkdtemp(join(tmpdir(), 'air-gap-')));
    layout = join(dir, 'layout');
    archive = join(dir, 'app.tar');
  });
  after(async () => {
    await client.close();
    await a.stop();
    await b.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('registry → oci:DIR: exact bytes, only the selected tag, the referrer kept in index.json with its subject', async () => {
    const m = await sync('to-layout', `  source: {repository: ${a.host}/dev/app, tagPattern: "^v1$"}\n  targets: [{repository: "oci:${layout}"}]\n  referrers: true`);
    // Rows name a layout as its registry ("oci:") and path, like every other target.
    assert.deepEqual(m.targets.map((t) => [t.reference, t.action, t.digest]), [[`oci:/${layout}:v1`, 'Copied', idx.digest]]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string>; subject?: { digest: string } }> };
    // v0 was not selected.
    const tagged = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== undefined).map((d) => d.annotations![REF_NAME_ANNOTATION]);
    assert.ok(!tagged.includes('v0'), tagged.join(' '));
    assert.ok(tagged.includes('v1'));
    assert.ok(index.manifests.some((d) => d.digest === ref.digest && d.subject?.digest === idx.digest), 'referrer entry with its subject');
    assert.deepEqual(await readFile(join(layout, 'blobs', 'sha256', idx.digest.slice(7))), idx.bytes);
    assert.deepEqual(Buffer.from(await skopeo('inspect', '--raw', `oci:${layout}:v1`)), idx.bytes);
  });

  it('oci:DIR → oci-archive:FILE, then a dry run from the archive writes nothing and says what it would do', async () => {
    const m = await sync('to-archive', `  source: {repository: "oci:${layout}", tags: [v1]}\n  targets: [{repository: "oci-archive:${archive}"}]\n  referrers: true`);
    assert.deepEqual(m.targets.map((t) => [t.action, t.digest]), [['Copied', idx.digest]]);
    assert.deepEqual(Buffer.from(await skopeo('inspect', '--raw', `oci-archive:${archive}:v1`)), idx.bytes);

    const before = await stat(archive);
    const dry = await sync('dry', `  source: {repository: "oci-archive:${archive}", tags: [v1]}\n  targets: [{repository: ${b.host}/prod/app}]\n  referrers: true`, true);
    assert.deepEqual(dry.targets.map((t) => t.action), ['WouldCopy']);
    const bRepo = new RegistryClient(b.host).repository('prod/app');
    assert.deepEqual(await bRepo.listTags(), []);
    // A dry run into an archive target writes no archive either.
    await sync('dry-archive', `  source: {repository: "oci:${layout}", tags: [v1]}\n  targets: [{repository: "oci-archive:${join(dir, 'dry.tar')}"}]`, true);
    await assert.rejects(stat(join(dir, 'dry.tar')), { code: 'ENOENT' });
    assert.equal((await stat(archive)).mtimeMs, before.mtimeMs);
  });

  it('oci-archive:FILE → a second registry: byte-identical index and children (skopeo), pullable, the referrer listed', async () => {
    const m = await sync('import', `  source: {repository: "oci-archive:${archive}", tags: [v1]}\n  targets: [{repository: ${b.host}/prod/app}]\n  referrers: true`);
    assert.deepEqual(m.targets.map((t) => [t.action, t.digest]), [['Copied', idx.digest]]);
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${b.host}/prod/app:v1`);
    assert.deepEqual(Buffer.from(raw), idx.bytes);
    for (const c of idx.children) {
      const child = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${b.host}/prod/app@${c.digest}`);
      assert.deepEqual(Buffer.from(child), c.bytes);
    }
    // Pullable: skopeo fetches every platform's config and layers, verifying each digest.
    await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${b.host}/prod/app:v1`, `oci:${join(dir, 'pulled')}:v1`);
    // distribution 2.8 has no referrers API: the referrer is listed by the fallback index.
    const fallback = JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${b.host}/prod/app:${fallbackTagOf(idx.digest)}`)) as { manifests: Array<{ digest: string }> };
    assert.deepEqual(fallback.manifests.map((d) => d.digest), [ref.digest]);
    const refRaw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${b.host}/prod/app@${ref.digest}`);
    assert.deepEqual(Buffer.from(refRaw), ref.bytes);
  });

  it('a reconcile not told local paths are allowed (the controller by default) refuses them as InvalidSpec and writes nothing', async () => {
    const reconciler = createReconciler();
    const target = join(dir, 'refused.tar');
    const m = {
      apiVersion: 'imagemirror.dev/v1alpha1',
      kind: 'ImageMirror',
      metadata: { name: 'refused', namespace: 'air' },
      spec: { source: { repository: `${a.host}/dev/app`, tags: ['v1'] }, targets: [{ repository: `oci-archive:${target}` }] },
    } as ImageMirror;
    try {
      const r = await reconciler.reconcile(m, { credentials: async () => anonymous });
      assert.equal(r.reason, 'InvalidSpec');
      assert.ok(r.message.includes(LOCAL_PATHS_REFUSED), r.message);
      const allowed = await reconciler.reconcile(m, { credentials: async () => anonymous, localPaths: true });
      assert.equal(allowed.outcome, 'synced', allowed.message);
    } finally {
      await reconciler.close();
    }
    assert.ok((await stat(target)).size > 0);
  });

  it('a blob already in the layout counts as exists; a second run is up to date', async () => {
    const child = idx.children[0]!;
    const partial = join(dir, 'partial');
    await sync('child-only', `  source: {repository: ${a.host}/dev/app, digest: "${child.digest}"}\n  targets: [{repository: "oci:${partial}", tags: [child]}]\n  referrers: false`);
    const m = await sync('rest', `  source: {repository: ${a.host}/dev/app, tags: [v1]}\n  targets: [{repository: "oci:${partial}"}]\n  referrers: false`);
    const t = m.targets[0]!;
    assert.equal(t.action, 'Copied');
    assert.ok(t.blobs.exists >= child.blobs.length, JSON.stringify(t.blobs));
    assert.equal(t.blobs.upload, idx.blobs.length - child.blobs.length);
    const again = await sync('rest', `  source: {repository: ${a.host}/dev/app, tags: [v1]}\n  targets: [{repository: "oci:${partial}"}]\n  referrers: false`);
    assert.equal(again.targets[0]?.action, 'UpToDate');
  });
});
