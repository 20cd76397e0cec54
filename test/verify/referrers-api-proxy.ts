/**
 * docker-registry 2.8.2 has no referrers API (OCI distribution 1.1); this proxy in front of it adds
 * one, the way registries that have it answer: every manifest with a `subject` pushed through the
 * proxy is listed under that subject at GET /v2/<name>/referrers/<digest> (an OCI index, with the
 * manifest's artifactType, or its config's media type, and annotations). Everything else is
 * forwarded unchanged, Host included, so upload Locations point back here.
 */
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestRegistry } from '../support/registry.js';

export interface ReferrersApiProxy {
  host: string;
  /** Referrers API requests answered. */
  referrersCalls: number;
  stop(): Promise<void>;
}

interface ListedDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

export async function startReferrersApiProxy(upstream: TestRegistry): Promise<ReferrersApiProxy> {
  const base = new URL(upstream.url);
  /** `repo@subject` → referrers pushed through here. */
  const listed = new Map<string, ListedDescriptor[]>();
  const proxy: ReferrersApiProxy = { host: '', referrersCalls: 0, stop: async () => undefined };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = new URL(req.url ?? '/', 'http://proxy').pathname;
      const referrers = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/.exec(path);
      if (referrers && req.method === 'GET') {
        proxy.referrersCalls++;
        const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: listed.get(`${referrers[1]}@${referrers[2]}`) ?? [] };
        const out = Buffer.from(JSON.stringify(index));
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': String(out.length) });
        res.end(out);
        return;
      }
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
      const up = httpRequest({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers }, (ur) => {
        const parts: Buffer[] = [];
        ur.on('data', (c: Buffer) => parts.push(c));
        ur.on('end', () => {
          const manifest = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(path);
          if (manifest && req.method === 'PUT' && ur.statusCode === 201) {
            const json = JSON.parse(body.toString()) as { mediaType?: string; artifactType?: string; config?: { mediaType?: string }; subject?: { digest?: string }; annotations?: Record<string, string> };
            const subject = json.subject?.digest;
            if (subject) {
              const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
              const key = `${manifest[1]}@${subject}`;
              const list = listed.get(key) ?? [];
              if (!list.some((d) => d.digest === digest)) {
                const d: ListedDescriptor = { mediaType: json.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', digest, size: body.length };
                const type = json.artifactType ?? json.config?.mediaType;
                if (type) d.artifactType = type;
                if (json.annotations) d.annotations = json.annotations;
                list.push(d);
              }
              listed.set(key, list);
            }
          }
          const h = { ...ur.headers };
          delete h['transfer-encoding'];
          const out = Buffer.concat(parts);
          if (req.method !== 'HEAD') h['content-length'] = String(out.length);
          res.writeHead(ur.statusCode ?? 502, h);
          res.end(req.method === 'HEAD' ? undefined : out);
        });
        ur.on('error', () => res.destroy());
      });
      up.on('error', () => res.destroy());
      up.end(body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
