/**
 * crds/imagemirror.yaml and src/mirror/validate.ts must agree: a table of mirrors, each judged by
 * (a) an emulation of the API server — the CRD's openAPIV3Schema through ajv, the list-type
 * uniqueness the API server enforces, its CEL rules each mapped to a JS predicate keyed by the exact
 * rule text (an unknown rule fails the test), nulls dropped first, strict field validation — and
 * (b) validateMirror. Both verdicts must match, except for the controller-only rules listed apart.
 * Also lints the CRD against the TypeScript API types.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { LIMITS, PATTERNS, validateMirror } from '../../src/mirror/validate.js';
import { formatDuration, parseDuration } from '../../src/mirror/duration.js';
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS } from '../../src/mirror/interval.js';
import { SEMVER_MAX_ALTERNATIVES, SEMVER_MAX_COMPARATORS } from '../../src/mirror/select.js';
import { API_VERSION, DEFAULT_TRUSTED_ROOT_KEY, GROUP, KIND, OWNED_TAGS_CAP, PLURAL, TARGET_ROWS_CAP, VERSION } from '../../src/mirror/types.js';
import { CLOUD_PROVIDERS } from '../../src/auth/provider.js';
import { TargetAction } from '../../src/copy/actions.js';

// ajv-formats is CJS with a default export; under NodeNext the callable is on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;

type Json = Record<string, unknown>;
type Schema = Json & { properties?: Record<string, Schema>; items?: Schema; required?: string[] };

const CRD_PATH = new URL('../../crds/imagemirror.yaml', import.meta.url);
const crd = parseYaml(readFileSync(CRD_PATH, 'utf8')) as Json & {
  spec: {
    group: string;
    scope: string;
    names: Json & { shortNames: string[]; categories: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: Json;
      additionalPrinterColumns: Array<{ name: string; type: string; jsonPath: string; priority?: number }>;
      schema: { openAPIV3Schema: Schema };
    }>;
  };
};
const version = crd.spec.versions[0]!;
const root = version.schema.openAPIV3Schema;

const DIGEST = `sha256:${'c'.repeat(64)}`;
const KEY = { secretName: 'cosign-keys', key: 'cosign.pub' };
const KEYLESS = { trustedRootSecretName: 'sigstore-root', issuer: 'https://token.example', subjectRegExp: '^ci@example\\.com$' };
const REPOSITORY_RULE = `self.matches(r'${PATTERNS.localPath}') || self.matches(r'${PATTERNS.repository}')`;
/** Longest `pattern` a user may meet in an error: past this, a CEL rule with a message says it in words. */
const MAX_PATTERN_IN_ERRORS = 80;

/** CEL rules of the CRD, as JS. Keys are the exact rule strings; `self` is the node the rule is on. */
const CEL: Record<string, (self: Json | string) => boolean> = {
  '[has(self.tags), has(self.tagPattern), has(self.semver), has(self.digest)].filter(x, x).size() == 1': (self) =>
    [has(self, 'tags'), has(self, 'tagPattern'), has(self, 'semver'), has(self, 'digest')].filter((x) => x).length === 1,
  '!has(self.latest) || has(self.tagPattern) || has(self.semver)': (self) =>
    !has(self, 'latest') || has(self, 'tagPattern') || has(self, 'semver'),
  'has(self.source.digest) || (has(self.source.tags) && size(self.source.tags) == 1) || self.targets.all(t, !has(t.tags))': (self) => {
    const s = (self as Json).source as Json;
    return has(s, 'digest') || (has(s, 'tags') && (s.tags as unknown[]).length === 1) || targetsOf(self).every((t) => !has(t, 'tags'));
  },
  '!has(self.source.digest) || self.targets.all(t, has(t.tags))': (self) =>
    !has((self as Json).source as Json, 'digest') || targetsOf(self).every((t) => has(t, 'tags')),
  'self.targets.all(t, t.repository != self.source.repository || has(t.tags))': (self) =>
    targetsOf(self).every((t) => t.repository !== ((self as Json).source as Json).repository || has(t, 'tags')),
  "duration(self) > duration('0s')": (self) => parseDurationOrZero(self as string) > 0,
  'has(self.secretName) != has(self.provider)': (self) => has(self, 'secretName') !== has(self, 'provider'),
  'has(self.keys) || has(self.keyless)': (self) => has(self, 'keys') || has(self, 'keyless'),
  // The repository rule: validate.ts's patterns in CEL raw strings (RE2 in both). Local paths pass
  // the API server; the controller refuses them unless started with --allow-local-paths.
  [REPOSITORY_RULE]: (self) => new RegExp(PATTERNS.localPath).test(self as string) || new RegExp(PATTERNS.repository).test(self as string),
};

function has(o: unknown, k: string): boolean {
  return typeof o === 'object' && o !== null && k in o;
}
function targetsOf(self: unknown): Json[] {
  return ((self as Json).targets as Json[]) ?? [];
}
function parseDurationOrZero(s: string): number {
  // The pattern already passed; CEL's duration() accepts `0s`, which parseDuration refuses.
  try {
    return parseDuration(s);
  } catch {
    return 0;
  }
}

/** The schema as plain JSON Schema: x-kubernetes-* dropped, unknown fields refused (strict field validation). */
function toJsonSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toJsonSchema);
  if (typeof s !== 'object' || s === null) return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, ps]) => [p, toJsonSchema(ps)])) : toJsonSchema(v);
  }
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const ajvValidate: ValidateFunction = ajv.compile(toJsonSchema(root) as object);

/** Nulls are dropped by the API server before validation (fields here are not nullable). */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, dropNulls(x)]));
}

/** CEL rules and list-type uniqueness, walking schema and data together. */
function kubeChecks(schema: Schema, data: unknown, path: string, errors: string[], seenRules: Set<string>): void {
  if (data === undefined) return;
  for (const v of (schema['x-kubernetes-validations'] as Array<{ rule: string; message: string }> | undefined) ?? []) {
    const fn = CEL[v.rule];
    if (!fn) throw new Error(`CRD rule at ${path} has no JS predicate in this test: ${v.rule}`);
    seenRules.add(v.rule);
    if (!fn(data as Json)) errors.push(`${path}: ${v.message}`);
  }
  if (Array.isArray(data)) {
    const lt = schema['x-kubernetes-list-type'];
    if (lt === 'set' || lt === 'map') {
      const keys = lt === 'set' ? data.map((x) => JSON.stringify(x)) : data.map((x) => JSON.stringify((schema['x-kubernetes-list-map-keys'] as string[]).map((k) => (x as Json)[k])));
      if (new Set(keys).size !== keys.length) errors.push(`${path}: duplicate entries in a list-type ${lt}`);
    }
    if (schema.items) data.forEach((x, i) => kubeChecks(schema.items!, x, `${path}[${i}]`, errors, seenRules));
    return;
  }
  if (typeof data === 'object' && data !== null && schema.properties) {
    for (const [k, ps] of Object.entries(schema.properties)) kubeChecks(ps, (data as Json)[k], `${path}.${k}`, errors, seenRules);
  }
}

const seenRules = new Set<string>();

/** What an API server with this CRD would say about a create (apply with strict field validation). */
function apiServerVerdict(obj: unknown): string[] {
  const data = dropNulls(obj) as Json;
  const errors: string[] = [];
  // Built in, not in the schema: group/version/kind routing and object-name rules.
  if (data.apiVersion !== API_VERSION) errors.push('apiVersion');
  if (data.kind !== KIND) errors.push('kind');
  const meta = (data.metadata ?? {}) as Json;
  if (typeof meta.name !== 'string' || meta.name.length > 253 || !new RegExp(PATTERNS.dns1123Subdomain).test(meta.name)) errors.push('metadata.name');
  if (meta.namespace !== undefined && (typeof meta.namespace !== 'string' || !new RegExp(PATTERNS.dns1123Label).test(meta.namespace))) errors.push('metadata.namespace');
  if (!ajvValidate(data)) errors.push(...(ajvValidate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  // The API server runs CEL only on a schema-valid object.
  if (errors.length === 0) kubeChecks(root, data, 'self', errors, seenRules);
  return errors;
}

function mirror(spec: Json = {}, source: Json = {}, meta: Json = { name: 'web', namespace: 'team-a' }): Json {
  const src: Json = { repository: 'localhost:5000/dev/web', tags: ['1.4.2'], ...source };
  for (const k of Object.keys(src)) if (src[k] === undefined) delete src[k];
  const s: Json = { source: src, targets: [{ repository: 'localhost:5000/prod/web' }], ...spec };
  for (const k of Object.keys(s)) if (s[k] === undefined) delete s[k];
  return { apiVersion: API_VERSION, kind: KIND, metadata: meta, spec: s };
}
const t = (repository: string, extra: Json = {}): Json => ({ repository, ...extra });

/** [description, object, valid?] — both judges must return this verdict. */
const EXAMPLES: Array<[string, unknown, boolean]> = [
  ['minimal', mirror(), true],
  ['all fields', mirror({ referrers: false, overwrite: false, interval: '1h30m', suspend: true, targets: [t('localhost:5000/a', { credentials: { secretName: 'push' }, insecure: true }), t('r.example.com:8221/b', { tags: ['stable', '1.4'] })] }, { credentials: { secretName: 'pull' }, insecure: false }), true],
  ['tagPattern + latest', mirror({}, { tags: undefined, tagPattern: '^1\\.4\\.\\d+$', latest: 3 }), true],
  ['semver + latest', mirror({}, { tags: undefined, semver: '>=1.4, <2', latest: 1 }), true],
  ['digest with target tags', mirror({ targets: [t('localhost:5000/p', { tags: ['pinned'] })] }, { tags: undefined, digest: DIGEST }), true],
  ['retag in the source repository', mirror({ targets: [t('localhost:5000/dev/web', { tags: ['candidate'] })] }), true],
  ['Docker Hub short names', mirror({ targets: [t('localhost:5000/library/nginx')] }, { repository: 'nginx' }), true],
  ['IPv6 loopback registry', mirror({ targets: [t('[::1]:5000/p')] }), true],
  ['null fields read as absent', mirror({ interval: null, referrers: null }, { latest: null }), true],
  ['100 targets', mirror({ targets: Array.from({ length: 100 }, (_, i) => t(`localhost:5000/t${i}`)) }), true],
  ['µs interval', mirror({ interval: '1h500µs' }), true],
  ['interval below the minimum (clamped, not refused)', mirror({ interval: '1ns' }), true],
  ['interval above the maximum (clamped, not refused)', mirror({ interval: '999999h' }), true],
  ["interval beyond Go's duration range", mirror({ interval: '3000000h' }), false],
  ['wrong apiVersion', { ...mirror(), apiVersion: 'imagemirror.dev/v1' }, false],
  ['wrong kind', { ...mirror(), kind: 'Mirror' }, false],
  ['bad name', mirror({}, {}, { name: 'Web' }), false],
  ['bad namespace', mirror({}, {}, { name: 'web', namespace: 'a.b' }), false],
  ['no spec', { ...mirror(), spec: undefined }, false],
  ['no source', mirror({ source: undefined }), false],
  ['no source repository', mirror({}, { repository: undefined }), false],
  ['repository with tag', mirror({}, { repository: 'localhost:5000/dev/web:1.0' }), false],
  ['repository with digest', mirror({}, { repository: `localhost:5000/dev/web@${DIGEST}` }), false],
  ['repository uppercase path', mirror({}, { repository: 'localhost:5000/Dev/web' }), false],
  ['repository too long', mirror({}, { repository: `localhost:5000/${'a'.repeat(250)}` }), false],
  ['target repository invalid', mirror({ targets: [t('localhost:5000//p')] }), false],
  ['no selector', mirror({}, { tags: undefined }), false],
  ['two selectors', mirror({}, { semver: '>=1' }), false],
  ['empty tags', mirror({}, { tags: [] }), false],
  ['invalid tag', mirror({}, { tags: ['.x'] }), false],
  ['numeric tag', mirror({}, { tags: [1] }), false],
  ['duplicate source tag', mirror({}, { tags: ['a', 'a'] }), false],
  ['empty tagPattern', mirror({}, { tags: undefined, tagPattern: '' }), false],
  ['empty semver', mirror({}, { tags: undefined, semver: '' }), false],
  ['bad digest', mirror({ targets: [t('localhost:5000/p', { tags: ['x'] })] }, { tags: undefined, digest: 'sha256:123' }), false],
  ['latest with tags', mirror({}, { latest: 1 }), false],
  ['latest 0', mirror({}, { tags: undefined, semver: '*', latest: 0 }), false],
  ['latest not an integer', mirror({}, { tags: undefined, semver: '*', latest: 1.5 }), false],
  ['no targets', mirror({ targets: undefined }), false],
  ['empty targets', mirror({ targets: [] }), false],
  ['101 targets', mirror({ targets: Array.from({ length: 101 }, (_, i) => t(`localhost:5000/t${i}`)) }), false],
  ['target equals source', mirror({ targets: [t('localhost:5000/dev/web')] }), false],
  ['target tags with a multi-image source', mirror({ targets: [t('localhost:5000/p', { tags: ['s'] })] }, { tags: ['1', '2'] }), false],
  ['target tags with a semver source', mirror({ targets: [t('localhost:5000/p', { tags: ['s'] })] }, { tags: undefined, semver: '*' }), false],
  ['empty target tags', mirror({ targets: [t('localhost:5000/p', { tags: [] })] }), false],
  ['duplicate target tag', mirror({ targets: [t('localhost:5000/p', { tags: ['s', 's'] })] }), false],
  ['digest source without target tags', mirror({}, { tags: undefined, digest: DIGEST }), false],
  ['duplicate target repository', mirror({ targets: [t('localhost:5000/p'), t('localhost:5000/p')] }), false],
  ['bad interval', mirror({ interval: '10' }), false],
  ['zero interval', mirror({ interval: '0s' }), false],
  ['interval too long', mirror({ interval: '1s'.repeat(33) }), false],
  ['interval not a string', mirror({ interval: 600 }), false],
  ['referrers not a boolean', mirror({ referrers: 'yes' }), false],
  ['bad secret name', mirror({}, { credentials: { secretName: 'Pull' } }), false],
  ['credentials without secretName', mirror({ targets: [t('localhost:5000/p', { credentials: {} })] }), false],
  ['cloud provider on the source and a target', mirror({ targets: [t('localhost:5000/p', { credentials: { provider: 'gcp' } }), t('localhost:5000/q', { credentials: { provider: 'azure' } })] }, { credentials: { provider: 'aws' } }), true],
  ['cloud provider on a target, a Secret on the source', mirror({ targets: [t('localhost:5000/p', { credentials: { provider: 'aws' } })] }, { credentials: { secretName: 'pull' } }), true],
  ['both secretName and provider', mirror({ targets: [t('localhost:5000/p', { credentials: { secretName: 'push', provider: 'gcp' } })] }), false],
  ['both secretName and provider on the source', mirror({}, { credentials: { secretName: 'pull', provider: 'aws' } }), false],
  ['unknown provider', mirror({ targets: [t('localhost:5000/p', { credentials: { provider: 'oci' } })] }), false],
  ['provider in upper case', mirror({}, { credentials: { provider: 'AWS' } }), false],
  ['provider not a string', mirror({}, { credentials: { provider: 1 } }), false],
  ['unknown credentials field', mirror({}, { credentials: { secretName: 'pull', namespace: 'other' } }), false],
  ['unknown spec field', mirror({ prune: true }), false],
  ['unknown source field', mirror({}, { tag: 'x' }), false],
  ['unknown target field', mirror({ targets: [t('localhost:5000/p', { tag: 'x' })] }), false],
  // the verification gate, platforms, exclusions, prune
  ['verify with keys and keyless', mirror({ verify: { keys: [KEY], keyless: [KEYLESS] } }), true],
  ['verify with keys only', mirror({ verify: { keys: [KEY, { secretName: 'other', key: 'b.pub' }] } }), true],
  ['verify with keyless only, key given', mirror({ verify: { keyless: [{ ...KEYLESS, key: 'root.json' }] } }), true],
  ['verify empty', mirror({ verify: {} }), false],
  ['verify keys empty', mirror({ verify: { keys: [] } }), false],
  ['verify key without key', mirror({ verify: { keys: [{ secretName: 'cosign' }] } }), false],
  ['verify key with a bad Secret name', mirror({ verify: { keys: [{ ...KEY, secretName: 'Cosign' }] } }), false],
  ['verify key with a bad data key', mirror({ verify: { keys: [{ ...KEY, key: 'a/b' }] } }), false],
  ['verify key unknown field', mirror({ verify: { keys: [{ ...KEY, namespace: 'x' }] } }), false],
  ['verify unknown field', mirror({ verify: { keys: [KEY], certs: [] } }), false],
  ['keyless without issuer', mirror({ verify: { keyless: [{ ...KEYLESS, issuer: undefined }] } }), false],
  ['keyless http issuer', mirror({ verify: { keyless: [{ ...KEYLESS, issuer: 'http://token.example' }] } }), false],
  ['keyless issuer with a query', mirror({ verify: { keyless: [{ ...KEYLESS, issuer: 'https://token.example/?a=b' }] } }), false],
  ['keyless empty subjectRegExp', mirror({ verify: { keyless: [{ ...KEYLESS, subjectRegExp: '' }] } }), false],
  ['keyless without trustedRootSecretName', mirror({ verify: { keyless: [{ ...KEYLESS, trustedRootSecretName: undefined }] } }), false],
  ['platforms', mirror({}, { platforms: ['linux/amd64', 'linux/arm64/v8', 'windows/amd64'] }), true],
  ['platform without arch', mirror({}, { platforms: ['linux'] }), false],
  ['platform in upper case', mirror({}, { platforms: ['Linux/amd64'] }), false],
  ['platform with four parts', mirror({}, { platforms: ['linux/arm64/v8/x'] }), false],
  ['duplicate platform', mirror({}, { platforms: ['linux/amd64', 'linux/amd64'] }), false],
  ['empty platforms', mirror({}, { platforms: [] }), false],
  ['exclude with tagPattern and latest', mirror({}, { tags: undefined, tagPattern: '^1\\.', exclude: ['-rc\\d+$', '^1\\.0\\.'], latest: 2 }), true],
  ['exclude with tags', mirror({}, { exclude: ['-rc'] }), true],
  ['empty exclude pattern', mirror({}, { exclude: [''] }), false],
  ['exclude not a list', mirror({}, { exclude: '-rc' }), false],
  ['duplicate exclude pattern', mirror({}, { exclude: ['a', 'a'] }), false],
  ['prune', mirror({ targets: [t('localhost:5000/p', { prune: true }), t('localhost:5000/q', { prune: false })] }), true],
  ['prune not a boolean', mirror({ targets: [t('localhost:5000/p', { prune: 'yes' })] }), false],
];

/**
 * The bound of every string and list in the spec, by schema path, and the validator's constant for
 * it. The test below walks the CRD: a string or list without a bound here fails it.
 */
const BOUNDS: Record<string, number> = {
  'spec.source.repository': LIMITS.repositoryLength,
  'spec.source.tags': LIMITS.tagsPerList,
  'spec.source.tags[]': LIMITS.tagLength,
  'spec.source.tagPattern': LIMITS.tagPatternLength,
  'spec.source.semver': LIMITS.semverLength,
  'spec.source.digest': LIMITS.digestLength,
  'spec.source.credentials.secretName': LIMITS.secretNameLength,
  'spec.targets': LIMITS.targets,
  'spec.targets[].repository': LIMITS.repositoryLength,
  'spec.targets[].tags': LIMITS.tagsPerList,
  'spec.targets[].tags[]': LIMITS.tagLength,
  'spec.targets[].credentials.secretName': LIMITS.secretNameLength,
  'spec.interval': LIMITS.intervalLength,
  'spec.source.platforms': LIMITS.platforms,
  'spec.source.platforms[]': LIMITS.platformLength,
  'spec.source.exclude': LIMITS.excludePatterns,
  'spec.source.exclude[]': LIMITS.excludePatternLength,
  'spec.verify.keys': LIMITS.verifyKeys,
  'spec.verify.keys[].secretName': LIMITS.secretNameLength,
  'spec.verify.keys[].key': LIMITS.secretKeyLength,
  'spec.verify.keyless': LIMITS.verifyKeyless,
  'spec.verify.keyless[].trustedRootSecretName': LIMITS.secretNameLength,
  'spec.verify.keyless[].key': LIMITS.secretKeyLength,
  'spec.verify.keyless[].issuer': LIMITS.issuerLength,
  'spec.verify.keyless[].subjectRegExp': LIMITS.subjectRegExpLength,
};

const repoOf = (n: number): string => `localhost:5000/${'a'.repeat(n - 15)}`;
const tagsOf = (n: number): string[] => Array.from({ length: n }, (_, i) => `t${i}`);
const oneTarget = (extra: Json): Json => ({ targets: [t('localhost:5000/p', extra)] });

/** [schema path, a mirror with that value of length n]: at the bound both judges admit it, one past it both refuse. */
const AT_BOUND: Array<[string, (n: number) => unknown]> = [
  ['spec.source.repository', (n) => mirror({}, { repository: repoOf(n) })],
  ['spec.source.tags', (n) => mirror({}, { tags: tagsOf(n) })],
  ['spec.source.tags[]', (n) => mirror({}, { tags: ['a'.repeat(n)] })],
  ['spec.source.tagPattern', (n) => mirror({}, { tags: undefined, tagPattern: 'a'.repeat(n) })],
  // Astral characters count once, as the API server counts maxLength (a JS string length counts them twice).
  ['spec.source.tagPattern', (n) => mirror({}, { tags: undefined, tagPattern: '\u{1F600}'.repeat(n) })],
  ['spec.source.semver', (n) => mirror({}, { tags: undefined, semver: `>=1.0.0${' '.repeat(n - 7)}` })],
  ['spec.source.digest', (n) => mirror(oneTarget({ tags: ['x'] }), { tags: undefined, digest: `sha256:${'c'.repeat(n - 7)}` })],
  ['spec.source.credentials.secretName', (n) => mirror({}, { credentials: { secretName: 'a'.repeat(n) } })],
  ['spec.targets', (n) => mirror({ targets: Array.from({ length: n }, (_, i) => t(`localhost:5000/t${i}`)) })],
  ['spec.targets[].repository', (n) => mirror({ targets: [t(repoOf(n))] })],
  ['spec.targets[].tags', (n) => mirror(oneTarget({ tags: tagsOf(n) }))],
  ['spec.targets[].tags[]', (n) => mirror(oneTarget({ tags: ['b'.repeat(n)] }))],
  ['spec.targets[].credentials.secretName', (n) => mirror(oneTarget({ credentials: { secretName: 'b'.repeat(n) } }))],
  ['spec.interval', (n) => mirror({ interval: `${'0'.repeat(n - 3)}10s` })],
  ['spec.source.platforms', (n) => mirror({}, { platforms: Array.from({ length: n }, (_, i) => `linux/arch${i}`) })],
  ['spec.source.platforms[]', (n) => mirror({}, { platforms: [`linux/${'a'.repeat(n - 6)}`] })],
  ['spec.source.exclude', (n) => mirror({}, { exclude: tagsOf(n) })],
  ['spec.source.exclude[]', (n) => mirror({}, { exclude: ['x'.repeat(n)] })],
  ['spec.verify.keys', (n) => mirror({ verify: { keys: Array.from({ length: n }, (_, i) => ({ ...KEY, key: `k${i}` })) } })],
  ['spec.verify.keys[].secretName', (n) => mirror({ verify: { keys: [{ ...KEY, secretName: 'c'.repeat(n) }] } })],
  ['spec.verify.keys[].key', (n) => mirror({ verify: { keys: [{ ...KEY, key: 'k'.repeat(n) }] } })],
  ['spec.verify.keyless', (n) => mirror({ verify: { keyless: Array.from({ length: n }, () => KEYLESS) } })],
  ['spec.verify.keyless[].trustedRootSecretName', (n) => mirror({ verify: { keyless: [{ ...KEYLESS, trustedRootSecretName: 'r'.repeat(n) }] } })],
  ['spec.verify.keyless[].key', (n) => mirror({ verify: { keyless: [{ ...KEYLESS, key: 'k'.repeat(n) }] } })],
  ['spec.verify.keyless[].issuer', (n) => mirror({ verify: { keyless: [{ ...KEYLESS, issuer: `https://${'i'.repeat(n - 8)}` }] } })],
  ['spec.verify.keyless[].subjectRegExp', (n) => mirror({ verify: { keyless: [{ ...KEYLESS, subjectRegExp: 's'.repeat(n) }] } })],
];
for (const [path, make] of AT_BOUND) {
  const n = BOUNDS[path]!;
  EXAMPLES.push([`${path} at its bound (${n})`, make(n), true], [`${path} one past its bound (${n + 1})`, make(n + 1), false]);
}

/**
 * Rules only the controller can check (CEL cannot compile RE2 or parse npm ranges, and does not
 * know Docker Hub defaults): the API server admits these, validateMirror reports InvalidSpec.
 */
const CONTROLLER_ONLY: Array<[string, unknown]> = [
  ['tagPattern that is not RE2', mirror({}, { tags: undefined, tagPattern: '^(?!dev)' })],
  ['semver that is not a range', mirror({}, { tags: undefined, semver: 'latest' })],
  ['target equal to the source only after normalization', mirror({ targets: [t('docker.io/library/nginx')] }, { repository: 'nginx' })],
  ['duplicate targets only after normalization', mirror({ targets: [t('LOCALHOST:5000/p'), t('localhost:5000/p')] })],
  ['exclude pattern that is not RE2', mirror({}, { exclude: ['(?=x)'] })],
  ['subjectRegExp that is not RE2', mirror({ verify: { keyless: [{ ...KEYLESS, subjectRegExp: '^(?!ci)' }] } })],
  ['issuer matching the pattern but not a URL', mirror({ verify: { keyless: [{ ...KEYLESS, issuer: 'https://[x' }] } })],
  // the controller refuses local paths unless started with --allow-local-paths
  ['an oci: source without localPaths', mirror({}, { repository: 'oci:/srv/layouts/web' })],
  ['an oci-archive: target without localPaths', mirror({ targets: [t('oci-archive:/tmp/web.tar')] })],
];

describe('CRD crds/imagemirror.yaml', () => {
  describe('agrees with validateMirror', () => {
    for (const [what, obj, valid] of EXAMPLES) {
      it(`${valid ? 'admits' : 'refuses'}: ${what}`, () => {
        const api = apiServerVerdict(obj);
        const ours = validateMirror(obj);
        assert.equal(api.length === 0, valid, `API server emulation: ${JSON.stringify(api)}`);
        assert.equal(ours.ok, valid, `validateMirror: ${JSON.stringify(ours.ok ? 'ok' : ours.errors)}`);
      });
    }
    for (const [what, obj] of CONTROLLER_ONLY) {
      it(`controller-only: ${what}`, () => {
        assert.deepEqual(apiServerVerdict(obj), []);
        assert.equal(validateMirror(obj).ok, false);
      });
    }
    it('every CEL rule in the CRD was exercised, and every predicate here is a CRD rule', () => {
      // Runs after the table above (mocha runs tests in order).
      for (const rule of Object.keys(CEL)) assert.ok(seenRules.has(rule), `rule not in CRD or never reached: ${rule}`);
    });
    it('each CEL rule rejects at least one schema-valid example', () => {
      for (const rule of Object.keys(CEL)) {
        const rejected = EXAMPLES.some(([, obj, valid]) => {
          if (valid) return false;
          const errs: string[] = [];
          const data = dropNulls(obj);
          if (!ajvValidate(data)) return false;
          kubeChecks(root, data, 'self', errs, new Set());
          return errs.length > 0 && rulesFailing(data).includes(rule);
        });
        assert.ok(rejected, `no example is rejected by rule ${rule}`);
      }
    });
  });

  describe('shape', () => {
    it('names, scope, version, subresources', () => {
      assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal((crd.metadata as Json).name, `${PLURAL}.${GROUP}`);
      assert.equal(crd.spec.group, GROUP);
      assert.equal(crd.spec.scope, 'Namespaced');
      assert.deepEqual(
        { ...crd.spec.names },
        { kind: KIND, listKind: 'ImageMirrorList', plural: PLURAL, singular: 'imagemirror', shortNames: ['im', 'imgmirror'], categories: ['imagemirror'] },
      );
      assert.equal(crd.spec.versions.length, 1);
      assert.equal(version.name, VERSION);
      assert.ok(version.served && version.storage);
      assert.deepEqual(version.subresources, { status: {} });
    });
    it('printer columns', () => {
      const cols = version.additionalPrinterColumns.map((c) => [c.name, c.type, c.jsonPath, c.priority ?? 0]);
      assert.deepEqual(cols, [
        ['Ready', 'string', '.status.conditions[?(@.type=="Ready")].status', 0],
        ['Reason', 'string', '.status.conditions[?(@.type=="Ready")].reason', 0],
        ['Source', 'string', '.spec.source.repository', 0],
        ['Targets', 'string', '.status.summary', 0],
        ['Last Sync', 'date', '.status.lastSyncTime', 0],
        ['Age', 'date', '.metadata.creationTimestamp', 0],
        ['Suspended', 'boolean', '.spec.suspend', 1],
        ['Message', 'string', '.status.conditions[?(@.type=="Ready")].message', 1],
      ]);
    });
    it('is structural: every node has a type, every object lists its properties or values', () => {
      const walk = (s: Schema, p: string): void => {
        assert.ok(typeof s.type === 'string', `${p}: no type`);
        if (s.type === 'object' && p !== 'metadata') assert.ok(s.properties || s.additionalProperties, `${p}: object without properties`);
        if (s.type === 'array') assert.ok(s.items, `${p}: array without items`);
        assert.ok(p === '' || p === 'metadata' || typeof s.description === 'string' || p.endsWith('[]') || p.endsWith('{}'), `${p}: no description`);
        for (const [k, c] of Object.entries(s.properties ?? {})) walk(c, p ? `${p}.${k}` : k);
        if (s.items) walk(s.items, `${p}[]`);
        if (typeof s.additionalProperties === 'object') walk(s.additionalProperties as Schema, `${p}{}`);
      };
      walk(root, '');
    });
    it('defaults match DEFAULTS and the status shapes match the code', async () => {
      const { DEFAULTS } = await import('../../src/mirror/types.js');
      const spec = root.properties!.spec!.properties!;
      for (const [k, v] of Object.entries(DEFAULTS)) assert.equal(spec[k]!.default, v, `default of spec.${k}`);
      const status = root.properties!.status!.properties!;
      assert.deepEqual(status.targets!.items!.properties!.action!.enum, Object.values(TargetAction));
      assert.deepEqual(status.conditions!.items!.properties!.status!.enum, ['True', 'False', 'Unknown']);
      assert.equal(status.conditions!['x-kubernetes-list-type'], 'map');
      assert.deepEqual(status.conditions!['x-kubernetes-list-map-keys'], ['type']);
      for (const k of ['copied', 'saved']) {
        assert.equal(status.bytes!.properties![k]!.type, 'integer');
        assert.equal(status.bytes!.properties![k]!.format, 'int64');
      }
    });
    it('uses the same patterns and limits as validate.ts', () => {
      const spec = root.properties!.spec!.properties!;
      const src = spec.source!.properties!;
      const tgt = spec.targets!.items!.properties!;
      // The repository pattern is a CEL rule (its message readable), not a `pattern` quoted in errors.
      for (const repo of [src.repository!, tgt.repository!]) {
        assert.equal(repo.pattern, undefined);
        assert.deepEqual((repo['x-kubernetes-validations'] as Array<{ rule: string }>).map((v) => v.rule), [REPOSITORY_RULE]);
      }
      assert.equal(src.tags!.items!.pattern, PATTERNS.tag);
      assert.equal(tgt.tags!.items!.pattern, PATTERNS.tag);
      assert.equal(src.digest!.pattern, PATTERNS.sha256Digest);
      assert.equal(spec.interval!.pattern, PATTERNS.interval);
      assert.equal(src.credentials!.properties!.secretName!.pattern, PATTERNS.dns1123Subdomain);
      assert.equal(tgt.credentials!.properties!.secretName!.pattern, PATTERNS.dns1123Subdomain);
      assert.deepEqual(src.credentials!.properties!.provider!.enum, CLOUD_PROVIDERS);
      assert.deepEqual(tgt.credentials!.properties!.provider!.enum, CLOUD_PROVIDERS);
      assert.equal(spec.targets!.maxItems, LIMITS.targets);
      assert.equal(src.repository!.maxLength, LIMITS.repositoryLength);
      assert.equal(tgt.repository!.maxLength, LIMITS.repositoryLength);
      assert.equal(spec.interval!.maxLength, LIMITS.intervalLength);
      assert.equal(src.platforms!.items!.pattern, PATTERNS.platform);
      const verify = spec.verify!.properties!;
      for (const p of [verify.keys!.items!.properties!.secretName!, verify.keyless!.items!.properties!.trustedRootSecretName!]) assert.equal(p.pattern, PATTERNS.dns1123Subdomain);
      for (const p of [verify.keys!.items!.properties!.key!, verify.keyless!.items!.properties!.key!]) assert.equal(p.pattern, PATTERNS.secretKey);
      assert.equal(verify.keyless!.items!.properties!.issuer!.pattern, PATTERNS.issuer);
      assert.equal(verify.keyless!.items!.properties!.key!.default, DEFAULT_TRUSTED_ROOT_KEY);
    });
    it('bounds every string and list of the status too (the status must fit one API request)', () => {
      const unbounded: string[] = [];
      const walk = (s: Schema, p: string): void => {
        if (s.type === 'string' && !s.enum && typeof s.maxLength !== 'number') unbounded.push(p);
        if (s.type === 'array' && typeof s.maxItems !== 'number') unbounded.push(p);
        for (const [k, c] of Object.entries(s.properties ?? {})) walk(c, `${p}.${k}`);
        if (s.items) walk(s.items, `${p}[]`);
        if (typeof s.additionalProperties === 'object') walk(s.additionalProperties as Schema, `${p}{}`);
      };
      walk(root.properties!.status!, 'status');
      assert.deepEqual(unbounded, []);
      const status = root.properties!.status!.properties!;
      assert.equal(status.targets!.maxItems, TARGET_ROWS_CAP);
      assert.equal(status.owned!.maxItems, LIMITS.targets);
      assert.equal(status.owned!.items!.properties!.tags!.maxItems, OWNED_TAGS_CAP);
    });
    it('errors are readable: no pattern over MAX_PATTERN_IN_ERRORS characters, every rule has a short message in words', () => {
      const walk = (s: Schema, p: string): void => {
        if (typeof s.pattern === 'string') assert.ok(s.pattern.length <= MAX_PATTERN_IN_ERRORS, `${p}: a ${s.pattern.length}-character pattern; say it with a CEL rule and a message`);
        for (const v of (s['x-kubernetes-validations'] as Array<{ rule: string; message?: string; messageExpression?: string }> | undefined) ?? []) {
          assert.ok(v.message && v.message.length <= 240 && !/[\\^$]|\(\?/.test(v.message), `${p}: rule ${v.rule.slice(0, 40)}… needs a message in words: ${v.message}`);
          // The one form used: the value, then words (cheap to evaluate, cannot fail).
          if (v.messageExpression !== undefined) assert.match(v.messageExpression, /^self \+ ' [^'\\]+'$/, p);
        }
        for (const [k, c] of Object.entries(s.properties ?? {})) walk(c, `${p}.${k}`);
        if (s.items) walk(s.items, `${p}[]`);
      };
      walk(root.properties!.spec!, 'spec');
      // Without the rule, a bad repository would be met with the 300-character regex.
      assert.ok(PATTERNS.repository.length > MAX_PATTERN_IN_ERRORS);
    });
    it('a bad repository is refused by the rule with its message, naming the value', () => {
      const v = (root.properties!.spec!.properties!.source!.properties!.repository!['x-kubernetes-validations'] as Array<{ message: string; messageExpression: string }>)[0]!;
      assert.deepEqual(apiServerVerdict(mirror({}, { repository: 'localhost:5000/Dev/web' })), [`self.spec.source.repository: ${v.message}`]);
      const shown = 'localhost:5000/Dev/web' + /^self \+ '(.*)'$/.exec(v.messageExpression)![1];
      assert.match(shown, /^localhost:5000\/Dev\/web is not a repository: .*lower case.*no :tag or @digest/);
    });
    it('bounds every list and string a CEL rule iterates or compares', () => {
      const spec = root.properties!.spec!;
      assert.ok(typeof spec.properties!.targets!.maxItems === 'number');
      assert.ok(typeof spec.properties!.targets!.items!.properties!.repository!.maxLength === 'number');
      assert.ok(typeof spec.properties!.source!.properties!.repository!.maxLength === 'number');
    });
    it('bounds every string (maxLength) and list (maxItems) of the spec, each equal to the LIMITS constant validate.ts enforces', () => {
      const found: Record<string, number | undefined> = {};
      const walk = (s: Schema, p: string): void => {
        // An enum bounds a string by itself (the API server's cost estimator knows this too).
        if (s.type === 'string' && !s.enum) found[p] = s.maxLength as number | undefined;
        if (s.type === 'string' && s.enum) assert.ok((s.enum as string[]).every((e) => typeof e === 'string' && e.length <= 16), `${p}: enum values`);
        if (s.type === 'array') found[p] = s.maxItems as number | undefined;
        for (const [k, c] of Object.entries(s.properties ?? {})) walk(c, `${p}.${k}`);
        if (s.items) walk(s.items, `${p}[]`);
        if (typeof s.additionalProperties === 'object') walk(s.additionalProperties as Schema, `${p}{}`);
      };
      walk(root.properties!.spec!, 'spec');
      assert.deepEqual(found, BOUNDS);
      // and every constant is used by some field, so LIMITS holds nothing the CRD lacks
      const used = new Set(Object.values(BOUNDS));
      for (const [k, v] of Object.entries(LIMITS)) assert.ok(used.has(v), `LIMITS.${k} (${v}) bounds no CRD field`);
    });
    it('every bound has an at-the-bound and a one-past example in the agreement table', () => {
      assert.deepEqual(new Set(AT_BOUND.map(([p]) => p)), new Set(Object.keys(BOUNDS)));
    });
    it('the interval description states the clamp range of src/mirror/interval.ts', () => {
      const d = root.properties!.spec!.properties!.interval!.description as string;
      assert.ok(d.includes(` ${formatDuration(MIN_INTERVAL_MS)} `) && d.includes(` ${formatDuration(MAX_INTERVAL_MS)} `), d);
    });
    it('the semver description states the comparator caps of src/mirror/select.ts', () => {
      const d = root.properties!.spec!.properties!.source!.properties!.semver!.description as string;
      assert.ok(d.includes(`At most ${SEMVER_MAX_ALTERNATIVES} || alternatives and ${SEMVER_MAX_COMPARATORS} comparators`), d);
    });
  });

  describe('lint against src/api/types.gen.ts', () => {
    const program = ts.createSourceFile('types.gen.ts', readFileSync(new URL('../../src/api/types.gen.ts', import.meta.url), 'utf8'), ts.ScriptTarget.ES2022);
    /**
     * Fields of an interface, or of a union of interfaces (`type X = A | B`): every member's fields,
     * required when every member requires them (what the schema can say without CEL).
     */
    function fields(iface: string): Map<string, boolean /* required */> {
      const out = new Map<string, boolean>();
      let found = false;
      program.forEachChild((n) => {
        if (ts.isInterfaceDeclaration(n) && n.name.text === iface) {
          found = true;
          for (const m of n.members) {
            if (ts.isPropertySignature(m) && m.name && ts.isIdentifier(m.name)) out.set(m.name.text, !m.questionToken);
          }
        }
        if (ts.isTypeAliasDeclaration(n) && n.name.text === iface && ts.isUnionTypeNode(n.type)) {
          found = true;
          const members = n.type.types.map((t) => {
            assert.ok(ts.isTypeReferenceNode(t) && ts.isIdentifier(t.typeName), `${iface}: a union of named interfaces`);
            return fields(t.typeName.text);
          });
          for (const m of members) for (const k of m.keys()) out.set(k, members.every((x) => x.get(k) === true));
        }
      });
      assert.ok(found, `interface ${iface} not found in types.gen.ts`);
      return out;
    }
    const spec = root.properties!.spec!;
    const status = root.properties!.status!;
    const pairs: Array<[string, Schema, boolean /* check required */]> = [
      ['ImageMirrorSpec', spec, true],
      ['SourceSpec', spec.properties!.source!, true],
      ['TargetSpec', spec.properties!.targets!.items!, true],
      ['CredentialsRef', spec.properties!.source!.properties!.credentials!, true],
      ['CredentialsRef', spec.properties!.targets!.items!.properties!.credentials!, true],
      ['ImageMirrorStatus', status, true],
      ['Condition', status.properties!.conditions!.items!, true],
      ['TargetStatus', status.properties!.targets!.items!, true],
      ['VerifySpec', spec.properties!.verify!, true],
      ['VerifyKeyRef', spec.properties!.verify!.properties!.keys!.items!, true],
      ['VerifyKeylessRef', spec.properties!.verify!.properties!.keyless!.items!, true],
      ['OwnedTags', status.properties!.owned!.items!, true],
    ];
    for (const [iface, schema, checkRequired] of pairs) {
      it(`${iface}: same fields${checkRequired ? ' and required set' : ''} as the schema`, () => {
        const f = fields(iface);
        assert.deepEqual([...f.keys()].sort(), Object.keys(schema.properties ?? {}).sort());
        if (checkRequired) {
          const req = [...f].filter(([, r]) => r).map(([k]) => k).sort();
          assert.deepEqual(req, [...(schema.required ?? [])].sort());
        }
      });
    }
    it('ImageMirror: top-level fields', () => {
      assert.deepEqual([...fields('ImageMirror').keys()].sort(), Object.keys(root.properties!).sort());
    });
  });
});

/** Which CEL rules fail for a (schema-valid) object. */
function rulesFailing(data: unknown): string[] {
  const failing: string[] = [];
  const walk = (schema: Schema, d: unknown): void => {
    if (d === undefined) return;
    for (const v of (schema['x-kubernetes-validations'] as Array<{ rule: string }> | undefined) ?? []) {
      if (!CEL[v.rule]!(d as Json)) failing.push(v.rule);
    }
    if (Array.isArray(d) && schema.items) d.forEach((x) => walk(schema.items!, x));
    else if (typeof d === 'object' && d !== null && schema.properties) {
      for (const [k, ps] of Object.entries(schema.properties)) walk(ps, (d as Json)[k]);
    }
  };
  walk(root, data);
  return failing;
}
