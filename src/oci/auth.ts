/**
 * Registry authentication: RFC 7235 challenge parsing and an Authenticator per registry that turns
 * the registry's challenge plus our credentials into an Authorization header — Basic as is, Bearer
 * via the token endpoint (distribution's token spec and its OAuth2 variant), with tokens cached per
 * account and scope set and renewed shortly before they expire.
 *
 * The registry client calls `authorization(scopes)` before each request and `onUnauthorized()` on a
 * 401, retrying once when it returns true. Token-endpoint failures are OciErrors whose messages name
 * the registry and the realm, never a password or token.
 */
import { request, type Dispatcher } from 'undici';
import { credentialAccount, type Credential, type CredentialProvider } from './credentials.js';
import { OciError, isOciError, type OciErrorCode } from './errors.js';
import { isLoopbackRegistry } from './reference.js';

export interface Challenge {
  /** Lowercased auth scheme, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameter names lowercased; values unquoted and unescaped. */
  params: Record<string, string>;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/**
 * Parses a WWW-Authenticate value: several challenges in one header, quoted strings with commas and
 * backslash escapes, token68 credentials (ignored). Malformed parts are skipped, not fatal: a
 * registry's odd header should not hide the challenge we can use.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  const n = header.length;
  let i = 0;
  const isWs = (c: string | undefined): boolean => c === ' ' || c === '\t';
  const skipWs = (): void => {
    while (i < n && isWs(header[i])) i++;
  };
  const readToken = (): string => {
    const s = i;
    while (i < n && TCHAR.test(header[i]!)) i++;
    return header.slice(s, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let v = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      v += header[i];
      i++;
    }
    i++; // closing quote
    return v;
  };
  const skipToComma = (): void => {
    while (i < n && header[i] !== ',') {
      if (header[i] === '"') readQuoted();
      else i++;
    }
  };

  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (i >= n) break;
    if (header[i] === ',') {
      i++;
      continue;
    }
    const tok = readToken();
    if (tok === '') {
      skipToComma();
      continue;
    }
    skipWs();
    if (header[i] === '=') {
      if (!current) {
        skipToComma();
        continue;
      }
      i++;
      skipWs();
      const value = header[i] === '"' ? readQuoted() : readToken();
      const name = tok.toLowerCase();
      if (!Object.hasOwn(current.params, name)) current.params[name] = value;
      skipWs();
      if (i < n && header[i] !== ',') skipToComma();
      continue;
    }
    current = { scheme: tok.toLowerCase(), params: {} };
    out.push(current);
    // `Scheme token68` (e.g. `Negotiate abc==`): one opaque value, then a comma or the end.
    const m = TOKEN68.exec(header.slice(i));
    if (m) {
      let j = i + m[0].length;
      while (j < n && isWs(header[j])) j++;
      if (j >= n || header[j] === ',') i = j;
    }
  }
  return out;
}

/** `repository:<name>:<actions>` with the actions in the order given (push first for a mount target). */
export function repositoryScope(repository: string, actions: Array<'pull' | 'push' | 'delete'>): string {
  return `repository:${repository}:${actions.join(',')}`;
}

export interface AuthenticatorOptions {
  /** Canonical registry host, used for credential lookup and in messages. */
  registry: string;
  credentials: CredentialProvider;
  dispatcher?: Dispatcher;
  /** Milliseconds since the epoch; tests move time forward to exercise renewal. */
  now?: () => number;
  onTokenRequest?: (e: { realm: string; status: number | 'error' }) => void;
  /** Allow sending credentials to a plain-HTTP token realm on a non-loopback host (the mirror's `insecure: true`). */
  insecure?: boolean;
  /** OAuth2 `client_id` (default `image-mirror-controller`). */
  clientId?: string;
  /** Token endpoint request timeout in ms (default 30 s). */
  timeoutMs?: number;
}

interface KnownChallenge {
  scheme: 'basic' | 'bearer';
  realm?: string;
  service?: string;
}

interface CachedToken {
  token: string;
  renewAt: number;
  /**
   * Handed out again after the request(s) it was fetched for. A 401 with a token minted just now
   * for exactly these scopes is the registry's verdict on the grant, and a new token would carry
   * the same grant; a 401 with a reused one may mean it expired or was revoked early.
   */
  reused: boolean;
}

const DEFAULT_EXPIRES_IN_S = 60;
const RENEW_EARLY_MS = 5000;

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** Realm without query string, safe for messages and metric labels. */
function realmLabel(realm: string): string {
  try {
    const u = new URL(realm);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid realm URL)';
  }
}

export class Authenticator {
  private readonly registry: string;
  private readonly credentials: CredentialProvider;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly now: () => number;
  private readonly onTokenRequest: AuthenticatorOptions['onTokenRequest'];
  private readonly insecure: boolean;
  private readonly clientId: string;
  private readonly timeoutMs: number;
  private challenge: KnownChallenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Keys that just had a 401 and whose next token is the retry. */
  private readonly retrying = new Set<string>();
  /** Refresh tokens rotated by the server, by the identity token they replaced. */
  private readonly rotatedRefresh = new Map<string, string>();

  constructor(o: AuthenticatorOptions) {
    this.registry = o.registry;
    this.credentials = o.credentials;
    this.dispatcher = o.dispatcher;
    this.now = o.now ?? Date.now;
    this.onTokenRequest = o.onTokenRequest;
    this.insecure = o.insecure ?? false;
    this.clientId = o.clientId ?? 'image-mirror-controller';
    this.timeoutMs = o.timeoutMs ?? 30000;
  }

  async authorization(scopes: string[]): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    const cred = await this.credential();
    if (ch.scheme === 'basic') return cred?.kind === 'basic' ? basicHeader(cred.username, cred.password) : undefined;
    if (cred?.kind === 'registryToken') return `Bearer ${cred.registryToken}`;
    const t = await this.token(ch, scopes, cred);
    return `Bearer ${t.token}`;
  }

  async onUnauthorized(wwwAuthenticate: string | undefined, scopes: string[]): Promise<boolean> {
    const challenges = wwwAuthenticate ? parseWwwAuthenticate(wwwAuthenticate) : [];
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    const basic = challenges.find((c) => c.scheme === 'basic');
    const next: KnownChallenge | undefined = bearer
      ? { scheme: 'bearer', realm: bearer.params.realm, service: bearer.params.service }
      : basic
        ? { scheme: 'basic' }
        : undefined;
    if (!next) return false;
    const cred = await this.credential();
    const key = this.key(scopes, cred);
    const prev = this.challenge;
    const changed = !prev || prev.scheme !== next.scheme || prev.realm !== next.realm || prev.service !== next.service;
    if (changed) {
      this.challenge = next;
      this.tokens.clear();
      this.retrying.clear();
      if (next.scheme === 'basic') return cred?.kind === 'basic';
      this.retrying.add(key);
      return true;
    }
    // The same Basic credentials or the same static token would be refused again.
    if (next.scheme === 'basic' || cred?.kind === 'registryToken') return false;
    const cached = this.tokens.get(key);
    this.tokens.delete(key);
    if (cached) {
      if (!cached.reused) return false;
      this.retrying.add(key);
      return true;
    }
    // Another request with the same token already asked for a fresh one: retry with it.
    return this.retrying.has(key);
  }

  private async credential(): Promise<Credential | undefined> {
    try {
      return await this.credentials.get(this.registry);
    } catch (e) {
      if (isOciError(e)) throw e;
      const msg = e instanceof Error ? (e.message.split('\n')[0] ?? e.name) : String(e);
      throw new OciError({ code: 'UNAUTHORIZED', registry: this.registry, retryable: false, message: `credentials for ${this.registry}: ${msg}` });
    }
  }

  private key(scopes: string[], cred: Credential | undefined): string {
    return `${this.registry}\n${credentialAccount(cred)}\n${[...new Set(scopes)].sort().join(' ')}`;
  }

  private async token(ch: KnownChallenge, scopes: string[], cred: Credential | undefined): Promise<CachedToken> {
    const key = this.key(scopes, cred);
    const cached = this.tokens.get(key);
    if (cached && this.now() < cached.renewAt) {
      cached.reused = true;
      return cached;
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = (async () => {
      try {
        const t = await this.fetchToken(ch, scopes, cred);
        this.retrying.delete(key);
        // A challenge change while fetching makes this token meaningless for the new one.
        if (this.challenge === ch) {
          this.prune();
          this.tokens.set(key, t);
        }
        return t;
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }

  /** A long-running controller sees many scope sets; expired tokens are only memory. */
  private prune(): void {
    if (this.tokens.size < 256) return;
    const now = this.now();
    for (const [k, t] of this.tokens) if (t.renewAt <= now) this.tokens.delete(k);
  }

  private fail(code: OciErrorCode, message: string, status?: number): OciError {
    return new OciError({ code, message, status, registry: this.registry, retryable: code === 'NETWORK' || code === 'SERVER_ERROR' || code === 'TOO_MANY_REQUESTS' || code === 'TIMEOUT' });
  }

  private async fetchToken(ch: KnownChallenge, scopes: string[], cred: Credential | undefined): Promise<CachedToken> {
    const realm = ch.realm ?? '';
    const label = realmLabel(realm);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw this.fail('PROTOCOL', `registry ${this.registry} sent an invalid token realm`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw this.fail('PROTOCOL', `registry ${this.registry} sent a token realm with scheme ${url.protocol}`);
    if (cred && url.protocol === 'http:' && !isLoopbackRegistry(url.host) && !this.insecure) {
      throw this.fail('UNAUTHORIZED', `refusing to send credentials for ${this.registry} to plain-HTTP token realm ${label} (mark the registry insecure to allow it)`);
    }
    const started = this.now();
    let body: TokenResponse;
    if (cred?.kind === 'identityToken') {
      const refresh = this.rotatedRefresh.get(cred.identityToken) ?? cred.identityToken;
      const r = await this.call(url, label, 'POST', scopes, ch.service, { refresh });
      if (r.status === 404) {
        body = await this.expect(label, await this.call(url, label, 'GET', scopes, ch.service, { basic: [cred.username ?? '<token>', refresh] }));
      } else {
        body = await this.expect(label, r);
        if (body.refresh_token && body.refresh_token !== refresh) this.rotatedRefresh.set(cred.identityToken, body.refresh_token);
      }
    } else {
      const basic: [string, string] | undefined = cred?.kind === 'basic' ? [cred.username, cred.password] : undefined;
      body = await this.expect(label, await this.call(url, label, 'GET', scopes, ch.service, { basic }));
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw this.fail('PROTOCOL', `token endpoint ${label} for ${this.registry} returned no token`);
    const expiresIn = Number(body.expires_in);
    const lifetimeMs = (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_EXPIRES_IN_S) * 1000;
    let issued = started;
    const serverIssued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
    // Trust the server's issue time only when it says the token is older than our clock does and
    // still alive: a skewed clock must never make a token look valid for longer.
    if (Number.isFinite(serverIssued) && serverIssued < started && started - serverIssued < lifetimeMs) issued = serverIssued;
    return { token, renewAt: issued + lifetimeMs - Math.min(RENEW_EARLY_MS, lifetimeMs / 2), reused: false };
  }

  private async call(
    url: URL,
    label: string,
    method: 'GET' | 'POST',
    scopes: string[],
    service: string | undefined,
    auth: { basic?: [string, string]; refresh?: string },
  ): Promise<{ status: number; text: string }> {
    const u = new URL(url);
    const headers: Record<string, string> = { accept: 'application/json' };
    let payload: string | undefined;
    if (method === 'GET') {
      if (service !== undefined) u.searchParams.set('service', service);
      for (const s of scopes) u.searchParams.append('scope', s);
      if (auth.basic) {
        headers.authorization = basicHeader(auth.basic[0], auth.basic[1]);
        if (auth.basic[0] !== '<token>') u.searchParams.set('account', auth.basic[0]);
      }
    } else {
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', auth.refresh ?? '');
      form.set('service', service ?? '');
      form.set('client_id', this.clientId);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      payload = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    try {
      const res = await request(u, {
        method,
        headers,
        body: payload,
        dispatcher: this.dispatcher,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await res.body.text();
      this.onTokenRequest?.({ realm: label, status: res.statusCode });
      return { status: res.statusCode, text };
    } catch (e) {
      this.onTokenRequest?.({ realm: label, status: 'error' });
      const code = (e as { code?: string }).code ?? '';
      const timeout = /TIMEOUT/.test(code);
      throw this.fail(timeout ? 'TIMEOUT' : 'NETWORK', `token request for ${this.registry} to ${label} failed: ${timeout ? 'timed out' : code || (e instanceof Error ? e.message.split('\n')[0] : String(e))}`);
    }
  }

  private async expect(label: string, r: { status: number; text: string }): Promise<TokenResponse> {
    const where = `token endpoint ${label} for ${this.registry}`;
    if (r.status === 401) throw this.fail('UNAUTHORIZED', `${where} refused the credentials (401)`, 401);
    if (r.status === 403) throw this.fail('DENIED', `${where} denied access (403)`, 403);
    if (r.status === 429) throw this.fail('TOO_MANY_REQUESTS', `${where} is rate limiting (429)`, 429);
    if (r.status >= 500) throw this.fail('SERVER_ERROR', `${where} failed (${r.status})`, r.status);
    if (r.status === 404) throw this.fail('PROTOCOL', `${where} not found (404)`, 404);
    if (r.status < 200 || r.status >= 300) throw this.fail('DENIED', `${where} answered ${r.status}`, r.status);
    try {
      const v: unknown = JSON.parse(r.text);
      if (v && typeof v === 'object') return v as TokenResponse;
    } catch {
      // fall through
    }
    throw this.fail('PROTOCOL', `${where} returned a response that is not a JSON object`);
  }
}

interface TokenResponse {
  token?: unknown;
  access_token?: unknown;
  expires_in?: unknown;
  issued_at?: unknown;
  refresh_token?: string;
}
