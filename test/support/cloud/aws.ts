/**
 * A fake of the AWS endpoints the ECR provider reaches, on one loopback HTTP server that the
 * SDK's own endpoint overrides point at (AWS_ENDPOINT_URL_STS / _ECR / _ECR_PUBLIC,
 * AWS_CONTAINER_CREDENTIALS_FULL_URI): STS AssumeRoleWithWebIdentity (query protocol, XML),
 * ECR and ECR Public GetAuthorizationToken (JSON 1.1 protocol), and the EKS Pod Identity agent.
 * The ECR calls must carry a SigV4 signature made with credentials this fake issued; the
 * signature is recomputed with the issued secret, so a request signed with anything else fails.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from './front.js';
import type { TokenLedger } from './tokens.js';

export const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken';
export const ECR_PUBLIC_TARGET = 'SpencerFrontendService.GetAuthorizationToken';
export const POD_IDENTITY_PATH = '/v1/credentials';

export interface FakeAwsOptions {
  ledger: TokenLedger;
  /** Lifetime of ECR tokens on the ledger's clock (ECR's is 12 h). */
  ecrTokenLifetimeMs?: number;
  /** Web identity token AssumeRoleWithWebIdentity accepts, and the role it may assume. */
  webIdentity?: { token: string; roleArn: string };
  /** Authorization header value the Pod Identity endpoint accepts. */
  podIdentityToken?: string;
}

export interface SignedCall {
  target: string;
  accessKeyId: string;
  region: string;
  service: string;
  /** The signature matched one computed with the secret issued for accessKeyId. */
  signatureValid: boolean;
  sessionTokenMatches: boolean;
}

export interface FakeAws {
  /** `http://127.0.0.1:PORT` */
  url: string;
  stsCalls: Array<{ roleArn: string; sessionName: string; tokenAccepted: boolean }>;
  podIdentityCalls: number;
  ecrCalls: SignedCall[];
  /** Credentials handed out by STS or the Pod Identity agent, by access key id. */
  issued: Map<string, { secret: string; sessionToken: string; via: 'sts' | 'pod-identity' }>;
  /** The next ECR / ECR Public call answers this error (JSON protocol error shape). */
  failEcr?: { status: number; type: string; message: string };
  /** ECR calls are answered only when this promise resolves (never: a hung endpoint). */
  holdEcr?: Promise<void>;
  stop(): Promise<void>;
}

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer => createHmac('sha256', key).update(s).digest();

function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Recomputes an AWS Signature Version 4 over the request as received. */
function sigV4Valid(req: IncomingMessage, body: string, parsed: { date: string; region: string; service: string; signedHeaders: string[]; signature: string }, secret: string): boolean {
  const url = new URL(req.url ?? '/', 'http://x');
  const canonicalUri = url.pathname.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/') || '/';
  const query = [...url.searchParams.entries()].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const).sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  const canonicalQuery = query.map(([k, v]) => `${k}=${v}`).join('&');
  const headerValue = (name: string): string => {
    const v = req.headers[name];
    return (Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ');
  };
  const canonicalHeaders = parsed.signedHeaders.map((h) => `${h}:${headerValue(h)}\n`).join('');
  const payloadHash = headerValue('x-amz-content-sha256') || sha256(body);
  const canonicalRequest = [req.method, canonicalUri, canonicalQuery, canonicalHeaders, parsed.signedHeaders.join(';'), payloadHash].join('\n');
  const scope = `${parsed.date}/${parsed.region}/${parsed.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', headerValue('x-amz-date'), scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, parsed.date), parsed.region), parsed.service), 'aws4_request');
  return createHmac('sha256', key).update(stringToSign).digest('hex') === parsed.signature;
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/;

function xml(tag: string, inner: string): string {
  return `<${tag}>${inner}</${tag}>`;
}

export async function startFakeAws(o: FakeAwsOptions): Promise<FakeAws> {
  const lifetime = o.ecrTokenLifetimeMs ?? 12 * 3600_000;
  const fake: FakeAws = { url: '', stsCalls: [], podIdentityCalls: 0, ecrCalls: [], issued: new Map(), stop: async () => undefined };

  const issueKeys = (via: 'sts' | 'pod-identity'): { id: string; secret: string; sessionToken: string; expiration: string } => {
    const id = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const secret = randomBytes(20).toString('base64');
    const sessionToken = randomBytes(32).toString('base64');
    fake.issued.set(id, { secret, sessionToken, via });
    return { id, secret, sessionToken, expiration: new Date(Date.now() + 3600_000).toISOString() };
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const target = String(req.headers['x-amz-target'] ?? '');

      if (req.method === 'GET' && new URL(req.url ?? '/', 'http://x').pathname === POD_IDENTITY_PATH) {
        fake.podIdentityCalls++;
        if (req.headers.authorization !== o.podIdentityToken) {
          json(res, 401, { message: 'invalid authorization token' });
          return;
        }
        const k = issueKeys('pod-identity');
        json(res, 200, { AccessKeyId: k.id, SecretAccessKey: k.secret, Token: k.sessionToken, Expiration: k.expiration, AccountId: '123456789012' });
        return;
      }

      if (target === ECR_TARGET || target === ECR_PUBLIC_TARGET) {
        const m = AUTH.exec(String(req.headers.authorization ?? ''));
        const keys = m ? fake.issued.get(m[1]!) : undefined;
        const call: SignedCall = {
          target,
          accessKeyId: m?.[1] ?? '',
          region: m?.[3] ?? '',
          service: m?.[4] ?? '',
          signatureValid: !!(m && keys && sigV4Valid(req, body, { date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! }, keys.secret)),
          sessionTokenMatches: !!keys && req.headers['x-amz-security-token'] === keys.sessionToken,
        };
        fake.ecrCalls.push(call);
        if (fake.holdEcr) await fake.holdEcr;
        if (!call.signatureValid || !call.sessionTokenMatches) {
          json(res, 403, { __type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' }, { 'x-amzn-errortype': 'UnrecognizedClientException' });
          return;
        }
        const fail = fake.failEcr;
        if (fail) {
          fake.failEcr = undefined;
          json(res, fail.status, { __type: fail.type, message: fail.message }, { 'x-amzn-errortype': fail.type });
          return;
        }
        const publicEcr = target === ECR_PUBLIC_TARGET;
        const t = o.ledger.issue(publicEcr ? 'ecr-public' : 'ecr', lifetime);
        const data = { authorizationToken: Buffer.from(`AWS:${t.token}`).toString('base64'), expiresAt: (Date.now() + lifetime) / 1000 };
        json(res, 200, publicEcr ? { authorizationData: data } : { authorizationData: [{ ...data, proxyEndpoint: `https://${call.region}.example` }] });
        return;
      }

      const form = new URLSearchParams(body);
      if (form.get('Action') === 'AssumeRoleWithWebIdentity') {
        const roleArn = form.get('RoleArn') ?? '';
        const tokenAccepted = !!o.webIdentity && form.get('WebIdentityToken') === o.webIdentity.token && roleArn === o.webIdentity.roleArn;
        fake.stsCalls.push({ roleArn, sessionName: form.get('RoleSessionName') ?? '', tokenAccepted });
        if (!tokenAccepted) {
          res.writeHead(403, { 'content-type': 'text/xml' });
          res.end(xml('ErrorResponse', xml('Error', xml('Type', 'Sender') + xml('Code', 'AccessDenied') + xml('Message', 'Not authorized to perform sts:AssumeRoleWithWebIdentity')) + xml('RequestId', 'r1')));
          return;
        }
        const k = issueKeys('sts');
        const creds = xml('Credentials', xml('AccessKeyId', k.id) + xml('SecretAccessKey', k.secret) + xml('SessionToken', k.sessionToken) + xml('Expiration', k.expiration));
        const user = xml('AssumedRoleUser', xml('Arn', `${roleArn.replace(':role/', ':assumed-role/')}/${form.get('RoleSessionName')}`) + xml('AssumedRoleId', 'AROAFAKE:session'));
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(
          `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` +
            xml('AssumeRoleWithWebIdentityResult', creds + user + xml('SubjectFromWebIdentityToken', 'system:serviceaccount:imc:controller') + xml('Audience', 'sts.amazonaws.com')) +
            xml('ResponseMetadata', xml('RequestId', 'r2')) +
            `</AssumeRoleWithWebIdentityResponse>`,
        );
        return;
      }
      json(res, 400, { __type: 'UnknownOperationException', message: `fake AWS does not serve ${req.method} ${req.url} ${target}` });
    })();
  });
  fake.url = `http://${await listenLoopback(server)}`;
  fake.stop = () => closeServer(server);
  return fake;
}
