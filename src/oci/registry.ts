/**
 * The registry client: one RegistryClient per registry host (connections, tokens and learned
 * capabilities are shared by its repositories), implementing the content interface over the
 * OCI distribution API. Layers: transport (http.ts) → auth + retry (session.ts) → operations here
 * and in upload.ts.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Authenticator, repositoryScope, type TokenRequestEvent } from './auth.js';
import type {
  BackendCapabilities,
  BlobReader,
  CallOptions,
  Descriptor,
  GetManifestOptions,
  ManifestInfo,
  ManifestJson,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
  RegistryCapabilities,
  Repository,
} from './content.js';
import { anonymous, type CredentialProvider } from './credentials.js';
import { sha256Digest } from './digest.js';
import { OciError, isOciError } from './errors.js';
import type { HostTls } from './certs-dir.js';
import { schemeFor } from './dispatcher.js';
import { drop, header, nextLink, Transport, type HttpResponse, type RequestEvent, type TransportTimeouts } from './http.js';
import { parseRegistryJson } from './json.js';
import { ReferrersListing, TagListing, nextPageUrl, type ListingContext } from './listing.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, isSchema1MediaType } from './media-types.js';
import { apiPath, digestProblem, isValidMediaType, isValidRepository, looksLikeDigest, quote, repositoryProblem, type ApiKind } from './names.js';
import { limitsFor, systemClock, type Clock, type RateLimitOptions } from './rate-limit.js';
import { registryApiHost } from './reference.js';
import { retryPolicy } from './retry.js';
import { RegistrySession, type RequestOp } from './session.js';
import { mountBlob, putBlob, type UploadTarget } from './upload.js';

export type { RequestEvent } from './http.js';
export type { TokenRequestEvent } from './auth.js';

export type Capability = 'mount' | 'referrers_api';

export interface RegistryClientOptions {
  credentials?: CredentialProvider;
  /** Skip TLS verification, and use plain HTTP if the host speaks no TLS. */
  insecure?: boolean;
  /** Every request to the registry, answered or failed (method, URL without secrets, status, bytes, time). */
  onRequest?: (e: RequestEvent) => void;
  /** Every request to its token endpoint, the same way (the token and credentials are never in it). */
  onTokenRequest?: (e: TokenRequestEvent) => void;
  onCapability?: (c: Capability, supported: boolean) => void;
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  timeouts?: TransportTimeouts;
  /** CAs and client certificate for this registry (from a certs directory): always HTTPS, verified with them. */
  tls?: HostTls;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Connections per origin (default 8). */
  connections?: number;
  /** Upload in PATCH chunks of this many bytes; default one monolithic PUT. */
  chunkSize?: number;
  userAgent?: string;
  /**
   * Request budget and quota floor per registry host (rate-limit.ts). Clients given the same
   * object share one budget and one Retry-After pause per registry; without it each client has
   * its own pause (Retry-After is always honoured) and no budget.
   */
  rateLimit?: RateLimitOptions;
  /** Time source for pauses, budgets and re-probing mounts (tests inject one). */
  clock?: Clock;
}

const KNOWN_MANIFEST_TYPES = new Set<string>([MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest]);

/** Numbers RegistryClient ids: unique for the life of the process. */
let clientCount = 0;

function baseType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

export class RegistryClient {
  readonly registry: string;
  /**
   * Unique per client object. The reconciler makes one client per (registry, TLS mode, credential),
   * so two repositories with the same `identity` (client id + repository) read with the same
   * credentials: what one could read, the other could.
   */
  readonly id: string;
  readonly capabilities: RegistryCapabilities = {};
  /** @internal */
  readonly session: RegistrySession;
  /** @internal */
  readonly chunkSize: number | undefined;
  /** @internal */
  readonly clock: Clock;
  private readonly onCapability: RegistryClientOptions['onCapability'];

  constructor(registry: string, o: RegistryClientOptions = {}) {
    this.registry = registry;
    this.id = `${registry}#${++clientCount}`;
    this.chunkSize = o.chunkSize;
    this.clock = o.clock ?? systemClock;
    this.onCapability = o.onCapability;
    const apiHost = registryApiHost(registry);
    const transport = new Transport(apiHost, {
      insecure: o.insecure,
      // Loopback may use plain HTTP without `insecure`, unless a certs directory holds TLS material
      // for it; with `insecure` any host gets the registries.conf meaning: HTTPS without
      // verification, plain HTTP if it speaks no TLS.
      plainHttp: schemeFor(registry, { insecure: o.insecure, tls: o.tls }) === 'http',
      tls: o.tls,
      env: o.env,
      onRequest: o.onRequest ? (e) => o.onRequest!({ ...e, registry }) : undefined,
      timeouts: o.timeouts,
      connections: o.connections,
      userAgent: o.userAgent,
    });
    const auth = new Authenticator({
      registry,
      credentials: o.credentials ?? anonymous,
      dispatcher: transport.dispatcher,
      insecure: o.insecure,
      onRequest: o.onTokenRequest ? (e) => o.onTokenRequest!({ ...e, registry }) : undefined,
    });
    const gate = limitsFor(o.rateLimit, this.clock).gate(registry);
    this.session = new RegistrySession(registry, apiHost, transport, auth, retryPolicy(o.retry), gate);
  }

  /** Throws OciError INVALID_REFERENCE for a name outside the distribution grammar. */
  repository(name: string): Repository {
    const problem = repositoryProblem(name);
    if (problem !== undefined) {
      throw new OciError({ code: 'INVALID_REFERENCE', message: `${this.registry}: ${problem}`, registry: this.registry, ...(typeof name === 'string' ? { repository: name } : {}) });
    }
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

/**
 * A registry can mount and may have the referrers API, but says so only when asked: both are
 * learned per registry (upload.ts, referrers()), and tags can always be listed.
 */
export const REGISTRY_CAPABILITIES: BackendCapabilities = Object.freeze({ mount: 'learn', referrersApi: 'learn', tagListing: true });

class RegistryRepository implements Repository {
  readonly registry: string;
  readonly identity: string;
  readonly blobStore: string;
  readonly capabilities = REGISTRY_CAPABILITIES;

  constructor(
    private readonly client: RegistryClient,
    readonly repository: string,
  ) {
    this.registry = client.registry;
    // Blobs are shared by every repository of the registry, whoever reads them.
    this.blobStore = client.registry;
    this.identity = `${client.id}/${repository}`;
  }

  /** The request path; a reference outside the tag/digest grammar is refused naming this repository. */
  private path(kind: ApiKind, reference?: string): string {
    try {
      return apiPath(this.repository, kind, reference);
    } catch (e) {
      if (!isOciError(e)) throw e;
      throw new OciError({ code: e.code, message: `${this.where()}: ${e.message}`, registry: this.registry, repository: this.repository });
    }
  }

  private fail(code: 'DIGEST_INVALID' | 'PROTOCOL' | 'MANIFEST_INVALID', what: string, detail: string): OciError {
    return new OciError({ code, message: `${what}: ${detail}`, registry: this.registry, repository: this.repository });
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

  /** The per-call part of a request: cancellation and waiting. */
  private call(o: CallOptions | undefined): Pick<RequestOp, 'signal' | 'whileWaiting'> {
    return { ...(o?.signal ? { signal: o.signal } : {}), ...(o?.whileWaiting ? { whileWaiting: o.whileWaiting } : {}) };
  }

  private where(reference?: string): string {
    const base = `${this.registry}/${this.repository}`;
    if (!reference) return base;
    if (looksLikeDigest(reference)) return `${base}@${reference}`;
    return /^[\w.-]{1,128}$/.test(reference) ? `${base}:${reference}` : `${base}:${quote(reference)}`;
  }

  async headManifest(reference: string, options?: CallOptions): Promise<ManifestInfo | undefined> {
    const what = `HEAD manifest ${this.where(reference)}`;
    const url = this.path('manifests', reference);
    const res = await this.session.request({
      method: 'HEAD',
      url,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.pull(),
      ok: [200, 404],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
      ...this.call(options),
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    const digest = header(res, 'docker-content-digest');
    // A digest header is taken as the image's identity (it is what gets fetched and compared next),
    // so it must be a digest: `Docker-Content-Digest: latest` would make a tag out of it.
    if (digest !== undefined) {
      const problem = digestProblem(digest);
      if (problem !== undefined) throw this.fail('DIGEST_INVALID', what, `Docker-Content-Digest: ${problem}`);
    }
    if (digest !== undefined && looksLikeDigest(reference) && digest !== reference) {
      throw this.fail('DIGEST_INVALID', what, `registry answered for ${digest}`);
    }
    const len = Number(header(res, 'content-length'));
    const mediaType = baseType(header(res, 'content-type'));
    if (!digest || !Number.isSafeInteger(len) || len < 0 || !isValidMediaType(mediaType)) {
      // Without the digest header a HEAD says nothing usable; fetch and hash (held to the digest
      // the HEAD did promise, if any).
      const m = await this.getManifest(reference, { ...options, ...(digest ? { expectDigest: digest } : {}) });
      return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }
    return { digest, mediaType, size: len };
  }

  async getManifest(reference: string, options: GetManifestOptions = {}): Promise<RawManifest> {
    const what = `GET manifest ${this.where(reference)}`;
    const err = (code: 'MANIFEST_TOO_LARGE' | 'UNSUPPORTED_SCHEMA1' | 'DIGEST_INVALID' | 'MANIFEST_INVALID', message: string): OciError =>
      new OciError({ code, message: `${what}: ${message}`, registry: this.registry, repository: this.repository });
    const url = this.path('manifests', reference);
    const expect = looksLikeDigest(reference) ? reference : options.expectDigest;
    if (options.expectDigest !== undefined) {
      const problem = digestProblem(options.expectDigest);
      if (problem !== undefined) throw err('DIGEST_INVALID', `expected digest: ${problem}`);
      if (expect !== options.expectDigest) throw err('DIGEST_INVALID', `expected ${options.expectDigest} for a digest reference`);
    }
    const res = await this.session.request({
      method: 'GET',
      url,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.pull(),
      ok: [200],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
      ...this.call(options),
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
    let parsed: unknown;
    try {
      parsed = parseRegistryJson(bytes);
    } catch (e) {
      throw err('MANIFEST_INVALID', `body is ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw err('MANIFEST_INVALID', 'body is not a JSON object');
    const json = parsed as ManifestJson;
    if (json.schemaVersion === 1) {
      throw err('UNSUPPORTED_SCHEMA1', 'Docker schema1 manifests are not supported (re-push the image with a current client)');
    }
    const digest = sha256Digest(bytes);
    if (expect !== undefined) {
      if (digest !== expect) {
        throw err('DIGEST_INVALID', looksLikeDigest(reference) ? `content hashes to ${digest}` : `content hashes to ${digest}, expected ${expect}`);
      }
    } else {
      const claimed = header(res, 'docker-content-digest');
      if (claimed !== undefined) {
        const problem = digestProblem(claimed);
        if (problem !== undefined) throw err('DIGEST_INVALID', `Docker-Content-Digest: ${problem}`);
        if (claimed !== digest) throw err('DIGEST_INVALID', `registry says ${claimed}, content hashes to ${digest}`);
      }
    }
    const mediaType = manifestMediaType(contentType, json);
    if (!mediaType) throw err('MANIFEST_INVALID', `unknown manifest media type ${contentType ? quote(contentType) : '(none)'}`);
    return { digest, mediaType, size: bytes.length, bytes };
  }

  async putManifest(reference: string, manifest: { mediaType: string; bytes: Uint8Array }, options?: CallOptions): Promise<string> {
    const what = `PUT manifest ${this.where(reference)}`;
    const digest = sha256Digest(manifest.bytes);
    if (manifest.bytes.length > MAX_MANIFEST_BYTES) {
      throw new OciError({ code: 'MANIFEST_TOO_LARGE', message: `${what}: ${manifest.bytes.length} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, registry: this.registry, repository: this.repository });
    }
    const url = this.path('manifests', reference);
    if (looksLikeDigest(reference) && reference !== digest) {
      throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: content hashes to ${digest}`, registry: this.registry, repository: this.repository });
    }
    if (!isValidMediaType(manifest.mediaType)) throw this.fail('MANIFEST_INVALID', what, `media type ${quote(manifest.mediaType)} is not a type/subtype`);
    const res = await this.session.request({
      method: 'PUT',
      url,
      headers: { 'content-type': manifest.mediaType },
      body: Buffer.from(manifest.bytes.buffer, manifest.bytes.byteOffset, manifest.bytes.byteLength),
      bodyBytes: manifest.bytes.length,
      scopes: this.push(),
      ok: [200, 201, 204],
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'NAME_UNKNOWN', push: true },
      ...this.call(options),
    });
    await res.body.dump().catch(() => undefined);
    const reported = header(res, 'docker-content-digest');
    if (reported && reported !== digest) {
      throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: registry stored ${reported}, expected ${digest}`, registry: this.registry, repository: this.repository });
    }
    return digest;
  }

  /**
   * DELETE of a tag or a manifest digest. The spec answers 202; 200 and 204 are accepted too. A
   * refusal is an OciError with its status: distribution 2.x has no tag deletion and answers a tag
   * with 400 DIGEST_INVALID, and 405 UNSUPPORTED when deletion is disabled
   * (`storage.delete.enabled: false`, its default). distribution's token auth asks for the
   * `delete` action on the repository.
   */
  async deleteManifest(reference: string, options?: CallOptions): Promise<void> {
    const what = `DELETE manifest ${this.where(reference)}`;
    const url = this.path('manifests', reference);
    const res = await this.session.request({
      method: 'DELETE',
      url,
      scopes: [repositoryScope(this.repository, ['delete'])],
      ok: [200, 202, 204],
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
      ...this.call(options),
    });
    await res.body.dump().catch(() => undefined);
  }

  async headBlob(digest: string, options?: CallOptions): Promise<number | undefined> {
    const what = `HEAD blob ${this.where(digest)}`;
    const url = this.path('blobs', digest);
    const res = await this.session.request({
      method: 'HEAD',
      url,
      scopes: this.pull(),
      ok: [200, 404],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'BLOB_UNKNOWN' },
      ...this.call(options),
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    const len = Number(header(res, 'content-length') ?? NaN);
    if (!Number.isSafeInteger(len) || len < 0) throw this.fail('PROTOCOL', what, 'no valid Content-Length');
    return len;
  }

  /** `size` of the reader is the whole blob's size, whatever the offset. */
  async getBlob(digest: string, offset = 0, options?: CallOptions): Promise<BlobReader> {
    const what = `GET blob ${this.where(digest)}`;
    const url = this.path('blobs', digest);
    const res = await this.session.request({
      method: 'GET',
      url,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scopes: this.pull(),
      ok: [200, 206],
      followRedirects: true,
      ctx: { registry: this.registry, repository: this.repository, what, notFound: 'BLOB_UNKNOWN' },
      ...this.call(options),
    });
    const checked = (size: number): number => {
      if (Number.isSafeInteger(size) && size >= 0) return size;
      drop(res.body);
      throw this.fail('PROTOCOL', what, 'no valid Content-Length or Content-Range');
    };
    if (res.status === 206) {
      const m = /\/(\d{1,16})\s*$/.exec(header(res, 'content-range') ?? '');
      const size = checked(m ? Number(m[1]) : offset + Number(header(res, 'content-length') ?? NaN));
      return { stream: res.body, size };
    }
    const size = checked(Number(header(res, 'content-length') ?? NaN));
    // The server ignored the Range: skip to the offset ourselves.
    const stream = offset > 0 ? res.body.pipe(skipBytes(offset)) : res.body;
    if (offset > 0) res.body.on('error', (e) => stream.destroy(e));
    return { stream, size };
  }

  mountBlob(desc: Descriptor, from: string, options?: CallOptions): Promise<boolean> {
    // `from` becomes a query value and a token scope: only a well-formed name, and never this one.
    if (!isValidRepository(from) || from === this.repository) return Promise.resolve(false);
    return mountBlob(this.uploadTarget(), desc, from, options);
  }

  private uploadTarget(): UploadTarget {
    const c = this.client;
    return {
      session: c.session,
      repository: this.repository,
      capabilities: c.capabilities,
      setCapability: (k, v) => c.setCapability(k, v),
      now: () => c.clock.now(),
      chunkSize: c.chunkSize,
      pushScopes: this.push(),
      // One token: push on the target first (some token servers read only the first scope).
      mountScopes: (from) => [repositoryScope(this.repository, ['push', 'pull']), repositoryScope(from, ['pull'])],
    };
  }

  putBlob(desc: Descriptor, open: (offset: number) => Promise<BlobReader>, options?: PutBlobOptions): Promise<PutBlobResult> {
    // Mount sources become a `from=` query value and a token scope: only well-formed names. (Which
    // of them the target's credentials may read is the registry's check on every mount.)
    if (options?.mountFrom) options = { ...options, mountFrom: options.mountFrom.filter((r) => isValidRepository(r)) };
    return putBlob(this.uploadTarget(), desc, open, options);
  }

  /**
   * Every valid tag, following `Link` pages under the listing bounds (listing.ts); entries outside
   * the tag grammar are dropped. Only the first page may say "no such repository": a later page
   * answering 404 is a broken `Link` (Artifactory virtual repositories, RTFACT-18971), and
   * returning the tags so far would make a silently shorter list.
   */
  async listTags(options?: CallOptions): Promise<string[]> {
    const what = `list tags of ${this.where()}`;
    const ctx: ListingContext = { registry: this.registry, repository: this.repository, what };
    const listing = new TagListing(ctx);
    let url = `${this.path('tags/list')}?${new URLSearchParams({ n: '1000' }).toString()}`;
    for (;;) {
      listing.beginPage();
      const res = await this.session.request({
        method: 'GET',
        url,
        scopes: this.pull(),
        ok: [200, 404],
        ctx: { registry: this.registry, repository: this.repository, what: listing.pages === 1 ? what : `${what} (page ${listing.pages})`, notFound: 'NAME_UNKNOWN' },
        ...this.call(options),
      });
      if (res.status === 404) {
        await res.body.dump().catch(() => undefined);
        if (listing.pages === 1) return listing.tags;
        throw this.fail('PROTOCOL', what, `page ${listing.pages} (from the registry's Link header) answered 404; a partial tag list is not used`);
      }
      listing.addPage(await readCapped(res, listing.remainingBytes, () => listing.tooLarge()));
      const next = nextPageUrl(nextLink(header(res, 'link')), res.url, ctx);
      if (!next) return listing.tags;
      url = next.href;
    }
  }

  /**
   * The referrers API, page by page. A first page that is not an answer of that API means the
   * registry has none: a 404, a redirect (GHCR answers 303 to a rate-limited github.com page,
   * artifacthub/hub#4785), a 400, 401 or 403 (older Artifact Registry sends a login page), or a
   * 200 that is not an OCI index (an HTML page). Callers then use the fallback tag, so none of
   * these fails the image's sync.
   */
  async referrers(digest: string, options?: CallOptions): Promise<Descriptor[] | undefined> {
    if (this.client.capabilities.referrersApi === false) return undefined;
    const what = `GET referrers of ${this.where(digest)}`;
    const ctx: ListingContext = { registry: this.registry, repository: this.repository, what };
    const listing = new ReferrersListing(ctx);
    const noApi = (): undefined => {
      this.client.setCapability('referrers_api', false);
      return undefined;
    };
    let url = this.path('referrers', digest);
    for (;;) {
      listing.beginPage();
      const first = listing.pages === 1;
      let res: HttpResponse;
      try {
        res = await this.session.request({
          method: 'GET',
          url,
          headers: { accept: MediaType.OciIndex },
          scopes: this.pull(),
          ok: first ? NOT_A_REFERRERS_API : [200],
          ctx: { registry: this.registry, repository: this.repository, what, notFound: 'MANIFEST_UNKNOWN' },
          ...this.call(options),
        });
      } catch (e) {
        // A 401 the session could not cure (or one meaning "no such scope"): not this API.
        if (first && isOciError(e) && e.status === 401) return noApi();
        throw e;
      }
      const type = baseType(header(res, 'content-type'));
      if (first && (res.status !== 200 || type !== MediaType.OciIndex)) {
        await res.body.dump().catch(() => undefined);
        return noApi();
      }
      const body = await readCapped(res, listing.remainingBytes, () => listing.tooLarge());
      this.client.setCapability('referrers_api', true);
      listing.addPage(body);
      const next = nextPageUrl(nextLink(header(res, 'link')), res.url, ctx);
      if (!next) return listing.descriptors;
      url = next.href;
    }
  }
}

/**
 * First-page answers of a referrers endpoint that mean "no referrers API here" rather than an
 * error (200 is read, and is an API answer only as an OCI index).
 */
const NOT_A_REFERRERS_API: readonly number[] = [200, 301, 302, 303, 307, 308, 400, 403, 404];

/** The media type the manifest is PUT with: a `type/subtype`, since it becomes a request header. */
function manifestMediaType(contentType: string, json: ManifestJson): string | undefined {
  if (KNOWN_MANIFEST_TYPES.has(contentType)) return contentType;
  if (typeof json.mediaType === 'string' && json.mediaType) return isValidMediaType(json.mediaType) ? json.mediaType : undefined;
  if (Array.isArray(json.manifests)) return MediaType.OciIndex;
  if (json.config) return MediaType.OciManifest;
  return isValidMediaType(contentType) ? contentType : undefined;
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

