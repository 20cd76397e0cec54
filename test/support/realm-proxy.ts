/**
 * A forwarding proxy on loopback in front of a real token-auth registry, where the repositories
 * under given prefixes answer every request with 401 and a challenge naming a bogus token realm
 * (a path on the proxy that answers 404). Everything else is forwarded unchanged, Host included.
 * Logs each request with its status, so tests can count challenges per repository.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RealmProxyEntry {
  method: string;
  path: string;
  status: number;
}

export interface RealmProxy {
  /** `127.0.0.1:PORT`: use it as the registry host. */
  host: string;
  /** The bogus realm the proxied repositories name. */
  bogusRealm: string;
  log: RealmProxyEntry[];
  /** Requests that reached the bogus realm. */
  bogusTokenRequests: number;
  stop(): Promise<void>;
}

export async function startRealmProxy(upstream: string, o: { bogusPrefixes: string[] }): Promise<RealmProxy> {
  const log: RealmProxyEntry[] = [];
  const sockets = new Set<Socket>();
  const proxy: RealmProxy = { host: '', bogusRealm: '', log, bogusTokenRequests: 0, stop: async () => undefined };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const record = (status: number): void => void log.push({ method: req.method ?? '', path, status });
    if (path.startsWith('/bogus-token')) {
      proxy.bogusTokenRequests++;
      record(404);
      req.resume();
      res.writeHead(404).end('no token service here');
      return;
    }
    if (o.bogusPrefixes.some((p) => path.startsWith(`/v2/${p}`))) {
      record(401);
      req.resume();
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${proxy.bogusRealm}",service="bogus"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const up = httpRequest(`http://${upstream}${path}`, { method: req.method, headers: req.headers }, (ur) => {
      record(ur.statusCode ?? 0);
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  proxy.host = `127.0.0.1:${port}`;
  proxy.bogusRealm = `http://127.0.0.1:${port}/bogus-token`;
  proxy.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return proxy;
}
