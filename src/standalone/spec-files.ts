/**
 * Reads ImageMirror and Secret documents from YAML/JSON files, the way `kubectl apply -f DIR -R`
 * would see them, so one GitOps folder serves the controller, `run` and `sync` unchanged.
 *
 * - Paths are files or directories (recursive; `*.yaml`, `*.yml`, `*.json`; entries starting with
 *   `.` such as `.git` are skipped). A file named explicitly is read whatever its extension.
 * - Multi-document YAML; empty documents and unrelated kinds (Deployments, Kustomizations, Helm
 *   values…) are skipped; `kind: List` (or `*List`) items are read like documents.
 * - ImageMirror documents are returned raw for validateMirror to judge, so a wrong apiVersion is
 *   reported rather than skipped (any `imagemirror.dev/*` version, or none, counts as ours).
 * - Secrets: `data` (base64) and `stringData` (wins, as the API server merges it over `data`);
 *   only `kubernetes.io/dockerconfigjson` Secrets get `dockerConfigJson`; others are kept with
 *   their type so the caller can say "wrong type" instead of "not found".
 * - A file with a YAML syntax error is one entry in `errors` (file and line) and contributes
 *   nothing, since documents after a syntax error may be misread; other files still load.
 * - Only regular files up to MAX_SPEC_FILE_BYTES are read (a FIFO or /dev/zero named by mistake
 *   would otherwise hang or fill memory); parsing never blocks the event loop for long
 *   (yaml-documents.ts).
 * - Every source is `file:line`, the line where the document (or List item) starts.
 * - The path `-` is standard input (`kubectl kustomize overlays/prod | image-mirror sync -f -`),
 *   read once, bounded by MAX_SPEC_FILE_BYTES like a file, and named `<stdin>` in sources.
 * Errors are one line and never quote Secret contents.
 */
import { constants } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_SPEC_FILE_BYTES, YamlDocumentParser, type ParsedUnit } from './yaml-documents.js';

export { MAX_SPEC_FILE_BYTES } from './yaml-documents.js';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
const SPEC_EXTENSIONS = /\.(ya?ml|json)$/i;

/** The path that means standard input, as for kubectl. */
export const STDIN_PATH = '-';
/** How standard input is named in sources and errors. */
export const STDIN_NAME = '<stdin>';

export interface SecretDoc {
  namespace: string;
  name: string;
  /** The Secret's `type` (`Opaque` when unset, as the API server defaults it). */
  type: string;
  /** Decoded `.dockerconfigjson`; only for type kubernetes.io/dockerconfigjson with valid JSON. */
  dockerConfigJson?: string;
  /** String values of `data` (base64, as written) and `stringData`, any type; read by key on demand. */
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  /** `file:line` where the document (or List item) starts. */
  source: string;
}

export interface RawMirrorDoc {
  doc: unknown;
  /** `file:line` where the document (or List item) starts. */
  source: string;
  /**
   * `file#docIndex` (0-based, empty documents count; `file#docIndex.items[i]` inside a List):
   * stable while lines above the document change, so it can name a document that has no usable name.
   */
  key: string;
}

/** An ImageMirrorPolicy document, raw, for validatePolicy to judge. */
export interface RawPolicyDoc {
  doc: unknown;
  /** `file:line` where the document (or List item) starts. */
  source: string;
}

export interface SpecFileError {
  /** `file:line` for a syntax error or a bad document, the path for I/O errors. */
  source: string;
  /** One line. */
  message: string;
}

export interface SpecFiles {
  mirrors: RawMirrorDoc[];
  secrets: SecretDoc[];
  policies: RawPolicyDoc[];
  errors: SpecFileError[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errMessage(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    const code = (e as { code: string }).code;
    if (code === 'ENOENT') return 'no such file or directory';
    if (code === 'EACCES') return 'permission denied';
  }
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/** Files to read, in a stable order (sorted within each directory, paths in the order given). */
async function collectFiles(paths: string[], errors: SpecFileError[]): Promise<string[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  async function walk(dir: string): Promise<void> {
    let real: string;
    try {
      real = await realpath(dir);
    } catch (e) {
      errors.push({ source: dir, message: errMessage(e) });
      return;
    }
    if (seen.has(real)) return; // symlink loops, or a directory given twice
    seen.add(real);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      errors.push({ source: dir, message: errMessage(e) });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const ent of entries) {
      if (ent.name.startsWith('.')) continue;
      const p = join(dir, ent.name);
      let isDir = ent.isDirectory();
      let isFile = ent.isFile();
      if (ent.isSymbolicLink()) {
        try {
          const st = await stat(p);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue; // dangling link: nothing to read, like kubectl
        }
      }
      if (isDir) await walk(p);
      else if (isFile && SPEC_EXTENSIONS.test(ent.name)) addFile(p, await realpath(p).catch(() => p));
    }
  }
  function addFile(p: string, real: string): void {
    if (seen.has(real)) return;
    seen.add(real);
    files.push(p);
  }
  for (const p of paths) {
    if (p === STDIN_PATH) {
      if (!files.includes(STDIN_PATH)) files.push(STDIN_PATH);
      continue;
    }
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      errors.push({ source: p, message: errMessage(e) });
      continue;
    }
    if (st.isDirectory()) await walk(p);
    else addFile(p, await realpath(p).catch(() => p));
  }
  return files;
}

function decodeBase64(s: string): Buffer | undefined {
  const compact = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined;
  return Buffer.from(compact, 'base64');
}

function readSecret(doc: Obj, source: string, errors: SpecFileError[]): SecretDoc | undefined {
  const meta = isObj(doc.metadata) ? doc.metadata : {};
  const name = meta.name;
  if (typeof name !== 'string' || name === '') {
    errors.push({ source, message: 'Secret without metadata.name' });
    return undefined;
  }
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  const type = typeof doc.type === 'string' && doc.type !== '' ? doc.type : 'Opaque';
  const secret: SecretDoc = { namespace, name, type, source };
  const strings = (v: unknown): Record<string, string> | undefined =>
    isObj(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string')) : undefined;
  const dataValues = strings(doc.data);
  const stringDataValues = strings(doc.stringData);
  if (dataValues) secret.data = dataValues;
  if (stringDataValues) secret.stringData = stringDataValues;
  if (type !== DOCKER_CONFIG_JSON_TYPE) return secret;

  const what = `Secret ${namespace}/${name}`;
  let raw: string | undefined;
  const stringData = isObj(doc.stringData) ? doc.stringData[DOCKER_CONFIG_JSON_KEY] : undefined;
  const data = isObj(doc.data) ? doc.data[DOCKER_CONFIG_JSON_KEY] : undefined;
  if (typeof stringData === 'string') {
    raw = stringData;
  } else if (typeof data === 'string') {
    const buf = decodeBase64(data);
    if (!buf) {
      errors.push({ source, message: `${what}: data.${DOCKER_CONFIG_JSON_KEY} is not valid base64 (use stringData for plain text)` });
      return secret;
    }
    raw = buf.toString('utf8');
  } else if (stringData !== undefined || data !== undefined) {
    errors.push({ source, message: `${what}: ${DOCKER_CONFIG_JSON_KEY} must be a string` });
    return secret;
  } else {
    errors.push({ source, message: `${what}: type ${DOCKER_CONFIG_JSON_TYPE} but no ${DOCKER_CONFIG_JSON_KEY} in data or stringData` });
    return secret;
  }
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!isObj(parsed)) throw new Error('not an object');
  } catch {
    errors.push({ source, message: `${what}: ${DOCKER_CONFIG_JSON_KEY} is not a JSON object` });
    return secret;
  }
  secret.dockerConfigJson = raw;
  return secret;
}

/** Any `imagemirror.dev/*` version, or none, counts as ours: validation reports a wrong one. */
function isOurs(doc: Obj, kind: string): boolean {
  if (doc.kind !== kind) return false;
  return doc.apiVersion === undefined || (typeof doc.apiVersion === 'string' && doc.apiVersion.startsWith('imagemirror.dev/'));
}

function isCoreSecret(doc: Obj): boolean {
  return doc.kind === 'Secret' && (doc.apiVersion === 'v1' || doc.apiVersion === undefined);
}

interface Place {
  file: string;
  line: number;
  key: string;
}

/** Lists inside Lists are flattened (as kubectl does) this deep; deeper ones are an error. */
export const MAX_LIST_NESTING = 8;

function isList(doc: unknown): doc is Obj & { kind: string; items: unknown[] } {
  return isObj(doc) && typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items);
}

/** An item of a document's own List (depth 1). */
function readListItem(item: unknown, at: Place, out: SpecFiles): void {
  readDocument(item, at, out, 1);
}

function readDocument(doc: unknown, at: Place, out: SpecFiles, depth = 0): void {
  if (!isObj(doc)) return;
  const source = `${at.file}:${at.line}`;
  if (isList(doc)) {
    if (depth >= MAX_LIST_NESTING) {
      out.errors.push({ source, message: `${doc.kind} nested more than ${MAX_LIST_NESTING} deep` });
      return;
    }
    // Items of nested Lists have no line of their own: they get the line of the List that holds them.
    doc.items.forEach((item, i) => readDocument(item, { file: at.file, line: at.line, key: `${at.key}.items[${i}]` }, out, depth + 1));
    return;
  }
  if (isOurs(doc, 'ImageMirror')) out.mirrors.push({ doc, source, key: at.key });
  else if (isOurs(doc, 'ImageMirrorPolicy')) out.policies.push({ doc, source });
  else if (isCoreSecret(doc)) {
    const s = readSecret(doc, source, out.errors);
    if (s) out.secrets.push(s);
  }
}

/** The file's text, or an error entry: only regular files, at most MAX_SPEC_FILE_BYTES. */
async function readBounded(file: string, out: SpecFiles): Promise<string | undefined> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a file.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    out.errors.push({ source: file, message: errMessage(e) });
    return undefined;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      out.errors.push({ source: file, message: 'not a regular file' });
      return undefined;
    }
    if (st.size > MAX_SPEC_FILE_BYTES) {
      out.errors.push({ source: file, message: tooLarge(st.size) });
      return undefined;
    }
    // Read one byte past the limit: the file may have grown since stat.
    const buf = Buffer.alloc(Math.min(st.size, MAX_SPEC_FILE_BYTES) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) {
        if (n > MAX_SPEC_FILE_BYTES) {
          out.errors.push({ source: file, message: tooLarge(n) });
          return undefined;
        }
        break;
      }
    }
    return buf.subarray(0, n).toString('utf8');
  } catch (e) {
    out.errors.push({ source: file, message: errMessage(e) });
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** All of `stdin`, or an error entry once it passes MAX_SPEC_FILE_BYTES (reading stops there). */
async function readStdinBounded(stdin: NodeJS.ReadableStream, out: SpecFiles): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of stdin) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      n += buf.length;
      if (n > MAX_SPEC_FILE_BYTES) {
        out.errors.push({ source: STDIN_NAME, message: tooLarge(n) });
        return undefined;
      }
      chunks.push(buf);
    }
  } catch (e) {
    out.errors.push({ source: STDIN_NAME, message: errMessage(e) });
    return undefined;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(size: number): string {
  return `file is larger than ${MAX_SPEC_FILE_BYTES} bytes (${size}${size > MAX_SPEC_FILE_BYTES ? '' : '+'}); split it`;
}

async function readSpecFile(path: string, parser: YamlDocumentParser, out: SpecFiles, stdin: NodeJS.ReadableStream): Promise<void> {
  const file = path === STDIN_PATH ? STDIN_NAME : path;
  const text = path === STDIN_PATH ? await readStdinBounded(stdin, out) : await readBounded(path, out);
  if (text === undefined) return;
  // A file contributes all its documents or none: remember where this file's entries start.
  const mark = { mirrors: out.mirrors.length, secrets: out.secrets.length, policies: out.policies.length, errors: out.errors.length };
  /** The List-shaped document whose items are arriving. */
  let list: { unit: Extract<ParsedUnit, { unit: 'doc' }>; items: unknown[]; stream: boolean } | undefined;
  const place = (index: number, line: number): Place => ({ file, line, key: `${file}#${index}` });
  const outcome = await parser.parse(text, (u) => {
    if (u.unit === 'item') {
      if (!list || list.unit.index !== u.index) return;
      if (list.stream) readListItem(u.value, { file, line: u.line, key: `${file}#${u.index}.items[${u.item}]` }, out);
      else list.items.push(u.value);
      if (u.item + 1 === list.unit.itemCount) {
        if (!list.stream) readDocument({ ...(list.unit.value as Obj), items: list.items }, place(u.index, list.unit.line), out);
        list = undefined;
      }
      return;
    }
    if (u.error !== undefined) {
      out.errors.push({ source: `${file}:${u.line}`, message: `YAML document ${u.index}: ${u.error}` });
    } else if (u.itemCount !== undefined) {
      // Items of a List are read as they arrive; anything else shaped like one is put back together.
      list = { unit: u, items: [], stream: isList(u.value) };
    } else {
      readDocument(u.value, place(u.index, u.line), out);
    }
  });
  if (!outcome.ok) {
    out.mirrors.length = mark.mirrors;
    out.secrets.length = mark.secrets;
    out.policies.length = mark.policies;
    out.errors.length = mark.errors;
    const source = outcome.line === undefined ? file : `${file}:${outcome.line}`;
    out.errors.push({ source, message: outcome.syntax ? `YAML syntax error: ${outcome.message}` : outcome.message });
  }
}

/** Reads every ImageMirror, ImageMirrorPolicy and Secret in the given files and directories. Never throws for content. */
export async function loadSpecFiles(paths: string[], opts: { stdin?: NodeJS.ReadableStream } = {}): Promise<SpecFiles> {
  const out: SpecFiles = { mirrors: [], secrets: [], policies: [], errors: [] };
  const files = await collectFiles(paths, out.errors);
  const parser = new YamlDocumentParser();
  try {
    for (const f of files) await readSpecFile(f, parser, out, opts.stdin ?? process.stdin);
  } finally {
    await parser.close();
  }
  const first = new Map<string, SecretDoc>();
  for (const s of out.secrets) {
    const key = `${s.namespace}/${s.name}`;
    const prev = first.get(key);
    if (prev) out.errors.push({ source: s.source, message: `Secret ${key} is also defined at ${prev.source}; using the first` });
    else first.set(key, s);
  }
  return out;
}

/** The first Secret with this namespace and name (file order), of whatever type. */
export function findSecret(secrets: SecretDoc[], namespace: string, name: string): SecretDoc | undefined {
  return secrets.find((s) => s.namespace === namespace && s.name === name);
}
