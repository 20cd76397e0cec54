/**
 * A minimal Basic-auth "registry" on loopback that speaks HTTPS and plain HTTP on the SAME port
 * (the first byte of a connection decides), so a test can hand the client an upload Location on
 * the same host and port with another scheme, and see which requests carried Authorization.
 * Routes: /v2/* needs Basic credentials (401 otherwise); POST …/blobs/uploads/ answers 202 with
 * `location()`; anything else (the upload target) answers without asking for credentials.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface OriginRequest {
  scheme: 'http' | 'https';
  /** The port the request arrived on. */
  port: number;
  method: string;
  path: string;
  authorization: string | undefined;
}

export interface OriginServer {
  port: number;
  /** `127.0.0.1:PORT` */
  host: string;
  requests: OriginRequest[];
  /** What POST …/blobs/uploads/ answers as Location. */
  location: () => string;
  stop(): Promise<void>;
}

async function selfSigned(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'imc-origin-'));
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    return { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let cachedTls: Promise<{ key: Buffer; cert: Buffer }> | undefined;

export async function startOriginServer(): Promise<OriginServer> {
  const tls = await (cachedTls ??= selfSigned());
  const sockets = new Set<Socket>();
  const srv: OriginServer = {
    port: 0,
    host: '',
    requests: [],
    location: () => '/upload/1',
    stop: async () => undefined,
  };
  const handler = (scheme: 'http' | 'https') => (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const authorization = req.headers.authorization;
    srv.requests.push({ scheme, port: srv.port, method: req.method ?? '', path, authorization });
    req.resume();
    if (path.startsWith('/v2/') && !authorization) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="origin"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (req.method === 'POST' && /\/blobs\/uploads\/$/.test(path.split('?')[0]!)) {
      res.writeHead(202, { location: srv.location(), 'content-length': '0' });
      res.end();
      return;
    }
    if (req.method === 'PUT' || req.method === 'DELETE') {
      res.writeHead(req.method === 'PUT' ? 201 : 204, { 'content-length': '0' });
      res.end();
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
  };
  const https = createHttpsServer({ key: tls.key, cert: tls.cert }, handler('https'));
  const http = createHttpServer(handler('http'));
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  https.on('connection', track);
  http.on('connection', track);
  // Each protocol has its own internal port; the public port relays a connection to one of them.
  const listen = (server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> =>
    new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  const [httpsPort, httpPort] = await Promise.all([listen(https), listen(http)]);
  const net = createNetServer((socket) => {
    track(socket);
    socket.once('data', (first: Buffer) => {
      // A TLS connection starts with a handshake record (content type 22).
      const inner = connect(first[0] === 0x16 ? httpsPort : httpPort, '127.0.0.1');
      track(inner);
      inner.write(first);
      socket.pipe(inner).pipe(socket);
      const end = (): void => {
        socket.destroy();
        inner.destroy();
      };
      socket.on('error', end).on('close', end);
      inner.on('error', end).on('close', end);
    });
  });
  await new Promise<void>((r) => net.listen(0, '127.0.0.1', () => r()));
  srv.port = (net.address() as AddressInfo).port;
  srv.host = `127.0.0.1:${srv.port}`;
  srv.stop = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([net, https, http].map((x) => new Promise<void>((r) => x.close(() => r()))));
  };
  return srv;
}
