/**
 * Parses the text of one spec file into plain documents without holding up the event loop.
 *
 * The yaml library is synchronous, and some inputs cost it far more than their size suggests
 * (a map with tens of thousands of keys: its duplicate-key check is quadratic; thousands of aliases;
 * deep flow nesting), so a hostile or merely large file would freeze `run` — /metrics, /status, the
 * work queue's timers — for seconds or minutes. Files above INLINE_PARSE_MAX_BYTES are therefore
 * parsed in a worker thread, which is killed after PARSE_TIMEOUT_MS (or when it runs out of its
 * memory limit); small files, which cannot cost much, are parsed inline to spare the worker's
 * start-up (sync is a CLI run from CI on every pipeline).
 *
 * The parse step exists once, as JavaScript source text run both inline and in the worker: the
 * production build is a single bundle, in which a worker has no module file of its own to load.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import * as YAML from 'yaml';

/**
 * Largest spec file read. yaml parses a 1 MiB file of ImageMirror documents (about 4,000 mirrors) in
 * about 0.5 s on one core and a 4 MiB one in about 2 s; larger files are refused before reading.
 */
export const MAX_SPEC_FILE_BYTES = 4 * 1024 * 1024;
/** Files up to this size are parsed on the main thread: the worst input measured blocks it < 20 ms. */
export const INLINE_PARSE_MAX_BYTES = 8 * 1024;
/** A file whose parse takes longer than this is reported as an error; its worker is killed. */
export const PARSE_TIMEOUT_MS = 10_000;
/** Heap for the parse worker: a maximal file needs about 150 MiB; more is an alias bomb or a bug. */
export const PARSE_WORKER_HEAP_MB = 512;
/** Aliases resolved per document (YAML "billion laughs" documents expand exponentially). */
export const MAX_ALIAS_COUNT = 100;

export interface ParsedDocument {
  /** 0-based index among the file's documents (empty documents count). */
  index: number;
  /** 1-based line where the document's content starts. */
  line: number;
  value?: unknown;
  /** Set instead of value when the document could not be converted (e.g. too many aliases). */
  error?: string;
  /** For a mapping with an `items` sequence: the line of each item (for `kind: List`). */
  itemLines?: number[];
}

export type ParsedFile =
  | { ok: true; documents: ParsedDocument[] }
  /** A syntax error (or a parse refused): the whole file contributes nothing. */
  | { ok: false; line?: number; message: string };

/**
 * Body of `function (YAML, text, maxAliasCount): ParsedFile`. Plain ES2020, no closures: it is
 * compiled with `new Function` here and inside the worker.
 */
const PARSE_SOURCE = `
  const firstLine = (e) => String(e && e.message !== undefined ? e.message : e).split('\\n')[0];
  const lineCounter = new YAML.LineCounter();
  const docs = YAML.parseAllDocuments(text, { lineCounter });
  const list = Array.isArray(docs) ? docs : [];
  for (const d of list) {
    const e = d.errors[0];
    if (e) {
      // The library's message ends with a code frame; the first line says what and where.
      return { ok: false, line: e.linePos ? e.linePos[0].line : undefined, message: firstLine(e).replace(/:$/, '') };
    }
  }
  const documents = [];
  list.forEach((d, index) => {
    if (d.contents === null) return;
    const start = d.contents.range ? d.contents.range[0] : d.range[0];
    const line = lineCounter.linePos(start).line;
    let value;
    try {
      value = d.toJS({ maxAliasCount });
    } catch (err) {
      documents.push({ index, line, error: firstLine(err) });
      return;
    }
    let itemLines;
    if (YAML.isMap(d.contents)) {
      const items = d.contents.get('items', true);
      if (YAML.isSeq(items)) itemLines = items.items.map((n) => (n && n.range ? lineCounter.linePos(n.range[0]).line : line));
    }
    documents.push({ index, line, value, itemLines });
  });
  return { ok: true, documents };
`;

type ParseFn = (yaml: unknown, text: string, maxAliasCount: number) => ParsedFile;
const parseInline = new Function('YAML', 'text', 'maxAliasCount', PARSE_SOURCE) as ParseFn;

const WORKER_SOURCE = `
  const { parentPort, workerData } = require('node:worker_threads');
  const YAML = require(workerData.yamlPath);
  const parse = new Function('YAML', 'text', 'maxAliasCount', workerData.parseSource);
  parentPort.on('message', (m) => {
    let result;
    try {
      result = parse(YAML, m.text, m.maxAliasCount);
    } catch (e) {
      result = { ok: false, message: String(e && e.message !== undefined ? e.message : e).split('\\n')[0] };
    }
    try {
      parentPort.postMessage(result);
    } catch (e) {
      parentPort.postMessage({ ok: false, message: 'parsed content cannot be passed on: ' + String(e && e.message).split('\\n')[0] });
    }
  });
`;

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/**
 * Parses spec file texts one at a time; owns at most one worker, started on the first large file.
 * Call close() when done.
 */
export class YamlDocumentParser {
  private worker: Worker | undefined;
  private readonly timeoutMs: number;

  constructor(o: { timeoutMs?: number } = {}) {
    this.timeoutMs = o.timeoutMs ?? PARSE_TIMEOUT_MS;
  }

  async parse(text: string): Promise<ParsedFile> {
    if (Buffer.byteLength(text) <= INLINE_PARSE_MAX_BYTES) {
      let r: ParsedFile;
      try {
        r = parseInline(YAML, text, MAX_ALIAS_COUNT);
      } catch (e) {
        r = { ok: false, message: oneLine(e) };
      }
      // Let timers and I/O run between files.
      await new Promise((resolve) => setImmediate(resolve));
      return r;
    }
    return this.parseInWorker(text);
  }

  private parseInWorker(text: string): Promise<ParsedFile> {
    const worker = (this.worker ??= new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { yamlPath: createRequire(import.meta.url).resolve('yaml'), parseSource: PARSE_SOURCE },
      // Not the parent's flags: a TypeScript loader would only slow the worker's start.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: PARSE_WORKER_HEAP_MB },
      stdout: true,
      stderr: true,
    }));
    return new Promise<ParsedFile>((resolve) => {
      const done = (r: ParsedFile, kill: boolean): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('messageerror', onMessageError);
        if (kill) this.discard(worker);
        resolve(r);
      };
      const onMessage = (r: ParsedFile): void => done(r, false);
      const onError = (e: unknown): void => {
        const code = (e as { code?: unknown }).code;
        done({ ok: false, message: code === 'ERR_WORKER_OUT_OF_MEMORY' ? `YAML parse ran out of memory (${PARSE_WORKER_HEAP_MB} MiB)` : `YAML parser failed: ${oneLine(e)}` }, true);
      };
      // The parsed value could not be rebuilt here (e.g. nested too deep for this thread's stack).
      const onMessageError = (e: unknown): void => done({ ok: false, message: `parsed content cannot be passed on: ${oneLine(e)}` }, true);
      const onExit = (): void => done({ ok: false, message: 'YAML parser stopped' }, true);
      const timer = setTimeout(() => done({ ok: false, message: `YAML parse took longer than ${this.timeoutMs / 1000} s` }, true), this.timeoutMs);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.on('messageerror', onMessageError);
      worker.postMessage({ text, maxAliasCount: MAX_ALIAS_COUNT });
    });
  }

  private discard(worker: Worker): void {
    if (this.worker === worker) this.worker = undefined;
    void worker.terminate();
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}
