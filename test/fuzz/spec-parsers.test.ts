/**
 * Property tests for everything that reads a tenant's spec: validateMirror, parseDuration, the
 * semver range compiler and the tagPattern compiler. Whatever the input — arbitrary JSON-ish values,
 * long strings, deep nesting, adversarial runs of whitespace, commas and `||` — each returns or
 * throws a one-line Error, never anything else, within a bounded time.
 *
 * Time bounds are per call and generous (10-100x what the code takes, see the report); a parser
 * that went quadratic again would take seconds on the long inputs generated here.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_DURATION_MS, parseDuration } from '../../src/mirror/duration.js';
import { compileSemverRange, compileTagPattern, normalizeSemverRange, SEMVER_MAX_LENGTH } from '../../src/mirror/select.js';
import { MAX_REPORTED_ERRORS, validateMirror } from '../../src/mirror/validate.js';

type Json = Record<string, unknown>;

const LINE_BREAK = /[\r\n\u2028\u2029]/;

/** Runs fn; it must return, or throw an Error whose message is one non-empty line. */
function returnsOrOneLineError(fn: () => unknown): { threw: boolean; message?: string } {
  try {
    fn();
    return { threw: false };
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    assert.ok(e.message.length > 0 && !LINE_BREAK.test(e.message), `not one line: ${JSON.stringify(e.message.slice(0, 200))}`);
    return { threw: true, message: e.message };
  }
}

function within(ms: number, what: string, fn: () => void): void {
  const t = performance.now();
  fn();
  const took = performance.now() - t;
  assert.ok(took < ms, `${what}: ${took.toFixed(1)} ms (bound ${ms})`);
}

/** Characters that matter to the parsers, so generated strings hit their edge cases often. */
const SEMVER_CHARS = [' ', '  ', '\t', '\n', ',', '|', '||', '>', '<', '=', '>=', '~', '^', '-', '*', 'x', 'X', 'v', '.', '0', '1', '9', '1.2.3', 'rc', '+', '\u2028', '\u00a0'];
const REGEX_CHARS = ['a', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '{1000}', '|', '^', '$', '\\', '\\d', '\\pL', '(?i)', '(?:', '-', ',', '0', '9', ' ', '\n', '\u{1F600}'];
const DURATION_CHARS = ['0', '1', '9', '.', 'ns', 'us', 'µs', 'ms', 's', 'm', 'h', 'd', ' ', '-', '+', 'e', 'Infinity', '99999999999'];

const fromUnits = (units: string[], maxLength: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...units), { maxLength }).map((a) => a.join(''));

/** Long runs: a unit repeated thousands of times, the shape that made the old code quadratic. */
const longRun = (units: string[]): fc.Arbitrary<string> =>
  fc.tuple(fc.constantFrom(...units), fc.integer({ min: 1_000, max: 50_000 }), fromUnits(units, 8)).map(([u, n, tail]) => u.repeat(n) + tail);

/** Values nested `depth` levels deep, in lists or mappings. */
const deep = fc.tuple(fc.integer({ min: 100, max: 5_000 }), fc.boolean()).map(([depth, asList]) => {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = asList ? [v] : { k: v };
  // fast-check prints a counterexample recursively, which would overflow the stack on this value.
  Object.defineProperty(v, fc.toStringMethod, { value: () => `<${depth} nested ${asList ? 'lists' : 'mappings'}>` });
  return v;
});

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.anything({ maxDepth: 4, withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withSparseArray: true }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 300 }) },
  { weight: 1, arbitrary: longRun([...SEMVER_CHARS, ...REGEX_CHARS]) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.array(fc.string({ maxLength: 200 }), { maxLength: 300 }) },
);

const VALID: Json = {
  apiVersion: 'imagemirror.dev/v1alpha1',
  kind: 'ImageMirror',
  metadata: { name: 'web', namespace: 'team-a' },
  spec: {
    source: { repository: 'localhost:5000/dev/web', semver: '>=1.4, <2', latest: 3, credentials: { secretName: 'pull' } },
    targets: [{ repository: 'localhost:5000/prod/web', credentials: { secretName: 'push' } }],
    interval: '10m',
  },
};

/** Paths into VALID whose value the mutation replaces (or adds, for unknown keys). */
const PATHS: string[][] = [
  [],
  ['apiVersion'],
  ['metadata'],
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['spec'],
  ['spec', 'source'],
  ['spec', 'source', 'repository'],
  ['spec', 'source', 'tags'],
  ['spec', 'source', 'tagPattern'],
  ['spec', 'source', 'semver'],
  ['spec', 'source', 'digest'],
  ['spec', 'source', 'latest'],
  ['spec', 'source', 'credentials'],
  ['spec', 'source', 'credentials', 'secretName'],
  ['spec', 'targets'],
  ['spec', 'targets', '0'],
  ['spec', 'targets', '0', 'repository'],
  ['spec', 'targets', '0', 'tags'],
  ['spec', 'interval'],
  ['spec', 'referrers'],
  ['spec', 'unknown'],
  ['status'],
];

function withValueAt(path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const root = structuredClone(VALID);
  let cur = root as Json;
  for (const k of path.slice(0, -1)) cur = cur[k] as Json;
  cur[path[path.length - 1]!] = value;
  return root;
}

const NUM_RUNS = 200;

describe('fuzz: spec parsers', function () {
  this.timeout(30_000);

  describe('validateMirror', () => {
    it('any value anywhere in a mirror: never throws; errors are one line each, few and short; < 500 ms', () => {
      fc.assert(
        fc.property(fc.constantFrom(...PATHS), anyValue, (path, value) => {
          const obj = withValueAt(path, value);
          let r: ReturnType<typeof validateMirror> | undefined;
          within(500, `validateMirror with ${path.join('.') || 'the object'} replaced`, () => {
            r = validateMirror(obj);
          });
          if (r && !r.ok) {
            assert.ok(r.errors.length >= 1 && r.errors.length <= MAX_REPORTED_ERRORS + 1, `${r.errors.length} errors`);
            for (const e of r.errors) {
              assert.ok(!LINE_BREAK.test(e), `not one line: ${JSON.stringify(e)}`);
              assert.ok(e.length <= 600, `error of ${e.length} characters: ${e.slice(0, 100)}…`);
            }
          }
          if (r?.ok) for (const w of r.warnings) assert.ok(!LINE_BREAK.test(w));
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('arbitrary top-level values (not a mapping, or a mapping of anything) are refused, not thrown on', () => {
      fc.assert(
        fc.property(anyValue, (value) => {
          const r = validateMirror(value);
          assert.equal(r.ok, false);
        }),
        { numRuns: NUM_RUNS },
      );
    });
  });

  describe('parseDuration', () => {
    it('returns a positive number of ms within Go range, or throws a one-line Error; < 50 ms', () => {
      fc.assert(
        fc.property(fc.oneof(fromUnits(DURATION_CHARS, 40), fc.string({ maxLength: 80 }), longRun(DURATION_CHARS)), (s) => {
          within(50, `parseDuration of ${s.length} characters`, () => {
            let ms: unknown;
            const r = returnsOrOneLineError(() => (ms = parseDuration(s)));
            if (!r.threw) assert.ok(typeof ms === 'number' && ms > 0 && ms <= MAX_DURATION_MS, String(ms));
          });
        }),
        { numRuns: NUM_RUNS },
      );
    });
  });

  describe('semver ranges', () => {
    it(`adversarial ranges up to SEMVER_MAX_LENGTH (${SEMVER_MAX_LENGTH}): a Range or a one-line Error, < 50 ms each`, () => {
      const adversarial = fc.oneof(
        fromUnits(SEMVER_CHARS, 120).map((s) => s.slice(0, SEMVER_MAX_LENGTH)),
        fc.tuple(fc.constantFrom(' ', ',', '||', ' || ', '\t,', ' , '), fc.constantFrom('>=1', '1.2.3', '^2', '~1.4', 'x', '')).map(([sep, v]) =>
          `${v}${sep}`.repeat(SEMVER_MAX_LENGTH).slice(0, SEMVER_MAX_LENGTH),
        ),
      );
      fc.assert(
        fc.property(adversarial, (s) => {
          within(50, `compileSemverRange of ${JSON.stringify(s.slice(0, 40))}`, () => {
            returnsOrOneLineError(() => compileSemverRange(s));
          });
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('longer ranges are refused by length, however they are built, in < 50 ms', () => {
      fc.assert(
        fc.property(longRun(SEMVER_CHARS), (s) => {
          within(50, `compileSemverRange of ${s.length} characters`, () => {
            const r = returnsOrOneLineError(() => compileSemverRange(s));
            assert.ok(r.threw && r.message!.startsWith('semver range too long: '), r.message);
          });
        }),
        { numRuns: 50 },
      );
    });

    it('normalization is linear: 50 000 adversarial characters in < 250 ms (quadratic took seconds)', () => {
      fc.assert(
        fc.property(longRun(SEMVER_CHARS), (s) => {
          within(250, `normalizeSemverRange of ${s.length} characters`, () => {
            const out = normalizeSemverRange(s);
            assert.ok(out.length <= s.length + 2 * (s.split('||').length - 1));
          });
        }),
        { numRuns: 50 },
      );
    });
  });

  describe('tagPattern', () => {
    it('any pattern: an RE2 program or a one-line Error, < 1 s each (compile is bounded by length and program size)', () => {
      fc.assert(
        fc.property(fc.oneof(fromUnits(REGEX_CHARS, 80), fc.string({ maxLength: 300 }), longRun(REGEX_CHARS)), (s) => {
          within(1000, `compileTagPattern of ${s.length} characters`, () => {
            returnsOrOneLineError(() => compileTagPattern(s));
          });
        }),
        { numRuns: NUM_RUNS },
      );
    });
  });
});
