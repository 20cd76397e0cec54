/**
 * The bounds that keep one tenant's ImageMirror from costing the controller real CPU: every string
 * and list is length-checked before anything parses or compiles it, semver ranges and RE2 programs
 * are capped, and the resync interval is clamped. Timings use bounds 10-100x above what the code
 * needs (measured in the report) and far below what the unbounded code took (seconds).
 */
import assert from 'node:assert/strict';
import { RE2JS } from 're2js';
import { MAX_DURATION_LENGTH, MAX_DURATION_MS, formatDuration, parseDuration } from '../../src/mirror/duration.js';
import { clampIntervalMs, MAX_INTERVAL_MS, MIN_INTERVAL_MS, readInterval, resyncIntervalMs } from '../../src/mirror/interval.js';
import {
  charCount,
  compileSemverRange,
  compileTagPattern,
  SEMVER_MAX_ALTERNATIVES,
  SEMVER_MAX_COMPARATORS,
  SEMVER_MAX_LENGTH,
  TAG_PATTERN_MAX_LENGTH,
  TAG_PATTERN_MAX_PROGRAM,
} from '../../src/mirror/select.js';
import { LIMITS, MAX_REPORTED_ERRORS, QUOTE_MAX_CHARS, validateMirror, type ValidationResult } from '../../src/mirror/validate.js';
import { DEFAULTS } from '../../src/mirror/types.js';

type Json = Record<string, unknown>;

const BIG = 150 * 1024;

function mirror(spec: Json = {}, source: Json = {}, meta: Json = { name: 'web', namespace: 'team-a' }): Json {
  const src: Json = { repository: 'localhost:5000/dev/web', tags: ['1.4.2'], ...source };
  for (const k of Object.keys(src)) if (src[k] === undefined) delete src[k];
  const s: Json = { source: src, targets: [{ repository: 'localhost:5000/prod/web' }], ...spec };
  for (const k of Object.keys(s)) if (s[k] === undefined) delete s[k];
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: meta, spec: s };
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t };
}

function errorsOf(r: ValidationResult): string[] {
  assert.equal(r.ok, false, 'expected the mirror to be refused');
  return r.ok ? [] : r.errors;
}

/** Every field at its bound: a digest source, 100 targets of 100 tags of 128 characters each. */
function maximalMirror(): Json {
  const tags = (c: string): string[] => Array.from({ length: LIMITS.tagsPerList }, (_, i) => `${c}${i}`.padEnd(LIMITS.tagLength, 'x'));
  return {
    apiVersion: 'imagemirror.dev/v1alpha1',
    kind: 'ImageMirror',
    metadata: { name: 'n'.repeat(253), namespace: 'n'.repeat(63) },
    spec: {
      source: {
        repository: 'source.example.com/'.padEnd(LIMITS.repositoryLength, 'b'),
        digest: `sha256:${'c'.repeat(LIMITS.digestLength - 7)}`,
        credentials: { secretName: 's'.repeat(LIMITS.secretNameLength) },
        insecure: false,
      },
      targets: Array.from({ length: LIMITS.targets }, (_, i) => ({
        repository: `registry-${i}.example.com:5000/`.padEnd(LIMITS.repositoryLength, 'a'),
        tags: tags('t'),
        credentials: { secretName: 'p'.repeat(LIMITS.secretNameLength) },
        insecure: true,
      })),
      interval: `${'0'.repeat(LIMITS.intervalLength - 3)}10m`,
      referrers: true,
      overwrite: true,
      suspend: false,
    },
  };
}

/** A semver range at SEMVER_MAX_LENGTH with the most alternatives and comparators allowed. */
const MAX_SEMVER = (() => {
  const perAlt = SEMVER_MAX_COMPARATORS / SEMVER_MAX_ALTERNATIVES;
  const alt = Array.from({ length: perAlt }, (_, i) => (i === 0 ? '>=1' : '<9')).join(' ');
  const r = Array.from({ length: SEMVER_MAX_ALTERNATIVES }, () => alt).join(' || ');
  return r.padEnd(SEMVER_MAX_LENGTH, ' ');
})();

describe('spec limits', () => {
  describe('values', () => {
    it('LIMITS: the numbers the CRD carries (crd.test.ts checks the CRD side)', () => {
      assert.deepEqual(
        { ...LIMITS },
        {
          targets: 100, tagsPerList: 100, tagLength: 128, repositoryLength: 255, tagPatternLength: 256, semverLength: 256, digestLength: 71, secretNameLength: 253, intervalLength: 64,
          platforms: 32, platformLength: 64, excludePatterns: 32, excludePatternLength: 256, verifyKeys: 16, verifyKeyless: 16, secretKeyLength: 253, issuerLength: 1024, subjectRegExpLength: 256,
        },
      );
      assert.equal(LIMITS.tagPatternLength, TAG_PATTERN_MAX_LENGTH);
      assert.equal(LIMITS.semverLength, SEMVER_MAX_LENGTH);
      assert.equal(LIMITS.intervalLength, MAX_DURATION_LENGTH);
      assert.equal(LIMITS.digestLength, `sha256:${'0'.repeat(64)}`.length);
    });
    it('interval range: 10s to 30 days', () => {
      assert.equal(MIN_INTERVAL_MS, 10_000);
      assert.equal(MAX_INTERVAL_MS, 30 * 24 * 3_600_000);
    });
  });

  describe('a maximal valid spec', () => {
    it('with every field at its bound validates, quickly (< 1 s; ~15 ms warm)', () => {
      const obj = maximalMirror();
      validateMirror(obj); // warm-up: the first call pays for module JIT
      const { value, ms } = timed(() => validateMirror(obj));
      assert.ok(value.ok, JSON.stringify(value.ok ? '' : value.errors.slice(0, 3)));
      assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    });
    it('a semver range at its length, alternative and comparator caps validates', () => {
      assert.equal(MAX_SEMVER.length, SEMVER_MAX_LENGTH);
      const r = validateMirror(mirror({}, { tags: undefined, semver: MAX_SEMVER, latest: 3 }));
      assert.ok(r.ok, JSON.stringify(r));
    });
    it('a tagPattern at its length validates', () => {
      assert.ok(validateMirror(mirror({}, { tags: undefined, tagPattern: 'a'.repeat(TAG_PATTERN_MAX_LENGTH) })).ok);
    });
  });

  describe('a 150 KB value is refused by its length, before any parser sees it', () => {
    const cases: Array<[string, Json, string]> = [
      ['semver', mirror({}, { tags: undefined, semver: `>=1${' '.repeat(BIG)}<2` }), `spec.source.semver: invalid semver range: ${BIG + 5} characters, at most ${SEMVER_MAX_LENGTH} allowed`],
      ['semver of commas', mirror({}, { tags: undefined, semver: ' , '.repeat(BIG / 3) }), `spec.source.semver: invalid semver range: ${BIG} characters, at most ${SEMVER_MAX_LENGTH} allowed`],
      ['tagPattern', mirror({}, { tags: undefined, tagPattern: `(a|${'b'.repeat(BIG)})` }), `spec.source.tagPattern: invalid tagPattern: ${BIG + 4} characters, at most ${TAG_PATTERN_MAX_LENGTH} allowed`],
      ['repository', mirror({}, { repository: `localhost:5000/${'a'.repeat(BIG)}` }), `spec.source.repository: invalid repository: ${BIG + 15} characters, at most ${LIMITS.repositoryLength} allowed`],
      ['interval', mirror({ interval: '1s'.repeat(BIG / 2) }), `spec.interval: invalid interval: ${BIG} characters, at most ${LIMITS.intervalLength} allowed`],
      ['digest', mirror({ targets: [{ repository: 'localhost:5000/p', tags: ['x'] }] }, { tags: undefined, digest: `sha256:${'a'.repeat(BIG)}` }), `spec.source.digest: invalid digest: ${BIG + 7} characters, at most ${LIMITS.digestLength} allowed`],
      ['secretName', mirror({}, { credentials: { secretName: 'a-'.repeat(BIG / 2) } }), `spec.source.credentials.secretName: invalid Secret name: ${BIG} characters, at most ${LIMITS.secretNameLength} allowed`],
      ['tag', mirror({}, { tags: ['a'.repeat(BIG)] }), 'spec.source.tags[0]: invalid tag "aaaa'],
      ['metadata.name', mirror({}, {}, { name: 'a-'.repeat(BIG / 2) }), `metadata.name: invalid name: ${BIG} characters, at most 253 allowed`],
    ];
    for (const [what, obj, message] of cases) {
      it(`${what}: refused with the length message, in < 50 ms, the error short`, () => {
        validateMirror(obj);
        const { value, ms } = timed(() => validateMirror(obj));
        const errors = errorsOf(value);
        assert.ok(errors.some((e) => e.startsWith(message)), `no error starting ${JSON.stringify(message)} in ${JSON.stringify(errors).slice(0, 500)}`);
        for (const e of errors) assert.ok(e.length < 400, `error of ${e.length} characters`);
        assert.ok(ms < 50, `took ${ms.toFixed(1)} ms`);
      });
    }
    it('compileSemverRange and compileTagPattern check the length themselves (selectTags calls them directly)', () => {
      const { ms } = timed(() => {
        assert.throws(() => compileSemverRange(' '.repeat(BIG)), { message: `semver range too long: ${BIG} characters, at most ${SEMVER_MAX_LENGTH} allowed` });
        assert.throws(() => compileTagPattern('a'.repeat(BIG)), { message: `regular expression too long: ${BIG} characters, at most ${TAG_PATTERN_MAX_LENGTH} allowed` });
      });
      assert.ok(ms < 50, `took ${ms.toFixed(1)} ms`);
    });
    it('a list over its bound is refused in one line without walking it (10⁵ tags, 10⁵ targets)', () => {
      const tags = Array.from({ length: 100_000 }, () => '-bad');
      const targets = Array.from({ length: 100_000 }, () => ({ repository: 'x//y' }));
      const { value, ms } = timed(() => validateMirror(mirror({ targets }, { tags })));
      assert.deepEqual(errorsOf(value), [
        `spec.source.tags: too many tags: 100000, at most ${LIMITS.tagsPerList} allowed (use tagPattern or semver, or split the mirror)`,
        `spec.targets: at most ${LIMITS.targets} targets per ImageMirror, got 100000 (split it into several mirrors)`,
      ]);
      assert.ok(ms < 50, `took ${ms.toFixed(1)} ms`);
      const targetTags = errorsOf(validateMirror(mirror({ targets: [{ repository: 'localhost:5000/p', tags: tags.slice(0, LIMITS.tagsPerList + 1) }] })));
      assert.deepEqual(targetTags, [`spec.targets[0].tags: too many tags: ${LIMITS.tagsPerList + 1}, at most ${LIMITS.tagsPerList} allowed (use tagPattern or semver, or split the mirror)`]);
    });
    it('lengths count characters as the API server does: an astral character is one', () => {
      assert.equal(charCount('\u{1F600}'.repeat(3)), 3);
      assert.equal(charCount('a\uD800b'), 3, 'a lone surrogate is one');
      assert.ok(validateMirror(mirror({}, { tags: undefined, tagPattern: '\u{1F600}'.repeat(TAG_PATTERN_MAX_LENGTH) })).ok);
      assert.ok(!validateMirror(mirror({}, { tags: undefined, tagPattern: '\u{1F600}'.repeat(TAG_PATTERN_MAX_LENGTH + 1) })).ok);
    });
  });

  describe('semver caps', () => {
    const semverErrors = (semver: string): string[] => errorsOf(validateMirror(mirror({}, { tags: undefined, semver })));
    it(`at most SEMVER_MAX_ALTERNATIVES (${SEMVER_MAX_ALTERNATIVES}) || alternatives`, () => {
      const alts = (n: number): string => Array.from({ length: n }, (_, i) => `${i}`).join('||');
      assert.ok(compileSemverRange(alts(SEMVER_MAX_ALTERNATIVES)));
      assert.deepEqual(semverErrors(alts(SEMVER_MAX_ALTERNATIVES + 1)), [
        `spec.source.semver: semver range has ${SEMVER_MAX_ALTERNATIVES + 1} || alternatives, at most ${SEMVER_MAX_ALTERNATIVES} allowed`,
      ]);
    });
    it(`at most SEMVER_MAX_COMPARATORS (${SEMVER_MAX_COMPARATORS}) comparators, counted as written`, () => {
      const cmps = (n: number): string => Array.from({ length: n }, () => '>=1').join(',');
      assert.ok(compileSemverRange(cmps(SEMVER_MAX_COMPARATORS)));
      assert.deepEqual(semverErrors(cmps(SEMVER_MAX_COMPARATORS + 1)), [
        `spec.source.semver: semver range has ${SEMVER_MAX_COMPARATORS + 1} comparators, at most ${SEMVER_MAX_COMPARATORS} allowed`,
      ]);
      // an operator written apart from its version, and a hyphen, are not comparators of their own
      const half = SEMVER_MAX_COMPARATORS / 2;
      const spaced = [Array.from({ length: half }, () => '>= 1').join(' '), ...Array.from({ length: half / 2 }, () => '1 - 2')].join(' || ');
      assert.ok(compileSemverRange(spaced));
      assert.throws(() => compileSemverRange(`${spaced} || >= 1`), { message: `semver range has ${SEMVER_MAX_COMPARATORS + 1} comparators, at most ${SEMVER_MAX_COMPARATORS} allowed` });
    });
    it('an empty || alternative is refused (npm reads it as "any version": the whole repository)', () => {
      for (const r of ['>=1.4 <2 ||', '|| ^2', '^1 || , || ^3', '||']) {
        assert.ok(semverErrors(r).some((e) => e.includes('an empty || alternative would match every version')), r);
      }
    });
  });

  describe('RE2 program cap', () => {
    it(`a tagPattern compiling to more than TAG_PATTERN_MAX_PROGRAM (${TAG_PATTERN_MAX_PROGRAM}) instructions is refused`, () => {
      const at = 'a{1000}b{998}';
      const over = 'a{1000}b{999}';
      assert.equal(RE2JS.compile(at).programSize(), TAG_PATTERN_MAX_PROGRAM);
      assert.equal(RE2JS.compile(over).programSize(), TAG_PATTERN_MAX_PROGRAM + 1);
      assert.ok(compileTagPattern(at));
      const errors = errorsOf(validateMirror(mirror({}, { tags: undefined, tagPattern: over })));
      assert.deepEqual(errors, [
        `spec.source.tagPattern: regular expression too complex: compiles to ${TAG_PATTERN_MAX_PROGRAM + 1} instructions, at most ${TAG_PATTERN_MAX_PROGRAM} allowed (use smaller counted repetitions such as {1,40})`,
      ]);
    });
  });

  describe('interval', () => {
    it('clampIntervalMs keeps values inside [MIN_INTERVAL_MS, MAX_INTERVAL_MS]', () => {
      const table: Array<[number, number]> = [
        [1e-6, MIN_INTERVAL_MS],
        [0, MIN_INTERVAL_MS],
        [Number.NaN, MIN_INTERVAL_MS],
        [MIN_INTERVAL_MS - 1, MIN_INTERVAL_MS],
        [MIN_INTERVAL_MS, MIN_INTERVAL_MS],
        [600_000, 600_000],
        [MAX_INTERVAL_MS, MAX_INTERVAL_MS],
        [MAX_INTERVAL_MS + 1, MAX_INTERVAL_MS],
        [Infinity, MAX_INTERVAL_MS],
      ];
      for (const [ms, want] of table) assert.equal(clampIntervalMs(ms), want, String(ms));
    });
    it('resyncIntervalMs: the clamped interval of a spec, the default when unset', () => {
      assert.equal(resyncIntervalMs({ interval: '1ns' }), MIN_INTERVAL_MS);
      assert.equal(resyncIntervalMs({ interval: '999999h' }), MAX_INTERVAL_MS);
      assert.equal(resyncIntervalMs({ interval: '90s' }), 90_000);
      assert.equal(resyncIntervalMs({}), parseDuration(DEFAULTS.interval));
    });
    it('validateMirror admits an out-of-range interval, keeps it as written, and warns that it is clamped', () => {
      const low = validateMirror(mirror({ interval: '1ns' }));
      assert.ok(low.ok);
      assert.equal(low.mirror.spec.interval, '1ns');
      assert.deepEqual(low.warnings, ['spec.interval: interval "1ns" is below the minimum 10s; using 10s']);
      const high = validateMirror(mirror({ interval: '999999h' }));
      assert.ok(high.ok);
      assert.deepEqual(high.warnings, ['spec.interval: interval "999999h" is above the maximum 720h; using 720h']);
      const fine = validateMirror(mirror({ interval: '10s' }));
      assert.ok(fine.ok);
      assert.deepEqual(fine.warnings, []);
      assert.deepEqual(readInterval('30m'), { ms: 1_800_000 });
    });
  });

  describe('durations', () => {
    it(`parseDuration refuses text over MAX_DURATION_LENGTH (${MAX_DURATION_LENGTH}) before its regex runs`, () => {
      assert.equal(parseDuration(`${'0'.repeat(MAX_DURATION_LENGTH - 2)}1s`), 1000);
      const { ms } = timed(() =>
        assert.throws(() => parseDuration('1'.repeat(BIG)), (e: Error) => e.message.endsWith(`: ${BIG} characters, at most ${MAX_DURATION_LENGTH} allowed`) && e.message.length < 100),
      );
      assert.ok(ms < 50, `took ${ms.toFixed(1)} ms`);
    });
    it(`parseDuration refuses more than Go's time.Duration holds (MAX_DURATION_MS, ${formatDuration(MAX_DURATION_MS)}), as the CRD's CEL duration() does`, () => {
      assert.equal(MAX_DURATION_MS, Math.floor((2 ** 63 - 1) / 1e6));
      assert.equal(parseDuration('2562047h'), 2562047 * 3_600_000);
      assert.throws(() => parseDuration('2562048h'), /too large \(at most 2562047h47m16\.854s\)/);
      assert.throws(() => parseDuration(`1${'0'.repeat(60)}s`), /too large/);
    });
  });

  describe('error reports stay small', () => {
    it(`at most MAX_REPORTED_ERRORS (${MAX_REPORTED_ERRORS}) errors, then one line counting the rest`, () => {
      const spec: Json = {};
      for (let i = 0; i < 10_000; i++) spec[`extra${i}`] = i;
      const errors = errorsOf(validateMirror(mirror(spec)));
      assert.equal(errors.length, MAX_REPORTED_ERRORS + 1);
      assert.equal(errors[MAX_REPORTED_ERRORS], `and ${10_000 - MAX_REPORTED_ERRORS} more errors`);
    });
    it(`a user value or key quoted in an error is cut at QUOTE_MAX_CHARS (${QUOTE_MAX_CHARS})`, () => {
      const errors = errorsOf(validateMirror(mirror({ referrers: 'y'.repeat(10_000), ['k'.repeat(10_000)]: 1 })));
      assert.ok(errors.includes(`spec.referrers: must be true or false, got string "${'y'.repeat(QUOTE_MAX_CHARS)}"…`), JSON.stringify(errors));
      assert.ok(errors.some((e) => e.startsWith(`spec."${'k'.repeat(QUOTE_MAX_CHARS)}"…: unknown field`)), JSON.stringify(errors));
    });
  });
});
