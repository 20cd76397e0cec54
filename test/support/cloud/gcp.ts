/**
 * A fake GCE/GKE metadata server, reached through GCE_METADATA_HOST: the access token endpoint
 * (`Metadata-Flavor: Google` required both ways, as the real one does) and what
 * google-auth-library probes on the way (instance root, project id, universe domain).
 */
import { createServer } from 'node:http';
import { closeServer, listenLoopback } from './front.js';
import type { TokenLedger } from './tokens.js';

export const METADATA_TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';

export interface FakeMetadataOptions {
  ledger: TokenLedger;
  /** expires_in of issued tokens, in seconds on the ledger's clock (the real server: under 3600). */
  lifetimeS?: number;
  email?: string;
}

export interface FakeMetadata {
  /** `127.0.0.1:PORT`, the value for GCE_METADATA_HOST. */
  host: string;
  /** Every request: path with query, and whether it carried Metadata-Flavor: Google. */
  requests: Array<{ path: string; flavor: boolean }>;
  /** Answer token requests with this status and body instead of a token. */
  refuseTokens?: { status: number; body: string };
  stop(): Promise<void>;
}

export async function startFakeMetadata(o: FakeMetadataOptions): Promise<FakeMetadata> {
  const lifetimeS = o.lifetimeS ?? 3599;
  const fake: FakeMetadata = { host: '', requests: [], stop: async () => undefined };
  const server = createServer((req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://x');
    const flavor = req.headers['metadata-flavor'] === 'Google';
    fake.requests.push({ path: req.url ?? '', flavor });
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'metadata-flavor': 'Google', 'content-type': type });
      res.end(body);
    };
    if (!flavor) return send(403, 'text/html', 'Missing Metadata-Flavor:Google header.');
    switch (url.pathname) {
      case '/computeMetadata/v1/instance':
      case '/computeMetadata/v1/instance/':
        return send(200, 'application/text', 'attributes/\nservice-accounts/\n');
      case '/computeMetadata/v1/project/project-id':
        return send(200, 'application/text', 'imc-test-project');
      case '/computeMetadata/v1/universe/universe-domain':
        return send(200, 'application/text', 'googleapis.com');
      case '/computeMetadata/v1/instance/service-accounts/default/email':
        return send(200, 'application/text', o.email ?? 'mirror@imc-test-project.iam.gserviceaccount.com');
      case METADATA_TOKEN_PATH: {
        if (fake.refuseTokens) return send(fake.refuseTokens.status, 'application/text', fake.refuseTokens.body);
        const t = o.ledger.issue('gcp', lifetimeS * 1000, `ya29.${o.ledger.tokens.length}.${Math.random().toString(36).slice(2)}`);
        return send(200, 'application/json', JSON.stringify({ access_token: t.token, expires_in: lifetimeS, token_type: 'Bearer' }));
      }
      default:
        return send(404, 'text/html', 'not found');
    }
  });
  fake.host = await listenLoopback(server);
  fake.stop = () => closeServer(server);
  return fake;
}
