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
 * Errors never quote Secret contents.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
const SPEC_EXTENSIONS = /\.(ya?ml|json)$/i;

export interface SecretDoc {
  namespace: string;
  name: string;
  /** The Secret's `type` (`Opaque` when unset, as the API server defaults it). */
  type: string;
  /** Decoded `.dockerconfigjson`; only for type kubernetes.io/dockerconfigjson with valid JSON. */
  dockerConfigJson?: string;
  /** `file:docIndex` (0-based document index; `file:docIndex:items[i]` inside a List). */
  source: string;
}

export interface RawMirrorDoc {
  doc: unknown;
  /** `file:docIndex` (0-based document index; `file:docIndex:items[i]` inside a List). */
  source: string;
}

export interface SpecFileError {
  /** `file:line` for syntax errors, `file:docIndex` for a bad document, the path for I/O errors. */
  source: string;
  message: string;
}

export interface SpecFiles {
  mirrors: RawMirrorDoc[];
  secrets: SecretDoc[];
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

function isOurMirror(doc: Obj): boolean {
  if (doc.kind !== 'ImageMirror') return false;
  return doc.apiVersion === undefined || (typeof doc.apiVersion === 'string' && doc.apiVersion.startsWith('imagemirror.dev/'));
}

function isCoreSecret(doc: Obj): boolean {
  return doc.kind === 'Secret' && (doc.apiVersion === 'v1' || doc.apiVersion === undefined);
}

function readDocument(doc: unknown, source: string, out: SpecFiles): void {
  if (!isObj(doc)) return;
  if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
    doc.items.forEach((item, i) => readDocument(item, `${source}:items[${i}]`, out));
    return;
  }
  if (isOurMirror(doc)) out.mirrors.push({ doc, source });
  else if (isCoreSecret(doc)) {
    const s = readSecret(doc, source, out.errors);
    if (s) out.secrets.push(s);
  }
}

async function readSpecFile(file: string, out: SpecFiles): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    out.errors.push({ source: file, message: errMessage(e) });
    return;
  }
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [];
  for (const d of list) {
    const e = d.errors[0];
    if (e) {
      const line = e.linePos?.[0].line;
      // The library's message ends with a code frame; the first line says what and where.
      const msg = e.message.split('\n')[0]!.replace(/:$/, '');
      out.errors.push({ source: line === undefined ? file : `${file}:${line}`, message: `YAML syntax error: ${msg}` });
      return;
    }
  }
  list.forEach((d, i) => {
    if (d.contents === null) return;
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      out.errors.push({ source: `${file}:${i}`, message: `YAML document ${i}: ${errMessage(err)}` });
      return;
    }
    readDocument(value, `${file}:${i}`, out);
  });
}

/** Reads every ImageMirror and Secret in the given files and directories. Never throws for content. */
export async function loadSpecFiles(paths: string[]): Promise<SpecFiles> {
  const out: SpecFiles = { mirrors: [], secrets: [], errors: [] };
  const files = await collectFiles(paths, out.errors);
  for (const f of files) await readSpecFile(f, out);
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
