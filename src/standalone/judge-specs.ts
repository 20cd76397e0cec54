/**
 * Turns the raw documents of spec files into what `run` and `sync` act on: one entry per mirror key
 * (valid, or with the one-line reason it is not run) and the valid ImageMirrorPolicies.
 *
 * Spec folders are shared by many teams, so nothing is decided silently:
 * - A mirror name defined twice (`namespace/name`, in any files) is an error naming every place;
 *   none of the copies runs, since picking one would let file order decide whose spec wins.
 * - A document without a usable name is keyed by its place (`file#docIndex`), so it still gets a
 *   status and an error, and its raw name never reaches a file path.
 * - An invalid or twice-defined ImageMirrorPolicy is an error; the mirrors of the namespaces it
 *   names are held (not run) until it is fixed: dropping it would leave them unrestricted.
 */
import { validatePolicy, type ImageMirrorPolicy } from '../mirror/policy.js';
import { PATTERNS, validateMirror } from '../mirror/validate.js';
import { mirrorKey, type ImageMirror } from '../mirror/types.js';
import type { RawMirrorDoc, SpecFileError, SpecFiles } from './spec-files.js';

const DNS1123_LABEL = new RegExp(PATTERNS.dns1123Label);
const DNS1123_SUBDOMAIN = new RegExp(PATTERNS.dns1123Subdomain);

export interface MirrorEntry {
  /** `namespace/name`, or `file#docIndex` for a document without a usable name. */
  key: string;
  /** `file:line` of the (first) document. */
  source: string;
  /** Set when the mirror may run. */
  mirror?: ImageMirror;
  /** One line, set when it may not. */
  error?: string;
}

export interface JudgedSpecs {
  mirrors: MirrorEntry[];
  policies: ImageMirrorPolicy[];
  /** Policy errors (the mirrors' own errors are in their entries). */
  errors: SpecFileError[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `namespace/name` when the raw document's name and namespace are well-formed, else undefined. */
function usableKey(doc: unknown): string | undefined {
  if (!isObj(doc) || !isObj(doc.metadata)) return undefined;
  const { name, namespace } = doc.metadata;
  if (typeof name !== 'string' || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) return undefined;
  if (namespace === undefined || namespace === null || namespace === '') return `default/${name}`;
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS1123_LABEL.test(namespace)) return undefined;
  return `${namespace}/${name}`;
}

function places(sources: string[]): string {
  return sources.length === 2 ? `${sources[0]} and ${sources[1]}` : `${sources.slice(0, -1).join(', ')} and ${sources.at(-1)}`;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const g = groups.get(k);
    if (g) g.push(it);
    else groups.set(k, [it]);
  }
  return groups;
}

export function judgeSpecs(loaded: Pick<SpecFiles, 'mirrors' | 'policies'>): JudgedSpecs {
  const errors: SpecFileError[] = [];
  /** namespace → why its mirrors are held. */
  const held = new Map<string, string>();
  const hold = (doc: unknown, why: string): void => {
    const namespaces = isObj(doc) && isObj(doc.spec) && Array.isArray(doc.spec.namespaces) ? doc.spec.namespaces : [];
    for (const ns of namespaces) if (typeof ns === 'string' && !held.has(ns)) held.set(ns, why);
  };

  const judgedPolicies = loaded.policies.map((p) => ({ ...p, v: validatePolicy(p.doc) }));
  const policies: ImageMirrorPolicy[] = [];
  for (const [name, group] of groupBy(judgedPolicies, (p) => (p.v.ok ? p.v.policy.metadata.name : `\0${p.source}`))) {
    const first = group[0]!;
    if (group.length > 1) {
      errors.push({ source: first.source, message: `ImageMirrorPolicy ${name} is defined more than once: at ${places(group.map((p) => p.source))}` });
      for (const p of group) hold(p.doc, `ImageMirrorPolicy ${name} is defined more than once (${places(group.map((q) => q.source))})`);
      continue;
    }
    if (first.v.ok) {
      policies.push(first.v.policy);
      continue;
    }
    errors.push({ source: first.source, message: `ImageMirrorPolicy ${first.v.name}: ${first.v.errors.join('; ')}` });
    hold(first.doc, `ImageMirrorPolicy ${first.v.name} at ${first.source} is invalid`);
  }

  const judged = loaded.mirrors.map((d: RawMirrorDoc) => {
    // File modes: the operator's own files, so local paths are theirs to name.
    const v = validateMirror(d.doc, { localPaths: true });
    return { d, v, key: v.ok ? mirrorKey(v.mirror) : (usableKey(d.doc) ?? d.key) };
  });
  const mirrors: MirrorEntry[] = [];
  for (const [key, group] of groupBy(judged, (j) => j.key)) {
    const first = group[0]!;
    const source = first.d.source;
    if (group.length > 1) {
      mirrors.push({ key, source, error: `ImageMirror ${key} is defined more than once: at ${places(group.map((j) => j.d.source))}; none of them runs until the others are renamed or removed` });
    } else if (!first.v.ok) {
      mirrors.push({ key, source, error: first.v.errors.join('; ') });
    } else {
      const why = held.get(first.v.mirror.metadata.namespace ?? 'default');
      mirrors.push(why ? { key, source, error: `not run: ${why}; fix the policy first` } : { key, source, mirror: first.v.mirror });
    }
  }
  return { mirrors, policies, errors };
}
