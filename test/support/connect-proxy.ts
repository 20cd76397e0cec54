/**
 * A logging forward proxy on loopback, as a corporate HTTP proxy behaves: CONNECT tunnels (what
 * HTTPS goes through) and absolute-form plain requests (`GET http://host/path`, what plain HTTP goes
 * through). It records the target of every request before answering it, so a test that got a
 * response can read the log at once. It can demand Proxy-Authorization (Basic), or stall.
 */
import { createServer, request as httpRequest, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface ProxyRecord {
  /** `CONNECT`, or the method of an absolute-form request. */
  method: string;
  /** `host:port` the client asked for. */
  target: string;
  /** Absolute-form requests: the path asked for. */
  path?: string;
  /** Whether valid Proxy-Authorization came with it (always true when none is demanded). */
  authorized: boolean;
}

export interface ConnectProxyOptions {
  /** Demand `Proxy-Authorization: Basic` with these credentials; others get 407. */
  auth?: { user: string; password: string };
  /** Log every request (CONNECT or absolute-form) and then never answer it, as a wedged proxy does. */
  stall?: boolean;
}

export interface ConnectProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request received so far, in arrival order. */
  log: ProxyRecord[];
  /** Distinct `host:port` targets that were let through. */
  targets(): string[];
  reset(): void;
  stop(): Promise<void>;
}

function splitTarget(target: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(target);
  return { host: m?.[1] ?? target, port: m?.[2] ? Number(m[2]) : defaultPort };
}

export async function startConnectProxy(o: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const log: ProxyRecord[] = [];
  const sockets = new Set<Duplex>();
  const upstreamAgent = new HttpAgent({ keepAlive: true });
  const expected = o.auth ? `Basic ${Buffer.from(`${o.auth.user}:${o.auth.password}`).toString('base64')}` : undefined;
  const authorized = (req: IncomingMessage): boolean => expected === undefined || req.headers['proxy-authorization'] === expected;
  const track = (s: Duplex): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form request expected');
      return;
    }
    const ok = authorized(req);
    log.push({ method: req.method ?? '', target: url.host, path: url.pathname + url.search, authorized: ok });
    if (o.stall) return;
    if (!ok) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test-proxy"' }).end();
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const { host, port } = splitTarget(url.host, 80);
    const up = httpRequest({ host, port, method: req.method, path: url.pathname + url.search, headers, agent: upstreamAgent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });

  server.on('connection', (s: Socket) => track(s));
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    track(client);
    const target = req.url ?? '';
    const ok = authorized(req);
    log.push({ method: 'CONNECT', target, authorized: ok });
    if (o.stall) return;
    if (!ok) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test-proxy"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const { host, port } = splitTarget(target, 443);
    const upstream = netConnect(port, host);
    track(upstream);
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'));
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    targets: () => [...new Set(log.filter((r) => r.authorized).map((r) => r.target))],
    reset: () => {
      log.length = 0;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      upstreamAgent.destroy();
      await closed;
    },
  };
}
