/**
 * A hostile HTTP server on loopback for deadline tests: each route answers with one behaviour a
 * real registry never shows — status line and headers trickled a byte at a time, a body trickled
 * a byte at a time, an endless or huge body, an upload whose body is never read. Trickles write
 * every `intervalMs` until the client hangs up, so a client without deadlines waits forever.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Behaviour =
  /** Writes the raw response (status line, headers, body) one byte per interval. */
  | { kind: 'trickle-head'; intervalMs: number }
  /** Sends status and headers at once, then `burst` bytes, then `perTick` bytes (default 1) per interval. */
  | { kind: 'trickle-body'; status?: number; headers?: Record<string, string>; contentLength: number; intervalMs: number; burst?: number; perTick?: number }
  /** Sends as fast as the client reads: `contentLength` declared (or chunked when absent), up to `total` bytes. */
  | { kind: 'flood'; status?: number; headers?: Record<string, string>; contentLength?: number; total: number }
  /** Never reads the request body and never answers. */
  | { kind: 'swallow' }
  /** An ordinary answer. */
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: string };

export interface TrickleServer {
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  /** Body bytes written by trickles and floods, per request path. */
  written: Map<string, number>;
  /** Requests seen (method and path, query included). */
  requests: Array<{ method: string; path: string }>;
  /** Resolves when the client has hung up on the first request to `path` since the last reset. */
  closedByClient(path: string): Promise<void>;
  /** Forgets counts, requests and closes (between tests). */
  reset(): void;
  stop(): Promise<void>;
}

export async function startTrickleServer(route: (req: IncomingMessage, base: string) => Behaviour): Promise<TrickleServer> {
  const written = new Map<string, number>();
  const requests: TrickleServer['requests'] = [];
  const closed = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const closeOf = (path: string): { promise: Promise<void>; resolve: () => void } => {
    let c = closed.get(path);
    if (!c) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      closed.set(path, (c = { promise, resolve }));
    }
    return c;
  };
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let base = '';

  const count = (path: string, n: number): void => void written.set(path, (written.get(path) ?? 0) + n);

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    requests.push({ method: req.method ?? '', path });
    const pathOnly = path.split('?')[0]!;
    const onGone = (): void => closeOf(pathOnly).resolve();
    res.on('close', onGone);
    req.socket.on('close', onGone);
    const b = route(req, base);
    const every = (ms: number, fn: () => boolean): void => {
      const t = setInterval(() => {
        if (res.destroyed || req.socket.destroyed || !fn()) {
          clearInterval(t);
          timers.delete(t);
        }
      }, ms);
      timers.add(t);
    };
    switch (b.kind) {
      case 'trickle-head': {
        const raw = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
        let i = 0;
        req.resume();
        every(b.intervalMs, () => {
          req.socket.write(raw.subarray(i, i + 1));
          i++;
          return i < raw.length;
        });
        return;
      }
      case 'trickle-body': {
        req.resume();
        res.writeHead(b.status ?? 200, { ...b.headers, 'content-length': String(b.contentLength) });
        res.flushHeaders();
        const burst = Math.min(b.burst ?? 0, b.contentLength);
        if (burst > 0) {
          res.write(Buffer.alloc(burst, 0x20));
          count(pathOnly, burst);
        }
        let sent = burst;
        every(b.intervalMs, () => {
          const n = Math.min(b.perTick ?? 1, b.contentLength - sent);
          res.write(Buffer.alloc(n, 0x20));
          count(pathOnly, n);
          sent += n;
          if (sent >= b.contentLength) res.end();
          return sent < b.contentLength;
        });
        return;
      }
      case 'flood': {
        req.resume();
        const headers: Record<string, string> = { ...b.headers };
        if (b.contentLength !== undefined) headers['content-length'] = String(b.contentLength);
        res.writeHead(b.status ?? 200, headers);
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = (): void => {
          while (sent < b.total && !res.destroyed) {
            const n = Math.min(chunk.length, b.total - sent);
            sent += n;
            count(pathOnly, n);
            if (!res.write(chunk.subarray(0, n))) {
              res.once('drain', pump);
              return;
            }
          }
          if (sent >= b.total && !res.destroyed) res.end();
        };
        pump();
        return;
      }
      case 'swallow':
        req.pause();
        return;
      case 'answer':
        req.resume();
        res.writeHead(b.status, b.headers);
        res.end(b.body ?? '');
        return;
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    url: base,
    written,
    requests,
    closedByClient: (path) => closeOf(path).promise,
    reset() {
      written.clear();
      requests.length = 0;
      closed.clear();
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
