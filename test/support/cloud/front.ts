/**
 * A "cloud front" before a real docker-registry (htpasswd mode): it lets a request through only
 * with Basic credentials that a fake cloud token service issued and that have not expired on the
 * test's clock, as ECR, Artifact Registry and ACR accept their short-lived tokens, and forwards it
 * to the registry with the registry's own htpasswd credentials. It counts what each token served
 * and what it refused, so a test can tell a renewed token from a reused one.
 */
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestRegistry } from '../registry.js';
import type { IssuedToken, TokenLedger } from './tokens.js';

export interface CloudFrontOptions {
  ledger: TokenLedger;
  /** The Basic user the cloud's tokens go with (`AWS`, `oauth2accesstoken`, the all-zero user). */
  username: string;
  /** Ledger kinds a password may have been issued as. */
  kinds: string[];
  /** Serve HTTPS with this certificate (ACR's token exchange and registry are HTTPS only). */
  tls?: { cert: string; key: string };
  /** Answers requests the front serves itself (the token exchange); returns false to pass on. */
  route?: (req: IncomingMessage, res: ServerResponse, front: { host: string }) => boolean;
  /** Called for every request let through, before it is forwarded: tests move the clock here. */
  onAuthorized?: (e: { token: IssuedToken; method: string; path: string; n: number }) => void;
}

export interface FrontLogEntry {
  method: string;
  path: string;
  status: number;
  /** The token that authorised it (undefined when refused or answered by `route`). */
  token?: string;
}

export interface CloudFront {
  /** `127.0.0.1:PORT`: the registry name clients use. */
  host: string;
  log: FrontLogEntry[];
  refused: { missing: number; wrongUser: number; unknown: number; expired: number };
  /** Most requests the front was serving at once. */
  maxInFlight: number;
  /** TCP connections accepted: a registry client that is kept reuses its connections, a new one opens its own. */
  connections: number;
  stop(): Promise<void>;
}

export async function startCloudFront(upstream: TestRegistry, o: CloudFrontOptions): Promise<CloudFront> {
  const base = new URL(upstream.url);
  const [user, pass] = Object.entries(upstream.users)[0]!;
  const upstreamAuth = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const log: FrontLogEntry[] = [];
  const refused = { missing: 0, wrongUser: 0, unknown: 0, expired: 0 };
  let inFlight = 0;
  let authorized = 0;
  let host = '';
  const front: CloudFront = { host: '', log, refused, maxInFlight: 0, connections: 0, stop: async () => undefined };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight++;
    front.maxInFlight = Math.max(front.maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const entry: FrontLogEntry = { method: req.method ?? '', path: req.url ?? '', status: 0 };
    log.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    if (o.route?.(req, res, { host })) return;

    const refuse = (why: keyof typeof refused): void => {
      refused[why]++;
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Basic realm="${host}"` });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `authentication required (${why})` }] }));
    };
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return refuse('missing');
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (decoded.slice(0, i) !== o.username) return refuse('wrongUser');
    const password = decoded.slice(i + 1);
    const token = o.ledger.find(password);
    if (!token || !o.kinds.includes(token.kind)) return refuse('unknown');
    if (o.ledger.check(password) !== 'valid') return refuse('expired');
    token.uses++;
    entry.token = password;
    o.onAuthorized?.({ token, method: entry.method, path: entry.path, n: ++authorized });

    const headers = { ...req.headers, authorization: upstreamAuth, 'x-forwarded-proto': o.tls ? 'https' : 'http' };
    const up = httpRequest({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  };

  const server: Server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handler) : createHttpServer(handler);
  // A TLS server's 'connection' also counts raw TCP connections, before the handshake.
  server.on('connection', () => front.connections++);
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  host = `127.0.0.1:${port}`;
  front.host = host;
  front.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return front;
}

/** Reads a request body whole (token endpoints take small forms). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** Listens on a free loopback port; returns `127.0.0.1:PORT`. */
export function listenLoopback(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
