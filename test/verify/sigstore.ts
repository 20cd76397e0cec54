/**
 * A Sigstore deployment on loopback for tests: @sigstore/mock's Fulcio (a CA with a CT log) and
 * Rekor (a transparency log) served over HTTP, so @sigstore/sign makes real bundles against them
 * (a short-lived certificate for the OIDC identity in an unsigned JWT, a log entry with a signed
 * timestamp and an inclusion proof). `trustedRoot` is the trusted root JSON naming exactly
 * this deployment's CA and log keys, as `cosign trusted-root create` would write it (no CT log).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fulcioHandler, initializeCA, initializeTLog, rekorHandler, type HandlerFn } from '@sigstore/mock';
import { bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } from '@sigstore/sign';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const IN_TOTO = 'application/vnd.in-toto+json';

export interface Identity {
  /** The token's `iss`: becomes the certificate's issuer extension. */
  issuer: string;
  /** The token's `sub`: becomes the certificate's subject alternative name. */
  subject: string;
}

export interface MockSigstore {
  trustedRoot: string;
  /** A cosign-style keyless signature bundle: DSSE, in-toto statement naming `digest`. */
  signStatement(id: Identity, digest: string, name?: string): Promise<Buffer>;
  /** A message-signature bundle over `bytes` (e.g. the manifest bytes). */
  signMessage(id: Identity, bytes: Buffer): Promise<Buffer>;
  stop(): Promise<void>;
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** An OIDC token Fulcio's mock accepts: it reads claims without checking a signature. */
function token(id: Identity): string {
  const now = Math.floor(Date.now() / 1000);
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: id.issuer, sub: id.subject, aud: 'sigstore', iat: now, exp: now + 600 })}.sig`;
}

function serve(routes: Record<string, HandlerFn>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const fn = req.method === 'POST' ? routes[req.url ?? ''] : undefined;
      if (!fn) {
        res.writeHead(404).end();
        return;
      }
      fn(Buffer.concat(parts).toString()).then(
        (r) => res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'text/plain' }).end(r.response),
        () => res.writeHead(500).end(),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

const LONG_AGO = '2020-01-01T00:00:00Z';

export async function startMockSigstore(): Promise<MockSigstore> {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const logKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // No CT log: the SCT list @sigstore/mock 0.11 embeds is cut short (49 bytes, without the
  // per-SCT length RFC 6962 gives it), and @sigstore/verify rightly cannot parse it.
  const ca = await initializeCA(caKeys);

  // The log's URL is part of its checkpoints, so the server is up before the log is made.
  const routes: Record<string, HandlerFn> = {};
  const { server, url } = await serve(routes);
  const tlog = await initializeTLog(url, logKeys);
  const fulcio = fulcioHandler(ca);
  const rekor = rekorHandler(tlog);
  routes[fulcio.path] = fulcio.fn;
  routes[rekor.path] = rekor.fn;

  const trustedRoot = JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: url,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: tlog.publicKey.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: LONG_AGO } },
        logId: { keyId: createHash('sha256').update(tlog.publicKey).digest('base64') },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: url,
        certChain: { certificates: [{ rawBytes: ca.rootCertificate.toString('base64') }] },
        validFor: { start: LONG_AGO },
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
  });

  // DSSE goes into the log as an `intoto` entry: the mock stores what it is sent, and only that
  // proposal has the shape of a stored entry (a `dsse` one is rewritten by a real Rekor).
  const options = (id: Identity, entryType?: 'intoto') => ({
    signer: new FulcioSigner({ fulcioBaseURL: url, identityProvider: { getToken: async () => token(id) }, retry: 0 }),
    witnesses: [new RekorWitness({ rekorBaseURL: url, retry: 0, ...(entryType ? { entryType } : {}) })],
  });
  const serialize = (bundle: Parameters<typeof bundleToJSON>[0]): Buffer => Buffer.from(JSON.stringify(bundleToJSON(bundle)));

  return {
    trustedRoot,
    async signStatement(id, digest, name = 'registry.example/app') {
      const statement = {
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name, digest: { sha256: digest.replace(/^sha256:/, '') } }],
        predicateType: 'https://sigstore.dev/cosign/sign/v1',
        predicate: {},
      };
      return serialize(await new DSSEBundleBuilder(options(id, 'intoto')).create({ data: Buffer.from(JSON.stringify(statement)), type: IN_TOTO }));
    },
    async signMessage(id, bytes) {
      return serialize(await new MessageSignatureBundleBuilder(options(id)).create({ data: bytes }));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
