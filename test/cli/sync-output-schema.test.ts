/**
 * `sync -o json` is a documented, versioned schema (docs/sync-output.schema.json): real output,
 * real and dry run, validates against it; spec problems are in errors[] with file and line, not
 * fake mirrors; each row names its source reference and digest.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { TargetAction } from '../../src/copy/actions.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { DRY_RUN_ACTIONS, SYNC_OUTPUT_API_VERSION, SYNC_OUTPUT_KIND } from '../../src/standalone/sync.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');
const SCHEMA = join(process.cwd(), 'docs', 'sync-output.schema.json');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

interface Out {
  apiVersion: string;
  kind: string;
  dryRun: boolean;
  errors: Array<{ file: string; line?: number; message: string }>;
  mirrors: Array<{ name: string; namespace: string; file: string; line?: number; ready: boolean; reason: string; targets: Array<{ reference: string; digest: string; action: string; source?: { reference: string; digest: string } }> }>;
}

describe('sync -o json: the documented schema', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let dir: string;
  let validate: (doc: unknown) => boolean;
  let errorsOf: () => string;
  let schema: { properties: { apiVersion: { const: string }; kind: { const: string } }; definitions: { target: { properties: { action: { enum: string[] } } } } };
  const digests: Record<string, string> = {};

  before(async () => {
    schema = JSON.parse(await readFile(SCHEMA, 'utf8')) as typeof schema;
    const ajv = new Ajv({ strict: true, allErrors: true });
    const v = ajv.compile(schema);
    validate = (doc) => v(doc) as boolean;
    errorsOf = () => ajv.errorsText(v.errors);
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    for (const tag of ['1.0', '1.1']) digests[tag] = (await pushImage(client.repository('o/src'), buildImage({ layers: [512 + tag.length] }), tag)).digest;
    dir = await mkdtemp(join(tmpdir(), 'sync-schema-'));
    const doc = (meta: string, spec: string) => `---\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: ${meta}\nspec:\n${spec}`;
    await writeFile(
      join(dir, 'a.yaml'),
      doc('{name: many, namespace: o}', `  source: {repository: ${reg.host}/o/src, tagPattern: "^1\\\\."}\n  targets: [{repository: ${reg.host}/o/many}]\n`) +
        doc('{name: promote, namespace: o}', `  source: {repository: ${reg.host}/o/src, tags: ["1.1"]}\n  targets: [{repository: ${reg.host}/o/prod, tags: [stable]}]\n`) +
        doc('{name: pinned, namespace: o}', `  source: {repository: ${reg.host}/o/src, digest: "${digests['1.0']}"}\n  targets: [{repository: ${reg.host}/o/pinned, tags: [v1]}]\n`) +
        doc('{name: bad, namespace: o}', `  source: {repository: ${reg.host}/o/src}\n  targets: [{repository: ${reg.host}/o/bad}]\n`) +
        doc('{name: "Not_A_Name"}', `  source: {repository: ${reg.host}/o/src, tags: ["1.0"]}\n  targets: [{repository: ${reg.host}/o/x}]\n`),
    );
    await writeFile(join(dir, 'b.yaml'), 'apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: [\n');
  });
  after(async () => {
    await client?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the schema names this version and every action the CLI can print', () => {
    assert.equal(schema.properties.apiVersion.const, SYNC_OUTPUT_API_VERSION);
    assert.equal(schema.properties.kind.const, SYNC_OUTPUT_KIND);
    assert.deepEqual(new Set(schema.definitions.target.properties.action.enum), new Set([...Object.values(TargetAction), ...Object.values(DRY_RUN_ACTIONS)]));
  });

  for (const dryRun of [true, false]) {
    it(`real output${dryRun ? ' of a dry run' : ''} validates; errors[] has file and line; rows carry their source`, async () => {
      const r = await cli(['sync', '-f', dir, '-o', 'json', ...(dryRun ? ['--dry-run'] : [])]);
      assert.equal(r.code, 1, r.stderr);
      const out = JSON.parse(r.stdout) as Out;
      assert.ok(validate(out), errorsOf());
      assert.deepEqual([out.apiVersion, out.kind, out.dryRun], [SYNC_OUTPUT_API_VERSION, SYNC_OUTPUT_KIND, dryRun]);
      // Problems of no one mirror: the syntax error and the nameless document, with real positions.
      assert.deepEqual(
        out.errors.map((e) => [e.file, e.line]).sort(),
        [[join(dir, 'a.yaml'), 30], [join(dir, 'b.yaml'), 4]],
        JSON.stringify(out.errors),
      );
      assert.ok(out.mirrors.every((m) => !/:\d+$/.test(m.name)), 'a position posing as a mirror name');
      const by = Object.fromEntries(out.mirrors.map((m) => [m.name, m]));
      assert.deepEqual([by.bad?.file, by.bad?.line, by.bad?.reason], [join(dir, 'a.yaml'), 23, 'InvalidSpec']);
      assert.deepEqual(by.many?.targets.map((t) => [t.reference, t.source]), [
        [`${reg.host}/o/many:1.0`, { reference: `${reg.host}/o/src:1.0`, digest: digests['1.0'] }],
        [`${reg.host}/o/many:1.1`, { reference: `${reg.host}/o/src:1.1`, digest: digests['1.1'] }],
      ]);
      assert.deepEqual(by.promote?.targets.map((t) => t.source), [{ reference: `${reg.host}/o/src:1.1`, digest: digests['1.1'] }]);
      assert.deepEqual(by.pinned?.targets.map((t) => t.source), [{ reference: `${reg.host}/o/src@${digests['1.0']}`, digest: digests['1.0'] }]);
      assert.equal(by.many?.line, 2);
      // The same errors in text on stderr, as file:line: message.
      assert.match(r.stderr, new RegExp(`^${join(dir, 'b.yaml')}:4: YAML syntax error`, 'm'));
    });
  }

  it('the schema is not vacuous: a document with a fake mirror or without apiVersion fails it', async () => {
    const good = { apiVersion: SYNC_OUTPUT_API_VERSION, kind: SYNC_OUTPUT_KIND, dryRun: false, errors: [], mirrors: [] };
    assert.ok(validate(good), errorsOf());
    assert.ok(!validate({ ...good, apiVersion: undefined }));
    assert.ok(!validate({ ...good, mirrors: [{ name: 'a.yaml:2', namespace: '', ready: false, reason: 'InvalidSpec', message: 'x', targets: [] }] }));
    assert.ok(!validate({ ...good, errors: [{ file: 'a.yaml', line: 0, message: 'x' }] }));
  });
});
