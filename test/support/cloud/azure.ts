/**
 * A fake Microsoft Entra authority over TLS (MSAL refuses plain-HTTP authorities), reached through
 * AZURE_AUTHORITY_HOST: the tenant's OpenID configuration and a token endpoint that accepts the
 * client-assertion grant of Entra Workload ID (the projected service-account token), plus ACR's
 * `/oauth2/exchange`, served on the registry's own host by the cloud front, which turns an Entra
 * token for the Resource Manager audience into an ACR refresh token (a JWT with `exp`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { closeServer, listenLoopback, readBody } from './front.js';
import { fakeJwt, type TokenLedger } from './tokens.js';

export const ARM_SCOPE = 'https://management.azure.com/.default';
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface FakeEntraOptions {
  ledger: TokenLedger;
  tls: { cert: string; key: string };
  tenantId: string;
  clientId: string;
  /** The federated (service account) token the client must present as its assertion. */
  assertion: string;
  /** Lifetime of Entra access tokens on the ledger's clock. */
  lifetimeMs?: number;
}

export interface FakeEntra {
  /** `https://127.0.0.1:PORT`, the value for AZURE_AUTHORITY_HOST. */
  url: string;
  tokenRequests: Array<{ clientId: string; scope: string; grantType: string; assertionAccepted: boolean }>;
  paths: string[];
  stop(): Promise<void>;
}

export async function startFakeEntra(o: FakeEntraOptions): Promise<FakeEntra> {
  const lifetimeMs = o.lifetimeMs ?? 24 * 3600_000;
  const fake: FakeEntra = { url: '', tokenRequests: [], paths: [], stop: async () => undefined };
  const server = createServer({ cert: o.tls.cert, key: o.tls.key }, (req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = new URL(req.url ?? '/', 'https://x').pathname;
      fake.paths.push(`${req.method} ${path}`);
      const json = (status: number, v: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      const base = `${fake.url}/${o.tenantId}`;
      if (req.method === 'GET' && path === `/${o.tenantId}/v2.0/.well-known/openid-configuration`) {
        return json(200, {
          token_endpoint: `${base}/oauth2/v2.0/token`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          issuer: `${base}/v2.0`,
          jwks_uri: `${base}/discovery/v2.0/keys`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        });
      }
      if (req.method === 'POST' && path === `/${o.tenantId}/oauth2/v2.0/token`) {
        const form = new URLSearchParams(body);
        const assertionAccepted =
          form.get('client_assertion_type') === ASSERTION_TYPE && form.get('client_assertion') === o.assertion && form.get('client_id') === o.clientId;
        const entry = { clientId: form.get('client_id') ?? '', scope: form.get('scope') ?? '', grantType: form.get('grant_type') ?? '', assertionAccepted };
        fake.tokenRequests.push(entry);
        if (!assertionAccepted || entry.grantType !== 'client_credentials') {
          return json(401, {
            error: 'invalid_client',
            error_description: `AADSTS700213: No matching federated identity record found for presented assertion subject.\r\nTrace ID: 0\r\nCorrelation ID: 0`,
            error_codes: [700213],
          });
        }
        const scope = entry.scope.split(' ').find((s) => s.endsWith('/.default')) ?? entry.scope;
        const token = fakeJwt({ aud: scope.replace(/\/\.default$/, ''), tid: o.tenantId, appid: o.clientId, exp: Math.floor((Date.now() + lifetimeMs) / 1000) });
        o.ledger.issue('entra', lifetimeMs, token);
        return json(200, { token_type: 'Bearer', expires_in: Math.floor(lifetimeMs / 1000), ext_expires_in: Math.floor(lifetimeMs / 1000), access_token: token });
      }
      json(404, { error: 'not_found', error_description: `fake Entra does not serve ${req.method} ${path}` });
    })();
  });
  fake.url = `https://${await listenLoopback(server)}`;
  fake.stop = () => closeServer(server);
  return fake;
}

export interface AcrExchange {
  calls: Array<{ service: string; tenant: string; grantType: string; accepted: boolean }>;
  /** Answer the next exchange with this status, echoing the access token back in the body (as a careless server might). */
  refuseNext?: number;
  /** Route for startCloudFront: serves POST /oauth2/exchange on the registry host. */
  route(req: IncomingMessage, res: ServerResponse, front: { host: string }): boolean;
}

/** ACR's token exchange: an Entra ARM token for this tenant in, a refresh token valid `lifetimeMs` out. */
export function acrExchange(o: { ledger: TokenLedger; tenantId: string; lifetimeMs: number }): AcrExchange {
  const ex: AcrExchange = {
    calls: [],
    route(req, res, front) {
      if (new URL(req.url ?? '/', 'https://x').pathname !== '/oauth2/exchange') return false;
      void (async () => {
        const form = new URLSearchParams(await readBody(req));
        const aad = form.get('access_token') ?? '';
        const aud = (() => {
          try {
            return (JSON.parse(Buffer.from(aad.split('.')[1] ?? '', 'base64url').toString()) as { aud?: string }).aud;
          } catch {
            return undefined;
          }
        })();
        const accepted =
          req.method === 'POST' &&
          form.get('grant_type') === 'access_token' &&
          form.get('service') === front.host &&
          form.get('tenant') === o.tenantId &&
          aud === ARM_SCOPE.replace(/\/\.default$/, '') &&
          o.ledger.check(aad, 'entra') === 'valid';
        ex.calls.push({ service: form.get('service') ?? '', tenant: form.get('tenant') ?? '', grantType: form.get('grant_type') ?? '', accepted });
        const refuse = ex.refuseNext;
        if (refuse !== undefined || !accepted) {
          ex.refuseNext = undefined;
          res.writeHead(refuse ?? 401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `invalid access token ${aad}`, detail: { access_token: aad } }] }));
          return;
        }
        const refresh = fakeJwt({ aud: front.host, tenant: o.tenantId, grant_type: 'refresh_token', exp: Math.floor((Date.now() + o.lifetimeMs) / 1000) });
        o.ledger.issue('acr-refresh', o.lifetimeMs, refresh);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ refresh_token: refresh }));
      })();
      return true;
    },
  };
  return ex;
}
