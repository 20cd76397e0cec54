/**
 * Parses the text of one spec file into plain documents without holding up the event loop.
 *
 * The yaml library is synchronous and costs about 1 s of CPU per MiB of ordinary manifests; some
 * inputs cost far more than their size suggests (one map with 30,000 keys: 30 s, its duplicate-key
 * check is quadratic; 1 MiB of distinct anchors: 90 s), so a large or hostile file would freeze
 * `run` — /metrics, /status, the work queue's timers — for seconds or minutes. Files above
 * INLINE_PARSE_MAX_BYTES are therefore parsed in a worker thread, killed after PARSE_TIMEOUT_MS or
 * when it outgrows its heap, and the result crosses back in batches (TRANSFER_BATCH_BYTES) so taking
 * it in never holds the loop for long either. Small files are parsed inline: the worker costs about
 * 0.2 s to start, which `sync` (run from CI on every pipeline) should not pay for a few small files.
 *
 * The parse step exists once, as JavaScript source text run both inline and in the worker: the
 * production build is a single bundle, in which a worker has no module file of its own to load.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import * as YAML from 'yaml';

/**
 * Largest spec file read (about 4,000 ImageMirrors). Measured on 2 busy cores (parse and convert,
 * CPU): 1 MiB of ImageMirror documents, a List or JSON 0.8–0.9 s; 2 MiB 1.4–2.1 s; 4 MiB 3.3–4.3 s
 * (up to 7 s wall), too near PARSE_TIMEOUT_MS. 1 MiB keeps ordinary files 10× inside the timeout.
 */
export const MAX_SPEC_FILE_BYTES = 1024 * 1024;
/**
 * Files up to this size are parsed on the main thread. The costliest 8 KiB measured (deep nesting,
 * aliases, many documents) took 14–33 ms of CPU on busy cores; 16 KiB of aliases 54 ms.
 */
export const INLINE_PARSE_MAX_BYTES = 8 * 1024;
/** A file whose parse takes longer than this is reported as an error; its worker is killed. */
export const PARSE_TIMEOUT_MS = 10_000;
/**
 * Heap for the parse worker. 1 MiB of ImageMirror documents needs < 64 MiB, a List < 96 MiB, JSON
 * < 128 MiB; 1 MiB of empty documents (260,000 of them) needs > 256 MiB and is refused.
 */
export const PARSE_WORKER_HEAP_MB = 256;
/** Aliases resolved per document (YAML "billion laughs" documents expand exponentially). */
export const MAX_ALIAS_COUNT = 100;
/**
 * Flow collections (`[`, `{`) open at once. yaml recurses per nesting level, and near the end of the
 * stack V8 can fail to compile a regular expression and abort the whole process (a worker's abort
 * takes the process with it): 8 KiB of `- - - …` or `[[[…` did so. Bounded before yaml sees the text.
 */
export const MAX_FLOW_NESTING = 64;
/** Leading spaces and block indicators (`- `, `? `, `: `) on one line: bounds block nesting likewise. */
export const MAX_INDENT_COLUMNS = 256;

/**
 * One piece of a parsed file, in file order. A document whose value is a mapping with an `items`
 * array (a `kind: List`, or anything shaped like one) comes as the mapping with `items` emptied and
 * `itemCount` set, followed by one `item` unit per element, so a large List crosses from the worker
 * in batches like separate documents do.
 */
export type ParsedUnit =
  | {
      unit: 'doc';
      /** 0-based index among the file's documents (empty documents count). */
      index: number;
      /** 1-based line where the document's content starts. */
      line: number;
      value?: unknown;
      /** Set instead of value when the document could not be converted (e.g. too many aliases). */
      error?: string;
      /** Set when value.items was taken out: that many `item` units follow. */
      itemCount?: number;
      /** Source bytes, to size batches. */
      bytes: number;
    }
  | { unit: 'item'; index: number; item: number; line: number; value: unknown; bytes: number };

export type ParseOutcome =
  | { ok: true }
  /** syntax: a YAML syntax error at `line`; otherwise the parse was refused (time, memory). */
  | { ok: false; syntax: boolean; line?: number; message: string };

/**
 * Body of `function (YAML, text, limits)` returning `{ ok: true, units }` or a failed ParseOutcome.
 * Plain ES2020, no closures: it is compiled with `new Function` here and in the worker.
 */
const PARSE_SOURCE = `
  const firstLine = (e) => String(e && e.message !== undefined ? e.message : e).split('\\n')[0];
  // Nesting depth, before yaml sees the text: brackets anywhere (over-counting those in strings is
  // harmless at this bound), and per line the leading run of spaces and block indicators.
  let flow = 0;
  let lineNo = 1;
  let lead = 0;
  let atLineStart = true;
  const refuse = (message) => ({ ok: false, syntax: false, line: lineNo, message });
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      lineNo++;
      lead = 0;
      atLineStart = true;
      continue;
    }
    if (atLineStart) {
      const n = text.charCodeAt(i + 1);
      const indicator = (c === 45 || c === 63 || c === 58) && (Number.isNaN(n) || n === 32 || n === 9 || n === 10 || n === 13);
      if (c === 32 || c === 9 || indicator) {
        if (++lead > limits.maxIndent) return refuse('indented or nested more than ' + limits.maxIndent + ' columns deep');
        continue;
      }
      atLineStart = false;
    }
    if (c === 91 || c === 123) {
      if (++flow > limits.maxFlowNesting) return refuse('more than ' + limits.maxFlowNesting + ' flow collections ([ or {) nested');
    } else if ((c === 93 || c === 125) && flow > 0) {
      flow--;
    }
  }
  const lineCounter = new YAML.LineCounter();
  // logLevel error: yaml's warnings would go to the process's stderr.
  const docs = YAML.parseAllDocuments(text, { lineCounter, logLevel: 'error' });
  const list = Array.isArray(docs) ? docs : [];
  for (const d of list) {
    const e = d.errors[0];
    if (e) {
      // The library's message ends with a code frame; the first line says what and where.
      return { ok: false, syntax: true, line: e.linePos ? e.linePos[0].line : undefined, message: firstLine(e).replace(/:$/, '') };
    }
  }
  const units = [];
  const lineAt = (node, fallback) => (node && node.range ? lineCounter.linePos(node.range[0]).line : fallback);
  const bytesOf = (node) => (node && node.range ? node.range[2] - node.range[0] : 0);
  list.forEach((d, index) => {
    if (d.contents === null) return;
    const line = lineAt(d.contents, lineCounter.linePos(d.range[0]).line);
    // A collection or alias as a mapping key: never in a manifest, and turning it into a JS key
    // stringifies it, which costs exponential time when such keys nest (800 bytes took a minute).
    let badKey;
    YAML.visit(d, {
      Pair(_, pair) {
        if (pair.key !== null && !YAML.isScalar(pair.key)) {
          badKey = lineAt(pair.key, line);
          return YAML.visit.BREAK;
        }
      },
    });
    if (badKey !== undefined) {
      units.push({ unit: 'doc', index, line, error: 'line ' + badKey + ': a mapping key must be a plain value, not a collection or alias', bytes: 0 });
      return;
    }
    let value;
    try {
      value = d.toJS({ maxAliasCount: limits.maxAliasCount });
    } catch (err) {
      units.push({ unit: 'doc', index, line, error: firstLine(err), bytes: 0 });
      return;
    }
    const isMapping = typeof value === 'object' && value !== null && !Array.isArray(value);
    if (!isMapping || !Array.isArray(value.items) || value.items.length === 0) {
      units.push({ unit: 'doc', index, line, value, bytes: bytesOf(d.contents) });
      return;
    }
    const items = value.items;
    const nodes = YAML.isMap(d.contents) && YAML.isSeq(d.contents.get('items', true)) ? d.contents.get('items', true).items : [];
    value.items = [];
    units.push({ unit: 'doc', index, line, value, itemCount: items.length, bytes: 0 });
    items.forEach((item, i) => units.push({ unit: 'item', index, item: i, line: lineAt(nodes[i], line), value: item, bytes: bytesOf(nodes[i]) }));
  });
  return { ok: true, units };
`;

type ParseResult = { ok: true; units: ParsedUnit[] } | Extract<ParseOutcome, { ok: false }>;
interface Limits {
  maxAliasCount: number;
  maxFlowNesting: number;
  maxIndent: number;
}
const LIMITS: Limits = { maxAliasCount: MAX_ALIAS_COUNT, maxFlowNesting: MAX_FLOW_NESTING, maxIndent: MAX_INDENT_COLUMNS };
type ParseFn = (yaml: unknown, text: string, limits: Limits) => ParseResult;
const parseInline = new Function('YAML', 'text', 'limits', PARSE_SOURCE) as ParseFn;

/** Source bytes of units sent per message from the worker: what one batch costs the main thread to take in. */
export const TRANSFER_BATCH_BYTES = 32 * 1024;

const WORKER_SOURCE = `
  const { parentPort, workerData } = require('node:worker_threads');
  const YAML = require(workerData.yamlPath);
  const parse = new Function('YAML', 'text', 'limits', workerData.parseSource);
  const oneLine = (e) => String(e && e.message !== undefined ? e.message : e).split('\\n')[0];
  let units = [];
  let next = 0;
  parentPort.on('message', (m) => {
    if (m.op === 'parse') {
      let r;
      try {
        r = parse(YAML, m.text, m.limits);
      } catch (e) {
        r = { ok: false, syntax: false, message: oneLine(e) };
      }
      units = r.ok ? r.units : [];
      next = 0;
      parentPort.postMessage(r.ok ? { ok: true } : r);
      return;
    }
    // op 'next': the next batch, at least one unit.
    const batch = [];
    let bytes = 0;
    while (next < units.length && (batch.length === 0 || bytes + units[next].bytes <= m.maxBytes)) {
      bytes += units[next].bytes + 64;
      batch.push(units[next]);
      units[next++] = undefined;
    }
    try {
      parentPort.postMessage({ units: batch });
    } catch (e) {
      parentPort.postMessage({ failed: 'parsed content cannot be passed on: ' + oneLine(e) });
    }
  });
`;

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

type WorkerReply = ParseOutcome | { units: ParsedUnit[] } | { failed: string };

/**
 * Parses spec file texts one at a time; owns at most one worker, started on the first large file.
 * Call close() when done.
 */
export class YamlDocumentParser {
  private worker: Worker | undefined;
  private readonly timeoutMs: number;
  private readonly heapMb: number;

  constructor(o: { timeoutMs?: number; heapMb?: number } = {}) {
    this.timeoutMs = o.timeoutMs ?? PARSE_TIMEOUT_MS;
    this.heapMb = o.heapMb ?? PARSE_WORKER_HEAP_MB;
  }

  /**
   * Parses `text` and hands its units to `onUnit` in file order. When the outcome is not ok, units
   * already handed over (possible only if the worker fails mid-transfer) must be discarded.
   */
  async parse(text: string, onUnit: (u: ParsedUnit) => void): Promise<ParseOutcome> {
    if (Buffer.byteLength(text) <= INLINE_PARSE_MAX_BYTES) {
      let r: ParseResult;
      try {
        r = parseInline(YAML, text, LIMITS);
      } catch (e) {
        r = { ok: false, syntax: false, message: oneLine(e) };
      }
      if (r.ok) r.units.forEach(onUnit);
      // Let timers and I/O run between files.
      await new Promise((resolve) => setImmediate(resolve));
      return r.ok ? { ok: true } : r;
    }
    const first = await this.ask({ op: 'parse', text, limits: LIMITS });
    if (!('ok' in first)) return { ok: false, syntax: false, message: 'YAML parser answered out of turn' };
    if (!first.ok) return first;
    for (;;) {
      const r = await this.ask({ op: 'next', maxBytes: TRANSFER_BATCH_BYTES });
      if ('failed' in r) return { ok: false, syntax: false, message: r.failed };
      if ('ok' in r) return r.ok ? { ok: false, syntax: false, message: 'YAML parser answered out of turn' } : r;
      if (r.units.length === 0) return { ok: true };
      r.units.forEach(onUnit);
    }
  }

  /** One request to the worker, answered within timeoutMs or failed (and the worker killed). */
  private ask(message: object): Promise<WorkerReply> {
    const worker = (this.worker ??= new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { yamlPath: createRequire(import.meta.url).resolve('yaml'), parseSource: PARSE_SOURCE },
      // Not the parent's flags: a TypeScript loader would only slow the worker's start.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
    }));
    const refused = (message: string): WorkerReply => ({ ok: false, syntax: false, message });
    return new Promise<WorkerReply>((resolve) => {
      const done = (r: WorkerReply, kill: boolean): void => {
        clearTimeout(timer);
        worker.off('message', resolveWith);
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('messageerror', onMessageError);
        if (kill) this.discard(worker);
        resolve(r);
      };
      const resolveWith = (r: WorkerReply): void => done(r, false);
      const onError = (e: unknown): void => {
        const code = (e as { code?: unknown }).code;
        done(refused(code === 'ERR_WORKER_OUT_OF_MEMORY' ? `YAML parse needs more than ${this.heapMb} MiB` : `YAML parser failed: ${oneLine(e)}`), true);
      };
      // The parsed value could not be rebuilt here (e.g. nested too deep for this thread's stack).
      const onMessageError = (e: unknown): void => done(refused(`parsed content cannot be passed on: ${oneLine(e)}`), true);
      const onExit = (): void => done(refused('YAML parser stopped'), true);
      const timer = setTimeout(() => done(refused(`YAML parse took longer than ${this.timeoutMs / 1000} s`), true), this.timeoutMs);
      worker.on('message', resolveWith);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.on('messageerror', onMessageError);
      worker.postMessage(message);
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
