/**
 * Validation and defaulting of ImageMirror objects, for every front end: the controller (objects the
 * API server already checked against the CRD, which may still fail controller-only checks such as
 * RE2 compilation or semver range syntax) and the file modes (raw YAML, nothing checked yet).
 *
 * The rules are the CRD's schema and CEL rules plus what CEL cannot see; test/mirror/crd.test.ts
 * keeps the two in agreement. Every error names its field path and says what to write instead.
 * Unknown fields are errors (what `kubectl apply` does with server-side strict field validation),
 * so a typo such as `tagpattern` is caught in file modes too. `null` counts as absent, as the API
 * server drops nulls before validating.
 *
 * Cost: every string and list has a bound (LIMITS, the CRD's maxLength/maxItems), checked before
 * anything parses or compiles the value, and a list over its bound is not walked, so validating
 * any input takes time linear in its size and error messages stay short.
 */
import { CLOUD_PROVIDERS, isCloudProvider } from '../auth/provider.js';
import { backendOf } from '../backends/open.js';
import { parseRepository } from '../oci/reference.js';
import { DURATION_PATTERN, MAX_DURATION_LENGTH } from './duration.js';
import { readInterval } from './interval.js';
import { describeValue, get, isObj, quoteValue, type Obj } from './fields.js';
import {
  compileSemverRange,
  compileTagPattern,
  SEMVER_MAX_LENGTH,
  TAG_PATTERN_MAX_LENGTH,
  tooLong,
} from './select.js';
import {
  API_VERSION,
  DEFAULTS,
  DEFAULT_TRUSTED_ROOT_KEY,
  KIND,
  type ImageMirror,
  type ImageMirrorSpec,
  type CredentialsRef,
  type ObjectMeta,
  type SourceSpec,
  type TargetSpec,
  type VerifyKeylessRef,
  type VerifyKeyRef,
  type VerifySpec,
} from './types.js';

export { isSingleImage } from './select.js';

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

/** Patterns shared with crds/imagemirror.yaml (the CRD test checks they are the same strings). */
export const PATTERNS = {
  /** DNS-1123 subdomain: object names, Secret names. */
  dns1123Subdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  /** DNS-1123 label: namespaces. */
  dns1123Label: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  tag: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$',
  sha256Digest: '^sha256:[a-f0-9]{64}$',
  /**
   * The distribution name grammar with an optional registry host (which needs a ".", a port or
   * `localhost`, as parseRepository reads it). A static approximation for the CRD: parseRepository
   * has the last word (uppercase-only hosts, IPv6 forms, the 255 limit on the canonical name).
   */
  repository:
    '^(?:(?:localhost(?::[0-9]+)?|(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+(?::[0-9]+)?|(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?::[0-9]+)|\\[[a-fA-F0-9:]+\\](?::[0-9]+)?)/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$',
  interval: DURATION_PATTERN,
  /** `os/arch[/variant]` as the OCI image index names platforms (linux/amd64, linux/arm64/v8). */
  platform: '^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$',
  /** A key of a Secret's data. */
  secretKey: '^[-._a-zA-Z0-9]+$',
  /** An OIDC issuer: an https URL without query or fragment. */
  issuer: '^https://[^\\s/?#]+(/[^\\s?#]*)?$',
  /** `oci:PATH` or `oci-archive:PATH`; a path holds no `:` (skopeo's `oci:PATH:TAG` ends it there). */
  localPath: '^oci(-archive)?:[^:]+$',
} as const;

/**
 * Bounds on every string and list of the spec, the CRD's maxLength/maxItems (test/mirror/crd.test.ts
 * checks each one is there and the same). They let the API server prove its CEL rules cheap (an
 * unbounded list or string makes the estimated cost exceed the limit and the CRD is refused), and
 * keep one tenant's spec from costing the controller more than a few milliseconds to validate.
 * Lengths count characters (code points), as the API server does.
 */
export const LIMITS = {
  /** spec.targets */
  targets: 100,
  /** spec.source.tags and spec.targets[].tags */
  tagsPerList: 100,
  /** one tag: the distribution spec's limit (PATTERNS.tag says the same) */
  tagLength: 128,
  /** a repository name, the distribution spec's limit */
  repositoryLength: 255,
  tagPatternLength: TAG_PATTERN_MAX_LENGTH,
  semverLength: SEMVER_MAX_LENGTH,
  /** `sha256:` and 64 hex digits */
  digestLength: 71,
  /** a DNS-1123 subdomain */
  secretNameLength: 253,
  intervalLength: MAX_DURATION_LENGTH,
  /** spec.source.platforms: more than any index in use holds */
  platforms: 32,
  /** one `os/arch/variant` */
  platformLength: 64,
  /** spec.source.exclude: each pattern is matched against every listed tag */
  excludePatterns: 32,
  excludePatternLength: TAG_PATTERN_MAX_LENGTH,
  /** spec.verify.keys and spec.verify.keyless: each is tried against every signature found */
  verifyKeys: 16,
  verifyKeyless: 16,
  /** a key of a Secret's data, as the API server bounds it */
  secretKeyLength: 253,
  /** an OIDC issuer URL */
  issuerLength: 1024,
  subjectRegExpLength: TAG_PATTERN_MAX_LENGTH,
} as const;

/** Errors reported per object; the rest are counted (a file with 10⁵ unknown keys gets one line more). */
export const MAX_REPORTED_ERRORS = 20;
export { QUOTE_MAX_CHARS } from './fields.js';

const DNS1123_SUBDOMAIN = new RegExp(PATTERNS.dns1123Subdomain);
const DNS1123_LABEL = new RegExp(PATTERNS.dns1123Label);
const TAG = new RegExp(PATTERNS.tag);
const SHA256_DIGEST = new RegExp(PATTERNS.sha256Digest);
const PLATFORM = new RegExp(PATTERNS.platform);
const SECRET_KEY = new RegExp(PATTERNS.secretKey);
const ISSUER = new RegExp(PATTERNS.issuer);
const LOCAL_PATH = new RegExp(PATTERNS.localPath);

/** InvalidSpec message for a local path given to a controller that does not allow them. */
export const LOCAL_PATHS_REFUSED = 'local paths are refused by this controller; start it with --allow-local-paths';

export const SELECTORS = ['tags', 'tagPattern', 'semver', 'digest'] as const;
const SPEC_FIELDS = ['source', 'targets', 'referrers', 'overwrite', 'interval', 'suspend', 'verify'];
const SOURCE_FIELDS = ['repository', ...SELECTORS, 'latest', 'credentials', 'insecure', 'platforms', 'exclude'];
const TARGET_FIELDS = ['repository', 'tags', 'credentials', 'insecure', 'prune'];
const VERIFY_FIELDS = ['keys', 'keyless'];
const VERIFY_KEY_FIELDS = ['secretName', 'key'];
const VERIFY_KEYLESS_FIELDS = ['trustedRootSecretName', 'key', 'issuer', 'subjectRegExp'];
const CREDENTIALS_FIELDS = ['secretName', 'provider'];
const PROVIDERS_TEXT = CLOUD_PROVIDERS.join(', ');

const q = quoteValue;
const describe = describeValue;

class Checker {
  private readonly all: string[] = [];
  readonly warnings: string[] = [];

  constructor(readonly options: ValidateOptions = {}) {}

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

  unknownFields(path: string, o: Obj, known: string[]): void {
    for (const k of Object.keys(o)) {
      if (known.includes(k)) continue;
      const name = /^[A-Za-z0-9_-]{1,64}$/.test(k) ? k : q(k);
      this.err(`${path}.${name}`, `unknown field (known: ${known.join(', ')})`);
    }
  }

  bool(path: string, v: unknown): boolean | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      this.err(path, `must be true or false, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  /**
   * A non-empty string of at most `max` characters, its length checked before anything else;
   * `what` names the value in the too-long message (`invalid digest: 135 characters, ...`).
   */
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

  tagList(path: string, v: unknown): string[] | undefined {
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.err(path, `must be a list of tags, got ${describe(v)}`);
      return undefined;
    }
    if (v.length === 0) {
      this.err(path, 'must list at least one tag (or leave the field out)');
      return undefined;
    }
    if (v.length > LIMITS.tagsPerList) {
      this.err(path, `too many tags: ${v.length}, at most ${LIMITS.tagsPerList} allowed (use tagPattern or semver, or split the mirror)`);
      return undefined;
    }
    const seen = new Set<string>();
    let ok = true;
    v.forEach((t, i) => {
      if (typeof t !== 'string') {
        this.err(`${path}[${i}]`, `must be a string, got ${describe(t)} (quote numeric tags: "1.0")`);
        ok = false;
      } else if (tooLong(t, LIMITS.tagLength) !== undefined || !TAG.test(t)) {
        this.err(
          `${path}[${i}]`,
          `invalid tag ${q(t)}: up to ${LIMITS.tagLength} letters, digits, "_", "." and "-", not starting with "." or "-"`,
        );
        ok = false;
      } else if (seen.has(t)) {
        this.err(`${path}[${i}]`, `duplicate tag ${q(t)}`);
        ok = false;
      }
      if (typeof t === 'string') seen.add(t);
    });
    return ok ? (v as string[]) : undefined;
  }

  /**
   * A list of 1..max distinct strings, each checked by `item` (which reports its own errors and
   * returns false); `what` names the entries in messages. A list over its bound is not walked.
   */
  stringList(path: string, v: unknown, max: number, what: string, hint: string, item: (p: string, s: string) => boolean): string[] | undefined {
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.err(path, `must be a list of ${what}, got ${describe(v)}`);
      return undefined;
    }
    if (v.length === 0) {
      this.err(path, `must list at least one of ${what} (or leave the field out)`);
      return undefined;
    }
    if (v.length > max) {
      this.err(path, `too many ${what}: ${v.length}, at most ${max} allowed${hint}`);
      return undefined;
    }
    const seen = new Set<string>();
    let ok = true;
    v.forEach((x, i) => {
      const p = `${path}[${i}]`;
      if (typeof x !== 'string') {
        this.err(p, `must be a string, got ${describe(x)}`);
        ok = false;
        return;
      }
      if (!item(p, x)) ok = false;
      else if (seen.has(x)) {
        this.err(p, `duplicate ${q(x)}`);
        ok = false;
      }
      seen.add(x);
    });
    return ok ? [...(v as string[])] : undefined;
  }

  /** A Secret in the mirror's namespace, by name. */
  secretName(path: string, v: unknown, required: boolean): string | undefined {
    const name = this.str(path, v, LIMITS.secretNameLength, 'Secret name', required);
    if (name === undefined) return undefined;
    if (!DNS1123_SUBDOMAIN.test(name)) {
      this.err(path, `invalid Secret name ${q(name)}: lowercase letters, digits, "-" and ".", at most ${LIMITS.secretNameLength} characters`);
      return undefined;
    }
    return name;
  }

  /** A key of a Secret's data. */
  secretKey(path: string, v: unknown, required: boolean): string | undefined {
    const key = this.str(path, v, LIMITS.secretKeyLength, 'Secret key', required);
    if (key === undefined) return undefined;
    if (!SECRET_KEY.test(key)) {
      this.err(path, `invalid Secret key ${q(key)}: letters, digits, "-", "_" and ".", at most ${LIMITS.secretKeyLength} characters`);
      return undefined;
    }
    return key;
  }

  /** An RE2 pattern, bounded before it is compiled. */
  re2(path: string, v: unknown, max: number, what: string, required: boolean): string | undefined {
    const pattern = this.str(path, v, max, what, required);
    if (pattern === undefined) return undefined;
    try {
      compileTagPattern(pattern);
      return pattern;
    } catch (e) {
      this.err(path, (e as Error).message);
      return undefined;
    }
  }

  /** Returns the canonical `registry/repository`, the form compared for equality. */
  repository(path: string, v: unknown): { raw: string; canonical: string } | undefined {
    const s = this.str(path, v, LIMITS.repositoryLength, 'repository', true);
    if (s === undefined) return undefined;
    if (backendOf(s) !== 'registry') {
      if (!this.options.localPaths) {
        this.err(path, LOCAL_PATHS_REFUSED);
        return undefined;
      }
      if (!LOCAL_PATH.test(s)) {
        this.err(path, `invalid local path ${q(s)}: write oci:PATH or oci-archive:PATH, a path without ":" and without a tag`);
        return undefined;
      }
      return { raw: s, canonical: s };
    }
    try {
      const r = parseRepository(s);
      return { raw: s, canonical: `${r.registry}/${r.repository}` };
    } catch (e) {
      // parseRepository's message is `invalid image reference "<input>": <why>`; the path already
      // names the field, so keep the reason only.
      const msg = e instanceof Error ? e.message : String(e);
      this.err(path, msg.replace(/^invalid image reference "(?:[^"\\]|\\.)*": /, `invalid repository ${q(s)}: `));
      return undefined;
    }
  }

  /** `credentials`: exactly one of secretName (a Secret in the mirror's namespace) or provider (a cloud identity). */
  credentials(path: string, v: unknown): CredentialsRef | undefined {
    if (v === undefined) return undefined;
    if (!isObj(v)) {
      this.err(path, `must be a mapping {secretName: ...} or {provider: ${CLOUD_PROVIDERS.join('|')}}, got ${describe(v)}`);
      return undefined;
    }
    this.unknownFields(path, v, CREDENTIALS_FIELDS);
    const rawName = get(v, 'secretName');
    const rawProvider = get(v, 'provider');
    if (rawName !== undefined && rawProvider !== undefined) {
      this.err(
        path,
        'set exactly one of secretName or provider, not both (secretName: a kubernetes.io/dockerconfigjson Secret in this namespace; provider: the cloud identity the controller or CLI runs as)',
      );
      return undefined;
    }
    if (rawProvider !== undefined) {
      if (!isCloudProvider(rawProvider)) {
        const got = typeof rawProvider === 'string' ? q(rawProvider) : describe(rawProvider);
        this.err(`${path}.provider`, `must be one of ${PROVIDERS_TEXT}, got ${got}`);
        return undefined;
      }
      return { provider: rawProvider };
    }
    if (rawName === undefined) {
      this.err(`${path}.secretName`, `required, or provider (${PROVIDERS_TEXT}) instead: exactly one of the two`);
      return undefined;
    }
    const name = this.secretName(`${path}.secretName`, rawName, true);
    return name === undefined ? undefined : { secretName: name };
  }
}

function validateSource(c: Checker, v: unknown): { spec: SourceSpec; canonical?: string } | undefined {
  const path = 'spec.source';
  if (v === undefined) {
    c.err(path, 'required');
    return undefined;
  }
  if (!isObj(v)) {
    c.err(path, `must be a mapping, got ${describe(v)}`);
    return undefined;
  }
  c.unknownFields(path, v, SOURCE_FIELDS);
  const repo = c.repository(`${path}.repository`, get(v, 'repository'));
  const spec: SourceSpec = { repository: repo?.raw ?? '' };

  const found = SELECTORS.filter((k) => get(v, k) !== undefined);
  if (found.length !== 1) {
    c.err(path, `exactly one of tags, tagPattern, semver, digest must be set (found ${found.length === 0 ? 'none' : found.join(', ')})`);
  }

  const tags = c.tagList(`${path}.tags`, get(v, 'tags'));
  if (tags) spec.tags = [...tags];

  const pattern = c.str(`${path}.tagPattern`, get(v, 'tagPattern'), LIMITS.tagPatternLength, 'tagPattern');
  if (pattern !== undefined) {
    try {
      compileTagPattern(pattern);
      spec.tagPattern = pattern;
    } catch (e) {
      c.err(`${path}.tagPattern`, (e as Error).message);
    }
  }

  const range = c.str(`${path}.semver`, get(v, 'semver'), LIMITS.semverLength, 'semver range');
  if (range !== undefined) {
    try {
      compileSemverRange(range);
      spec.semver = range;
    } catch (e) {
      c.err(`${path}.semver`, (e as Error).message);
    }
  }

  const digest = c.str(`${path}.digest`, get(v, 'digest'), LIMITS.digestLength, 'digest');
  if (digest !== undefined) {
    if (SHA256_DIGEST.test(digest)) spec.digest = digest;
    else c.err(`${path}.digest`, `invalid digest ${q(digest)}: must be "sha256:" followed by 64 lowercase hex digits`);
  }

  const latest = get(v, 'latest');
  if (latest !== undefined) {
    if (typeof latest !== 'number' || !Number.isInteger(latest) || latest < 1) {
      c.err(`${path}.latest`, `must be a whole number of at least 1, got ${describe(latest)}`);
    } else if (get(v, 'tagPattern') === undefined && get(v, 'semver') === undefined) {
      c.err(`${path}.latest`, 'only allowed with tagPattern or semver (it keeps the N highest matching tags)');
    } else {
      spec.latest = latest;
    }
  }

  const creds = c.credentials(`${path}.credentials`, get(v, 'credentials'));
  if (creds) spec.credentials = creds;
  const insecure = c.bool(`${path}.insecure`, get(v, 'insecure'));
  if (insecure !== undefined) spec.insecure = insecure;

  const platforms = c.stringList(`${path}.platforms`, get(v, 'platforms'), LIMITS.platforms, 'platforms', '', (p, s) => {
    if (tooLong(s, LIMITS.platformLength) === undefined && PLATFORM.test(s)) return true;
    c.err(p, `invalid platform ${q(s)}: write os/arch or os/arch/variant in lower case (linux/amd64, linux/arm64/v8), at most ${LIMITS.platformLength} characters`);
    return false;
  });
  if (platforms) spec.platforms = platforms;
  const exclude = c.stringList(`${path}.exclude`, get(v, 'exclude'), LIMITS.excludePatterns, 'exclude patterns', ' (join alternatives with |)', (p, s) =>
    c.re2(p, s, LIMITS.excludePatternLength, 'exclude pattern', true) !== undefined,
  );
  if (exclude) spec.exclude = exclude;
  return { spec, canonical: repo?.canonical };
}

function validateTargets(
  c: Checker,
  v: unknown,
  source: { spec: SourceSpec; canonical?: string } | undefined,
  rawSource: Obj | undefined,
): TargetSpec[] {
  const path = 'spec.targets';
  if (v === undefined) {
    c.err(path, 'required: list at least one target repository');
    return [];
  }
  if (!Array.isArray(v)) {
    c.err(path, `must be a list, got ${describe(v)}`);
    return [];
  }
  if (v.length === 0) {
    c.err(path, 'must list at least one target repository');
    return [];
  }
  if (v.length > LIMITS.targets) {
    c.err(path, `at most ${LIMITS.targets} targets per ImageMirror, got ${v.length} (split it into several mirrors)`);
    return [];
  }
  // Judged from the raw source so a bad tag elsewhere does not add a misleading error here.
  const rawTags = rawSource ? get(rawSource, 'tags') : undefined;
  const sourceDigest = rawSource ? get(rawSource, 'digest') !== undefined : false;
  const single = sourceDigest || (Array.isArray(rawTags) && rawTags.length === 1);

  const out: TargetSpec[] = [];
  const seen = new Map<string, number>();
  v.forEach((t, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(t)) {
      c.err(p, `must be a mapping {repository: ...}, got ${describe(t)}`);
      return;
    }
    c.unknownFields(p, t, TARGET_FIELDS);
    const repo = c.repository(`${p}.repository`, get(t, 'repository'));
    const target: TargetSpec = { repository: repo?.raw ?? '' };
    const hasTags = get(t, 'tags') !== undefined;
    const tags = c.tagList(`${p}.tags`, get(t, 'tags'));
    if (tags) target.tags = [...tags];
    if (hasTags && !single) {
      c.err(`${p}.tags`, 'only allowed when the source is a single image (digest, or tags with exactly one entry)');
    }
    if (!hasTags && sourceDigest) {
      c.err(`${p}.tags`, 'required when the source is a digest (a digest has no tag name to reuse)');
    }
    if (repo) {
      if (source?.canonical === repo.canonical && !hasTags) {
        c.err(`${p}.repository`, `same repository as spec.source.repository (${repo.canonical}); a target in the source repository needs its own tags (a retag)`);
      }
      const prev = seen.get(repo.canonical);
      if (prev !== undefined) {
        c.err(`${p}.repository`, `same repository as spec.targets[${prev}] (${repo.canonical}); list each target repository once`);
      } else {
        seen.set(repo.canonical, i);
      }
    }
    const creds = c.credentials(`${p}.credentials`, get(t, 'credentials'));
    if (creds) target.credentials = creds;
    const insecure = c.bool(`${p}.insecure`, get(t, 'insecure'));
    if (insecure !== undefined) target.insecure = insecure;
    const prune = c.bool(`${p}.prune`, get(t, 'prune'));
    if (prune !== undefined) target.prune = prune;
    out.push(target);
  });
  return out;
}

/** A list of mappings of 1..max entries, each read by `one` (undefined: it reported why). */
function mappingList<T>(c: Checker, path: string, v: unknown, max: number, what: string, one: (p: string, o: Obj) => T | undefined): T[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    c.err(path, `must be a list of ${what}, got ${describe(v)}`);
    return undefined;
  }
  if (v.length === 0) {
    c.err(path, `must list at least one of ${what} (or leave the field out)`);
    return undefined;
  }
  if (v.length > max) {
    c.err(path, `too many ${what}: ${v.length}, at most ${max} allowed`);
    return undefined;
  }
  const out: T[] = [];
  let ok = true;
  v.forEach((x, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(x)) {
      c.err(p, `must be a mapping, got ${describe(x)}`);
      ok = false;
      return;
    }
    const r = one(p, x);
    if (r === undefined) ok = false;
    else out.push(r);
  });
  return ok ? out : undefined;
}

function validateVerify(c: Checker, v: unknown): VerifySpec | undefined {
  const path = 'spec.verify';
  if (v === undefined) return undefined;
  if (!isObj(v)) {
    c.err(path, `must be a mapping {keys: [...], keyless: [...]}, got ${describe(v)}`);
    return undefined;
  }
  c.unknownFields(path, v, VERIFY_FIELDS);
  if (get(v, 'keys') === undefined && get(v, 'keyless') === undefined) {
    c.err(path, 'list keys or keyless (or both): a gate with nothing to verify against would refuse every image');
    return undefined;
  }
  const keys = mappingList(c, `${path}.keys`, get(v, 'keys'), LIMITS.verifyKeys, 'keys', (p, o): VerifyKeyRef | undefined => {
    c.unknownFields(p, o, VERIFY_KEY_FIELDS);
    const secretName = c.secretName(`${p}.secretName`, get(o, 'secretName'), true);
    const key = c.secretKey(`${p}.key`, get(o, 'key'), true);
    return secretName !== undefined && key !== undefined ? { secretName, key } : undefined;
  });
  const keyless = mappingList(c, `${path}.keyless`, get(v, 'keyless'), LIMITS.verifyKeyless, 'keyless identities', (p, o): VerifyKeylessRef | undefined => {
    c.unknownFields(p, o, VERIFY_KEYLESS_FIELDS);
    const trustedRootSecretName = c.secretName(`${p}.trustedRootSecretName`, get(o, 'trustedRootSecretName'), true);
    const rawKey = get(o, 'key');
    const key = rawKey === undefined ? DEFAULT_TRUSTED_ROOT_KEY : c.secretKey(`${p}.key`, rawKey, true);
    let issuer = c.str(`${p}.issuer`, get(o, 'issuer'), LIMITS.issuerLength, 'issuer', true);
    if (issuer !== undefined && !(ISSUER.test(issuer) && URL.canParse(issuer))) {
      c.err(`${p}.issuer`, `invalid issuer ${q(issuer)}: an https URL without query or fragment (e.g. https://token.actions.githubusercontent.com)`);
      issuer = undefined;
    }
    const subjectRegExp = c.re2(`${p}.subjectRegExp`, get(o, 'subjectRegExp'), LIMITS.subjectRegExpLength, 'subjectRegExp', true);
    if (trustedRootSecretName === undefined || key === undefined || issuer === undefined || subjectRegExp === undefined) return undefined;
    return { trustedRootSecretName, key, issuer, subjectRegExp };
  });
  const out: VerifySpec = {};
  if (keys) out.keys = keys;
  if (keyless) out.keyless = keyless;
  return keys === undefined && keyless === undefined ? undefined : out;
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
 * Checks an ImageMirror and returns a defaulted copy (referrers, overwrite, interval, suspend filled
 * in; unknown fields refused, not copied). The input is never modified.
 */
export function validateMirror(obj: unknown, options: ValidateOptions = {}): ValidationResult {
  const c = new Checker(options);
  const name = displayName(obj);
  if (!isObj(obj)) {
    return { ok: false, name, errors: [`object: must be a mapping, got ${describe(obj)}`] };
  }
  if (obj.apiVersion !== API_VERSION) c.err('apiVersion', `must be ${API_VERSION}, got ${describe(obj.apiVersion)}`);
  if (obj.kind !== KIND) c.err('kind', `must be ${KIND}, got ${describe(obj.kind)}`);
  const metadata = validateMetadata(c, get(obj, 'metadata'));

  const rawSpec = get(obj, 'spec');
  let spec: ImageMirrorSpec | undefined;
  if (rawSpec === undefined) c.err('spec', 'required');
  else if (!isObj(rawSpec)) c.err('spec', `must be a mapping, got ${describe(rawSpec)}`);
  else {
    c.unknownFields('spec', rawSpec, SPEC_FIELDS);
    const rawSource = get(rawSpec, 'source');
    const source = validateSource(c, rawSource);
    const targets = validateTargets(c, get(rawSpec, 'targets'), source, isObj(rawSource) ? rawSource : undefined);
    const referrers = c.bool('spec.referrers', get(rawSpec, 'referrers'));
    const overwrite = c.bool('spec.overwrite', get(rawSpec, 'overwrite'));
    const suspend = c.bool('spec.suspend', get(rawSpec, 'suspend'));
    const verify = validateVerify(c, get(rawSpec, 'verify'));
    let interval = c.str('spec.interval', get(rawSpec, 'interval'), LIMITS.intervalLength, 'interval');
    if (interval !== undefined) {
      try {
        const { warning } = readInterval(interval);
        if (warning !== undefined) c.warnings.push(`spec.interval: ${warning}`);
      } catch (e) {
        c.err('spec.interval', (e as Error).message);
        interval = undefined;
      }
    }
    if (source) {
      spec = {
        source: source.spec,
        targets,
        referrers: referrers ?? DEFAULTS.referrers,
        overwrite: overwrite ?? DEFAULTS.overwrite,
        interval: interval ?? DEFAULTS.interval,
        suspend: suspend ?? DEFAULTS.suspend,
      };
      if (verify) spec.verify = verify;
    }
  }

  if (c.failed || !metadata || !spec) return { ok: false, name, errors: c.errors };
  const mirror: ImageMirror = { apiVersion: API_VERSION, kind: KIND, metadata, spec };
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
