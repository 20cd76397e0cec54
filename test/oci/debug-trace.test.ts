import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { createLogger, silentLogger } from '../../src/log.js';
import type { CredentialProvider } from '../../src/oci/credentials.js';
import { TRACED_QUERY_PARAMS, traceUrl } from '../../src/oci/http.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' }, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

interface Traced {
  message: string;
  registry: string;
  method: string;
  url: string;
  status: number | 'error';
  bytes?: number;
  ms: number;
}

const TEXT_TRACE = /^\S+ debug (registry request|token request) (.*)$/;

/** Trace lines of the text format: `<time> debug registry request registry=… method=… url=… status=… bytes=… ms=…`. */
function textTraces(stderr: string): Traced[] {
  const out: Traced[] = [];
  for (const line of stderr.split('\n')) {
    const m = TEXT_TRACE.exec(line);
    if (!m) continue;
    const f = Object.fromEntries(m[2]!.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    out.push({
      message: m[1]!,
      registry: f.registry!,
      method: f.method!,
      url: f.url!,
      status: f.status === 'error' ? 'error' : Number(f.status),
      ...(f.bytes !== undefined ? { bytes: Number(f.bytes) } : {}),
      ms: Number(f.ms),
    });
  }
  return out;
}

/** Trace lines of the JSON format. */
function jsonTraces(stderr: string): Traced[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Traced & { level: string })
    .filter((j) => j.level === 'debug' && /^(registry|token) request$/.test(j.message));
}

const pathOf = (u: string): string => new URL(u, 'http://x').pathname;
const queryKeys = (u: string): string => [...new URL(u, 'http://x').searchParams.keys()].sort().join('&');

/**
 * Every request the registry logged is traced once, with its method, path, query names and
 * status; a GET's bytes are the body the registry sent.
 */
function assertMatchesAccessLog(traces: Traced[], reg: TestRegistry, log: AccessLogEntry[]): void {
  const mine = traces.filter((t) => t.message === 'registry request' && t.registry === reg.host);
  const key = (method: string, u: string, status: number | 'error'): string => `${method} ${pathOf(u)}?${queryKeys(u)} ${status}`;
  assert.deepEqual(mine.map((t) => key(t.method, t.url, t.status)).sort(), log.map((e) => key(e.method, e.path, e.status)).sort());
  for (const t of mine) {
    assert.ok(Number.isFinite(t.ms) && t.ms >= 0, `ms of ${t.method} ${t.url}`);
    assert.ok(t.bytes === undefined || (Number.isInteger(t.bytes) && t.bytes >= 0), `bytes of ${t.method} ${t.url}`);
  }
  for (const e of log.filter((x) => x.method === 'GET' && x.status === 200)) {
    const t = mine.find((x) => x.method === 'GET' && pathOf(x.url) === pathOf(e.path) && x.status === 200);
    assert.equal(t?.bytes, e.bytes, `bytes of GET ${e.path}`);
  }
}

/** Values of `_state` in the registry's own log: upload session tokens. */
function uploadStates(log: AccessLogEntry[]): string[] {
  return log.flatMap((e) => new URL(e.path, 'http://x').searchParams.getAll('_state')).filter((s) => s.length > 0);
}

const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}/;

describe('--log-level debug traces every registry request (CLI)', function () {
  this.timeout(120_000);
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const users = { alice: password };
  const creds: CredentialProvider = { get: async () => ({ kind: 'basic', username: 'alice', password }) };
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'debug-trace-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const secret = (hosts: string[]): string =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: pull, namespace: team-a}\ntype: kubernetes.io/dockerconfigjson\n` +
    `stringData:\n  .dockerconfigjson: '${JSON.stringify({ auths: Object.fromEntries(hosts.map((h) => [h, { auth: b64(`alice:${password}`) }])) })}'\n`;
  const mirror = (name: string, from: string, to: string): string =>
    `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}, namespace: team-a}\nspec:\n` +
    `  source: {repository: ${from}, tags: ['1.0'], credentials: {secretName: pull}}\n` +
    `  targets: [{repository: ${to}, credentials: {secretName: pull}}]\n`;

  describe('htpasswd registries', () => {
    let src: TestRegistry;
    let dst: TestRegistry;
    let client: RegistryClient;

    before(async () => {
      [src, dst] = await Promise.all([startRegistry({ auth: 'htpasswd', users }), startRegistry({ auth: 'htpasswd', users })]);
      client = new RegistryClient(src.host, { credentials: creds });
      await pushImage(client.repository('dev/app'), buildImage({ layers: [3000, 70_000] }), '1.0');
    });
    after(async () => {
      await client.close();
      await Promise.all([src.stop(), dst.stop()]);
    });

    it('one line per request (method, path, status, bytes, ms) matching both access logs; no password, base64, upload state or token', async () => {
      const file = join(dir, 'basic.yaml');
      await writeFile(file, [secret([src.host, dst.host]), mirror('traced', `${src.host}/dev/app`, `${dst.host}/prod/app`)].join('---\n'));
      await Promise.all([src.resetLog(), dst.resetLog()]);
      const r = await cli(['sync', '-f', file, '--log-level', 'debug']);
      assert.equal(r.code, 0, r.stderr);
      const [srcLog, dstLog] = await Promise.all([src.accessLog(), dst.accessLog()]);
      const traces = textTraces(r.stderr);
      assertMatchesAccessLog(traces, src, srcLog);
      assertMatchesAccessLog(traces, dst, dstLog);
      assert.ok(srcLog.filter((e) => e.method === 'GET' && e.status === 200).length >= 3, 'the run read a manifest and its blobs, whose bytes were compared');
      assert.ok(srcLog.some((e) => e.status === 401), 'the registries challenged, and the 401s are traced too');
      // Blobs crossed registries: uploads whose Locations carried the registry's signed state.
      const states = uploadStates(dstLog);
      assert.ok(states.length >= 2, `uploads with _state: ${states.length}`);
      const uploads = traces.filter((t) => t.method === 'PUT' && /\/blobs\/uploads\//.test(t.url));
      assert.ok(uploads.length >= 2);
      for (const t of uploads) {
        assert.match(t.url, /^\/v2\/prod\/app\/blobs\/uploads\/[^?]+\?_state=\[REDACTED\]&digest=sha256:[0-9a-f]{64}$/);
        assert.ok(t.bytes! > 0, 'an upload traces the bytes it sent');
      }
      const out = r.stdout + r.stderr;
      for (const s of states) assert.ok(!out.includes(s), 'an upload _state value is printed');
      assert.ok(!out.includes(password), 'the password is printed');
      assert.ok(!out.includes(b64(`alice:${password}`)), 'the base64 credentials are printed');
      assert.doesNotMatch(out, /authorization|basic [A-Za-z0-9+/=]{8}|bearer /i);
      assert.doesNotMatch(out, JWT);
    });

    it('at the default level nothing is traced', async () => {
      const file = join(dir, 'quiet.yaml');
      await writeFile(file, [secret([src.host, dst.host]), mirror('quiet', `${src.host}/dev/app`, `${dst.host}/qa/app`)].join('---\n'));
      await Promise.all([src.resetLog(), dst.resetLog()]);
      const r = await cli(['sync', '-f', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await dst.accessLog()).length > 5, 'the run did talk to the registry');
      assert.doesNotMatch(r.stderr, /request/);
      assert.deepEqual(textTraces(r.stderr), []);
    });
  });

  describe('a token-auth registry', () => {
    let reg: TestRegistry;
    let client: RegistryClient;

    before(async () => {
      reg = await startRegistry({ auth: 'token', users });
      client = new RegistryClient(reg.host, { credentials: creds });
      await pushImage(client.repository('dev/app'), buildImage({ layers: [2000] }), '1.0');
    });
    after(async () => {
      await client.close();
      await reg.stop();
    });

    it('traces each token request (realm, service and scope, status, bytes) without the token, the account or the credentials', async () => {
      const file = join(dir, 'token.yaml');
      await writeFile(file, [secret([reg.host]), mirror('tokened', `${reg.host}/dev/app`, `${reg.host}/prod/app`)].join('---\n'));
      await reg.resetLog();
      const ts = reg.token!;
      const before = ts.requests.length;
      const r = await cli(['sync', '-f', file, '--log-level', 'debug', '--log-format', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const traces = jsonTraces(r.stderr);
      assertMatchesAccessLog(traces, reg, await reg.accessLog());
      const tokens = traces.filter((t) => t.message === 'token request');
      const served = ts.requests.slice(before);
      assert.equal(tokens.length, served.length, 'one line per token request the token server answered');
      assert.ok(tokens.length >= 1);
      for (const t of tokens) {
        assert.equal(t.registry, reg.host);
        assert.equal(t.method, 'GET');
        assert.equal(t.status, 200);
        assert.ok(t.bytes! > 0 && t.ms >= 0);
        const u = new URL(t.url);
        assert.equal(`${u.origin}${u.pathname}`, ts.realm);
        assert.equal(u.searchParams.get('service'), ts.service);
        assert.match(u.searchParams.getAll('scope').join(' '), /^repository:(dev|prod)\/app:/);
        assert.equal(u.searchParams.get('account'), '[REDACTED]');
      }
      const out = r.stdout + r.stderr;
      assert.ok(!out.includes(password));
      assert.ok(!out.includes(b64(`alice:${password}`)));
      assert.doesNotMatch(out, /authorization|bearer /i);
      assert.doesNotMatch(out, JWT, 'a token is printed');
      assert.doesNotMatch(out, /account=alice/);
    });
  });
});

describe('traceUrl', () => {
  it('shows the distribution API parameters, hides every other value, user:password and the fragment', () => {
    const origin = 'https://registry.example';
    assert.equal(
      traceUrl(new URL('https://registry.example/v2/a/b/blobs/uploads/u-1?_state=c2VjcmV0&digest=sha256:ab'), origin),
      '/v2/a/b/blobs/uploads/u-1?_state=[REDACTED]&digest=sha256:ab',
    );
    assert.equal(traceUrl(new URL('https://registry.example/v2/a/tags/list?n=100&last=v1.2'), origin), '/v2/a/tags/list?n=100&last=v1.2');
    assert.equal(
      traceUrl(new URL('https://registry.example/v2/a/blobs/uploads/?mount=sha256:cd&from=x/y'), origin),
      '/v2/a/blobs/uploads/?mount=sha256:cd&from=x/y',
    );
    // A presigned Location on storage: another origin, so scheme and host are shown.
    assert.equal(
      traceUrl(new URL('https://user:pw@bucket.s3.example/p/blob?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d&sig=a&se=2030&token=t#frag'), origin),
      'https://bucket.s3.example/p/blob?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&sig=[REDACTED]&se=[REDACTED]&token=[REDACTED]',
    );
    assert.equal(traceUrl(new URL('https://registry.example/v2/?line=a%0Ab&x=1'), origin), '/v2/?line=[REDACTED]&x=[REDACTED]');
  });

  it('never prints the value of a parameter outside TRACED_QUERY_PARAMS, whatever the names and values (property)', () => {
    const secretValue = fc.stringMatching(/^[A-Za-z0-9+/=_.~-]{12,40}$/);
    const name = fc.string({ minLength: 1, maxLength: 12 }).filter((n) => !TRACED_QUERY_PARAMS.has(n));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, secretValue), { minLength: 1, maxLength: 5 }), fc.boolean(), (params, sameOrigin) => {
        const u = new URL('https://registry.example/v2/r/blobs/uploads/1');
        for (const [k, v] of params) u.searchParams.append(k, v);
        const shown = traceUrl(u, sameOrigin ? 'https://registry.example' : undefined);
        for (const [, v] of params) assert.ok(!shown.includes(v) && !shown.includes(encodeURIComponent(v)), `${shown} shows ${v}`);
        assert.doesNotMatch(shown, /[\s#]/, 'one token, no fragment');
      }),
      { numRuns: 300 },
    );
  });
});

describe('Logger.isLevelEnabled', () => {
  const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

  it('says whether debug lines are written, for the logger and its children', () => {
    const info = createLogger({ level: 'info', stream: sink() });
    const debug = createLogger({ level: 'debug', stream: sink() });
    assert.equal(info.isLevelEnabled?.('debug'), false);
    assert.equal(info.isLevelEnabled?.('warn'), true);
    assert.equal(info.child({ mirror: 'a' }).isLevelEnabled?.('debug'), false);
    assert.equal(debug.isLevelEnabled?.('debug'), true);
    assert.equal(debug.child({ mirror: 'a' }).isLevelEnabled?.('debug'), true);
    assert.equal(silentLogger.isLevelEnabled?.('error'), false);
  });
});
