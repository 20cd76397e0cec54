/**
 * Validation and defaulting of ImageMirror objects, for every front end: the controller (objects the
 * API server already checked against the CRD, which may still fail controller-only checks such as
 * RE2 compilation or semver range syntax) and the file modes (raw YAML, nothing checked yet).
 *
 * The shape, bounds, patterns, defaults and the wording of each error come from the declaration in
 * src/api/imagemirror.ts, the same one the CRD is generated from (test/mirror/crd.test.ts checks
 * the two judge alike). Here are the rules only the controller can check, which need parsers below
 * the API: RE2 and semver compilation, the duration parser, repository names (normalized, so
 * `nginx` and `docker.io/library/nginx` are the same target) and local paths. Every error names its
 * field path and says what to write instead. Unknown fields are errors (what `kubectl apply` does
 * with server-side strict field validation), so a typo such as `tagpattern` is caught in file modes
 * too. `null` counts as absent, as the API server drops nulls before validating.
 *
 * Cost: every string and list has a bound (LIMITS, the CRD's maxLength/maxItems), checked before
 * anything parses or compiles the value, and a list over its bound is not walked, so validating
 * any input takes time linear in its size and error messages stay short.
 */
import { API_VERSION, KIND, MIRROR, PATTERNS, type ImageMirror, type ImageMirrorSpec, type ObjectMeta } from '../api/index.js';
import { nodeAt, type Check, type Reporter } from '../api/schema.js';
import { readValue, type Extras } from '../api/validate.js';
import { backendOf } from '../backends/open.js';
import { parseRepository } from '../oci/reference.js';
import { readInterval } from './interval.js';
import { describeValue, get, isObj, quoteValue, type Obj } from './fields.js';
import { compileSemverRange, compileTagPattern, tooLong } from './select.js';

export { isSingleImage } from './select.js';
export { LIMITS, PATTERNS, SELECTORS } from '../api/index.js';
export { QUOTE_MAX_CHARS } from './fields.js';

export interface ValidateOptions {
  /**
   * Admit `oci:PATH` and `oci-archive:PATH` repositories (an OCI image layout directory, or the
   * same as a tar file). The file modes pass true; the controller passes its --allow-local-paths
   * flag, since a mirror naming a path reads and writes the controller's own file system.
   */
  localPaths?: boolean;
}

export type ValidationResult =
  | {
      ok: true;
      mirror: ImageMirror;
      /**
       * One-line notes on values admitted but not used as written (an interval outside
       * MIN_INTERVAL_MS..MAX_INTERVAL_MS is clamped), each prefixed with its field path.
       */
      warnings: string[];
    }
  | { ok: false; /** `namespace/name`, or `<unnamed>` */ name: string; errors: string[] };

/** Errors reported per object; the rest are counted (a file with 10⁵ unknown keys gets one line more). */
export const MAX_REPORTED_ERRORS = 20;

/** InvalidSpec message for a local path given to a controller that does not allow them. */
export const LOCAL_PATHS_REFUSED = 'local paths are refused by this controller; start it with --allow-local-paths';

const DNS1123_SUBDOMAIN = new RegExp(PATTERNS.dns1123Subdomain);
const DNS1123_LABEL = new RegExp(PATTERNS.dns1123Label);
const LOCAL_PATH = new RegExp(PATTERNS.localPath);
const SPEC = nodeAt(MIRROR.schema, 'spec');

const q = quoteValue;
const describe = describeValue;

class Checker implements Reporter {
  private readonly all: string[] = [];
  readonly warnings: string[] = [];

  /** At most MAX_REPORTED_ERRORS, then one line counting the rest. */
  get errors(): string[] {
    if (this.all.length <= MAX_REPORTED_ERRORS) return this.all;
    return [...this.all.slice(0, MAX_REPORTED_ERRORS), `and ${this.all.length - MAX_REPORTED_ERRORS} more errors`];
  }

  get failed(): boolean {
    return this.all.length > 0;
  }

  err(path: string, msg: string): void {
    this.all.push(`${path}: ${msg}`);
  }

  str(path: string, v: unknown, max: number, what: string, required = false): string | undefined {
    if (v === undefined) {
      if (required) this.err(path, 'required');
      return undefined;
    }
    if (typeof v !== 'string') {
      this.err(path, `must be a string, got ${describe(v)}`);
      return undefined;
    }
    if (v === '') {
      this.err(path, 'must not be empty');
      return undefined;
    }
    const long = tooLong(v, max);
    if (long !== undefined) {
      this.err(path, `invalid ${what}: ${long}`);
      return undefined;
    }
    return v;
  }
}

/** A rule that compiles or parses a value, reporting the parser's one-line error at the value's path. */
function parsed(compile: (s: string) => unknown) {
  return (v: unknown, path: string, r: Reporter): unknown => {
    try {
      compile(v as string);
      return v;
    } catch (e) {
      r.err(path, (e as Error).message);
      return undefined;
    }
  };
}

/**
 * The controller-only rules, for one validation: repositories are parsed and compared in canonical
 * form (`registry/repository`), which needs state across fields.
 */
function controllerRules(options: ValidateOptions, warnings: string[]): Extras {
  const canonical = new Map<string, string>();
  const repository = (v: unknown, path: string, r: Reporter): unknown => {
    const s = v as string;
    if (backendOf(s) !== 'registry') {
      if (!options.localPaths) {
        r.err(path, LOCAL_PATHS_REFUSED);
        return undefined;
      }
      if (!LOCAL_PATH.test(s)) {
        r.err(path, `invalid local path ${q(s)}: write oci:PATH or oci-archive:PATH, a path without ":" and without a tag`);
        return undefined;
      }
      canonical.set(path, s);
      return s;
    }
    try {
      const ref = parseRepository(s);
      canonical.set(path, `${ref.registry}/${ref.repository}`);
      return s;
    } catch (e) {
      // parseRepository's message is `invalid image reference "<input>": <why>`; the path already
      // names the field, so keep the reason only.
      const msg = e instanceof Error ? e.message : String(e);
      r.err(path, msg.replace(/^invalid image reference "(?:[^"\\]|\\.)*": /, `invalid repository ${q(s)}: `));
      return undefined;
    }
  };
  const seenTargets = new Map<string, number>();
  const targetRepository: Check = {
    after: 'tags',
    run(raw, r, path) {
      const repo = canonical.get(`${path}.repository`);
      if (repo === undefined) return;
      if (canonical.get('spec.source.repository') === repo && get(raw, 'tags') === undefined) {
        r.err(`${path}.repository`, `same repository as spec.source.repository (${repo}); a target in the source repository needs its own tags (a retag)`);
      }
      const prev = seenTargets.get(repo);
      if (prev !== undefined) r.err(`${path}.repository`, `same repository as spec.targets[${prev}] (${repo}); list each target repository once`);
      else seenTargets.set(repo, Number(/\[(\d+)\]$/.exec(path)![1]));
    },
  };
  const interval = (v: unknown, path: string, r: Reporter): unknown => {
    try {
      const { warning } = readInterval(v as string);
      if (warning !== undefined) warnings.push(`${path}: ${warning}`);
      return v;
    } catch (e) {
      r.err(path, (e as Error).message);
      return undefined;
    }
  };
  return {
    values: {
      'spec.source.repository': repository,
      'spec.targets[].repository': repository,
      'spec.source.tagPattern': parsed(compileTagPattern),
      'spec.source.semver': parsed(compileSemverRange),
      'spec.source.exclude[]': parsed(compileTagPattern),
      'spec.verify.keyless[].subjectRegExp': parsed(compileTagPattern),
      'spec.interval': interval,
    },
    checks: { 'spec.targets[]': [targetRepository] },
  };
}

function validateMetadata(c: Checker, v: unknown): ObjectMeta | undefined {
  if (v === undefined) {
    c.err('metadata.name', 'required');
    return undefined;
  }
  if (!isObj(v)) {
    c.err('metadata', `must be a mapping, got ${describe(v)}`);
    return undefined;
  }
  const name = c.str('metadata.name', get(v, 'name'), 253, 'name', true);
  if (name !== undefined && !DNS1123_SUBDOMAIN.test(name)) {
    c.err('metadata.name', `invalid name ${q(name)}: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters`);
  }
  const ns = c.str('metadata.namespace', get(v, 'namespace'), 63, 'namespace');
  if (ns !== undefined && !DNS1123_LABEL.test(ns)) {
    c.err('metadata.namespace', `invalid namespace ${q(ns)}: lowercase letters, digits and "-", at most 63 characters`);
  }
  return { ...(v as Obj), name: name ?? '' } as ObjectMeta;
}

function displayName(obj: unknown): string {
  if (!isObj(obj) || !isObj(obj.metadata)) return '<unnamed>';
  const { name, namespace } = obj.metadata;
  if (typeof name !== 'string' || name === '') return '<unnamed>';
  return `${typeof namespace === 'string' && namespace !== '' ? namespace : 'default'}/${name}`;
}

/**
 * Checks an ImageMirror and returns a defaulted copy (referrers, overwrite, interval, suspend and
 * keyless keys filled in as the CRD's defaults are; unknown fields refused, not copied). The input
 * is never modified.
 */
export function validateMirror(obj: unknown, options: ValidateOptions = {}): ValidationResult {
  const c = new Checker();
  const name = displayName(obj);
  if (!isObj(obj)) {
    return { ok: false, name, errors: [`object: must be a mapping, got ${describe(obj)}`] };
  }
  if (obj.apiVersion !== API_VERSION) c.err('apiVersion', `must be ${API_VERSION}, got ${describe(obj.apiVersion)}`);
  if (obj.kind !== KIND) c.err('kind', `must be ${KIND}, got ${describe(obj.kind)}`);
  const metadata = validateMetadata(c, get(obj, 'metadata'));
  const spec = readValue(SPEC, get(obj, 'spec'), 'spec', 'spec', { r: c, root: obj, extras: controllerRules(options, c.warnings) }, true);

  if (c.failed || !metadata || !spec) return { ok: false, name, errors: c.errors };
  const mirror: ImageMirror = { apiVersion: API_VERSION, kind: KIND, metadata, spec: spec as ImageMirrorSpec };
  const status = get(obj, 'status');
  if (isObj(status)) mirror.status = status as ImageMirror['status'];
  return { ok: true, mirror, warnings: c.warnings };
}

/** Like validateMirror, but throws one Error listing every problem (for tests and scripts). */
export function mustValidateMirror(obj: unknown, options?: ValidateOptions): ImageMirror {
  const r = validateMirror(obj, options);
  if (!r.ok) throw new Error(`ImageMirror ${r.name} is invalid: ${r.errors.join('; ')}`);
  return r.mirror;
}
