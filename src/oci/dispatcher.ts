/**
 * The connection layer under the registry transport: which proxy (if any) a request goes through,
 * and the TLS a registry is spoken to with. Proxies come from HTTPS_PROXY, HTTP_PROXY and NO_PROXY
 * as every container tool reads them; TLS from the host's certs directory (certs-dir.ts). The same
 * TLS applies whether the registry is reached directly or through a proxy's CONNECT tunnel.
 */
import { BlockList, isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { Agent, Dispatcher, Pool, ProxyAgent } from 'undici';
import type { HostTls } from './certs-dir.js';
import { OciError } from './errors.js';
import { isLoopbackRegistry } from './reference.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;
export const DEFAULT_CONNECTIONS = 8;

export interface DispatcherOptions {
  /** The registry (`host[:port]`) this dispatcher serves; named in configuration errors. */
  host: string;
  /** Do not verify the registry's certificate. */
  insecure?: boolean;
  /** The host's certs-directory material: CAs to trust and a client certificate to present. */
  tls?: HostTls;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Connections per origin. */
  connections?: number;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** How to reach a registry: `probe` tries HTTPS without verification, then plain HTTP. */
export type Scheme = 'https' | 'http' | 'probe';

/**
 * `insecure` probes; a host with a certs directory is always HTTPS verified with it (loopback
 * included: someone set up TLS material for it); other loopback hosts get plain HTTP; everything
 * else HTTPS.
 */
export function schemeFor(host: string, o: { insecure?: boolean; tls?: HostTls }): Scheme {
  if (o.insecure) return 'probe';
  if (o.tls) return 'https';
  return isLoopbackRegistry(host) ? 'http' : 'https';
}

// ---- proxy selection -------------------------------------------------------------------------

export type NoProxyRule =
  | { kind: 'all' }
  /** `host` matches itself and its subdomains; port 0 means any port. */
  | { kind: 'host'; host: string; port: number }
  | { kind: 'cidr'; list: BlockList; family: 'ipv4' | 'ipv6' };

export interface ProxySettings {
  httpProxy?: URL;
  httpsProxy?: URL;
  noProxy: NoProxyRule[];
}

/** `[::1]` → `::1`; IPv4 shorthand, case and IDNA as the URL parser writes them. */
function normalizeHost(host: string): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  try {
    return new URL(`http://${isIP(bare) === 6 ? `[${bare}]` : bare}`).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return bare.toLowerCase();
  }
}

function parseNoProxyEntry(raw: string): NoProxyRule | undefined {
  const entry = raw.trim();
  if (entry === '') return undefined;
  if (entry === '*') return { kind: 'all' };
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
  if (cidr) {
    const family = isIP(cidr[1]!);
    const prefix = Number(cidr[2]);
    if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
    const list = new BlockList();
    const type = family === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(cidr[1]!, prefix, type);
    return { kind: 'cidr', list, family: type };
  }
  let host = entry;
  let port = 0;
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
  const withPort = /^(.*):(\d+)$/.exec(entry);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] ? Number(bracketed[2]) : 0;
  } else if (isIP(entry) === 0 && withPort) {
    host = withPort[1]!;
    port = Number(withPort[2]);
  }
  // `.example.com` and `*.example.com` mean the domain and everything under it, as for undici and curl.
  host = host.replace(/^\*?\./, '');
  if (host === '') return undefined;
  return { kind: 'host', host: normalizeHost(host), port };
}

/**
 * NO_PROXY entries, separated by commas or whitespace: `*` (no proxy at all), a host or domain
 * (`registry.local`, `.corp.example`, `*.corp.example`: the name and every name under it), any
 * of those with `:port`, IP addresses (`10.0.0.5`, `::1`, `[::1]:5000`) and CIDR blocks
 * (`10.0.0.0/8`, `fd00::/8`), as Go-based container tools accept. Unusable entries are skipped.
 */
export function parseNoProxy(value: string): NoProxyRule[] {
  return value.split(/[,\s]+/).flatMap((e) => parseNoProxyEntry(e) ?? []);
}

/** Whether NO_PROXY sends `hostname:port` direct. */
export function bypassesProxy(hostname: string, port: number, rules: readonly NoProxyRule[]): boolean {
  const host = normalizeHost(hostname);
  const family = isIP(host);
  for (const r of rules) {
    if (r.kind === 'all') return true;
    if (r.kind === 'cidr') {
      if (family !== 0 && r.list.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
      continue;
    }
    if (r.port !== 0 && r.port !== port) continue;
    // No address is a "subdomain" of another: numeric entries were normalized to full addresses.
    if (host === r.host || host.endsWith(`.${r.host}`)) return true;
  }
  return false;
}

/** A proxy URL for messages: scheme and host only, never credentials. */
export function describeProxy(u: URL): string {
  return `${u.protocol}//${u.host}`;
}

function proxyUrl(name: string, value: string | undefined): URL | undefined {
  if (!value) return undefined;
  // `proxy.corp:3128` without a scheme means HTTP, as curl and Go read it.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new OciError({ code: 'NETWORK', message: `${name} is not a valid proxy URL`, retryable: false });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new OciError({ code: 'NETWORK', message: `${name}: unsupported proxy scheme ${u.protocol} in ${describeProxy(u)} (use http:// or https://)`, retryable: false });
  }
  return u;
}

/**
 * Proxy settings from the environment. Lower-case names win over upper-case ones, as with curl and
 * undici's EnvHttpProxyAgent (a lower-case variable set to "" therefore turns the proxy off).
 * Throws an OciError naming the variable (never its value, which may hold credentials) when a
 * proxy URL is unusable.
 */
export function proxySettings(env: NodeJS.ProcessEnv = process.env): ProxySettings {
  const pick = (lower: string, upper: string): [string, string | undefined] =>
    env[lower] !== undefined ? [lower, env[lower]] : [upper, env[upper]];
  const s: ProxySettings = { noProxy: parseNoProxy(pick('no_proxy', 'NO_PROXY')[1] ?? '') };
  const http = proxyUrl(...pick('http_proxy', 'HTTP_PROXY'));
  const https = proxyUrl(...pick('https_proxy', 'HTTPS_PROXY'));
  if (http) s.httpProxy = http;
  if (https) s.httpsProxy = https;
  return s;
}

/**
 * The proxy a request to `url` goes through, or undefined for a direct connection. HTTPS falls
 * back to HTTP_PROXY when HTTPS_PROXY is unset, as undici does.
 */
export function proxyFor(url: URL, s: ProxySettings): URL | undefined {
  const proxy = url.protocol === 'https:' ? (s.httpsProxy ?? s.httpProxy) : url.protocol === 'http:' ? s.httpProxy : undefined;
  if (!proxy) return undefined;
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return bypassesProxy(url.hostname, port, s.noProxy) ? undefined : proxy;
}

// ---- dispatchers -----------------------------------------------------------------------------

/** Sends each request direct or through its proxy, by origin (redirect targets and token realms included). */
class ProxyRouter extends Dispatcher {
  constructor(
    private readonly direct: Dispatcher,
    private readonly settings: ProxySettings,
    private readonly viaProxy: ReadonlyMap<string, Dispatcher>,
  ) {
    super();
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const proxy = opts.origin === undefined ? undefined : proxyFor(new URL(String(opts.origin)), this.settings);
    const target = proxy ? this.viaProxy.get(proxy.href) : undefined;
    return (target ?? this.direct).dispatch(opts, handler);
  }

  private all(): Dispatcher[] {
    return [this.direct, ...this.viaProxy.values()];
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = Promise.all(this.all().map((d) => d.close())).then(() => undefined);
    if (!callback) return done;
    void done.then(callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const done = Promise.all(this.all().map((d) => d.destroy(err))).then(() => undefined);
    if (!callback) return done;
    void done.then(callback);
  }
}

function secureContextFor(tls: HostTls | undefined): SecureContext | undefined {
  if (!tls || (!tls.ca && !tls.cert)) return undefined;
  // Built once: a context with the whole root store takes tens of milliseconds to build, too
  // much to pay on every connection.
  return createSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
}

/**
 * A dispatcher for one registry: a plain Agent when no proxy is configured, otherwise one that
 * routes each origin direct or through HTTPS_PROXY/HTTP_PROXY per NO_PROXY. HTTPS goes through a
 * CONNECT tunnel with the registry's TLS settings applied inside it; plain HTTP is sent to the
 * proxy in absolute form, as curl and Go do (many proxies refuse CONNECT to ports other than 443).
 */
export function createDispatcher(o: DispatcherOptions): Dispatcher {
  let proxies: ProxySettings;
  try {
    proxies = proxySettings(o.env ?? process.env);
  } catch (e) {
    const err = e as OciError;
    throw new OciError({ code: err.code, message: `${o.host}: ${err.message}`, registry: o.host, retryable: false });
  }
  const timeout = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const limits = {
    headersTimeout: o.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    bodyTimeout: o.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    connections: o.connections ?? DEFAULT_CONNECTIONS,
  };
  const secureContext = secureContextFor(o.tls);
  const targetTls = { timeout, rejectUnauthorized: !o.insecure, ...(secureContext ? { secureContext } : {}) };
  const direct = new Agent({ ...limits, connect: targetTls });
  if (!proxies.httpProxy && !proxies.httpsProxy) return direct;

  const viaProxy = new Map<string, Dispatcher>();
  for (const uri of [proxies.httpProxy, proxies.httpsProxy]) {
    if (!uri || viaProxy.has(uri.href)) continue;
    viaProxy.set(
      uri.href,
      new ProxyAgent({
        // Credentials in the URL become Proxy-Authorization: Basic.
        uri: uri.href,
        proxyTunnel: false,
        requestTls: targetTls,
        proxyTls: { timeout },
        ...limits,
        // undici builds the pools to the proxy itself with none of the limits above.
        clientFactory: (origin: URL, opts: object) => new Pool(origin, { ...limits, ...opts }),
        factory: (origin: string | URL, opts: object) => new Pool(origin, { ...limits, ...opts }),
      }),
    );
  }
  return new ProxyRouter(direct, proxies, viaProxy);
}
