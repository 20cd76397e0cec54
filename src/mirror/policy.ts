/**
 * ImageMirrorPolicy: which namespaces may read which source repositories and write which target
 * repositories, for one controller shared by many teams. Cluster-scoped in Kubernetes; in file modes
 * the same documents sit in the spec files.
 *
 * Rules:
 * - A namespace named by no policy is unrestricted, unless `requirePolicy` is set (then denied).
 * - A namespace named by one or more policies must fit one of them entirely: its source matches one
 *   of that policy's `sources` and every target matches one of that policy's `targets`. Mixing two
 *   policies (source from one, target from another) is not allowed, so each policy reads as a
 *   complete grant.
 *
 * Globs match the canonical `registry/repository` (`docker.io/library/nginx`, `localhost:5000/a/b`):
 * `*` matches the characters of one path segment (never `/`), a `**` segment matches any number of
 * segments (zero included, so `reg/team/**` also covers `reg/team`). Matching walks the segments with
 * a set of pattern positions, so its cost is bounded by text length × pattern length with no
 * backtracking blow-up; patterns are bounded in length and count.
 */
import { canonicalRegistry, parseRepository } from '../oci/reference.js';
import type { ImageMirror } from './types.js';
import type { ImageMirrorPolicy } from '../api/index.js';
import { POLICY_LIMITS, POLICY_PATTERNS } from '../api/policy.js';
import { POLICY_API_VERSION, POLICY_KIND } from '../api/vocabulary.js';
import { describeValue, get, isObj, type Obj } from './fields.js';

export { POLICY_API_VERSION, POLICY_KIND, POLICY_PLURAL } from '../api/vocabulary.js';
export type { ImageMirrorPolicy, ImageMirrorPolicySpec } from '../api/index.js';
export { POLICY_LIMITS, POLICY_PATTERNS } from '../api/policy.js';

export type PolicyValidationResult =
  | { ok: true; policy: ImageMirrorPolicy }
  | { ok: false; /** metadata.name, or `<unnamed>` */ name: string; errors: string[] };

const DNS1123_SUBDOMAIN = new RegExp(POLICY_PATTERNS.dns1123Subdomain);
const DNS1123_LABEL = new RegExp(POLICY_PATTERNS.dns1123Label);
const GLOB_CHARS = new RegExp(POLICY_PATTERNS.glob);

const SPEC_FIELDS = ['namespaces', 'sources', 'targets'];
const METADATA_SERVER_FIELDS = [
  'name',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'labels',
  'annotations',
  'managedFields',
  'finalizers',
  'ownerReferences',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'generateName',
  'selfLink',
];

const describe = describeValue;

/** Why `glob` is not a usable repository glob, or undefined. */
export function globProblem(glob: string): string | undefined {
  if (glob.length > POLICY_LIMITS.patternLength) return `${glob.length} characters, at most ${POLICY_LIMITS.patternLength} allowed`;
  if (!GLOB_CHARS.test(glob)) {
    return 'only lowercase letters, digits, ".", "_", "-", ":", "[", "]", "/" and "*" (globs match the canonical lowercase registry/repository)';
  }
  const segments = glob.split('/');
  if (segments.some((s) => s === '')) return 'empty path segment (check for "//" or a leading/trailing "/")';
  for (const s of segments) {
    if (s.includes('**') && s !== '**') return `"${s}": "**" must be a whole path segment (e.g. "registry.example.com/team/**")`;
  }
  if (segments.length < 2) {
    return 'must be registry/repository (e.g. "registry.example.com/team/**", "docker.io/library/*", "*/team/**")';
  }
  const registry = segments[0]!;
  if (!registry.includes('*')) {
    const canonical = canonicalRegistry(registry);
    if (canonical !== registry) return `write the registry in canonical form: "${canonical}" instead of "${registry}"`;
    if (!/[.:]/.test(registry) && registry !== 'localhost' && !registry.startsWith('[')) {
      return `"${registry}" is not a registry host (it needs a "." or a port, or use docker.io/library/... for Docker Hub images)`;
    }
  }
  if (!glob.includes('*')) {
    // A literal must be exactly what parseRepository produces, or it would never match.
    try {
      const r = parseRepository(glob);
      const canonical = `${r.registry}/${r.repository}`;
      if (canonical !== glob) return `write the canonical form "${canonical}"`;
    } catch (e) {
      return (e instanceof Error ? e.message : String(e)).replace(/^invalid image reference "(?:[^"\\]|\\.)*": /, '');
    }
  }
  return undefined;
}

/** `*` within one segment; two-pointer scan that only ever resumes at the last star (O(n·m)). */
function segmentMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * True when the canonical `registry/repository` matches `glob`. Simulates the pattern as a set of
 * positions advanced one text segment at a time, so no input can make it backtrack exponentially.
 */
export function globMatch(glob: string, repository: string): boolean {
  const pat = glob.split('/');
  const txt = repository.split('/');
  // active[i]: pattern positions 0..pat.length reachable after the consumed segments.
  let active = closure(new Set([0]), pat);
  for (const seg of txt) {
    const next = new Set<number>();
    for (const i of active) {
      if (i >= pat.length) continue;
      const p = pat[i]!;
      if (p === '**') next.add(i);
      else if (segmentMatch(p, seg)) next.add(i + 1);
    }
    if (next.size === 0) return false;
    active = closure(next, pat);
  }
  return active.has(pat.length);
}

/** Adds the positions after any `**` (which may match zero segments). */
function closure(s: Set<number>, pat: readonly string[]): Set<number> {
  for (const i of s) if (pat[i] === '**') s.add(i + 1); // Set iteration visits added entries too
  return s;
}

class Checker {
  readonly errors: string[] = [];
  err(path: string, msg: string): void {
    this.errors.push(`${path}: ${msg}`);
  }

  list(path: string, v: unknown, max: number, item: (p: string, s: string) => string | undefined): string[] {
    if (v === undefined) {
      this.err(path, 'required');
      return [];
    }
    if (!Array.isArray(v)) {
      this.err(path, `must be a list, got ${describe(v)}`);
      return [];
    }
    if (v.length === 0) {
      this.err(path, 'must list at least one entry');
      return [];
    }
    if (v.length > max) {
      this.err(path, `at most ${max} entries, got ${v.length} (split it into several policies)`);
      return [];
    }
    const out: string[] = [];
    const seen = new Set<string>();
    v.forEach((x, i) => {
      const p = `${path}[${i}]`;
      if (typeof x !== 'string' || x === '') {
        this.err(p, `must be a non-empty string, got ${describe(x)}`);
        return;
      }
      const problem = item(p, x);
      if (problem) {
        this.err(p, `invalid ${JSON.stringify(x.length > 80 ? x.slice(0, 80) + '…' : x)}: ${problem}`);
        return;
      }
      if (seen.has(x)) {
        this.err(p, `duplicate ${JSON.stringify(x)}`);
        return;
      }
      seen.add(x);
      out.push(x);
    });
    return out;
  }
}

/** Checks an ImageMirrorPolicy: unknown fields refused, every list and string bounded. */
export function validatePolicy(obj: unknown): PolicyValidationResult {
  let name = '<unnamed>';
  if (isObj(obj) && isObj(obj.metadata) && typeof obj.metadata.name === 'string' && obj.metadata.name !== '') {
    name = obj.metadata.name;
  }
  if (!isObj(obj)) return { ok: false, name, errors: [`object: must be a mapping, got ${describe(obj)}`] };
  const c = new Checker();
  if (obj.apiVersion !== POLICY_API_VERSION) c.err('apiVersion', `must be ${POLICY_API_VERSION}, got ${describe(obj.apiVersion)}`);
  if (obj.kind !== POLICY_KIND) c.err('kind', `must be ${POLICY_KIND}, got ${describe(obj.kind)}`);

  const meta = get(obj, 'metadata');
  if (meta === undefined) c.err('metadata.name', 'required');
  else if (!isObj(meta)) c.err('metadata', `must be a mapping, got ${describe(meta)}`);
  else {
    const n = get(meta, 'name');
    if (n === undefined) c.err('metadata.name', 'required');
    else if (typeof n !== 'string' || n.length > POLICY_LIMITS.nameLength || !DNS1123_SUBDOMAIN.test(n)) {
      c.err('metadata.name', `invalid name ${describe(n)}: lowercase letters, digits, "-" and ".", at most ${POLICY_LIMITS.nameLength} characters`);
    }
    if (get(meta, 'namespace') !== undefined) {
      c.err('metadata.namespace', 'ImageMirrorPolicy is cluster-scoped: remove the namespace and list namespaces in spec.namespaces');
    }
    for (const k of Object.keys(meta)) {
      if (k !== 'namespace' && !METADATA_SERVER_FIELDS.includes(k)) c.err(`metadata.${k}`, 'unknown field');
    }
  }

  const spec = get(obj, 'spec');
  let namespaces: string[] = [];
  let sources: string[] = [];
  let targets: string[] = [];
  if (spec === undefined) c.err('spec', 'required');
  else if (!isObj(spec)) c.err('spec', `must be a mapping, got ${describe(spec)}`);
  else {
    for (const k of Object.keys(spec)) {
      if (!SPEC_FIELDS.includes(k)) c.err(`spec.${k}`, `unknown field (known: ${SPEC_FIELDS.join(', ')})`);
    }
    namespaces = c.list('spec.namespaces', get(spec, 'namespaces'), POLICY_LIMITS.namespaces, (_p, s) =>
      s.length <= POLICY_LIMITS.namespaceLength && DNS1123_LABEL.test(s)
        ? undefined
        : `a namespace is lowercase letters, digits and "-", at most ${POLICY_LIMITS.namespaceLength} characters`,
    );
    sources = c.list('spec.sources', get(spec, 'sources'), POLICY_LIMITS.patterns, (_p, s) => globProblem(s));
    targets = c.list('spec.targets', get(spec, 'targets'), POLICY_LIMITS.patterns, (_p, s) => globProblem(s));
  }
  if (c.errors.length > 0) return { ok: false, name, errors: c.errors };
  return {
    ok: true,
    policy: { apiVersion: POLICY_API_VERSION, kind: POLICY_KIND, metadata: { name }, spec: { namespaces, sources, targets } },
  };
}

export type PolicyDecision = { allowed: true } | { allowed: false; message: string };

/** How many policies a denial message describes before saying "and N more". */
export const POLICY_MESSAGE_MAX_POLICIES = 3;

function canonical(repo: string): string | undefined {
  try {
    const r = parseRepository(repo);
    return `${r.registry}/${r.repository}`;
  } catch {
    return undefined;
  }
}

function quoteList(globs: readonly string[]): string {
  const shown = globs.slice(0, 5).map((g) => JSON.stringify(g));
  return `[${shown.join(', ')}${globs.length > 5 ? `, … ${globs.length - 5} more` : ''}]`;
}

/** Why `mirror` does not fit `policy`, or undefined when it does. */
function misfit(policy: ImageMirrorPolicy, source: string, targets: readonly string[]): string | undefined {
  const name = `ImageMirrorPolicy ${policy.metadata.name}`;
  if (!policy.spec.sources.some((g) => globMatch(g, source))) {
    return `source ${source} matches none of ${name} spec.sources ${quoteList(policy.spec.sources)}`;
  }
  for (const t of targets) {
    if (!policy.spec.targets.some((g) => globMatch(g, t))) {
      return `target ${t} matches none of ${name} spec.targets ${quoteList(policy.spec.targets)}`;
    }
  }
  return undefined;
}

/**
 * Whether `mirror` may run under `policies`. Denial messages name the policy and rule and the
 * repository that does not fit.
 */
export function checkPolicy(mirror: ImageMirror, policies: readonly ImageMirrorPolicy[], requirePolicy: boolean): PolicyDecision {
  const namespace = mirror.metadata.namespace ?? 'default';
  const mine = policies.filter((p) => p.spec.namespaces.includes(namespace)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (mine.length === 0) {
    if (!requirePolicy) return { allowed: true };
    return {
      allowed: false,
      message: `namespace ${namespace} is named by no ImageMirrorPolicy and the controller runs with --require-policy; ask an administrator for a policy listing it in spec.namespaces`,
    };
  }
  const source = canonical(mirror.spec.source.repository);
  const targets = mirror.spec.targets.map((t) => canonical(t.repository));
  if (source === undefined || targets.some((t) => t === undefined)) {
    return { allowed: false, message: 'a repository in the spec does not parse, so no ImageMirrorPolicy can allow it' };
  }
  const reasons: string[] = [];
  for (const p of mine) {
    const why = misfit(p, source, targets as string[]);
    if (why === undefined) return { allowed: true };
    reasons.push(why);
  }
  const shown = reasons.slice(0, POLICY_MESSAGE_MAX_POLICIES).join('; ');
  const more = reasons.length > POLICY_MESSAGE_MAX_POLICIES ? `; and ${reasons.length - POLICY_MESSAGE_MAX_POLICIES} more policies` : '';
  return { allowed: false, message: `namespace ${namespace} fits no ImageMirrorPolicy that names it: ${shown}${more}` };
}
