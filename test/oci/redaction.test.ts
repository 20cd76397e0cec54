import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  MAX_KNOWN_CREDENTIALS,
  MAX_KNOWN_TOKENS,
  MAX_REDACT_INPUT,
  MIN_SECRET_LENGTH,
  REDACTED,
  isKnownSecret,
  knownSecretCount,
  redact,
  registerSecret,
} from '../../src/oci/redact.js';
import { OciError, describeError } from '../../src/oci/errors.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { parseDockerConfig } from '../../src/oci/docker-config.js';
import { createLogger, type Logger } from '../../src/log.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import type { ImageMirror } from '../../src/mirror/types.js';
import { startEchoRegistry, type EchoRegistry } from '../support/echo-registry.js';

const unique = (p: string): string => `${p}-${randomBytes(9).toString('hex')}`;
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A logger writing JSON lines into memory; `lines(n)` resolves once n lines were written. */
function memoryLogger(): { log: Logger; lines(n: number): Promise<string[]> } {
  const stream = new PassThrough();
  const out: string[] = [];
  let waiter: { n: number; resolve: (l: string[]) => void } | undefined;
  let buf = '';
  stream.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      out.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (waiter && out.length >= waiter.n) waiter.resolve(out);
  });
  return {
    log: createLogger({ format: 'json', stream }),
    lines: (n) => (out.length >= n ? Promise.resolve(out) : new Promise((resolve) => (waiter = { n, resolve }))),
  };
}

function assertClean(text: string, secrets: string[], what: string): void {
  for (const s of secrets) assert.ok(!text.includes(s), `${what} leaks ${s.slice(0, 6)}…: ${text}`);
}

describe('redaction', () => {
  describe('redact()', () => {
    it('removes registered secrets wherever they appear, and their URL-encoded form', () => {
      const s = unique('p@ss/word');
      registerSecret(s);
      assert.equal(redact(`x ${s} y`), `x ${REDACTED} y`);
      assert.equal(redact(`q=${encodeURIComponent(s)}&n=1`), `q=${REDACTED}&n=1`);
      assert.equal(redact(`${s}${s}`), REDACTED);
    });

    it('removes credential-shaped text no one registered', () => {
      const cases: Array<[string, string]> = [
        ['sent Basic dXNlcjpwYXNzd29yZA== to it', `sent Basic ${REDACTED} to it`],
        ['Authorization: Bearer abc.def-ghi', `Authorization: ${REDACTED}`],
        ['authorization=Zm9vOmJhcg', `authorization=${REDACTED}`],
        ['GET /token?account=a&token=s3cr3t&x=1', `GET /token?account=a&token=${REDACTED}&x=1`],
        ['password=hunter2 and passwd = foo', `password=${REDACTED} and passwd = ${REDACTED}`],
        ['{"token":"abc","access_token":"d\\"ef","refresh_token":"g","name":"ok"}', `{"token":"${REDACTED}","access_token":"${REDACTED}","refresh_token":"${REDACTED}","name":"ok"}`],
        ['{\\"identitytoken\\":\\"xyz\\",\\"auth\\":\\"Zm9v\\"}', `{\\"identitytoken\\":\\"${REDACTED}\\",\\"auth\\":\\"${REDACTED}\\"}`],
        ['tok eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl end', `tok ${REDACTED} end`],
        ['https://alice:pa55@registry.example/v2/', `https://alice:${REDACTED}@registry.example/v2/`],
        ['X-Amz-Signature=abcdef0123&X-Amz-Credential=AKIA/2024', `X-Amz-Signature=${REDACTED}&X-Amz-Credential=${REDACTED}`],
      ];
      for (const [input, want] of cases) assert.equal(redact(input), want, input);
    });

    it('leaves ordinary messages and challenges alone', () => {
      for (const s of [
        'GET manifest 127.0.0.1:5000/app:1.0: 404 MANIFEST_UNKNOWN: manifest unknown',
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"',
        'token endpoint https://auth.example/token for r.example refused the credentials (401)',
        'authentication failed for r.example (HEAD manifest r.example/a:1)',
        'upload sha256:abc to r.example/a: timed out (the registry took fewer than 16384 bytes in 30 s)',
      ]) {
        assert.equal(redact(s), s);
      }
    });

    it(`does not register values shorter than MIN_SECRET_LENGTH (${MIN_SECRET_LENGTH})`, () => {
      const short = unique('s').slice(0, MIN_SECRET_LENGTH - 1);
      const ok = unique('s').slice(0, MIN_SECRET_LENGTH);
      registerSecret(short);
      registerSecret(ok);
      assert.equal(isKnownSecret(short), false);
      assert.equal(isKnownSecret(ok), true);
      assert.equal(redact(`a ${ok} b`), `a ${REDACTED} b`);
    });

    it(`keeps at most MAX_KNOWN_TOKENS (${MAX_KNOWN_TOKENS}) tokens, and token churn never evicts a credential`, () => {
      const password = unique('kept-password');
      registerSecret(password);
      const first = unique('tok');
      registerSecret(first, 'token');
      for (let i = 0; i < MAX_KNOWN_TOKENS; i++) registerSecret(`${unique('tok')}-${i}`, 'token');
      assert.equal(knownSecretCount('token'), MAX_KNOWN_TOKENS);
      assert.equal(isKnownSecret(first), false, 'the oldest token was forgotten');
      assert.equal(isKnownSecret(password), true);
      assert.equal(redact(password), REDACTED);
    });

    it(`keeps at most MAX_KNOWN_CREDENTIALS (${MAX_KNOWN_CREDENTIALS}) credentials, the most recent`, () => {
      const first = unique('cred');
      registerSecret(first);
      const last = `${unique('cred')}-last`;
      for (let i = 0; i < MAX_KNOWN_CREDENTIALS - 1; i++) registerSecret(`${unique('cred')}-${i}`);
      registerSecret(last);
      assert.ok(knownSecretCount('credential') <= MAX_KNOWN_CREDENTIALS);
      assert.equal(isKnownSecret(first), false);
      assert.equal(isKnownSecret(last), true);
    });

    it(`cuts input to MAX_REDACT_INPUT (${MAX_REDACT_INPUT}) characters`, () => {
      assert.equal(redact('a'.repeat(MAX_REDACT_INPUT + 100)).length, MAX_REDACT_INPUT);
    });

    it('the choke points: OciError messages, describeError, and the docker config parser registering what it reads', () => {
      const password = unique('cfg-password');
      const cfg = parseDockerConfig(JSON.stringify({ auths: { 'r.example': { auth: b64(`bob:${password}`) } } }), 'test config');
      assert.equal(cfg.auths['r.example']?.kind, 'basic');
      const e = new OciError({ code: 'DENIED', message: `denied: you are bob:${password} (${b64(`bob:${password}`)})` });
      assertClean(e.message, [password, b64(`bob:${password}`)], 'OciError');
      assertClean(describeError(new Error(`plain ${password}\nsecond line`)), [password], 'describeError');
      assert.equal(describeError(new Error(`plain ${password}\nsecond line`)), `plain ${REDACTED}`);
    });

    it('the logger redacts the message and every field, nested ones included', async () => {
      const password = unique('log-password');
      registerSecret(password);
      const { log, lines } = memoryLogger();
      log.child({ mirror: 'ns/m' }).error(`sync failed: ${password} Basic ${b64(`u:${password}`)}`, {
        detail: `token=${password}`,
        nested: { headers: { authorization: 'Bearer opaque-value-1234' }, list: [password] },
        err: new Error(`boom ${password}`),
      });
      const [line] = await lines(1);
      assertClean(line!, [password, b64(`u:${password}`), 'opaque-value-1234'], 'log line');
      const j = JSON.parse(line!) as Record<string, unknown>;
      assert.equal(j.mirror, 'ns/m');
      assert.match(String(j.message), /^sync failed: \[REDACTED\] Basic \[REDACTED\]$/);
    });
  });

  for (const mode of ['basic', 'bearer'] as const) {
    describe(`a registry echoing the request (${mode})`, function () {
      this.timeout(30_000);
      const user = 'alice';
      const password = unique('echo-password');
      const creds: CredentialProvider = { get: async () => ({ kind: 'basic', username: user, password }) };
      let echo: EchoRegistry;
      before(async () => {
        echo = await startEchoRegistry({ mode, users: { [user]: password } });
      });
      after(async () => echo?.stop());
      const secrets = (): string[] => [password, b64(`${user}:${password}`), ...echo.tokens];

      it('the error message, a logged line and a reconcile status carry neither password, nor its base64, nor the token', async () => {
        const c = new RegistryClient(echo.host, { credentials: creds, retry: { attempts: 1 } });
        let err: OciError | undefined;
        try {
          await c.repository('team/app').listTags();
        } catch (e) {
          err = e as OciError;
        } finally {
          await c.close();
        }
        assert.ok(err instanceof OciError, String(err));
        assert.equal(err.code, 'DENIED');
        if (mode === 'bearer') assert.equal(echo.tokens.length, 1, 'a token was minted and used');
        assertClean(err.message, secrets(), 'error message');
        assert.ok(err.message.includes(REDACTED), `the echo was there and was redacted: ${err.message}`);
        assert.ok(!err.message.includes('\n'));

        const { log, lines } = memoryLogger();
        log.warn(`list tags failed: ${err.message}`, { error: err, raw: `you are ${user}:${password}; token ${echo.tokens.join(',')}` });
        const [line] = await lines(1);
        assertClean(line!, secrets(), 'log line');

        const reconcileLog = memoryLogger();
        const reconciler = createReconciler({ log: reconcileLog.log });
        try {
          const m: ImageMirror = {
            apiVersion: 'imagemirror.dev/v1alpha1',
            kind: 'ImageMirror',
            metadata: { name: 'echo', namespace: 'team-a', generation: 1 },
            spec: { source: { repository: `${echo.host}/team/app`, tags: ['1.0'], credentials: { secretName: 'pull' } }, targets: [{ repository: `${echo.host}/mirror/app` }] },
          };
          const r = await reconciler.reconcile(m, { credentials: async () => creds });
          assert.equal(r.outcome, 'retry', r.message);
          assert.ok(r.message.includes(REDACTED), r.message);
          assertClean(r.message, secrets(), 'reconcile message');
          assertClean(JSON.stringify(r.status), secrets(), 'status');
        } finally {
          await reconciler.close();
        }
      });
    });
  }
});
