/**
 * A hostile "registry" on loopback that echoes what it was sent: once a request carries
 * credentials, it answers 403 with an error body quoting every request header — and the Basic
 * credentials decoded, and the bearer token bare — and a WWW-Authenticate header quoting the
 * Authorization header. Before that it challenges like a registry: `basic` mode with a Basic
 * challenge; `bearer` mode with a Bearer challenge whose realm (on this server) mints an opaque
 * token (not a JWT, so no pattern knows its shape) for valid Basic credentials.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface EchoRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Tokens minted so far (bearer mode). */
  tokens: string[];
  stop(): Promise<void>;
}

function echoOf(req: IncomingMessage): string {
  const authz = req.headers.authorization ?? '';
  const lines = Object.entries(req.headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
  let decoded = '';
  if (authz.startsWith('Basic ')) decoded = `you are ${Buffer.from(authz.slice(6), 'base64').toString('utf8')}`;
  if (authz.startsWith('Bearer ')) decoded = `your token is ${authz.slice(7)}`;
  // The credentials first: registries' messages are cut short in our errors.
  return `${decoded}; ${authz}; ${lines.join('; ')}`;
}

export async function startEchoRegistry(o: { mode: 'basic' | 'bearer'; users: Record<string, string> }): Promise<EchoRegistry> {
  const tokens: string[] = [];
  const sockets = new Set<Socket>();
  let base = '';
  const validBasic = (authz: string | undefined): boolean => {
    if (!authz?.startsWith('Basic ')) return false;
    const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
    return u !== undefined && o.users[u] === rest.join(':');
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const path = req.url ?? '/';
    const authz = req.headers.authorization;
    if (path.startsWith('/token')) {
      if (!validBasic(authz)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: echoOf(req) }));
        return;
      }
      const token = `opaque.${randomBytes(18).toString('hex')}`;
      tokens.push(token);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    if (!authz) {
      const challenge = o.mode === 'basic' ? 'Basic realm="echo"' : `Bearer realm="${base}/token",service="echo"`;
      res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const echo = echoOf(req);
    res.writeHead(403, {
      'content-type': 'application/json',
      'www-authenticate': `${o.mode === 'basic' ? 'Basic' : 'Bearer'} realm="echo", error="you sent ${authz.replace(/"/g, '')}"`,
    });
    res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: echo, detail: { headers: req.headers } }] }));
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
    tokens,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
