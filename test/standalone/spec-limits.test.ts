import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadSpecFiles, MAX_LIST_NESTING, MAX_SPEC_FILE_BYTES } from '../../src/standalone/spec-files.js';
import {
  INLINE_PARSE_MAX_BYTES,
  MAX_ALIAS_COUNT,
  MAX_FLOW_NESTING,
  MAX_INDENT_COLUMNS,
  PARSE_TIMEOUT_MS,
  PARSE_WORKER_HEAP_MB,
  TRANSFER_BATCH_BYTES,
  YamlDocumentParser,
  type ParsedUnit,
} from '../../src/standalone/yaml-documents.js';

const exec = promisify(execFile);

const mirror = (i: number): string =>
  `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: m${i}, namespace: team-a}\nspec:\n  source: {repository: reg.example.com/app/web, tags: ["1.0.0"]}\n  targets: [{repository: reg.example.com/mirror/m${i}, tags: [current]}]\n`;

/** As many `---`-separated mirror documents as fit in `bytes`. */
function manyMirrors(bytes: number): { text: string; count: number } {
  let text = '';
  let count = 0;
  for (;;) {
    const next = `---\n${mirror(count)}`;
    if (text.length + next.length > bytes) return { text, count };
    text += next;
    count++;
  }
}

/** One `kind: List` of mirrors, as large as fits in `bytes`. */
function bigList(bytes: number): { text: string; count: number } {
  let text = 'apiVersion: v1\nkind: List\nitems:\n';
  let count = 0;
  for (;;) {
    const next = mirror(count).replace(/^(?=.)/gm, '    ').replace(/^ {4}/, '  - ');
    if (text.length + next.length > bytes) return { text, count };
    text += next;
    count++;
  }
}

/**
 * Runs `work` while a timer asks to fire every 50 ms; returns how late it fired at worst. A
 * synchronous parse holds the timer back for its whole length.
 */
async function worstTimerLateness(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 50);
    last = now;
  }, 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last - 50);
}

/** Generous for busy CI machines; a synchronous parse of a maximal file takes 1–2 s. */
const LATENESS_BOUND_MS = 300;

describe('spec file limits (hostile and large files)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spec-limits-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`MAX_SPEC_FILE_BYTES (${MAX_SPEC_FILE_BYTES}): maximal files load (PARSE_WORKER_HEAP_MB suffices) with the event loop responsive; one byte more is one error`, async () => {
    const docs = manyMirrors(MAX_SPEC_FILE_BYTES);
    const docsFile = join(dir, 'max.yaml');
    await writeFile(docsFile, docs.text.padEnd(MAX_SPEC_FILE_BYTES, '\n'));
    // JSON is the hungriest ordinary shape for the worker's heap: one List, as large as allowed.
    const items: string[] = [];
    let size = '{"apiVersion":"v1","kind":"List","items":[]}'.length;
    for (let i = 0; ; i++) {
      const item = JSON.stringify({ apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: `m${i}` }, spec: { source: { repository: 'r.example.com/a', tags: ['1'] }, targets: [{ repository: 'r.example.com/b' }] } });
      if (size + item.length + 1 > MAX_SPEC_FILE_BYTES) break;
      size += item.length + 1;
      items.push(item);
    }
    const jsonFile = join(dir, 'max.json');
    await writeFile(jsonFile, `{"apiVersion":"v1","kind":"List","items":[${items.join(',')}]}`);
    const over = join(dir, 'over.yaml');
    await writeFile(over, docs.text.padEnd(MAX_SPEC_FILE_BYTES + 1, '\n'));

    let loaded: Awaited<ReturnType<typeof loadSpecFiles>> | undefined;
    const started = performance.now();
    const late = await worstTimerLateness(async () => {
      loaded = await loadSpecFiles([docsFile, over, jsonFile]);
    });
    const ms = performance.now() - started;
    assert.deepEqual(loaded?.errors, [{ source: over, message: `file is larger than ${MAX_SPEC_FILE_BYTES} bytes (${MAX_SPEC_FILE_BYTES + 1}); split it` }]);
    assert.equal(loaded?.mirrors.length, docs.count + items.length);
    assert.ok(docs.count > 4000 && items.length > 5000, `${docs.count} and ${items.length} mirrors`);
    assert.ok(late < LATENESS_BOUND_MS, `a 50 ms timer fired ${late.toFixed(0)} ms late`);
    // The limit is chosen so ordinary maximal files stay far inside the parse timeout.
    assert.ok(ms < PARSE_TIMEOUT_MS, `two maximal files took ${ms.toFixed(0)} ms`);
  });

  it(`units cross from the worker in batches of about TRANSFER_BATCH_BYTES (${TRANSFER_BATCH_BYTES}), the loop running between them`, async () => {
    const { text, count } = bigList(MAX_SPEC_FILE_BYTES / 8);
    const parser = new YamlDocumentParser();
    // Counts turns of the event loop: a batch handed over in one turn shares one count.
    let ticks = 0;
    let spinning = true;
    const spin = (): void => {
      ticks++;
      if (spinning) setImmediate(spin);
    };
    spin();
    const seenAtTick: number[] = [];
    try {
      const r = await parser.parse(text, (u: ParsedUnit) => {
        if (u.unit === 'item') seenAtTick.push(ticks);
      });
      assert.deepEqual(r, { ok: true });
    } finally {
      spinning = false;
      await parser.close();
    }
    assert.equal(seenAtTick.length, count);
    const batches = new Set(seenAtTick).size;
    assert.ok(batches >= Math.floor(text.length / TRANSFER_BATCH_BYTES / 2), `${count} items arrived in ${batches} batches`);
  });

  it(`INLINE_PARSE_MAX_BYTES (${INLINE_PARSE_MAX_BYTES}): small files are parsed in place, larger ones in the worker`, async () => {
    const small = manyMirrors(INLINE_PARSE_MAX_BYTES).text;
    const large = manyMirrors(INLINE_PARSE_MAX_BYTES + 1024).text;
    assert.ok(Buffer.byteLength(large) > INLINE_PARSE_MAX_BYTES);
    // A 1 ms deadline: nothing could parse in a worker that fast (it cannot even start), so
    // success means the file was parsed on this thread.
    const parser = new YamlDocumentParser({ timeoutMs: 1 });
    try {
      assert.deepEqual(await parser.parse(small, () => undefined), { ok: true });
      assert.deepEqual(await parser.parse(large, () => undefined), { ok: false, syntax: false, message: 'YAML parse took longer than 0.001 s' });
    } finally {
      await parser.close();
    }
  });

  it(`PARSE_TIMEOUT_MS (${PARSE_TIMEOUT_MS}): a parse that runs too long is stopped and reported; later files still load`, async () => {
    // Distinct anchors cost yaml quadratic time: 256 KiB of them takes 6 s or more.
    let text = '';
    for (let i = 0; text.length < 256 * 1024; i++) text += `k${i}: &a${i} v\nr${i}: *a${i}\n`;
    const parser = new YamlDocumentParser({ timeoutMs: 1500 });
    try {
      const started = performance.now();
      const r = await parser.parse(text, () => undefined);
      assert.deepEqual(r, { ok: false, syntax: false, message: 'YAML parse took longer than 1.5 s' });
      assert.ok(performance.now() - started < 3000);
      // A new worker takes the next file.
      assert.deepEqual(await parser.parse(manyMirrors(64 * 1024).text, () => undefined), { ok: true });
    } finally {
      await parser.close();
    }
  });

  it(`PARSE_WORKER_HEAP_MB (${PARSE_WORKER_HEAP_MB}): the worker's heap is capped; running out is an error, not the process's death`, async () => {
    const parser = new YamlDocumentParser({ heapMb: 8 });
    try {
      assert.deepEqual(await parser.parse(manyMirrors(MAX_SPEC_FILE_BYTES / 4).text, () => undefined), { ok: false, syntax: false, message: 'YAML parse needs more than 8 MiB' });
    } finally {
      await parser.close();
    }
  });

  it(`MAX_ALIAS_COUNT (${MAX_ALIAS_COUNT}): an alias bomb is one error line`, async () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const f = join(dir, 'bomb.yaml');
    await writeFile(f, `${lines.join('\n')}\n---\n${mirror(1)}`);
    const r = await loadSpecFiles([f]);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.source, `${f}:1`);
    assert.match(r.errors[0]!.message, /^YAML document 0: Excessive alias count/);
    assert.equal(r.mirrors.length, 1, 'the next document still loads');
  });

  it(`MAX_FLOW_NESTING (${MAX_FLOW_NESTING}) and MAX_INDENT_COLUMNS (${MAX_INDENT_COLUMNS}): deeper nesting is refused before yaml sees it`, async () => {
    const at = (name: string, text: string) => {
      const f = join(dir, name);
      return writeFile(f, text).then(() => f);
    };
    const flowOk = await at('flow-ok.yaml', `x: ${'['.repeat(MAX_FLOW_NESTING - 1)}${']'.repeat(MAX_FLOW_NESTING - 1)}\n`);
    const flowDeep = await at('flow-deep.yaml', `a: 1\nx: ${'['.repeat(MAX_FLOW_NESTING + 1)}${']'.repeat(MAX_FLOW_NESTING + 1)}\n`);
    const indentOk = await at('indent-ok.yaml', `${'- '.repeat(MAX_INDENT_COLUMNS / 2)}x\n`);
    const indentDeep = await at('indent-deep.yaml', `a: 1\n${'- '.repeat(MAX_INDENT_COLUMNS / 2 + 1)}x\n`);
    const r = await loadSpecFiles([flowOk, flowDeep, indentOk, indentDeep]);
    assert.deepEqual(r.errors, [
      { source: `${flowDeep}:2`, message: `more than ${MAX_FLOW_NESTING} flow collections ([ or {) nested` },
      { source: `${indentDeep}:2`, message: `indented or nested more than ${MAX_INDENT_COLUMNS} columns deep` },
    ]);
  });

  it('deep nesting that made V8 abort the whole process is refused, in the worker too (run in a child process)', async () => {
    // Several files in one process: the abort came from regular expressions compiled late, near
    // the end of the stack, after earlier parses had warmed them up.
    const files: string[] = [];
    for (const [i, text] of [
      '['.repeat(2048) + ']'.repeat(2048),
      '- '.repeat(4096) + 'x\n',
      '['.repeat(8192) + ']'.repeat(8192),
      '- '.repeat(40_000) + 'x\n',
      '? '.repeat(2000) + 'x\n',
    ].entries()) {
      const f = join(dir, `deep-${i}.yaml`);
      await writeFile(f, text);
      files.push(f);
    }
    const script = `import { loadSpecFiles } from ${JSON.stringify(join(process.cwd(), 'src/standalone/spec-files.ts'))};
      const r = await loadSpecFiles(${JSON.stringify(files)});
      process.stdout.write(JSON.stringify(r.errors.map((e) => e.message)));`;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    const messages = JSON.parse(stdout) as string[];
    assert.equal(messages.length, files.length);
    for (const m of messages) assert.match(m, /^(more than \d+ flow collections|indented or nested more than \d+ columns)/);
  });

  it('a collection or alias as a mapping key is refused without yaml stringifying it (exponential) or warning on stderr', async () => {
    const f = join(dir, 'keys.yaml');
    await writeFile(f, `${mirror(0)}---\n${'- ? '.repeat(60)}x\n---\n{[a]: 1}\n`);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.message);
    };
    process.on('warning', onWarning);
    const started = performance.now();
    const r = await loadSpecFiles([f]);
    const ms = performance.now() - started;
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    process.off('warning', onWarning);
    assert.deepEqual(r.errors.map((e) => [e.source, e.message]), [
      [`${f}:8`, 'YAML document 1: line 8: a mapping key must be a plain value, not a collection or alias'],
      [`${f}:10`, 'YAML document 2: line 10: a mapping key must be a plain value, not a collection or alias'],
    ]);
    assert.equal(r.mirrors.length, 1);
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
    assert.deepEqual(warnings, []);
  });

  it('only regular files are read: a FIFO or a device named explicitly is an error, not a hang', async () => {
    const fifo = join(dir, 'pipe.yaml');
    await exec('mkfifo', [fifo]);
    const r = await loadSpecFiles([fifo, '/dev/zero']);
    assert.deepEqual(r.errors, [
      { source: fifo, message: 'not a regular file' },
      { source: '/dev/zero', message: 'not a regular file' },
    ]);
  });

  it(`MAX_LIST_NESTING (${MAX_LIST_NESTING}): Lists inside Lists are read this deep, deeper is an error`, async () => {
    const wrap = (depth: number): unknown => {
      let v: unknown = JSON.parse(JSON.stringify({ apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: `d${depth}` }, spec: {} }));
      for (let i = 0; i < depth; i++) v = { apiVersion: 'v1', kind: 'List', items: [v] };
      return v;
    };
    const f = join(dir, 'lists.yaml');
    await writeFile(f, `${JSON.stringify(wrap(MAX_LIST_NESTING))}\n---\n${JSON.stringify(wrap(MAX_LIST_NESTING + 1))}\n`);
    const r = await loadSpecFiles([f]);
    assert.deepEqual(r.mirrors.map((m) => [m.source, m.key]), [[`${f}:1`, `${f}#0${'.items[0]'.repeat(MAX_LIST_NESTING)}`]]);
    assert.deepEqual(r.errors, [{ source: `${f}:3`, message: `List nested more than ${MAX_LIST_NESTING} deep` }]);
  });
});
