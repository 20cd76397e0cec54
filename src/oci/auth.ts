/**
 * Registry authentication: RFC 7235 challenge parsing and an Authenticator per registry that turns
 * the registry's challenge plus our credentials into an Authorization header — Basic as is, Bearer
 * via the token endpoint (distribution's token spec and its OAuth2 variant), with tokens cached per
 * account and scope set and renewed shortly before they expire.
 *
 * The registry client calls `authorization(scopes)` before each request and `onUnauthorized()` on a
 * 401, retrying once when it returns true. Token-endpoint failures are OciErrors whose messages name
 * the registry and the realm, never a password or token.
 *
 * Challenges are kept per repository on top of a registry-wide default: the first challenge that
 * worked (a token was fetched with it) becomes the default every repository uses up front, so the
 * common registry costs one 401 in all; a repository answering with another challenge keeps its
 * own, and a realm that fails for one repository never replaces what the others use.
 *
 * A token fetch has a total deadline (headers and body) and a size cap enforced while reading.
 */
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { credentialAccount, rememberCredential, type Credential, type CredentialProvider } from './credentials.js';
import { OciError, isOciError, type OciErrorCode } from './errors.js';
import { elapsedMs, traceUrl, type RequestEvent } from './http.js';
import { registerSecret } from './redact.js';
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

/**
 * One request to a token endpoint, for a trace. `url` is the realm with the query we sent, every
 * value but `service` and `scope` hidden (never `account`); the form of a POST (a refresh token)
 * and the Authorization header are never part of it.
 */
export interface TokenRequestEvent extends Omit<RequestEvent, 'rateLimit'> {
  /** The realm without its query string. */
  realm: string;
}

export interface AuthenticatorOptions {
  /** Canonical registry host, used for credential lookup and in messages. */
  registry: string;
  credentials: CredentialProvider;
  dispatcher?: Dispatcher;
  /** Milliseconds since the epoch; tests move time forward to exercise renewal. */
  now?: () => number;
  onTokenRequest?: (e: { realm: string; status: number | 'error' }) => void;
  /** Every token request with what a trace shows of it (method, URL, status, bytes, time). */
  onRequest?: (e: TokenRequestEvent) => void;
  /** Allow sending credentials to a plain-HTTP token realm on a non-loopback host (the mirror's `insecure: true`). */
  insecure?: boolean;
  /** OAuth2 `client_id` (default `image-mirror-controller`). */
  clientId?: string;
  /** Total deadline per token request, headers and body, in ms (default TOKEN_DEADLINE_MS). */
  timeoutMs?: number;
  /** Largest token response read, in bytes (default MAX_TOKEN_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

/** A token endpoint has this long (connect, headers and body together) to answer one request. */
export const TOKEN_DEADLINE_MS = 30_000;
/**
 * Token responses are a JWT and a few fields (Docker Hub's are ~5 KiB); anything past this is a
 * hostile or broken endpoint, refused before it is buffered.
 */
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
/**
 * Repositories whose challenge differs from the registry default, remembered per registry. Past
 * this the least recently learned is forgotten, which costs that repository one 401 again.
 */
export const MAX_CHALLENGE_OVERRIDES = 1024;

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

/**
 * Lifetime of a token whose response says nothing about it (no `expires_in`) and that is not a JWT
 * with an `exp`: distribution's token spec says 60 s.
 */
export const DEFAULT_EXPIRES_IN_S = 60;
const RENEW_EARLY_MS = 5000;

/** Expiry (ms since the epoch) of a JWT, from its `exp` claim, without verifying it: the registry does that. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When a token fetched at `started` (our clock) expires: after `expires_in` when the response has
 * one; else at the JWT's `exp` when it is a JWT whose `exp` is still ahead (registries such as
 * Harbor and Quay leave `expires_in` out and mint tokens for many minutes, which a fixed 60 s would
 * fetch again and again); else after DEFAULT_EXPIRES_IN_S.
 */
export function tokenExpiresAt(grant: Pick<TokenGrant, 'token' | 'expiresInS' | 'issuedAt'>, started: number): number {
  if (grant.expiresInS === undefined) {
    const exp = jwtExpiry(grant.token);
    if (exp !== undefined && exp > started) return exp;
  }
  const lifetimeMs = (grant.expiresInS ?? DEFAULT_EXPIRES_IN_S) * 1000;
  let issued = started;
  const serverIssued = grant.issuedAt ?? NaN;
  // Trust the server's issue time only when it says the token is older than our clock does and
  // still alive: a skewed clock must never make a token look valid for longer.
  if (Number.isFinite(serverIssued) && serverIssued < started && started - serverIssued < lifetimeMs) issued = serverIssued;
  return issued + lifetimeMs;
}

function sameChallenge(a: KnownChallenge | undefined, b: KnownChallenge | undefined): boolean {
  return !!a && !!b && a.scheme === b.scheme && a.realm === b.realm && a.service === b.service;
}

/** `repository:<name>` of the first scope: the unit a registry's challenge may vary by. */
function scopeResource(scopes: string[]): string {
  const s = scopes[0] ?? '';
  const i = s.lastIndexOf(':');
  return i > 0 ? s.slice(0, i) : s;
}

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
  private readonly onRequest: AuthenticatorOptions['onRequest'];
  private readonly insecure: boolean;
  private readonly clientId: string;
  private timeoutMs: number;
  private readonly timeoutFixed: boolean;
  private readonly maxResponseBytes: number;
  /** The challenge every repository uses until it answers with its own. */
  private defaultChallenge: KnownChallenge | undefined;
  /** Scope resource → a challenge that differs from the default (insertion order = age). */
  private readonly overrides = new Map<string, KnownChallenge>();
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
    this.onRequest = o.onRequest;
    this.insecure = o.insecure ?? false;
    this.clientId = o.clientId ?? 'image-mirror-controller';
    this.timeoutMs = o.timeoutMs ?? TOKEN_DEADLINE_MS;
    this.timeoutFixed = o.timeoutMs !== undefined;
    this.maxResponseBytes = o.maxResponseBytes ?? MAX_TOKEN_RESPONSE_BYTES;
  }

  /**
   * The token deadline configured with the registry's other timeouts; an explicit `timeoutMs`
   * given to the constructor wins.
   */
  useDeadline(ms: number | undefined): void {
    if (ms !== undefined && !this.timeoutFixed) this.timeoutMs = ms;
  }

  /** The total deadline of one token request, in ms. */
  get deadlineMs(): number {
    return this.timeoutMs;
  }

  private challengeFor(scopes: string[]): KnownChallenge | undefined {
    return this.overrides.get(scopeResource(scopes)) ?? this.defaultChallenge;
  }

  private setOverride(resource: string, ch: KnownChallenge): void {
    this.overrides.delete(resource);
    if (sameChallenge(ch, this.defaultChallenge)) return;
    this.overrides.set(resource, ch);
    while (this.overrides.size > MAX_CHALLENGE_OVERRIDES) this.overrides.delete(this.overrides.keys().next().value as string);
  }

  /** A challenge proved usable becomes the default if there is none yet. */
  private proven(ch: KnownChallenge): void {
    if (this.defaultChallenge) return;
    this.defaultChallenge = ch;
    for (const [r, c] of this.overrides) if (sameChallenge(c, ch)) this.overrides.delete(r);
  }

  /** Repositories holding a challenge of their own (for tests of the bound). */
  get overrideCount(): number {
    return this.overrides.size;
  }

  async authorization(scopes: string[]): Promise<string | undefined> {
    const ch = this.challengeFor(scopes);
    if (!ch) return undefined;
    const cred = await this.credential();
    if (ch.scheme === 'basic') return cred?.kind === 'basic' ? basicHeader(cred.username, cred.password) : undefined;
    if (cred?.kind === 'registryToken') return `Bearer ${cred.registryToken}`;
    const t = await this.token(ch, scopes, cred);
    this.proven(ch);
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
    const prev = this.challengeFor(scopes);
    if (!sameChallenge(prev, next)) {
      // This repository's own challenge; others keep theirs (and the default) whatever it is.
      this.setOverride(scopeResource(scopes), next);
      // Nothing can fail before the registry judges Basic or a static token: usable as the default.
      if (next.scheme === 'basic' || cred?.kind === 'registryToken') this.proven(next);
      if (next.scheme === 'basic') return cred?.kind === 'basic';
      this.retrying.add(this.key(next, scopes, cred));
      return true;
    }
    const key = this.key(next, scopes, cred);
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
      const c = await this.credentials.get(this.registry);
      // Whatever provider produced it (a Secret, a cloud exchange, a test), it is a secret now.
      rememberCredential(c);
      return c;
    } catch (e) {
      if (isOciError(e)) throw e;
      const msg = e instanceof Error ? (e.message.split('\n')[0] ?? e.name) : String(e);
      throw new OciError({ code: 'UNAUTHORIZED', registry: this.registry, retryable: false, message: `credentials for ${this.registry}: ${msg}` });
    }
  }

  /** Tokens belong to the realm and service that minted them. */
  private key(ch: KnownChallenge, scopes: string[], cred: Credential | undefined): string {
    return `${ch.realm ?? ''}\n${ch.service ?? ''}\n${credentialAccount(cred)}\n${[...new Set(scopes)].sort().join(' ')}`;
  }

  private async token(ch: KnownChallenge, scopes: string[], cred: Credential | undefined): Promise<CachedToken> {
    const key = this.key(ch, scopes, cred);
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
        this.prune();
        this.tokens.set(key, t);
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
    const where = { registry: this.registry, label };
    let grant: TokenGrant;
    if (cred?.kind === 'identityToken') {
      const refresh = this.rotatedRefresh.get(cred.identityToken) ?? cred.identityToken;
      const r = await this.call(url, label, 'POST', scopes, ch.service, { refresh });
      if (r.status === 404) {
        grant = parseTokenResponse(await this.call(url, label, 'GET', scopes, ch.service, { basic: [cred.username ?? '<token>', refresh] }), where);
      } else {
        grant = parseTokenResponse(r, where);
        if (grant.refreshToken && grant.refreshToken !== refresh) this.rotatedRefresh.set(cred.identityToken, grant.refreshToken);
      }
    } else {
      const basic: [string, string] | undefined = cred?.kind === 'basic' ? [cred.username, cred.password] : undefined;
      grant = parseTokenResponse(await this.call(url, label, 'GET', scopes, ch.service, { basic }), where);
    }
    const expiresAt = tokenExpiresAt(grant, started);
    const lifetimeMs = Math.max(0, expiresAt - started);
    return { token: grant.token, renewAt: expiresAt - Math.min(RENEW_EARLY_MS, lifetimeMs / 2), reused: false };
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
    const where = `token request for ${this.registry} to ${label}`;
    const deadline = new AbortController();
    const timedOut = this.fail('TIMEOUT', `${where} timed out (no complete answer within ${seconds(this.timeoutMs)})`);
    // undici acts on an abort only once connected: a hung connect or TLS handshake is raced.
    let expire: (e: OciError) => void = () => undefined;
    const expired = new Promise<never>((_, reject) => (expire = reject));
    expired.catch(() => undefined);
    const timer = setTimeout(() => {
      deadline.abort(timedOut);
      expire(timedOut);
    }, this.timeoutMs);
    let status: number | 'error' = 'error';
    let lost = false;
    const started = performance.now();
    let ms: number | undefined;
    let bytes: number | undefined;
    try {
      const pending = request(u, { method, headers, body: payload, dispatcher: this.dispatcher, signal: deadline.signal });
      pending.then(
        (r) => {
          if (lost) {
            r.body.on('error', () => undefined);
            r.body.destroy();
          }
        },
        () => undefined,
      );
      const res = await Promise.race([pending, expired]).catch((e: unknown) => {
        lost = true;
        throw e;
      });
      status = res.statusCode;
      ms = elapsedMs(started);
      const text = await readTokenBody(res.body, header(res.headers, 'content-length'), this.maxResponseBytes, () =>
        this.fail('PROTOCOL', `${where}: response larger than ${this.maxResponseBytes} bytes`),
      );
      bytes = Buffer.byteLength(text, 'utf8');
      return { status: res.statusCode, text };
    } catch (e) {
      status = 'error';
      if (deadline.signal.aborted) throw timedOut;
      if (isOciError(e)) throw e;
      const code = (e as { code?: string }).code ?? '';
      const timeout = /TIMEOUT/.test(code);
      throw this.fail(timeout ? 'TIMEOUT' : 'NETWORK', `${where} failed: ${timeout ? 'timed out' : code || (e instanceof Error ? e.message.split('\n')[0] : String(e))}`);
    } finally {
      clearTimeout(timer);
      this.onTokenRequest?.({ realm: label, status });
      this.onRequest?.({ registry: this.registry, method, url: traceUrl(u), status, ...(bytes !== undefined ? { bytes } : {}), ms: ms ?? elapsedMs(started), realm: label });
    }
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads a token response body, refusing it (and dropping the connection) as soon as it is known
 * to exceed `max` bytes: from Content-Length before reading, or while streaming.
 */
export async function readTokenBody(body: Readable, contentLength: string | undefined, max: number, tooLarge: () => OciError): Promise<string> {
  const drop = (): void => {
    body.on('error', () => undefined);
    body.destroy();
  };
  if (contentLength !== undefined && Number(contentLength) > max) {
    drop();
    throw tooLarge();
  }
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    n += b.length;
    if (n > max) {
      drop();
      throw tooLarge();
    }
    parts.push(b);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** What a token endpoint granted, normalized. */
export interface TokenGrant {
  token: string;
  /** Positive lifetime in seconds, when the server gave a usable one. */
  expiresInS?: number;
  /** Server's issue time (ms since the epoch), when readable. */
  issuedAt?: number;
  refreshToken?: string;
}

/**
 * A token endpoint's answer → the grant, or a typed OciError naming the endpoint (never quoting
 * the body, which may hold someone's token). Tokens found are registered for redaction.
 */
export function parseTokenResponse(r: { status: number; text: string }, where: { registry: string; label: string }): TokenGrant {
  const w = `token endpoint ${where.label} for ${where.registry}`;
  const fail = (code: OciErrorCode, message: string, status?: number): OciError =>
    new OciError({ code, message, status, registry: where.registry, retryable: code === 'SERVER_ERROR' || code === 'TOO_MANY_REQUESTS' });
  if (r.status === 401) throw fail('UNAUTHORIZED', `${w} refused the credentials (401)`, 401);
  if (r.status === 403) throw fail('DENIED', `${w} denied access (403)`, 403);
  if (r.status === 429) throw fail('TOO_MANY_REQUESTS', `${w} is rate limiting (429)`, 429);
  if (r.status >= 500) throw fail('SERVER_ERROR', `${w} failed (${r.status})`, r.status);
  if (r.status === 404) throw fail('PROTOCOL', `${w} not found (404)`, 404);
  if (r.status < 200 || r.status >= 300) throw fail('DENIED', `${w} answered ${r.status}`, r.status);
  let v: unknown;
  try {
    v = JSON.parse(r.text);
  } catch {
    throw fail('PROTOCOL', `${w} returned a response that is not a JSON object`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw fail('PROTOCOL', `${w} returned a response that is not a JSON object`);
  const body = v as Record<string, unknown>;
  const refreshToken = typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : undefined;
  registerSecret(refreshToken);
  const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
  if (!token) throw fail('PROTOCOL', `${w} returned no token`);
  registerSecret(token, 'token');
  if (typeof body.access_token === 'string') registerSecret(body.access_token, 'token');
  const expiresIn = Number(body.expires_in);
  const issuedAt = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
  return {
    token,
    ...(Number.isFinite(expiresIn) && expiresIn > 0 ? { expiresInS: expiresIn } : {}),
    ...(Number.isFinite(issuedAt) ? { issuedAt } : {}),
    ...(refreshToken ? { refreshToken } : {}),
  };
}
