/**
 * Property tests for the parsers of the transport and credentials layer — WWW-Authenticate, token
 * responses (the body reader with its cap, and the parser), docker config JSON, Retry-After — and
 * for redaction. Whatever the input: never a crash or a hang, always a value of the promised shape
 * or a typed error with a one-line message, in bounded time and memory; and no registered secret,
 * no base64 of `user:secret`, no bearer token survives redact().
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { parseTokenResponse, parseWwwAuthenticate, readTokenBody } from '../../src/oci/auth.js';
import { parseDockerConfig } from '../../src/oci/docker-config.js';
import { OciError } from '../../src/oci/errors.js';
import { MAX_RETRY_AFTER_CHARS, MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../src/oci/retry.js';
import { MIN_SECRET_LENGTH, REDACTED, redact, registerBasicCredential, registerSecret } from '../../src/oci/redact.js';

const NUM_RUNS = 300;
/** Generous for a loaded CI machine; the inputs are at most a few hundred KiB. */
const TIME_BOUND_MS = 2000;

function timed<T>(fn: () => T): T {
  const t0 = performance.now();
  const r = fn();
  const ms = performance.now() - t0;
  assert.ok(ms < TIME_BOUND_MS, `took ${ms} ms`);
  return r;
}

function oneLine(e: unknown): void {
  assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
  assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `untyped failure: ${e.stack}`);
  assert.ok(!e.message.includes('\n'), e.message);
}

/** Text dense in the characters the parsers branch on. */
const headerChars = fc.constantFrom('Bearer', 'Basic', 'realm', 'service', 'scope', 'error', '=', '"', '\\', ',', ' ', '\t', 'a', 'x=', '==', '/', '+', ':');
const headerish = fc.array(headerChars, { maxLength: 60 }).map((p) => p.join(''));
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

describe('fuzz: transport and credential parsers', function () {
  this.timeout(60_000);

  describe('parseWwwAuthenticate', () => {
    it('any header: challenges with a token scheme and lowercased parameter names, never a throw', () => {
      fc.assert(
        fc.property(fc.oneof(headerish, fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })), (h) => {
          const out = parseWwwAuthenticate(h);
          for (const c of out) {
            assert.match(c.scheme, TCHAR);
            assert.equal(c.scheme, c.scheme.toLowerCase());
            for (const [k, v] of Object.entries(c.params)) {
              assert.equal(k, k.toLowerCase());
              assert.equal(typeof v, 'string');
            }
          }
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('a challenge built from any realm and service parses back to exactly them', () => {
      const quote = (s: string): string => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
      fc.assert(
        fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 40 }), fc.boolean(), (realm, service, extra) => {
          const h = `${extra ? 'Basic realm="x", ' : ''}Bearer realm=${quote(realm)},service=${quote(service)}`;
          const bearer = parseWwwAuthenticate(h).find((c) => c.scheme === 'bearer');
          assert.deepEqual(bearer?.params, { realm, service });
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('hostile sizes parse in bounded time', () => {
      for (const h of ['"'.repeat(200_000), '\\'.repeat(200_000), 'a '.repeat(100_000), 'Bearer realm="'.repeat(20_000), ','.repeat(200_000), 'a=b,'.repeat(50_000)]) {
        timed(() => parseWwwAuthenticate(h));
      }
    });
  });

  describe('token responses', () => {
    const where = { registry: 'r.example', label: 'https://auth.example/token' };
    const tokenish = fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.constant(null), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }));
    const body = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.json({ maxDepth: 3 }),
      fc
        .record(
          { token: tokenish, access_token: tokenish, expires_in: fc.oneof(fc.double(), fc.string({ maxLength: 8 }), fc.integer()), issued_at: fc.oneof(fc.string({ maxLength: 30 }), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), refresh_token: tokenish },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
    );

    it('any status and body: a grant with a non-empty token and sane lifetime, or a typed one-line error that never quotes the body', () => {
      fc.assert(
        fc.property(fc.oneof(fc.constant(200), fc.integer({ min: 100, max: 599 })), body, (status, text) => {
          try {
            const g = parseTokenResponse({ status, text }, where);
            assert.ok(status >= 200 && status < 300);
            assert.ok(typeof g.token === 'string' && g.token.length > 0);
            if (g.expiresInS !== undefined) assert.ok(Number.isFinite(g.expiresInS) && g.expiresInS > 0);
            if (g.issuedAt !== undefined) assert.ok(Number.isFinite(g.issuedAt));
            if (g.refreshToken !== undefined) assert.equal(typeof g.refreshToken, 'string');
          } catch (e) {
            oneLine(e);
            assert.ok(e instanceof OciError, String(e));
            assert.ok(e.message.startsWith(`token endpoint ${where.label} for ${where.registry}`), e.message);
            if (text.length >= 12) assert.ok(!e.message.includes(text), 'quotes the body');
          }
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('any chunking and size: the body reader returns the text under the cap, and past it refuses having read at most one chunk more', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4096 }),
          fc.array(fc.integer({ min: 0, max: 1500 }), { maxLength: 12 }),
          fc.boolean(),
          async (cap, sizes, declare) => {
            const total = sizes.reduce((a, b) => a + b, 0);
            let pulled = 0;
            const chunks = sizes.map((n) => Buffer.alloc(n, 0x61));
            const stream = Readable.from(
              (function* () {
                for (const c of chunks) {
                  pulled += c.length;
                  yield c;
                }
              })(),
              { objectMode: false },
            );
            const tooLarge = (): OciError => new OciError({ code: 'PROTOCOL', message: 'too large' });
            try {
              const text = await readTokenBody(stream, declare ? String(total) : undefined, cap, tooLarge);
              assert.ok(total <= cap);
              assert.equal(text.length, total);
            } catch (e) {
              assert.ok(e instanceof OciError && e.code === 'PROTOCOL', String(e));
              assert.ok(total > cap);
              const biggest = Math.max(0, ...sizes);
              assert.ok(pulled <= cap + biggest, `read ${pulled} past a cap of ${cap}`);
              if (declare) assert.equal(pulled, 0, 'a declared length past the cap is refused before reading');
            }
          },
        ),
        { numRuns: NUM_RUNS },
      );
    });
  });

  describe('parseDockerConfig', () => {
    const secretValue = fc.string({ minLength: 12, maxLength: 40 }).map((s) => `sec-${s}`);
    const entry = fc.record(
      {
        auth: fc.oneof(secretValue, secretValue.map((s) => Buffer.from(`u:${s}`).toString('base64')), fc.integer(), fc.constant('')),
        username: fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.constant('<token>')),
        password: fc.oneof(secretValue, fc.integer(), fc.constant(null)),
        identitytoken: fc.oneof(secretValue, fc.array(fc.string(), { maxLength: 1 })),
        registrytoken: fc.oneof(secretValue, fc.boolean()),
      },
      { requiredKeys: [] },
    );
    const key = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('https://index.docker.io/v1/', 'docker.io', 'r.example:5000', 'http://[::1]:5000/v2/', ' ', '://', '[', 'a/b/c'));
    const config = fc.record(
      {
        auths: fc.oneof(fc.dictionary(key, fc.oneof(entry, fc.string(), fc.constant(null)), { maxKeys: 4 }), fc.string(), fc.array(fc.integer(), { maxLength: 2 })),
        credHelpers: fc.oneof(fc.dictionary(key, fc.oneof(fc.string({ maxLength: 12 }), fc.integer()), { maxKeys: 3 }), fc.constant(7)),
        credsStore: fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.constant('')),
      },
      { requiredKeys: [] },
    );
    const secretsIn = (v: unknown): string[] => {
      const out: string[] = [];
      const walk = (x: unknown): void => {
        if (typeof x === 'string' && x.startsWith('sec-')) out.push(x);
        else if (x && typeof x === 'object') for (const y of Object.values(x)) walk(y);
      };
      walk(v);
      return out;
    };

    it('any JSON text: a config of canonical entries, or a one-line Error that quotes no secret', () => {
      fc.assert(
        fc.property(fc.oneof(config.map((c) => JSON.stringify(c)), fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })), (text) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          try {
            const c = parseDockerConfig(text, 'fuzz config');
            for (const cred of Object.values(c.auths)) assert.ok(['basic', 'identityToken', 'registryToken'].includes(cred.kind));
            for (const name of Object.values(c.credHelpers)) assert.match(name, /^[A-Za-z0-9][A-Za-z0-9._-]*$/);
          } catch (e) {
            oneLine(e);
            assert.ok((e as Error).message.startsWith('fuzz config'), (e as Error).message);
            for (const s of secretsIn(parsed)) assert.ok(!(e as Error).message.includes(s), `quotes a secret: ${(e as Error).message}`);
            // A base64 auth decodes to the secret; its text must not be quoted either.
            if (text.length >= 16 && parsed === undefined) assert.ok(!(e as Error).message.includes(text));
          }
        }),
        { numRuns: NUM_RUNS },
      );
    });
  });

  describe('parseRetryAfter', () => {
    it(`reads values up to MAX_RETRY_AFTER_CHARS (${MAX_RETRY_AFTER_CHARS}) characters, and caps delays at MAX_RETRY_AFTER_MS`, () => {
      assert.equal(parseRetryAfter('7'.padStart(MAX_RETRY_AFTER_CHARS, '0')), 7000);
      assert.equal(parseRetryAfter('7'.padStart(MAX_RETRY_AFTER_CHARS + 1, '0')), undefined);
      assert.equal(parseRetryAfter('9'.repeat(40)), MAX_RETRY_AFTER_MS);
      assert.equal(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', Date.parse('2026-01-01T00:00:00Z')), MAX_RETRY_AFTER_MS);
    });

    it('any value: undefined, or a finite delay within 0..MAX_RETRY_AFTER_MS', () => {
      const now = Date.parse('2026-01-01T00:00:00Z');
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ maxLength: 80 }),
            fc.stringMatching(/^\s*\d{1,400}\s*$/),
            fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
            fc.integer().map(String),
            fc.constant(undefined),
          ),
          (v) => {
            const ms = timed(() => parseRetryAfter(v, now));
            if (ms !== undefined) assert.ok(Number.isFinite(ms) && ms >= 0 && ms <= MAX_RETRY_AFTER_MS, `${v} → ${ms}`);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    });
  });

  describe('redact', () => {
    // Text around a secret: anything, including quotes, `=`, escapes and marker-like text.
    const around = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', ' ', '"', '="', 'Basic ', '[REDACT', 'ED]', '\\"', 'token='));
    const secret = fc.string({ minLength: MIN_SECRET_LENGTH, maxLength: 40 }).filter((s) => !REDACTED.includes(s));
    const TOKEN68 = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{8,60}=*$/);

    it('a registered secret never survives, wherever it sits', () => {
      fc.assert(
        fc.property(secret, around, around, (s, a, b) => {
          registerSecret(s);
          const out = timed(() => redact(`${a}${s}${b}`));
          assert.ok(!out.includes(s), `${JSON.stringify(s)} survived in ${JSON.stringify(out)}`);
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('neither the password nor the base64 of user:password survives, once the credential is registered', () => {
      fc.assert(
        fc.property(fc.string({ minLength: 1, maxLength: 12 }).filter((u) => !u.includes(':')), secret, around, around, (user, password, a, b) => {
          registerBasicCredential(user, password);
          const wire = Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
          const out = timed(() => redact(`${a}${password} ${wire}${b} Authorization: Basic ${wire}`));
          assert.ok(!out.includes(password), out);
          assert.ok(!out.includes(wire), out);
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('a bearer token nobody registered never survives after "Bearer "', () => {
      const challengeParam = /^(?:realm|service|scope|error|error_description|error_uri|charset)$/i;
      fc.assert(
        fc.property(TOKEN68, around, fc.constantFrom(' ', '"', ',', '', '\n', ';'), (t, a, after) => {
          fc.pre(!challengeParam.test(t.replace(/=+$/, '')) && !a.includes(t));
          const out = timed(() => redact(`${a} Bearer ${t}${after}rest`));
          assert.ok(!out.includes(t), `${t} survived in ${out}`);
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('is idempotent and never throws, for any text', () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.json()), (x) => {
          const once = timed(() => redact(x));
          assert.equal(redact(once), once);
        }),
        { numRuns: NUM_RUNS },
      );
    });

    it('hostile sizes redact in bounded time', () => {
      const n = 256 * 1024;
      for (const x of ['eyJ-'.repeat(n / 4), '"a":"'.repeat(n / 5), '\\"a\\":\\"'.repeat(n / 8), 'a='.repeat(n / 2), 'a://b:c'.repeat(n / 7), 'basic '.repeat(n / 6), 'authorization:'.repeat(n / 14), '"'.repeat(n), 'token    ='.repeat(n / 10)]) {
        timed(() => redact(x));
      }
    });
  });
});
