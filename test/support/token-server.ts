/**
 * A small token server for docker-registry's `auth: token` mode (distribution's token spec):
 * RS256 JWTs with an `x5c` header naming a self-signed certificate, which the registry trusts
 * through `rootcertbundle`. Serves GET (Basic auth, repeated `scope`) and OAuth2 POST
 * (grant_type=password|refresh_token) on `/token`, granting the intersection of the requested and
 * the allowed actions. Everything is on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { createSign, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

type Action = 'pull' | 'push' | 'delete';

export interface TokenGrantRule {
  /** An account name; `*anonymous*` for requests without credentials; `*` for any authenticated account. */
  account: string | '*anonymous*' | '*';
  /** Exact repository name, or a glob where `*` matches any characters including `/` (`src/*`, `*`). */
  repository: string;
  actions: Array<Action | '*'>;
}

export interface TokenServerRequest {
  method: string;
  /** Undefined for anonymous requests (and for requests whose credentials were refused). */
  account?: string;
  scopes: string[];
  status: number;
  /** `password` / `refresh_token` for OAuth2 POSTs; undefined for GET. */
  grantType?: string;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file path for the registry's `rootcertbundle`. */
  rootCertBundle: string;
  requests: TokenServerRequest[];
  stop(): Promise<void>;
}

export interface StartTokenServerOptions {
  users: Record<string, string>;
  rules: TokenGrantRule[];
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  service?: string;
  /** Answer OAuth2 POSTs (default true); false makes POST 404, as servers without OAuth2 do. */
  oauth2?: boolean;
  /**
   * Leave `expires_in` out of responses. Its tokens are opaque unless `tokenFormat` says `jwt`, so
   * clients must apply the 60 s default (a JWT's `exp` would tell them the lifetime).
   */
  omitExpiresIn?: boolean;
  /**
   * `jwt` (what a registry verifies; the default without omitExpiresIn) or `opaque` (random text,
   * for tests of the client alone; the default with omitExpiresIn).
   */
  tokenFormat?: 'jwt' | 'opaque';
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function globMatch(glob: string, name: string): boolean {
  const re = new RegExp('^' + glob.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(name);
}

interface ParsedScope {
  type: string;
  name: string;
  actions: string[];
}

/** `type:name:actions`; the name may contain `:` (host:port), so split from both ends. */
function parseScope(s: string): ParsedScope | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

export async function startTokenServer(o: StartTokenServerOptions): Promise<TokenServer> {
  const service = o.service ?? 'test-registry';
  const issuer = 'imc-test-token-issuer';
  const expiresIn = o.expiresIn ?? 300;
  const dir = await mkdtemp(join(tmpdir(), 'imc-token-'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await execFileP('openssl', ['req', '-x509', '-new', '-key', keyPath, '-subj', `/CN=${issuer}`, '-days', '2', '-out', certPath]);
  const certPem = await readFile(certPath, 'utf8');
  const certDer = new X509Certificate(certPem).raw;

  const refreshTokens = new Map<string, string>();
  const requests: TokenServerRequest[] = [];

  function sign(account: string | undefined, access: ParsedScope[]): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: account ?? '',
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access: access.map((a) => ({ type: a.type, name: a.name, actions: a.actions })),
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(privateKey);
    return `${input}.${b64url(sig)}`;
  }

  function grant(account: string | undefined, scopes: string[]): ParsedScope[] {
    const out: ParsedScope[] = [];
    for (const s of scopes) {
      const p = parseScope(s);
      if (!p || p.type !== 'repository') continue;
      const allowed = new Set<string>();
      for (const r of o.rules) {
        const who = r.account === '*anonymous*' ? account === undefined : r.account === '*' ? account !== undefined : r.account === account;
        if (!who || !globMatch(r.repository, p.name)) continue;
        for (const a of r.actions) {
          if (a === '*') ['pull', 'push', 'delete'].forEach((x) => allowed.add(x));
          else allowed.add(a);
        }
      }
      const actions = p.actions.includes('*') ? [...allowed] : p.actions.filter((a) => allowed.has(a));
      if (actions.length > 0) out.push({ type: p.type, name: p.name, actions });
    }
    return out;
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  const opaque = (o.tokenFormat ?? (o.omitExpiresIn ? 'opaque' : 'jwt')) === 'opaque';

  function issue(res: ServerResponse, account: string | undefined, scopes: string[], extra: Record<string, string> = {}): void {
    const token = opaque ? `opaque-${randomBytes(24).toString('base64url')}` : sign(account, grant(account, scopes));
    const body: Record<string, unknown> = { token, access_token: token, issued_at: new Date().toISOString(), ...extra };
    if (!o.omitExpiresIn) body.expires_in = expiresIn;
    send(res, 200, body);
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const log = (r: Omit<TokenServerRequest, 'method'>): void => {
        requests.push({ method: req.method ?? '', ...r });
      };
      if (url.pathname !== '/token') {
        send(res, 404, { error: 'not_found' });
        return;
      }
      if (req.method === 'GET') {
        const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
        let account: string | undefined;
        const h = req.headers.authorization;
        if (h) {
          const m = /^Basic\s+(\S+)$/i.exec(h);
          const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
          const i = decoded.indexOf(':');
          const user = decoded.slice(0, i);
          const pass = decoded.slice(i + 1);
          if (i < 0 || o.users[user] === undefined || o.users[user] !== pass) {
            log({ scopes, status: 401 });
            send(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication failed' }] });
            return;
          }
          account = user;
        }
        log({ account, scopes, status: 200 });
        issue(res, account, scopes);
        return;
      }
      if (req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req));
        const grantType = form.get('grant_type') ?? '';
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        if (o.oauth2 === false) {
          log({ scopes, status: 404, grantType });
          send(res, 404, { error: 'not_found' });
          return;
        }
        if (!form.get('client_id') || !form.get('service')) {
          log({ scopes, status: 400, grantType });
          send(res, 400, { error: 'invalid_request', error_description: 'client_id and service are required' });
          return;
        }
        if (grantType === 'password') {
          const user = form.get('username') ?? '';
          if (o.users[user] === undefined || o.users[user] !== form.get('password')) {
            log({ scopes, status: 401, grantType });
            send(res, 401, { error: 'invalid_grant' });
            return;
          }
          const extra: Record<string, string> = {};
          if (form.get('access_type') === 'offline') {
            const rt = randomBytes(18).toString('base64url');
            refreshTokens.set(rt, user);
            extra.refresh_token = rt;
          }
          log({ account: user, scopes, status: 200, grantType });
          issue(res, user, scopes, extra);
          return;
        }
        if (grantType === 'refresh_token') {
          const account = refreshTokens.get(form.get('refresh_token') ?? '');
          if (account === undefined) {
            log({ scopes, status: 401, grantType });
            send(res, 401, { error: 'invalid_grant' });
            return;
          }
          log({ account, scopes, status: 200, grantType });
          issue(res, account, scopes);
          return;
        }
        log({ scopes, status: 400, grantType });
        send(res, 400, { error: 'unsupported_grant_type' });
        return;
      }
      send(res, 405, { error: 'method_not_allowed' });
    })().catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: String(e) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let stopped = false;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: certPath,
    requests,
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
