/**
 * The process's HTTP endpoint: /metrics (Prometheus exposition), /healthz, /readyz, plus extra routes
 * a front end adds (`run` mode serves GET /status and POST /sync/NS/NAME).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';
import { UsageError } from './usage-error.js';

export interface RouteResponse {
  status?: number;
  contentType?: string;
  body: string;
}

/** Extra GET routes by exact path. */
export type Routes = Record<string, (req: http.IncomingMessage) => RouteResponse | Promise<RouteResponse>>;

/** POST routes by path prefix; the handler gets the rest of the path after the prefix (still URL-encoded). No body is read. */
export type PostRoutes = Record<string, (rest: string, req: http.IncomingMessage) => RouteResponse | Promise<RouteResponse>>;

export interface ServerOptions {
  /** `:8080` (all interfaces), `127.0.0.1:0` (loopback, ephemeral port), `[::1]:9090`, or a bare port. */
  addr: string;
  metrics: Metrics;
  /** /readyz answers 200 once this returns true (caches synced). */
  ready: () => boolean;
  /** /healthz answers 200 while this returns true; default always. */
  healthy?: () => boolean;
  routes?: Routes;
  postRoutes?: PostRoutes;
}

export interface ServerHandle {
  /** `host:port` actually bound (port resolved when 0 was asked for). */
  address: string;
  /** Base URL for loopback clients, e.g. `http://127.0.0.1:41234`. */
  url: string;
  close(): Promise<void>;
}

export function parseListenAddr(addr: string): { host?: string; port: number } {
  const a = addr.trim();
  let host: string | undefined;
  let portText: string;
  if (/^\d+$/.test(a)) portText = a;
  else {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d*)$/.exec(a);
    if (!m) throw new UsageError(`invalid listen address "${addr}": want host:port or :port`);
    host = m[1] ?? (m[2] || undefined);
    portText = m[3] ?? '';
  }
  const port = Number(portText);
  if (portText === '' || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid listen address "${addr}": bad port`);
  return { host, port };
}

export async function startServer(o: ServerOptions): Promise<ServerHandle> {
  const { host, port } = parseListenAddr(o.addr);
  const routes = o.routes ?? {};
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'POST') {
      const prefix = Object.keys(o.postRoutes ?? {}).find((p) => path.startsWith(p));
      if (prefix !== undefined) {
        // Nothing is read from the body: let it drain, answer from the path alone.
        req.resume();
        const r = await o.postRoutes![prefix]!(path.slice(prefix.length), req);
        const body = r.body;
        res.writeHead(r.status ?? 200, { 'content-type': r.contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    const send = (status: number, contentType: string, body: string): void => {
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    switch (path) {
      case '/metrics':
        send(200, o.metrics.registry.contentType, await o.metrics.exposition());
        return;
      case '/healthz':
      case '/livez': {
        const ok = o.healthy ? o.healthy() : true;
        send(ok ? 200 : 503, 'text/plain; charset=utf-8', ok ? 'ok\n' : 'unhealthy\n');
        return;
      }
      case '/readyz': {
        const ok = o.ready();
        send(ok ? 200 : 503, 'text/plain; charset=utf-8', ok ? 'ok\n' : 'not ready: caches not synced\n');
        return;
      }
    }
    const route = routes[path];
    if (route) {
      const r = await route(req);
      send(r.status ?? 200, r.contentType ?? 'application/json', r.body);
      return;
    }
    send(404, 'text/plain; charset=utf-8', 'not found\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const shownHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  const address = `${shownHost}:${a.port}`;
  const loopHost = a.address === '::' || a.address === '0.0.0.0' ? '127.0.0.1' : shownHost;
  return {
    address,
    url: `http://${loopHost}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
