import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/mirror/duration.js';
import { isSingleImage, LIMITS, LOCAL_PATHS_REFUSED, mustValidateMirror, validateMirror } from '../../src/mirror/validate.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const KEY = { secretName: 'cosign-keys', key: 'cosign.pub' };
const KEYLESS = { trustedRootSecretName: 'sigstore-root', issuer: 'https://token.example', subjectRegExp: '^ci@example\\.com$' };

type Json = Record<string, unknown>;

/** A valid mirror with `spec` fields merged over a minimal one (`undefined` deletes a field). */
export function mirror(spec: Json = {}, source: Json = {}, meta: Json = { name: 'web', namespace: 'team-a' }): Json {
  const src: Json = { repository: 'localhost:5000/dev/web', tags: ['1.4.2'], ...source };
  for (const k of Object.keys(src)) if (src[k] === undefined) delete src[k];
  const s: Json = { source: src, targets: [{ repository: 'localhost:5000/prod/web' }], ...spec };
  for (const k of Object.keys(s)) if (s[k] === undefined) delete s[k];
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: meta, spec: s };
}

function errorsOf(obj: unknown): string[] {
  const r = validateMirror(obj);
  assert.equal(r.ok, false, `expected invalid: ${JSON.stringify(obj)}`);
  return r.ok ? [] : r.errors;
}

function expectError(obj: unknown, ...fragments: string[]): void {
  const errors = errorsOf(obj);
  for (const f of fragments) {
    assert.ok(errors.some((e) => e.includes(f)), `no error containing ${JSON.stringify(f)} in ${JSON.stringify(errors)}`);
  }
}

describe('parseDuration / formatDuration', () => {
  const good: Array<[string, number]> = [
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1.5h', 5_400_000],
    ['500ms', 500],
    ['1h0m0s', 3_600_000],
    ['250us', 0.25],
    ['2µs', 0.002],
  ];
  for (const [s, ms] of good) it(`parses ${s}`, () => assert.equal(parseDuration(s), ms));

  for (const s of ['', '10', '0', '0s', '-1m', '+1m', '1d', '1 m', 'm', '1.m', '.5h', '10M', '1h 30m']) {
    it(`refuses ${JSON.stringify(s)} with a one-line error naming it`, () => {
      assert.throws(
        () => parseDuration(s),
        (e: Error) => e.message.includes(JSON.stringify(s)) && !e.message.includes('\n'),
      );
    });
  }

  it('formats compactly and round-trips', () => {
    assert.equal(formatDuration(600_000), '10m');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(3_600_000), '1h');
    assert.equal(formatDuration(0), '0s');
    for (const ms of [1, 999, 1000, 61_000, 3_600_001, 86_400_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});

describe('validateMirror', () => {
  it('accepts a minimal mirror and applies the defaults', () => {
    const r = validateMirror(mirror());
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.mirror.spec, {
      source: { repository: 'localhost:5000/dev/web', tags: ['1.4.2'] },
      targets: [{ repository: 'localhost:5000/prod/web' }],
      referrers: true,
      overwrite: true,
      interval: '10m',
      suspend: false,
    });
    assert.equal(r.mirror.metadata.name, 'web');
  });

  it('keeps explicit values instead of defaults, and does not modify its input', () => {
    const input = mirror({ referrers: false, overwrite: false, interval: '1h30m', suspend: true });
    const before = JSON.stringify(input);
    const r = validateMirror(input);
    assert.ok(r.ok);
    assert.equal(r.mirror.spec.referrers, false);
    assert.equal(r.mirror.spec.overwrite, false);
    assert.equal(r.mirror.spec.interval, '1h30m');
    assert.equal(r.mirror.spec.suspend, true);
    assert.equal(JSON.stringify(input), before);
  });

  it('reads null as absent (the API server drops nulls) and keeps status', () => {
    const obj = mirror({ referrers: null, interval: null }, { credentials: null, latest: null });
    obj.status = { summary: '1/1 in sync' };
    const r = validateMirror(obj);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.mirror.spec.referrers, true);
    assert.equal(r.mirror.spec.interval, '10m');
    assert.equal(r.mirror.spec.source.credentials, undefined);
    assert.deepEqual(r.mirror.status, { summary: '1/1 in sync' });
  });

  it('accepts every selector form and the full field set', () => {
    const cases: Json[] = [
      mirror({}, { tags: ['1.4.2', '1.4.3', 'latest'] }),
      mirror({}, { tags: undefined, tagPattern: '^1\\.4\\.\\d+$', latest: 3 }),
      mirror({}, { tags: undefined, semver: '>=1.4.0 <2.0.0' }),
      mirror({}, { tags: undefined, semver: '>=1.4, <2', latest: 1 }),
      mirror({}, { tags: undefined, semver: '^1 || ^2' }),
      mirror({}, { tags: undefined, semver: '>=v1.4.0' }),
      mirror({ targets: [{ repository: 'localhost:5000/prod/web', tags: ['stable'] }] }, { tags: undefined, digest: DIGEST }),
      mirror({
        targets: [
          { repository: 'localhost:5000/staging/web', credentials: { secretName: 'push' }, insecure: true },
          { repository: 'registry.example.com:8221/prod/web', tags: ['stable', '1.4'] },
          // a retag inside the source repository
          { repository: 'localhost:5000/dev/web', tags: ['candidate'] },
        ],
      }, { credentials: { secretName: 'dev-pull' }, insecure: false }),
      mirror({}, {}, { name: 'a.b-c', namespace: 'x' }),
      mirror({}, {}, { name: 'no-namespace' }),
      mirror({}, { repository: 'nginx' }),
    ];
    for (const c of cases) assert.ok(validateMirror(c).ok, JSON.stringify(validateMirror(c)));
  });

  it('credentials: a cloud provider instead of a Secret, on the source and on each target', () => {
    const r = validateMirror(
      mirror(
        { targets: [{ repository: 'localhost:5000/a', credentials: { provider: 'gcp' } }, { repository: 'localhost:5000/b', credentials: { secretName: 'push' } }, { repository: 'localhost:5000/c', credentials: { provider: 'azure' } }] },
        { credentials: { provider: 'aws' } },
      ),
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.mirror.spec.source.credentials, { provider: 'aws' });
    assert.deepEqual(r.mirror.spec.targets.map((t) => t.credentials), [{ provider: 'gcp' }, { secretName: 'push' }, { provider: 'azure' }]);
  });

  const invalid: Array<[string, Json | unknown, string[]]> = [
    ['secretName and provider', mirror({ targets: [{ repository: 'localhost:5000/p', credentials: { secretName: 'push', provider: 'gcp' } }] }), ['spec.targets[0].credentials: set exactly one of secretName or provider, not both']],
    ['neither secretName nor provider names both ways out', mirror({}, { credentials: {} }), ['spec.source.credentials.secretName: required, or provider (aws, gcp, azure) instead: exactly one of the two']],
    ['unknown provider', mirror({}, { credentials: { provider: 'alibaba' } }), ['spec.source.credentials.provider: must be one of aws, gcp, azure, got "alibaba"']],
    ['provider not a string', mirror({}, { credentials: { provider: ['aws'] } }), ['spec.source.credentials.provider: must be one of aws, gcp, azure, got a list']],
    ['credentials with an unknown field', mirror({}, { credentials: { provider: 'aws', role: 'x' } }), ['spec.source.credentials.role: unknown field (known: secretName, provider)']],
    ['not an object', 'hello', ['object: must be a mapping']],
    ['wrong apiVersion', { ...mirror(), apiVersion: 'imagemirror.dev/v1' }, ['apiVersion: must be imagemirror.dev/v1alpha1']],
    ['wrong kind', { ...mirror(), kind: 'ImageMirrors' }, ['kind: must be ImageMirror']],
    ['no metadata', { ...mirror(), metadata: undefined }, ['metadata.name: required']],
    ['name not DNS-1123', mirror({}, {}, { name: 'Web_1' }), ['metadata.name: invalid name "Web_1"']],
    ['name too long', mirror({}, {}, { name: 'a'.repeat(254) }), ['metadata.name: invalid name']],
    ['namespace not a label', mirror({}, {}, { name: 'w', namespace: 'a.b' }), ['metadata.namespace: invalid namespace']],
    ['no spec', { ...mirror(), spec: undefined }, ['spec: required']],
    ['no source', mirror({ source: undefined }), ['spec.source: required']],
    ['no source repository', mirror({}, { repository: undefined }), ['spec.source.repository: required']],
    ['source repository with tag', mirror({}, { repository: 'localhost:5000/dev/web:1.4' }), ['spec.source.repository: invalid repository', 'must not include a tag']],
    ['source repository with digest', mirror({}, { repository: `localhost:5000/dev/web@${DIGEST}` }), ['must not include a digest']],
    ['source repository uppercase', mirror({}, { repository: 'localhost:5000/Dev/web' }), ['spec.source.repository: invalid repository', 'lowercase']],
    ['no selector', mirror({}, { tags: undefined }), ['spec.source: exactly one of tags, tagPattern, semver, digest must be set (found none)']],
    ['two selectors', mirror({}, { semver: '>=1' }), ['spec.source: exactly one of tags, tagPattern, semver, digest must be set (found tags, semver)']],
    ['four selectors', mirror({}, { tagPattern: 'x', semver: '1', digest: DIGEST }), ['(found tags, tagPattern, semver, digest)']],
    ['empty tags', mirror({}, { tags: [] }), ['spec.source.tags: must list at least one tag']],
    ['tags not a list', mirror({}, { tags: '1.4.2' }), ['spec.source.tags: must be a list of tags']],
    ['numeric tag', mirror({}, { tags: [1.4] }), ['spec.source.tags[0]: must be a string', 'quote numeric tags']],
    ['invalid tag', mirror({}, { tags: ['ok', '-bad'] }), ['spec.source.tags[1]: invalid tag "-bad"']],
    ['tag too long', mirror({}, { tags: ['a'.repeat(129)] }), ['spec.source.tags[0]: invalid tag']],
    ['duplicate tag', mirror({}, { tags: ['a', 'a'] }), ['spec.source.tags[1]: duplicate tag "a"']],
    ['bad RE2', mirror({}, { tags: undefined, tagPattern: 'a(b' }), ['spec.source.tagPattern: not a valid RE2 regular expression', 'missing closing )']],
    ['lookahead is not RE2', mirror({}, { tags: undefined, tagPattern: '^(?!dev)' }), ['spec.source.tagPattern: not a valid RE2']],
    ['empty tagPattern', mirror({}, { tags: undefined, tagPattern: '' }), ['spec.source.tagPattern: must not be empty']],
    ['bad semver', mirror({}, { tags: undefined, semver: 'latest' }), ['spec.source.semver: not a valid semver range: "latest"']],
    ['bad semver 2', mirror({}, { tags: undefined, semver: '>=1.4 <<2' }), ['spec.source.semver: not a valid semver range']],
    ['bad digest', mirror({ targets: [{ repository: 'localhost:5000/p', tags: ['x'] }] }, { tags: undefined, digest: 'sha256:abc' }), ['spec.source.digest: invalid digest "sha256:abc"']],
    ['sha512 digest', mirror({ targets: [{ repository: 'localhost:5000/p', tags: ['x'] }] }, { tags: undefined, digest: `sha512:${'a'.repeat(128)}` }), ['spec.source.digest: invalid digest']],
    ['latest with tags', mirror({}, { latest: 2 }), ['spec.source.latest: only allowed with tagPattern or semver']],
    ['latest zero', mirror({}, { tags: undefined, semver: '>=1', latest: 0 }), ['spec.source.latest: must be a whole number of at least 1']],
    ['latest fractional', mirror({}, { tags: undefined, semver: '>=1', latest: 1.5 }), ['spec.source.latest: must be a whole number']],
    ['latest string', mirror({}, { tags: undefined, semver: '>=1', latest: '3' }), ['spec.source.latest: must be a whole number']],
    ['no targets', mirror({ targets: undefined }), ['spec.targets: required']],
    ['empty targets', mirror({ targets: [] }), ['spec.targets: must list at least one target']],
    ['target not a mapping', mirror({ targets: ['localhost:5000/x'] }), ['spec.targets[0]: must be a mapping']],
    ['target repository invalid', mirror({ targets: [{ repository: 'localhost:5000/x//y' }] }), ['spec.targets[0].repository: invalid repository']],
    ['target without repository', mirror({ targets: [{ tags: ['x'] }] }), ['spec.targets[0].repository: required']],
    ['target = source', mirror({ targets: [{ repository: 'localhost:5000/dev/web' }] }), ['spec.targets[0].repository: same repository as spec.source.repository']],
    ['target = source after normalization', mirror({ targets: [{ repository: 'docker.io/library/nginx' }] }, { repository: 'nginx' }), ['same repository as spec.source.repository (docker.io/library/nginx)']],
    ['target tags with multi-tag source', mirror({ targets: [{ repository: 'localhost:5000/p', tags: ['s'] }] }, { tags: ['1', '2'] }), ['spec.targets[0].tags: only allowed when the source is a single image']],
    ['target tags with pattern source', mirror({ targets: [{ repository: 'localhost:5000/p', tags: ['s'] }] }, { tags: undefined, tagPattern: '^1' }), ['spec.targets[0].tags: only allowed when the source is a single image']],
    ['empty target tags', mirror({ targets: [{ repository: 'localhost:5000/p', tags: [] }] }), ['spec.targets[0].tags: must list at least one tag']],
    ['invalid target tag', mirror({ targets: [{ repository: 'localhost:5000/p', tags: ['a b'] }] }), ['spec.targets[0].tags[0]: invalid tag "a b"']],
    ['digest source without target tags', mirror({}, { tags: undefined, digest: DIGEST }), ['spec.targets[0].tags: required when the source is a digest']],
    ['duplicate target', mirror({ targets: [{ repository: 'localhost:5000/p' }, { repository: 'localhost:5000/q' }, { repository: 'LOCALHOST:5000/p' }] }), ['spec.targets[2].repository: same repository as spec.targets[0] (localhost:5000/p)']],
    ['bad interval', mirror({ interval: '10' }), ['spec.interval: invalid duration "10"']],
    ['zero interval', mirror({ interval: '0m' }), ['spec.interval: invalid duration "0m": must be greater than zero']],
    ['interval number', mirror({ interval: 600 }), ['spec.interval: must be a string']],
    ['referrers not boolean', mirror({ referrers: 'yes' }), ['spec.referrers: must be true or false, got string "yes"']],
    ['overwrite not boolean', mirror({ overwrite: 1 }), ['spec.overwrite: must be true or false']],
    ['suspend not boolean', mirror({ suspend: 'false' }), ['spec.suspend: must be true or false']],
    ['insecure not boolean', mirror({}, { insecure: 'true' }), ['spec.source.insecure: must be true or false']],
    ['credentials without secretName', mirror({}, { credentials: {} }), ['spec.source.credentials.secretName: required']],
    ['credentials as a string', mirror({}, { credentials: 'dev-pull' }), ['spec.source.credentials: must be a mapping']],
    ['secretName invalid', mirror({ targets: [{ repository: 'localhost:5000/p', credentials: { secretName: 'Push_Creds' } }] }), ['spec.targets[0].credentials.secretName: invalid Secret name "Push_Creds"']],
    ['unknown spec field', mirror({ intervall: '1m' }), ['spec.intervall: unknown field']],
    ['unknown source field (typo)', mirror({}, { tags: undefined, tagpattern: '^1' }), ['spec.source.tagpattern: unknown field', '(found none)']],
    ['unknown target field', mirror({ targets: [{ repository: 'localhost:5000/p', tag: ['x'] }] }), ['spec.targets[0].tag: unknown field']],
    ['verify with nothing to verify against', mirror({ verify: {} }), ['spec.verify: list keys or keyless (or both)']],
    ['verify not a mapping', mirror({ verify: ['cosign'] }), ['spec.verify: must be a mapping']],
    ['verify unknown field', mirror({ verify: { keys: [KEY], cert: 'x' } }), ['spec.verify.cert: unknown field (known: keys, keyless)']],
    ['verify key without its data key', mirror({ verify: { keys: [{ secretName: 'cosign' }] } }), ['spec.verify.keys[0].key: required']],
    ['verify key with a bad Secret name', mirror({ verify: { keys: [KEY, { secretName: 'Cosign', key: 'a' }] } }), ['spec.verify.keys[1].secretName: invalid Secret name "Cosign"']],
    ['verify key with a bad data key', mirror({ verify: { keys: [{ ...KEY, key: 'a/b' }] } }), ['spec.verify.keys[0].key: invalid Secret key "a/b"']],
    ['too many keys', mirror({ verify: { keys: Array.from({ length: LIMITS.verifyKeys + 1 }, () => KEY) } }), [`spec.verify.keys: too many keys: ${LIMITS.verifyKeys + 1}, at most ${LIMITS.verifyKeys} allowed`]],
    ['keyless with a plain-HTTP issuer', mirror({ verify: { keyless: [{ ...KEYLESS, issuer: 'http://token.example' }] } }), ['spec.verify.keyless[0].issuer: invalid issuer "http://token.example": an https URL']],
    ['keyless subjectRegExp not RE2', mirror({ verify: { keyless: [{ ...KEYLESS, subjectRegExp: '^(?!ci)' }] } }), ['spec.verify.keyless[0].subjectRegExp: not a valid RE2']],
    ['keyless without subjectRegExp', mirror({ verify: { keyless: [{ ...KEYLESS, subjectRegExp: undefined }] } }), ['spec.verify.keyless[0].subjectRegExp: required']],
    ['keyless unknown field', mirror({ verify: { keyless: [{ ...KEYLESS, subject: 'ci' }] } }), ['spec.verify.keyless[0].subject: unknown field']],
    ['platform without arch', mirror({}, { platforms: ['linux'] }), ['spec.source.platforms[0]: invalid platform "linux": write os/arch or os/arch/variant']],
    ['duplicate platform', mirror({}, { platforms: ['linux/amd64', 'linux/amd64'] }), ['spec.source.platforms[1]: duplicate "linux/amd64"']],
    ['platforms not a list', mirror({}, { platforms: 'linux/amd64' }), ['spec.source.platforms: must be a list of platforms']],
    ['too many platforms', mirror({}, { platforms: Array.from({ length: LIMITS.platforms + 1 }, (_, i) => `linux/a${i}`) }), [`spec.source.platforms: too many platforms: ${LIMITS.platforms + 1}`]],
    ['exclude not RE2', mirror({}, { exclude: ['ok', '(?=x)'] }), ['spec.source.exclude[1]: not a valid RE2']],
    ['exclude empty pattern', mirror({}, { exclude: [''] }), ['spec.source.exclude[0]: must not be empty']],
    ['exclude empty list', mirror({}, { exclude: [] }), ['spec.source.exclude: must list at least one of exclude patterns']],
    ['exclude pattern too long', mirror({}, { exclude: ['x'.repeat(LIMITS.excludePatternLength + 1)] }), [`spec.source.exclude[0]: invalid exclude pattern: ${LIMITS.excludePatternLength + 1} characters`]],
    ['prune not a boolean', mirror({ targets: [{ repository: 'localhost:5000/p', prune: 'yes' }] }), ['spec.targets[0].prune: must be true or false, got string "yes"']],
    ['a local path by default', mirror({}, { repository: 'oci:/srv/web' }), [`spec.source.repository: ${LOCAL_PATHS_REFUSED}`]],
    ['an archive target by default', mirror({ targets: [{ repository: 'oci-archive:/tmp/w.tar' }] }), [`spec.targets[0].repository: ${LOCAL_PATHS_REFUSED}`]],
  ];
  for (const [what, obj, fragments] of invalid) {
    it(`refuses: ${what}`, () => expectError(obj, ...fragments));
  }

  it('verify, platforms, exclude and prune are kept as written; keyless key defaults to trusted_root.json', () => {
    const r = validateMirror(
      mirror(
        { verify: { keys: [KEY], keyless: [KEYLESS, { ...KEYLESS, key: 'root.json' }] }, targets: [{ repository: 'localhost:5000/p', prune: true }, { repository: 'localhost:5000/q' }] },
        { tags: undefined, tagPattern: '^1\\.', latest: 2, platforms: ['linux/arm64/v8', 'linux/amd64'], exclude: ['-rc\\d+$'] },
      ),
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.mirror.spec.verify, { keys: [KEY], keyless: [{ ...KEYLESS, key: 'trusted_root.json' }, { ...KEYLESS, key: 'root.json' }] });
    assert.deepEqual(r.mirror.spec.source.platforms, ['linux/arm64/v8', 'linux/amd64']);
    assert.deepEqual(r.mirror.spec.source.exclude, ['-rc\\d+$']);
    assert.deepEqual(r.mirror.spec.targets.map((t) => t.prune), [true, undefined]);
    // absent stays absent: no gate, no filter
    const plain = validateMirror(mirror());
    assert.ok(plain.ok);
    assert.equal(plain.mirror.spec.verify, undefined);
    assert.equal('platforms' in plain.mirror.spec.source, false);
  });

  it('local paths: admitted with { localPaths: true } (oci:PATH, oci-archive:PATH), refused without', () => {
    const obj = mirror({ targets: [{ repository: 'oci-archive:/tmp/web.tar' }, { repository: 'localhost:5000/p' }] }, { repository: 'oci:/srv/layouts/web' });
    const r = validateMirror(obj, { localPaths: true });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.mirror.spec.source.repository, 'oci:/srv/layouts/web');
    assert.equal(r.mirror.spec.targets[0]!.repository, 'oci-archive:/tmp/web.tar');
    const refused = validateMirror(obj);
    assert.ok(!refused.ok);
    assert.deepEqual(refused.errors, [`spec.source.repository: ${LOCAL_PATHS_REFUSED}`, `spec.targets[0].repository: ${LOCAL_PATHS_REFUSED}`]);
    assert.equal(LOCAL_PATHS_REFUSED, 'local paths are refused by this controller; start it with --allow-local-paths');
    // a path is one token: no tag, no second ':'; a layout is a target like any other (same-as-source check)
    for (const [o, frag] of [
      [mirror({}, { repository: 'oci:/srv/web:1.0' }), 'spec.source.repository: invalid local path "oci:/srv/web:1.0"'],
      [mirror({ targets: [{ repository: 'oci:/srv/web' }] }, { repository: 'oci:/srv/web' }), 'spec.targets[0].repository: same repository as spec.source.repository'],
    ] as const) {
      const e = validateMirror(o, { localPaths: true });
      assert.ok(!e.ok && e.errors.some((x) => x.includes(frag)), JSON.stringify(e));
    }
    // `oci:5000/app` is a registry host named oci with a port, not a path
    assert.ok(validateMirror(mirror({}, { repository: 'oci:5000/app' })).ok);
  });

  it('names the mirror namespace/name, default namespace, or <unnamed>', () => {
    const bad = mirror({ targets: [] });
    const r1 = validateMirror(bad);
    assert.ok(!r1.ok && r1.name === 'team-a/web');
    const r2 = validateMirror(mirror({ targets: [] }, {}, { name: 'web' }));
    assert.ok(!r2.ok && r2.name === 'default/web');
    const r3 = validateMirror(mirror({ targets: [] }, {}, {}));
    assert.ok(!r3.ok && r3.name === '<unnamed>');
    assert.ok(!validateMirror(42).ok);
  });

  it('reports every problem at once, each a single line starting with its field path', () => {
    const errors = errorsOf(mirror({ interval: 'soon', targets: [] }, { tags: undefined, latest: 0 }, { name: 'X' }));
    assert.ok(errors.length >= 4, JSON.stringify(errors));
    for (const e of errors) {
      assert.match(e, /^(apiVersion|kind|metadata|spec)[\w.[\]]*: /);
      assert.ok(!e.includes('\n'));
    }
  });

  it('mustValidateMirror throws one line naming the mirror', () => {
    assert.throws(() => mustValidateMirror(mirror({ targets: [] })), /^Error: ImageMirror team-a\/web is invalid: spec\.targets/);
    assert.equal(mustValidateMirror(mirror()).spec.interval, '10m');
  });

  it('isSingleImage: digest, or exactly one tag', () => {
    assert.equal(isSingleImage({ digest: DIGEST }), true);
    assert.equal(isSingleImage({ tags: ['1'] }), true);
    assert.equal(isSingleImage({ tags: ['1', '2'] }), false);
    assert.equal(isSingleImage({}), false);
  });
});
