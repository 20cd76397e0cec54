/**
 * `image-mirror bundle`: one archive for a set of mirrors (a plain OCI archive of one source
 * repository; several repositories sharing one blob store under REPOSITORY:TAG ref names), delta
 * bundles against an earlier bundle or a lock holding only the blobs the far side lacks, with the
 * bytes written and left out reported, and imports on the far side that refuse an incomplete,
 * altered or cut-short bundle naming the blob, with no tag written.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { LOCK_ENTRY, parseLock } from '../../src/backends/archive/lock.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { lockPathOf, runBundle, type BundleOptions, type BundleResult } from '../../src/standalone/bundle.js';
import { runSync, type MirrorResult } from '../../src/standalone/sync.js';
import { blobOf, buildImage, buildIndex, pushImage, pushIndex, randomBlob, type BuiltImage } from '../support/images.js';
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

function sink(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

describe('image-mirror bundle', function () {
  this.timeout(120_000);
  let a: TestRegistry;
  let far: TestRegistry;
  let dir: string;
  let client: RegistryClient;
  let farClient: RegistryClient;
  let seq = 0;

  async function bundle(specs: string, o: Partial<BundleOptions> & { to: string }): Promise<BundleResult & { stdout: string; stderr: string }> {
    const file = join(dir, `bundle-${++seq}.yaml`);
    await writeFile(file, specs);
    const out = sink();
    const err = sink();
    const r = await runBundle({ files: [file], dockerConfig: '/nonexistent/config.json', stdout: out.stream, stderr: err.stream, ...o });
    return { ...r, stdout: out.text(), stderr: err.text() };
  }

  async function importFrom(name: string, source: string, tags: string[], target: string): Promise<{ exitCode: number; mirror: MirrorResult }> {
    const file = join(dir, `import-${++seq}.yaml`);
    await writeFile(file, mirror(name, `  source: {repository: "${source}", tags: [${tags.join(', ')}]}\n  targets: [{repository: ${target}}]`));
    const r = await runSync({ files: [file], output: 'json', dockerConfig: '/nonexistent/config.json', stdout: sink().stream, stderr: sink().stream });
    return { exitCode: r.exitCode, mirror: r.mirrors[0]! };
  }

  before(async () => {
    a = await startRegistry();
    far = await startRegistry();
    client = new RegistryClient(a.host);
    farClient = new RegistryClient(far.host);
    dir = await realpath(await mkdtemp(join(tmpdir(), 'bundle-')));
  });
  after(async () => {
    await client.close();
    await farClient.close();
    await a.stop();
    await far.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('mirrors of one source repository make a plain OCI archive of it: skopeo reads its tags; lock inside and beside', async () => {
    const repo = client.repository('one/web');
    const v1 = await pushIndex(repo, buildIndex({ layers: [2000] }), '1.0');
    const v2 = await pushImage(repo, buildImage({ layers: [2100] }), '2.0');
    const to = join(dir, 'one.tar');
    const r = await bundle(
      mirror('web-1', `  source: {repository: ${a.host}/one/web, tags: ["1.0"]}\n  targets: [{repository: registry.far/web}]`) +
        mirror('web-2', `  source: {repository: ${a.host}/one/web, tags: ["2.0"]}\n  targets: [{repository: registry.far/web}]`),
      { to },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(Buffer.from(await skopeo('inspect', '--raw', `oci-archive:${to}:1.0`)), v1.bytes);
    assert.deepEqual(Buffer.from(await skopeo('inspect', '--raw', `oci-archive:${to}:2.0`)), v2.bytes);
    const inside = parseLock((await run('tar', ['xOf', to, LOCK_ENTRY])).stdout);
    const beside = parseLock(await readFile(lockPathOf(to), 'utf8'));
    assert.deepEqual(inside, beside);
    assert.deepEqual(inside.images.map((i) => [i.refName, i.digest]), [['1.0', v1.digest], ['2.0', v2.digest]]);
    // Every blob and manifest the two images need, all carried.
    const needed = new Set([v1.digest, ...v1.children.map((c) => c.digest), ...v1.blobs.map((b) => b.descriptor.digest), v2.digest, ...v2.blobs.map((b) => b.descriptor.digest)]);
    assert.deepEqual(new Set(inside.blobs.map((b) => b.digest)), needed);
    assert.ok(inside.blobs.every((b) => b.included));
    assert.equal(r.bytesLeftOut, 0);
    assert.equal(r.bytesWritten, inside.blobs.reduce((n, b) => n + b.size, 0));
    assert.match(r.stdout, /left out/);
    assert.deepEqual(r.imports, [{ repository: `${a.host}/one/web`, from: `oci-archive:${to}` }]);
  });

  it('several source repositories share one archive: ref names REPOSITORY:TAG, imported through oci-archive:FILE#REPOSITORY', async () => {
    const shared = randomBlob(40_000);
    const web = await pushImage(client.repository('team/web'), buildImage({ layerBlobs: [shared] }), '1');
    const api = await pushImage(client.repository('team/api'), buildImage({ layerBlobs: [shared, randomBlob(1500)] }), '1');
    const to = join(dir, 'several.tar');
    const r = await bundle(
      mirror('web', `  source: {repository: ${a.host}/team/web, tags: ["1"]}\n  targets: [{repository: registry.far/web}]`) +
        mirror('api', `  source: {repository: ${a.host}/team/api, tags: ["1"]}\n  targets: [{repository: registry.far/api}]`),
      { to },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.lock?.images.map((i) => i.refName), ['team/api:1', 'team/web:1']);
    // One blob store: the layer both repositories use is carried once.
    const names = (await run('tar', ['tf', to])).stdout.split('\n');
    assert.equal(names.filter((n) => n.endsWith(shared.descriptor.digest.slice(7))).length, 1);
    assert.deepEqual(Buffer.from(await skopeo('inspect', '--raw', `oci-archive:${to}:team/web:1`)), web.bytes);
    assert.deepEqual(r.imports.map((i) => i.from).sort(), [`oci-archive:${to}#team/api`, `oci-archive:${to}#team/web`]);
    const imp = await importFrom('import-api', `oci-archive:${to}#team/api`, ['"1"'], `${far.host}/several/api`);
    assert.equal(imp.exitCode, 0, imp.mirror.message);
    assert.equal((await farClient.repository('several/api').headManifest('1'))?.digest, api.digest);
  });

  describe('delta bundles', () => {
    let base: BuiltImage;
    let changed: BuiltImage;
    const first = (): string => join(dir, 'first.tar');
    const second = (): string => join(dir, 'second.tar');
    const spec = (): string => mirror('app', `  source: {repository: ${a.host}/delta/app, tags: [stable]}\n  targets: [{repository: registry.far/app}]`);

    before(async () => {
      const repo = client.repository('delta/app');
      const common = blobOf(Buffer.alloc(60_000, 7));
      base = buildImage({ layerBlobs: [common, randomBlob(10_000)] });
      changed = buildImage({ layerBlobs: [common, randomBlob(12_000)] });
      await pushImage(repo, base, 'stable');
    });

    it('--since an earlier bundle, after the tag moved, carries only the new blobs and reports the bytes left out', async () => {
      const r1 = await bundle(spec(), { to: first() });
      assert.equal(r1.exitCode, 0, r1.stderr);
      await pushImage(client.repository('delta/app'), changed, 'stable');
      const r2 = await bundle(spec(), { to: second(), since: first() });
      assert.equal(r2.exitCode, 0, r2.stderr);
      const lock = r2.lock!;
      const carried = lock.blobs.filter((b) => b.included).map((b) => b.digest).sort();
      const fresh = [changed.digest, changed.config.descriptor.digest, changed.layers[1]!.descriptor.digest].sort();
      assert.deepEqual(carried, fresh);
      assert.deepEqual(lock.blobs.filter((b) => !b.included).map((b) => [b.digest, b.size]), [[changed.layers[0]!.descriptor.digest, 60_000]]);
      assert.equal(r2.bytesLeftOut, 60_000);
      assert.equal(r2.bytesWritten, changed.size + changed.config.descriptor.size + 12_000);
      assert.match(r2.stdout, /13 KiB written, 59 KiB left out/);
      // The archive holds nothing else: the 60 kB layer is not in the file.
      assert.ok((await stat(second())).size < 40_000);
    });

    it('--have with the earlier lock leaves out the same blobs', async () => {
      const r = await bundle(spec(), { to: join(dir, 'have.tar'), have: lockPathOf(first()) });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(r.lock?.blobs.filter((b) => !b.included).map((b) => b.digest), [changed.layers[0]!.descriptor.digest]);
    });

    it('the delta imports cleanly on top of the first bundle', async () => {
      const one = await importFrom('far-app', `oci-archive:${first()}`, ['stable'], `${far.host}/prod/app`);
      assert.equal(one.exitCode, 0, one.mirror.message);
      assert.equal((await farClient.repository('prod/app').headManifest('stable'))?.digest, base.digest);
      const two = await importFrom('far-app', `oci-archive:${second()}`, ['stable'], `${far.host}/prod/app`);
      assert.equal(two.exitCode, 0, two.mirror.message);
      assert.equal(two.mirror.targets[0]?.blobs.exists, 1, JSON.stringify(two.mirror.targets[0]?.blobs));
      assert.equal((await farClient.repository('prod/app').headManifest('stable'))?.digest, changed.digest);
    });

    it('a delta imported where the left-out blob is missing is refused naming it, and nothing is tagged', async () => {
      const r = await importFrom('empty-far', `oci-archive:${second()}`, ['stable'], `${far.host}/empty/app`);
      assert.equal(r.exitCode, 1);
      const msg = `${r.mirror.message} ${r.mirror.targets.map((t) => t.message).join(' ')}`;
      assert.ok(msg.includes(changed.layers[0]!.descriptor.digest), msg);
      assert.match(msg, /left out of this delta bundle/);
      assert.deepEqual(await farClient.repository('empty/app').listTags(), []);
    });
  });

  describe('a damaged bundle is refused on import', () => {
    let img: BuiltImage;
    let to: string;
    before(async () => {
      img = buildImage({ layerBlobs: [randomBlob(50_000), randomBlob(20_000)] });
      await pushImage(client.repository('damage/app'), img, 'v1');
      to = join(dir, 'damage.tar');
      const r = await bundle(mirror('damage', `  source: {repository: ${a.host}/damage/app, tags: [v1]}\n  targets: [{repository: registry.far/x}]`), { to });
      assert.equal(r.exitCode, 0, r.stderr);
    });

    it('one flipped byte: the blob is named, no tag written', async () => {
      const bad = join(dir, 'flipped.tar');
      const bytes = await readFile(to);
      const layer = img.layers[0]!.descriptor;
      const at = bytes.indexOf(Buffer.from(`blobs/sha256/${layer.digest.slice(7)}`)) + 512 + 1234;
      bytes[at] = bytes[at]! ^ 0x01;
      await writeFile(bad, bytes);
      const r = await importFrom('flipped', `oci-archive:${bad}`, ['v1'], `${far.host}/flipped/app`);
      assert.equal(r.exitCode, 1);
      assert.ok(r.mirror.message.includes(layer.digest), r.mirror.message);
      assert.deepEqual(await farClient.repository('flipped/app').listTags(), []);
    });

    it('cut short: the blob it cuts is named, no tag written', async () => {
      const bad = join(dir, 'cut.tar');
      const bytes = await readFile(to);
      const layer = img.layers[0]!.descriptor;
      await writeFile(bad, bytes);
      await truncate(bad, bytes.indexOf(Buffer.from(`blobs/sha256/${layer.digest.slice(7)}`)) + 512 + 30_000);
      const r = await importFrom('cut', `oci-archive:${bad}`, ['v1'], `${far.host}/cut/app`);
      assert.equal(r.exitCode, 1);
      assert.ok(r.mirror.message.includes(layer.digest) && /cut short/.test(r.mirror.message), r.mirror.message);
      assert.deepEqual(await farClient.repository('cut/app').listTags(), []);
    });
  });

  it('a mirror that fails leaves no bundle (nor lock) behind', async () => {
    await pushImage(client.repository('fail/ok'), buildImage({ layers: [100] }), 'v1');
    const to = join(dir, 'failed.tar');
    const r = await bundle(
      mirror('ok', `  source: {repository: ${a.host}/fail/ok, tags: [v1]}\n  targets: [{repository: registry.far/ok}]`) +
        mirror('missing', `  source: {repository: ${a.host}/fail/ok, tags: [nope]}\n  targets: [{repository: registry.far/ok}]`),
      { to },
    );
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /air\/missing: SourceNotFound/);
    await assert.rejects(stat(to), { code: 'ENOENT' });
    await assert.rejects(stat(lockPathOf(to)), { code: 'ENOENT' });
  });
});
