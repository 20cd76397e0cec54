/**
 * A dry run says it is one: WouldCopy / WouldRetag / UpToDate / WouldConflict, a header line in
 * text, `"dryRun": true` in JSON, the mirror's message says what would happen (never "in sync"),
 * and the registry receives no write.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/registry.js';
import { DRY_RUN_HEADER, runSync } from '../../src/standalone/sync.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

describe('sync --dry-run says it is one', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let dir: string;
  let file: string;

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    const a = buildImage({ layers: [1024] });
    const b = buildImage({ layers: [2048] });
    await pushImage(client.repository('d/src'), a, 'v1');
    await pushImage(client.repository('d/same'), a, 'v1'); // up to date
    await pushImage(client.repository('d/retag'), a, 'older'); // the image is there under another tag
    await pushImage(client.repository('d/taken'), b, 'v1'); // another image holds the tag
    dir = await mkdtemp(join(tmpdir(), 'dry-run-'));
    file = join(dir, 'm.yaml');
    const doc = (name: string, spec: string) => `---\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}, namespace: ns}\nspec:\n${spec}`;
    await writeFile(
      file,
      doc('plan', `  source: {repository: ${reg.host}/d/src, tags: [v1]}\n  referrers: false\n  targets:\n    - repository: ${reg.host}/d/new\n    - repository: ${reg.host}/d/retag\n    - repository: ${reg.host}/d/same\n`) +
        doc('clash', `  source: {repository: ${reg.host}/d/src, tags: [v1]}\n  referrers: false\n  overwrite: false\n  targets: [{repository: ${reg.host}/d/taken}]\n`),
    );
  });
  after(async () => {
    await client?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('JSON: dryRun true, Would* actions, a "would" message, and no write reaches the registry', async () => {
    await reg.resetLog();
    const out = capture();
    const r = await runSync({ files: [file], dryRun: true, output: 'json', stdout: out.stream, stderr: new PassThrough() });
    const doc = JSON.parse(out.text()) as { dryRun?: boolean; mirrors: Array<{ name: string; reason: string; message: string; targets: Array<{ reference: string; action: string }> }> };
    assert.equal(doc.dryRun, true);
    const by = Object.fromEntries(doc.mirrors.map((m) => [m.name, m]));
    assert.deepEqual(by.plan?.targets.map((t) => [t.reference, t.action]), [
      [`${reg.host}/d/new:v1`, 'WouldCopy'],
      [`${reg.host}/d/retag:v1`, 'WouldRetag'],
      [`${reg.host}/d/same:v1`, 'UpToDate'],
    ]);
    assert.equal(by.plan?.reason, 'WouldSync');
    assert.equal(by.plan?.message, 'dry run: 1 image, 3 target tags: would copy 1, would retag 1, 1 up to date');
    assert.deepEqual(by.clash?.targets.map((t) => t.action), ['WouldConflict']);
    assert.equal(r.exitCode, 1, 'a conflict the real run would meet fails the dry run too');
    assert.doesNotMatch(out.text(), /in sync/);
    const writes = (await reg.accessLog()).filter((e) => !['GET', 'HEAD'].includes(e.method) && !e.path.startsWith('/v2/?'));
    assert.deepEqual(writes, []);
  });

  it('text: the first line says it is a dry run, and no line says "in sync"', async () => {
    const out = capture();
    const err = capture();
    await runSync({ files: [file], dryRun: true, stdout: out.stream, stderr: err.stream });
    const lines = out.text().split('\n');
    assert.equal(lines[0], DRY_RUN_HEADER);
    assert.match(lines[1]!, /^MIRROR\s+TARGET\s+ACTION/);
    assert.match(out.text(), /d\/new:v1\s+WouldCopy\s/);
    assert.match(out.text(), /d\/taken:v1\s+WouldConflict\s/);
    assert.doesNotMatch(out.text() + err.text(), /in sync|Copied|Retagged/);
  });

  it('without --dry-run: no header, no dryRun, the real actions', async () => {
    const out = capture();
    await runSync({ files: [file], output: 'json', stdout: out.stream, stderr: new PassThrough() });
    const doc = JSON.parse(out.text()) as { dryRun?: boolean; mirrors: Array<{ name: string; targets: Array<{ action: string }> }> };
    assert.equal(doc.dryRun, false);
    assert.deepEqual(doc.mirrors.find((m) => m.name === 'plan')?.targets.map((t) => t.action), ['Copied', 'Retagged', 'UpToDate']);
  });
});
