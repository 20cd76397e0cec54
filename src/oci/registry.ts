/**
 * The registry client: one RegistryClient per registry host (connections, tokens and learned
 * capabilities are shared by its repositories), implementing the content interface over the
 * OCI distribution API. Layers: transport (http.ts) → auth + retry (session.ts) → operations here
 * and in upload.ts.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Authenticator, repositoryScope } from './auth.js';
import type {
  BlobReader,
  Descriptor,
  ManifestInfo,
  ManifestJson,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
  RegistryCapabilities,
  Repository,
} from './content.js';
import { anonymous, type CredentialProvider } from './credentials.js';
import { isSha256Digest, isDigest, sha256Digest } from './digest.js';
import { OciError } from './errors.js';
import { drop, header, nextLink, resolveUrl, Transport, type HttpResponse, type RequestEvent } from './http.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, isSchema1MediaType } from './media-types.js';
import { isLoopbackRegistry, registryApiHost } from './reference.js';
import { retryPolicy } from './retry.js';
import { RegistrySession } from './session.js';
import { putBlob } from './upload.js';

export type { RequestEvent } from './http.js';

export type Capability = 'mount' | 'referrers_api';

export interface RegistryClientOptions {
  credentials?: CredentialProvider;
  /** Skip TLS verification, and use plain HTTP if the host speaks no TLS. */
  insecure?: boolean;
  onRequest?: (e: RequestEvent) => void;
  onCapability?: (c: Capability, supported: boolean) => void;
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  timeouts?: { connectMs?: number; headersMs?: number; bodyIdleMs?: number };
  /** Connections per origin (default 8). */
  connections?: number;
  /** Upload in PATCH chunks of this many bytes; default one monolithic PUT. */
  chunkSize?: number;
  userAgent?: string;
}

const KNOWN_MANIFEST_TYPES = new Set<string>([MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest]);
const MAX_PAGES = 10_000;

function baseType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

export class RegistryClient {
  readonly registry: string;
  readonly capabilities: RegistryCapabilities = {};
  /** @internal */
  readonly session: RegistrySession;
  /** @internal */
  readonly chunkSize: number | undefined;
  private readonly onCapability: RegistryClientOptions['onCapability'];

  constructor(registry: string, o: RegistryClientOptions = {}) {
    this.registry = registry;
    this.chunkSize = o.chunkSize;
    this.onCapability = o.onCapability;
    const apiHost = registryApiHost(registry);
    const transport = new Transport(apiHost, {
      insecure: o.insecure,
      // Loopback may use plain HTTP without `insecure`; with `insecure` it gets the registries.conf
      // meaning like any host: HTTPS without verification, plain HTTP if it speaks no TLS.
      plainHttp: isLoopbackRegistry(registry) && !o.insecure,
      onRequest: o.onRequest ? (e) => o.onRequest!({ ...e, registry }) : undefined,
      timeouts: o.timeouts,
      connections: o.connections,
      userAgent: o.userAgent,
    });
    const auth = new Authenticator({ registry, credentials: o.credentials ?? anonymous, dispatcher: transport.dispatcher, insecure: o.insecure });
    this.session = new RegistrySession(registry, apiHost, transport, auth, retryPolicy(o.retry));
  }

  repository(name: string): Repository {
    return new RegistryRepository(this, name);
  }

  /** @internal */
  setCapability(c: Capability, supported: boolean): void {
    const key = c === 'mount' ? 'mount' : 'referrersApi';
    if (this.capabilities[key] === supported) return;
    this.capabilities[key] = supported;
    this.onCapability?.(c, supported);
  }

  async close(): Promise<void> {
    await this.session.transport.close();
  }
}

class RegistryRepository implements Repository {
  readonly registry: string;

  constructor(
    private readonly client: RegistryClient,
    readonly repository: string,
  ) {
    this.registry = client.registry;
  }

  private get session(): RegistrySession {
    return this.client.session;
  }

  private pull(): string[] {
    return [repositoryScope(this.repository, ['pull'])];
  }

  private push(): string[] {
    return [repositoryScope(this.repository, ['push', 'pull'])];
  }

  private where(reference?: string): string {
    const base = `${this.registry}/${this.repository}`;
    if (!reference) return base;
    return isDigest(reference) ? `${base}@${reference}` : `${base}:${reference}`;
  }

  async headManifest(reference: string): Promise<ManifestInfo | undefined> {
    const what = `HEAD manifest ${this.where(reference)}`;
    const res = await this.session.request({
      method: 'HEAD',
      url: `/v2/${this.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.pull(),
      ok: [200, 404],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    const digest = header(res, 'docker-content-digest');
    const len = Number(header(res, 'content-length'));
    const mediaType = baseType(header(res, 'content-type'));
    if (!digest || !Number.isFinite(len) || !mediaType) {
      // Without the digest header a HEAD says nothing usable; fetch and hash.
      const m = await this.getManifest(reference);
      return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }
    if (isDigest(reference) && digest !== reference) {
      throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: registry answered for ${digest}`, registry: this.registry, repository: this.repository });
    }
    return { digest, mediaType, size: len };
  }

  async getManifest(reference: string): Promise<RawManifest> {
    const what = `GET manifest ${this.where(reference)}`;
    const err = (code: 'MANIFEST_TOO_LARGE' | 'UNSUPPORTED_SCHEMA1' | 'DIGEST_INVALID' | 'MANIFEST_INVALID', message: string): OciError =>
      new OciError({ code, message: `${what}: ${message}`, registry: this.registry, repository: this.repository });
    const res = await this.session.request({
      method: 'GET',
      url: `/v2/${this.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.pull(),
      ok: [200],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
    });
    const contentType = baseType(header(res, 'content-type'));
    if (isSchema1MediaType(contentType)) {
      drop(res.body);
      throw err('UNSUPPORTED_SCHEMA1', 'Docker schema1 manifests are not supported (re-push the image with a current client)');
    }
    const declared = Number(header(res, 'content-length'));
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      drop(res.body);
      throw err('MANIFEST_TOO_LARGE', `${declared} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`);
    }
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, () => err('MANIFEST_TOO_LARGE', `more than ${MAX_MANIFEST_BYTES} bytes`));
    let json: ManifestJson;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8')) as ManifestJson;
    } catch {
      throw err('MANIFEST_INVALID', 'body is not JSON');
    }
    if (json.schemaVersion === 1) {
      throw err('UNSUPPORTED_SCHEMA1', 'Docker schema1 manifests are not supported (re-push the image with a current client)');
    }
    const digest = sha256Digest(bytes);
    if (isDigest(reference)) {
      if (!isSha256Digest(reference)) throw err('DIGEST_INVALID', `unsupported digest algorithm in ${reference}`);
      if (digest !== reference) throw err('DIGEST_INVALID', `content hashes to ${digest}`);
    } else {
      const claimed = header(res, 'docker-content-digest');
      if (claimed && isSha256Digest(claimed) && claimed !== digest) throw err('DIGEST_INVALID', `registry says ${claimed}, content hashes to ${digest}`);
    }
    const mediaType = manifestMediaType(contentType, json);
    if (!mediaType) throw err('MANIFEST_INVALID', `unknown manifest media type ${contentType || '(none)'}`);
    return { digest, mediaType, size: bytes.length, bytes };
  }

  async putManifest(reference: string, manifest: { mediaType: string; bytes: Uint8Array }): Promise<string> {
    const what = `PUT manifest ${this.where(reference)}`;
    const digest = sha256Digest(manifest.bytes);
    if (manifest.bytes.length > MAX_MANIFEST_BYTES) {
      throw new OciError({ code: 'MANIFEST_TOO_LARGE', message: `${what}: ${manifest.bytes.length} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, registry: this.registry, repository: this.repository });
    }
    if (isDigest(reference) && reference !== digest) {
      throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: content hashes to ${digest}`, registry: this.registry, repository: this.repository });
    }
    const res = await this.session.request({
      method: 'PUT',
      url: `/v2/${this.repository}/manifests/${reference}`,
      headers: { 'content-type': manifest.mediaType },
      body: Buffer.from(manifest.bytes.buffer, manifest.bytes.byteOffset, manifest.bytes.byteLength),
      bodyBytes: manifest.bytes.length,
      scopes: this.push(),
      ok: [200, 201, 204],
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'NAME_UNKNOWN' },
    });
    await res.body.dump().catch(() => undefined);
    const reported = header(res, 'docker-content-digest');
    if (reported && reported !== digest) {
      throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: registry stored ${reported}, expected ${digest}`, registry: this.registry, repository: this.repository });
    }
    return digest;
  }

  async headBlob(digest: string): Promise<number | undefined> {
    const what = `HEAD blob ${this.where(digest)}`;
    const res = await this.session.request({
      method: 'HEAD',
      url: `/v2/${this.repository}/blobs/${digest}`,
      scopes: this.pull(),
      ok: [200, 404],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'BLOB_UNKNOWN' },
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    const len = Number(header(res, 'content-length'));
    if (!Number.isFinite(len)) throw new OciError({ code: 'PROTOCOL', message: `${what}: no Content-Length`, registry: this.registry, repository: this.repository });
    return len;
  }

  /** `size` of the reader is the whole blob's size, whatever the offset. */
  async getBlob(digest: string, offset = 0): Promise<BlobReader> {
    const what = `GET blob ${this.where(digest)}`;
    const res = await this.session.request({
      method: 'GET',
      url: `/v2/${this.repository}/blobs/${digest}`,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scopes: this.pull(),
      ok: [200, 206],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'BLOB_UNKNOWN' },
    });
    if (res.status === 206) {
      const m = /\/(\d+)\s*$/.exec(header(res, 'content-range') ?? '');
      const size = m ? Number(m[1]) : offset + Number(header(res, 'content-length'));
      return { stream: res.body, size };
    }
    const size = Number(header(res, 'content-length'));
    // The server ignored the Range: skip to the offset ourselves.
    const stream = offset > 0 ? res.body.pipe(skipBytes(offset)) : res.body;
    if (offset > 0) res.body.on('error', (e) => stream.destroy(e));
    return { stream, size };
  }

  putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult> {
    const c = this.client;
    return putBlob(
      {
        session: c.session,
        repository: this.repository,
        capabilities: c.capabilities,
        setCapability: (k, v) => c.setCapability(k, v),
        chunkSize: c.chunkSize,
        pushScopes: this.push(),
        // One token: push on the target first (some token servers read only the first scope).
        mountScopes: (from) => [repositoryScope(this.repository, ['push', 'pull']), repositoryScope(from, ['pull'])],
      },
      desc,
      open,
      options,
    );
  }

  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let url = `/v2/${this.repository}/tags/list?n=1000`;
    for (let page = 0; page < MAX_PAGES; page++) {
      const what = `list tags of ${this.where()}`;
      const res = await this.session.request({
        method: 'GET',
        url,
        scopes: this.pull(),
        ok: [200, 404],
        ctx: { registry: this.registry, repository: this.repository, what, notFound: 'NAME_UNKNOWN' },
      });
      if (res.status === 404) {
        await res.body.dump().catch(() => undefined);
        return tags;
      }
      const body = (await readJson(res, what, this.registry)) as { tags?: unknown };
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === 'string') tags.push(t);
      const next = nextLink(header(res, 'link'));
      if (!next) return tags;
      url = resolveUrl(next, res.url).href;
    }
    throw new OciError({ code: 'PROTOCOL', message: `list tags of ${this.where()}: more than ${MAX_PAGES} pages`, registry: this.registry });
  }

  async referrers(digest: string): Promise<Descriptor[] | undefined> {
    if (this.client.capabilities.referrersApi === false) return undefined;
    const out: Descriptor[] = [];
    let url = `/v2/${this.repository}/referrers/${digest}`;
    for (let page = 0; page < MAX_PAGES; page++) {
      const what = `GET referrers of ${this.where(digest)}`;
      const res = await this.session.request({
        method: 'GET',
        url,
        headers: { accept: MediaType.OciIndex },
        scopes: this.pull(),
        ok: [200, 404],
        ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
      });
      const type = baseType(header(res, 'content-type'));
      if (res.status === 404 || (page === 0 && type !== MediaType.OciIndex)) {
        // No referrers API: callers use the sha256-<hex> fallback tag from now on.
        await res.body.dump().catch(() => undefined);
        this.client.setCapability('referrers_api', false);
        return undefined;
      }
      const index = (await readJson(res, what, this.registry)) as ManifestJson;
      this.client.setCapability('referrers_api', true);
      if (Array.isArray(index.manifests)) out.push(...index.manifests);
      const next = nextLink(header(res, 'link'));
      if (!next) return out;
      url = resolveUrl(next, res.url).href;
    }
    return out;
  }
}

function manifestMediaType(contentType: string, json: ManifestJson): string | undefined {
  if (KNOWN_MANIFEST_TYPES.has(contentType)) return contentType;
  if (typeof json.mediaType === 'string' && json.mediaType) return json.mediaType;
  if (Array.isArray(json.manifests)) return MediaType.OciIndex;
  if (json.config) return MediaType.OciManifest;
  return contentType || undefined;
}

/** Buffers a body, refusing (and dropping the connection) once it passes `cap` bytes. */
async function readCapped(res: HttpResponse, cap: number, tooLarge: () => OciError): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    const b = c as Buffer;
    n += b.length;
    if (n > cap) {
      drop(res.body);
      throw tooLarge();
    }
    parts.push(b);
  }
  return new Uint8Array(Buffer.concat(parts));
}

async function readJson(res: HttpResponse, what: string, registry: string): Promise<unknown> {
  const bytes = await readCapped(res, MAX_MANIFEST_BYTES * 4, () => new OciError({ code: 'PROTOCOL', message: `${what}: response too large`, registry }));
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch {
    throw new OciError({ code: 'PROTOCOL', message: `${what}: response is not JSON`, registry });
  }
}

function skipBytes(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        cb();
        return;
      }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
}

