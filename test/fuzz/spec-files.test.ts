/**
 * Property tests for the spec-file reader: whatever bytes a file holds, loadSpecFiles (and the
 * judging `run` and `sync` do next) never throws, never hangs, and reports every problem as an
 * error entry with a one-line message naming the file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadSpecFiles, MAX_SPEC_FILE_BYTES, type SpecFiles } from '../../src/standalone/spec-files.js';
import { judgeSpecs } from '../../src/standalone/judge-specs.js';
import { PARSE_TIMEOUT_MS } from '../../src/standalone/yaml-documents.js';

let dir: string;
let n = 0;

/** Loads `content` as one spec file and checks the reader's promises. */
async function check(content: string | Uint8Array): Promise<SpecFiles> {
  const file = join(dir, `f${n++}.yaml`);
  await writeFile(file, content);
  const started = performance.now();
  const r = await loadSpecFiles([file]);
  const ms = performance.now() - started;
  assert.ok(ms < PARSE_TIMEOUT_MS + 5000, `took ${ms.toFixed(0)} ms`);
  for (const e of r.errors) {
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0, 'empty message');
    assert.ok(!/[\r\n]/.test(e.message), `multi-line message: ${JSON.stringify(e.message.slice(0, 300))}`);
    assert.ok(e.source === file || e.source.startsWith(`${file}:`), e.source);
  }
  for (const d of [...r.mirrors, ...r.policies, ...r.secrets]) assert.match(d.source.slice(file.length), /^:[1-9]\d*$/);
  for (const m of r.mirrors) assert.ok(m.key.startsWith(`${file}#`), m.key);
  const judged = judgeSpecs(r);
  for (const m of judged.mirrors) if (m.error !== undefined) assert.ok(!/[\r\n]/.test(m.error), m.error);
  await rm(file);
  return r;
}

/** Pieces YAML is made of, and pieces our documents are made of. */
const TOKENS = [
  '---', '...', '- ', '? ', ': ', ':', '[', ']', '{', '}', ',', '&a ', '*a', '&b ', '*b', '!!str ', '!!map ', '!tag ', '!<x> ',
  '"', "'", '|', '>', '|-', '# c', '\n', '\n', '\n', ' ', '  ', '\t', '%YAML 1.2\n', '%TAG ! tag:x,2000:\n', '<<: *a\n', '\\', '\ufeff',
  'é', '\u2028', '\0', 'kind: ImageMirror', 'kind: ImageMirrorPolicy', 'kind: List', 'kind: Secret', 'items:', 'apiVersion: imagemirror.dev/v1alpha1',
  'apiVersion: v1', 'metadata: {name: x}', 'metadata:', 'name: ', 'namespace: ', 'spec:', 'type: kubernetes.io/dockerconfigjson', 'data:',
  'stringData:', '.dockerconfigjson: ', 'null', '~', 'true', '0x1F', '1e999', '-.inf', '12:30:00', 'x', 'value',
];

const yamlSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 300 }).map((t) => t.join(''));

/** Random objects shaped a little like ours, written as YAML or JSON. */
const kinds = fc.constantFrom('ImageMirror', 'ImageMirrorPolicy', 'Secret', 'List', 'ConfigMapList', 'Other');
const docObject = fc.record(
  {
    apiVersion: fc.constantFrom('imagemirror.dev/v1alpha1', 'v1', 'imagemirror.dev/v9', 'x/y'),
    kind: kinds,
    metadata: fc.oneof(fc.record({ name: fc.string(), namespace: fc.string() }, { requiredKeys: [] }), fc.jsonValue()),
    spec: fc.jsonValue({ maxDepth: 4 }),
    items: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 5 }),
    type: fc.string(),
    data: fc.dictionary(fc.string(), fc.string()),
    stringData: fc.dictionary(fc.constantFrom('.dockerconfigjson', 'x'), fc.string()),
  },
  { requiredKeys: ['kind'] },
);

describe('fuzz: spec files', function () {
  this.timeout(120_000);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fuzz-spec-files-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('random bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), (b) => check(b).then(() => undefined)), { numRuns: 150 });
  });

  it('YAML token soup (anchors, aliases, tags, directives, quotes, block scalars, documents)', async () => {
    await fc.assert(fc.asyncProperty(yamlSoup, (t) => check(t).then(() => undefined)), { numRuns: 300 });
  });

  it('random documents of our kinds, as YAML and as JSON, several per file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(docObject, { minLength: 1, maxLength: 6 }), fc.boolean(), async (docs, asJson) => {
        const text = asJson ? docs.map((d) => JSON.stringify(d)).join('\n---\n') : docs.map((d) => stringify(d)).join('---\n');
        await check(text);
      }),
      { numRuns: 200 },
    );
  });

  it('deep nesting of every kind, shallow to far past the limits', async () => {
    const opener = fc.constantFrom('[', '{a: ', '- ', '? ', 'a:\n', '- [', '{? ');
    await fc.assert(
      fc.asyncProperty(opener, fc.integer({ min: 1, max: 6000 }), fc.boolean(), async (open, depth, indent) => {
        let text = '';
        for (let i = 0; i < depth; i++) text += (indent && open.endsWith('\n') ? ' '.repeat(i) : '') + open;
        await check(text + 'x' + (open === '[' ? ']'.repeat(depth) : ''));
      }),
      { numRuns: 25 },
    );
  });

  it('alias chains, self-references and alias bombs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.boolean(), async (levels, fanout, selfRef) => {
        const lines = ['a0: &a0 [x]'];
        for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array(fanout).fill(`*a${i - 1}`).join(', ')}]`);
        if (selfRef) lines.push('self: &s {kind: ImageMirror, metadata: {name: s}, spec: {source: *s}}');
        await check(`${lines.join('\n')}\n---\nkind: ImageMirror\nmetadata: {name: m}\nspec: &spec {targets: [*spec]}\n`);
      }),
      { numRuns: 40 },
    );
  });

  it('many documents in one file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 8_000 }), fc.constantFrom('---\n', '---\nkind: ImageMirror\n', '---\n[]\n', '--- x\n'), async (count, doc) => {
        await check(doc.repeat(Math.min(count, Math.floor(MAX_SPEC_FILE_BYTES / doc.length))));
      }),
      { numRuns: 6 },
    );
  });

  it('huge scalars and lines, up to the size limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: MAX_SPEC_FILE_BYTES - 64 }),
        fc.constantFrom('plain', 'double', 'single', 'block', 'key'),
        async (size, style) => {
          const body = 'a'.repeat(size);
          const text = {
            plain: `kind: ImageMirror\nmetadata: {name: ${body}}\n`,
            double: `kind: ImageMirror\nspec: "${body}"\n`,
            single: `kind: ImageMirror\nspec: '${body}'\n`,
            block: `kind: ImageMirror\nspec: |\n  ${body}\n`,
            key: `${body}: 1\n`,
          }[style];
          await check(text);
        },
      ),
      { numRuns: 6 },
    );
  });
});
