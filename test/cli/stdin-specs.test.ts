/**
 * `-f -`: specs from standard input, so `kubectl kustomize overlays/prod | image-mirror sync -f -`
 * works and kustomize's `namespace:` (written into the stream) is honoured; stdin is bounded like a
 * file and named `<stdin>` in positions.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { loadSpecFiles, MAX_SPEC_FILE_BYTES, STDIN_NAME } from '../../src/standalone/spec-files.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');

/** Runs the CLI with `input` on its standard input. */
function cliWithStdin(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => undefined); // the CLI may stop reading an oversized stream
    child.stdin.end(input);
  });
}

const mirrorDoc = (name: string, body: string) => `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}}\nspec:\n${body}`;

describe('-f - (specs from standard input)', function () {
  this.timeout(60_000);

  it('loadSpecFiles reads "-" from the given stream, with <stdin>:line positions', async () => {
    const text = `# leading comment\n---\n${mirrorDoc('a', '  source: {repository: r.example/a, tags: [v1]}\n  targets: [{repository: r.example/b}]\n')}---\n${mirrorDoc('b', '  x: 1\n')}`;
    const r = await loadSpecFiles(['-', '-'], { stdin: Readable.from([Buffer.from(text)]) });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.mirrors.map((m) => m.source), [`${STDIN_NAME}:3`, `${STDIN_NAME}:10`]);
  });

  it('standard input larger than MAX_SPEC_FILE_BYTES is one error, not read to the end', async () => {
    let produced = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    // An endless stream: the reader must stop by itself once past the bound.
    const endless = new Readable({
      read() {
        produced += chunk.length;
        this.push(chunk);
      },
    });
    const r = await loadSpecFiles(['-'], { stdin: endless });
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.source, STDIN_NAME);
    assert.match(r.errors[0]!.message, new RegExp(`larger than ${MAX_SPEC_FILE_BYTES} bytes`));
    assert.ok(produced < MAX_SPEC_FILE_BYTES + 4 * chunk.length, `read ${produced} bytes`);
  });

  describe('sync -f - with a real registry', () => {
    let reg: TestRegistry;
    let client: RegistryClient;
    let dir: string;
    before(async () => {
      reg = await startRegistry();
      client = new RegistryClient(reg.host);
      await pushImage(client.repository('k/src'), buildImage({ layers: [1024] }), 'v1');
      dir = await mkdtemp(join(tmpdir(), 'stdin-specs-'));
    });
    after(async () => {
      await client?.close();
      await reg?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('kubectl kustomize … | image-mirror sync -f -: the overlay namespace is the mirror namespace', async () => {
      await writeFile(join(dir, 'mirror.yaml'), mirrorDoc('web', `  source: {repository: ${reg.host}/k/src, tags: [v1]}\n  targets: [{repository: ${reg.host}/k/dst}]\n`));
      await writeFile(join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: team-prod\nresources: [mirror.yaml]\n');
      const { stdout: stream } = await exec('kubectl', ['kustomize', dir]);
      assert.match(stream, /namespace: team-prod/);
      const r = await cliWithStdin(['sync', '-f', '-', '-o', 'json'], stream);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { mirrors: Array<{ name: string; namespace: string; targets: Array<{ action: string }> }> };
      assert.deepEqual(out.mirrors.map((m) => [m.namespace, m.name, m.targets.map((t) => t.action)]), [['team-prod', 'web', ['Copied']]]);
    });

    it('an invalid document on standard input is named <stdin>:line', async () => {
      const r = await cliWithStdin(['sync', '-f', '-'], `---\n${mirrorDoc('bad', '  source: {repository: x}\n')}`);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /<stdin>:2/);
    });
  });
});
