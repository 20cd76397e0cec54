/**
 * A small hostile registry on loopback: each test configures what it answers (tag lists with
 * path-traversal "tags", indexes whose digests are tags, HEADs naming someone else's digest,
 * endless Link chains, huge pages…) as routes tried in order. Whatever no route answers is
 * forwarded unchanged to an upstream registry when one is given (Host header kept, so upload
 * Locations point back here), else answered 404 the way distribution does.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface HostileRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  url: URL;
  headers: IncomingHttpHeaders;
}

export interface HostileAnswer {
  status: number;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
}

export type HostileRoute = (req: HostileRequest) => HostileAnswer | undefined | Promise<HostileAnswer | undefined>;

export interface HostileLogEntry {
  method: string;
  path: string;
  status: number;
  /** Answered by a route (false: forwarded upstream or the default 404). */
  routed: boolean;
}

export interface HostileRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  log: HostileLogEntry[];
  /** Tried in order for each request; the first to answer wins. Tests push and clear it. */
  routes: HostileRoute[];
  /** Served after the routes: `GET|HEAD /v2/<repo>/manifests/<reference>`, keyed `<repo>/manifests/<reference>`. */
  manifests: Map<string, HostileAnswer>;
  /** Serve `bytes` for `GET|HEAD /v2/<repo>/manifests/<reference>` (headers overridable). */
  manifest(repo: string, reference: string, bytes: Buffer, mediaType: string, headers?: Record<string, string | number>): void;
  /** Forget routes, manifests and the log. */
  reset(): void;
  stop(): Promise<void>;
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function json(value: unknown, headers: Record<string, string | number> = {}): HostileAnswer {
  const body = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  return { status: 200, headers: { 'content-type': 'application/json', 'content-length': body.length, ...headers }, body };
}

/** A manifest answer with honest Content-Type, Content-Length and Docker-Content-Digest unless overridden. */
export function manifestAnswer(bytes: Buffer, mediaType: string, headers: Record<string, string | number> = {}): HostileAnswer {
  const h: Record<string, string | number> = { 'content-type': mediaType, 'content-length': bytes.length, 'docker-content-digest': digestOf(bytes), ...headers };
  return { status: 200, headers: h, body: bytes };
}

/** True for `METHOD /v2/<repo>/<rest>` (query ignored). */
export function is(req: HostileRequest, method: string | string[], repo: string, rest: string): boolean {
  const methods = Array.isArray(method) ? method : [method];
  return methods.includes(req.method) && req.url.pathname === `/v2/${repo}/${rest}`;
}

const NOT_FOUND: HostileAnswer = {
  status: 404,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }),
};

function send(res: ServerResponse, a: HostileAnswer): void {
  res.writeHead(a.status, a.headers);
  res.end(a.body);
}

function forward(upstream: string, req: IncomingMessage, res: ServerResponse, done: (status: number) => void): void {
  const [hostname, port] = upstream.split(':');
  const up = httpRequest({ hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    ur.pipe(res);
    done(ur.statusCode ?? 502);
  });
  up.on('error', () => {
    if (!res.headersSent) send(res, { status: 502 });
    done(502);
  });
  req.pipe(up);
}

export async function startHostileRegistry(o: { upstream?: string } = {}): Promise<HostileRegistry> {
  const routes: HostileRoute[] = [];
  const manifests = new Map<string, HostileAnswer>();
  const log: HostileLogEntry[] = [];
  const stored: HostileRoute = (req) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    return req.url.pathname.startsWith('/v2/') ? manifests.get(req.url.pathname.slice(4)) : undefined;
  };
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://hostile.invalid');
      const hreq: HostileRequest = { method: req.method ?? 'GET', path: req.url ?? '/', url, headers: req.headers };
      for (const r of [...routes, stored]) {
        const a = await r(hreq);
        if (a) {
          req.resume();
          log.push({ method: hreq.method, path: hreq.path, status: a.status, routed: true });
          send(res, a);
          return;
        }
      }
      if (url.pathname === '/v2/' && !o.upstream) {
        req.resume();
        log.push({ method: hreq.method, path: hreq.path, status: 200, routed: false });
        send(res, json({}));
        return;
      }
      if (o.upstream) {
        forward(o.upstream, req, res, (status) => log.push({ method: hreq.method, path: hreq.path, status, routed: false }));
        return;
      }
      req.resume();
      log.push({ method: hreq.method, path: hreq.path, status: 404, routed: false });
      send(res, NOT_FOUND);
    })().catch(() => {
      if (!res.headersSent) send(res, { status: 500 });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    log,
    routes,
    manifests,
    manifest(repo, reference, bytes, mediaType, headers = {}) {
      manifests.set(`${repo}/manifests/${reference}`, manifestAnswer(bytes, mediaType, headers));
    },
    reset() {
      routes.length = 0;
      manifests.clear();
      log.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
