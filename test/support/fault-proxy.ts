/**
 * A thin HTTP proxy on loopback in front of a real registry, adding behaviour docker-registry 2.8.2
 * lacks — one option per behaviour: Link pagination of tags/list, a referrers API (built from the
 * `sha256-<hex>` fallback tag), blob GETs redirected to another host, 429/503 for the first N
 * requests, corrupted blob bytes, a 416 on a chunk. Everything else is forwarded unchanged,
 * including the Host header, so upload Locations point back at the proxy.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import type { TestRegistry } from './registry.js';

export interface FaultProxyOptions {
  /** Page tags/list with this many tags per page and a `Link: <...>; rel="next"` header. */
  paginateTags?: number;
  /** Answer `GET /v2/<name>/referrers/<digest>` from the `sha256-<hex>` fallback tag. */
  referrers?: boolean;
  /** Answer blob GETs with 307 to a second server on another loopback address that serves the bytes. */
  redirectBlobs?: boolean;
  /** Answer the first `count` matching requests with `status` (and Retry-After) without forwarding. */
  failFirst?: { count: number; status: 429 | 500 | 502 | 503; retryAfter?: string; method?: string; pathIncludes?: string };
  /** Flip one byte in every blob GET response body. */
  corruptBlobs?: boolean;
  /** Answer the Nth PATCH (1-based) with 416 without forwarding it. */
  rangeInvalidOnPatch?: number;
  /**
   * Pad manifest GET bodies with `bytes` of trailing whitespace (still valid JSON), as a registry
   * serving a manifest larger than 2.8.2 can store would; `chunked` omits Content-Length.
   */
  padManifests?: { bytes: number; chunked?: boolean };
  /** Drop Docker-Content-Digest from manifest responses (it is only a SHOULD in distribution-spec 1.1). */
  stripManifestDigest?: boolean;
}

export interface ProxyLogEntry {
  method: string;
  path: string;
  status: number;
  /** Whether an Authorization header arrived. */
  authorization: boolean;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`: use it as the registry host. */
  host: string;
  url: string;
  log: ProxyLogEntry[];
  /** With padManifests: body bytes actually written before the client finished or hung up. */
  padded: { written: number; total: number; clientClosedEarly: boolean }[];
  /** With redirectBlobs: what the blob host received. */
  blobHost?: { host: string; log: ProxyLogEntry[] };
  stop(): Promise<void>;
}

const EMPTY_INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';

function listen(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

interface Upstream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function fetchUpstream(base: URL, method: string, path: string, headers: Record<string, string | undefined>): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) h[k] = v;
    const req = httpRequest({ host: base.hostname, port: base.port, method, path, headers: h }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function corrupter(): Transform {
  let done = false;
  return new Transform({
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      if (!done && chunk.length > 0) {
        const c = Buffer.from(chunk);
        c[0] = c[0]! ^ 0xff;
        done = true;
        cb(null, c);
        return;
      }
      cb(null, chunk);
    },
  });
}

export async function startFaultProxy(upstream: TestRegistry | string, o: FaultProxyOptions = {}): Promise<FaultProxy> {
  const base = new URL(typeof upstream === 'string' ? (upstream.includes('://') ? upstream : `http://${upstream}`) : upstream.url);
  const log: ProxyLogEntry[] = [];
  const padded: FaultProxy['padded'] = [];
  let failed = 0;
  let patches = 0;

  // Blob host: another loopback address, so the redirect crosses a host boundary.
  let blobHost: FaultProxy['blobHost'];
  let blobServer: Server | undefined;
  const pending = new Map<string, { path: string; authorization?: string }>();
  let ticket = 0;
  if (o.redirectBlobs) {
    const blobLog: ProxyLogEntry[] = [];
    blobServer = createServer((req, res) => {
      const t = pending.get((req.url ?? '').replace(/^\/cdn\//, ''));
      const entry: ProxyLogEntry = { method: req.method ?? '', path: req.url ?? '', status: 0, authorization: req.headers.authorization !== undefined };
      blobLog.push(entry);
      if (!t) {
        entry.status = 404;
        res.writeHead(404).end();
        return;
      }
      // Like a signed CDN URL: the proxy already authorised it, with the original request's token.
      forward(req, res, t.path, { authorization: t.authorization }, entry);
    });
    let addr = '127.0.0.2';
    let port: number;
    try {
      port = await listen(blobServer, addr);
    } catch {
      addr = '127.0.0.1';
      port = await listen(blobServer, addr);
    }
    blobHost = { host: `${addr}:${port}`, log: blobLog };
  }

  function forward(req: IncomingMessage, res: ServerResponse, path: string, override: Record<string, string | undefined>, entry: ProxyLogEntry, transform?: () => Transform): void {
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, ...override };
    if (override.authorization === undefined && 'authorization' in override) delete headers.authorization;
    const up = httpRequest({ host: base.hostname, port: base.port, method: req.method, path, headers }, (ures) => {
      entry.status = ures.statusCode ?? 0;
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      if (transform && entry.status === 200) ures.pipe(transform()).pipe(res);
      else ures.pipe(res);
    });
    up.on('error', () => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const path = url.pathname;
    const entry: ProxyLogEntry = { method: req.method ?? '', path: req.url ?? '', status: 0, authorization: req.headers.authorization !== undefined };
    log.push(entry);
    const reply = (status: number, headers: Record<string, string>, body: string | Buffer = ''): void => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end(body);
    };
    const passHeaders = { authorization: req.headers.authorization, accept: req.headers.accept, host: req.headers.host };

    const f = o.failFirst;
    if (f && failed < f.count && (!f.method || f.method === req.method) && (!f.pathIncludes || (req.url ?? '').includes(f.pathIncludes))) {
      failed++;
      req.resume();
      const code = f.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
      reply(f.status, { 'content-type': 'application/json', ...(f.retryAfter ? { 'retry-after': f.retryAfter } : {}) }, JSON.stringify({ errors: [{ code, message: 'injected by fault proxy' }] }));
      return;
    }

    if (o.rangeInvalidOnPatch && req.method === 'PATCH' && ++patches === o.rangeInvalidOnPatch) {
      req.resume();
      reply(416, { 'content-type': 'application/json' }, JSON.stringify({ errors: [{ code: 'RANGE_INVALID', message: 'injected by fault proxy' }] }));
      return;
    }

    const tags = /^\/v2\/(.+)\/tags\/list$/.exec(path);
    if (o.paginateTags && req.method === 'GET' && tags) {
      void (async () => {
        const u = await fetchUpstream(base, 'GET', `/v2/${tags[1]}/tags/list`, passHeaders);
        if (u.status !== 200) {
          reply(u.status, headersOf(u), u.body);
          return;
        }
        const all = ((JSON.parse(u.body.toString()) as { tags?: string[] | null }).tags ?? []).slice().sort();
        const n = Math.min(Number(url.searchParams.get('n') ?? o.paginateTags) || o.paginateTags!, o.paginateTags!);
        const last = url.searchParams.get('last');
        const rest = last ? all.filter((t) => t > last) : all;
        const page = rest.slice(0, n);
        const h: Record<string, string> = { 'content-type': 'application/json' };
        if (rest.length > n) h['link'] = `</v2/${tags[1]}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
        reply(200, h, JSON.stringify({ name: tags[1], tags: page }));
      })().catch(() => reply(502, {}));
      return;
    }

    const refs = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/.exec(path);
    if (o.referrers && req.method === 'GET' && refs) {
      void (async () => {
        const tag = refs[2]!.replace(':', '-');
        const u = await fetchUpstream(base, 'GET', `/v2/${refs[1]}/manifests/${tag}`, { ...passHeaders, accept: EMPTY_INDEX_TYPE });
        if (u.status === 401 || u.status === 403) {
          reply(u.status, headersOf(u), u.body);
          return;
        }
        let manifests: unknown[] = [];
        if (u.status === 200) manifests = (JSON.parse(u.body.toString()) as { manifests?: unknown[] }).manifests ?? [];
        const at = url.searchParams.get('artifactType');
        if (at) manifests = manifests.filter((m) => (m as { artifactType?: string }).artifactType === at);
        const h: Record<string, string> = { 'content-type': EMPTY_INDEX_TYPE };
        if (at) h['oci-filters-applied'] = 'artifactType';
        reply(200, h, JSON.stringify({ schemaVersion: 2, mediaType: EMPTY_INDEX_TYPE, manifests }));
      })().catch(() => reply(502, {}));
      return;
    }

    const man = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (o.padManifests && req.method === 'GET' && man) {
      const pad = o.padManifests;
      void (async () => {
        const u = await fetchUpstream(base, 'GET', req.url ?? path, passHeaders);
        if (u.status !== 200) {
          reply(u.status, headersOf(u), u.body);
          return;
        }
        const total = u.body.length + pad.bytes;
        const rec = { written: 0, total, clientClosedEarly: false };
        padded.push(rec);
        entry.status = 200;
        const h = headersOf(u);
        if (!pad.chunked) h['content-length'] = String(total);
        res.writeHead(200, h);
        let closed = false;
        res.on('close', () => {
          closed = true;
          rec.clientClosedEarly = rec.written < total;
        });
        const block = Buffer.alloc(64 * 1024, 0x20);
        const write = (b: Buffer): Promise<void> =>
          new Promise((resolve) => {
            rec.written += b.length;
            if (res.write(b)) resolve();
            else {
              res.once('drain', resolve);
              res.once('close', resolve);
            }
          });
        await write(u.body);
        for (let left = pad.bytes; left > 0 && !closed; left -= block.length) await write(block.subarray(0, Math.min(left, block.length)));
        if (!closed) res.end();
      })().catch(() => reply(502, {}));
      return;
    }

    const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
    if (o.redirectBlobs && req.method === 'GET' && blob && blobHost) {
      // Like a registry: authorise first (the upstream answers the HEAD), then redirect.
      void (async () => {
        const u = await fetchUpstream(base, 'HEAD', req.url ?? path, passHeaders);
        if (u.status !== 200) {
          reply(u.status, headersOf(u));
          return;
        }
        const id = String(++ticket);
        pending.set(id, { path: req.url ?? path, authorization: req.headers.authorization });
        req.resume();
        reply(307, { location: `http://${blobHost.host}/cdn/${id}` });
      })().catch(() => reply(502, {}));
      return;
    }

    if (o.stripManifestDigest && man) {
      const orig = res.writeHead.bind(res) as (status: number, headers?: Record<string, string | string[] | undefined>) => ServerResponse;
      (res as { writeHead: unknown }).writeHead = (status: number, headers?: Record<string, string | string[] | undefined>) => {
        const h = { ...headers };
        delete h['docker-content-digest'];
        return orig(status, h);
      };
    }
    forward(req, res, req.url ?? '/', {}, entry, o.corruptBlobs && req.method === 'GET' && blob ? corrupter : undefined);
  });
  const port = await listen(server, '127.0.0.1');
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: `http://${host}`,
    log,
    padded,
    blobHost,
    async stop() {
      await close(server);
      if (blobServer) await close(blobServer);
    },
  };
}

function headersOf(u: Upstream): Record<string, string> {
  const h: Record<string, string> = {};
  for (const k of ['content-type', 'www-authenticate', 'docker-distribution-api-version', 'docker-content-digest']) {
    const v = u.headers[k];
    if (typeof v === 'string') h[k] = v;
  }
  return h;
}
