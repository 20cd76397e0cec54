/**
 * A proxy on loopback in front of a real registry (docker-registry 2.8.2) that behaves like a big
 * registry in one documented way each: one option per quirk, named with its public source. What an
 * option does not touch is forwarded unchanged (Host included, so upload Locations point back here).
 */
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestRegistry } from './registry.js';

export interface QuirkProxyOptions {
  /**
   * The referrers endpoint answers this instead of the API: 303 to a rate-limited github.com page
   * (GHCR 2026, artifacthub/hub#4785), 302 to a login page (older Artifact Registry), a 400, a 401
   * without a challenge, a 403, or an HTML page with 200.
   */
  referrersAnswer?: 302 | 303 | 400 | 401 | 403 | 'html';
  /**
   * Quay (quay/quay#2597, oras-project/oras#738): a manifest with a `subject` whose artifactType
   * (or config media type) is not listed is refused with 400 MANIFEST_INVALID.
   */
  allowedArtifactTypes?: string[];
  /** GitLab (oras-project/oras-go#1396): a manifest reference `sha256-<hex>` resolves to `sha256:<hex>`. */
  digestTagAliases?: boolean;
  /**
   * Artifactory virtual repositories (renovatebot's RTFACT-18971 workaround): tags/list is paged
   * `pageSize` at a time with a `Link`, and the page that Link names answers 404.
   */
  brokenTagPages?: { pageSize: number };
  /** zot deduplication (project-zot/zot#4427): every blob HEAD answers 200 with Content-Length 0. */
  blobHeadStubs?: boolean;
  /**
   * ECR (aws/containers-roadmap#2860): a mount succeeds only when a manifest pushed through this
   * proxy to `from` names the blob; otherwise 202 with an upload session, as for a plain POST.
   */
  ecrMounts?: boolean;
  /** Artifactory-like: every mount is answered 202 with an upload session. */
  refuseMounts?: boolean;
  /**
   * ECR immutable tags (aws/containers-roadmap#862): a PUT by tag over a tag that points to other
   * content is refused with 400 TAG_INVALID.
   */
  immutableTags?: boolean;
  /** ECR without create-on-push (aws/containers-roadmap#853): pushes to other repositories answer 404 NAME_UNKNOWN. */
  existingRepositories?: string[];
  /**
   * Docker Hub (docker/docs#22134): manifest answers carry `ratelimit-limit`/`ratelimit-remaining`
   * (`N;w=21600`); each manifest GET uses one, HEADs none.
   */
  dockerHubQuota?: { limit: number; remaining: number };
  /**
   * Test control, not a quirk: manifest PUTs are held until `releaseManifests()`, so a test can
   * have blobs uploaded to a repository that no manifest references yet, as a race would.
   */
  holdManifestPuts?: boolean;
}

export interface QuirkLogEntry {
  method: string;
  path: string;
  status: number;
}

export interface QuirkProxy {
  host: string;
  log: QuirkLogEntry[];
  /** With dockerHubQuota: what is left. */
  quota?: { limit: number; remaining: number };
  /** With holdManifestPuts: lets held and later manifest PUTs through. */
  releaseManifests(): void;
  /** Resolves once a request matching `test` has been answered. */
  answered(test: (e: QuirkLogEntry) => boolean): Promise<void>;
  stop(): Promise<void>;
}

const ECR_ACCOUNT = '123456789012';
const WINDOW_SECONDS = 21600;

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

interface Upstream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

export async function startQuirkProxy(upstream: TestRegistry, o: QuirkProxyOptions): Promise<QuirkProxy> {
  const base = new URL(upstream.url);
  const log: QuirkLogEntry[] = [];
  const quota = o.dockerHubQuota ? { ...o.dockerHubQuota } : undefined;
  /** repository → blobs named by manifests pushed through here. */
  const referenced = new Map<string, Set<string>>();
  let releaseManifests!: () => void;
  const manifestsReleased = o.holdManifestPuts ? new Promise<void>((resolve) => (releaseManifests = resolve)) : Promise.resolve();
  if (!o.holdManifestPuts) releaseManifests = () => undefined;
  const watchers: Array<{ test: (e: QuirkLogEntry) => boolean; resolve: () => void }> = [];
  const answeredEntry = (e: QuirkLogEntry): void => {
    for (const w of watchers.filter((x) => x.test(e))) {
      watchers.splice(watchers.indexOf(w), 1);
      w.resolve();
    }
  };

  function send(method: string, path: string, headers: IncomingMessage['headers'], body?: Buffer): Promise<Upstream> {
    return new Promise((resolve, reject) => {
      const h = { ...headers };
      delete h['transfer-encoding'];
      if (body) h['content-length'] = String(body.length);
      else delete h['content-length'];
      const up = httpRequest({ host: base.hostname, port: base.port, method, path, headers: h }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const entry: QuirkLogEntry = { method, path: req.url ?? '/', status: 0 };
    log.push(entry);
    res.on('finish', () => answeredEntry(entry));
    const reply = (status: number, headers: Record<string, string | string[] | undefined>, body: string | Buffer = ''): void => {
      entry.status = status;
      const h: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(headers)) if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') h[k] = v;
      if (method !== 'HEAD') h['content-length'] = String(Buffer.byteLength(body));
      res.writeHead(status, h);
      res.end(method === 'HEAD' ? undefined : body);
    };
    const json = (status: number, body: string): void => reply(status, { 'content-type': 'application/json' }, body);

    void (async () => {
      const body = await readBody(req);
      const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
      const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
      const uploads = /^\/v2\/(.+)\/blobs\/uploads\/.*$/.exec(path);
      const referrers = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/.exec(path);
      const tags = /^\/v2\/(.+)\/tags\/list$/.exec(path);
      const repo = (manifest ?? blob ?? uploads ?? referrers ?? tags)?.[1];
      const push = method === 'POST' || method === 'PUT' || method === 'PATCH';

      if (o.existingRepositories && push && repo && !o.existingRepositories.includes(repo)) {
        json(404, errorBody('NAME_UNKNOWN', `The repository with name '${repo}' does not exist in the registry with id '${ECR_ACCOUNT}'`));
        return;
      }

      if (o.referrersAnswer !== undefined && referrers && method === 'GET') {
        const a = o.referrersAnswer;
        if (a === 302 || a === 303) reply(a, { location: a === 303 ? 'https://github.com/login?rate_limited=1' : 'https://accounts.example/login', 'content-type': 'text/html' }, '<html>moved</html>');
        else if (a === 'html') reply(200, { 'content-type': 'text/html; charset=utf-8' }, '<!DOCTYPE html><html><body>Sign in</body></html>');
        else json(a, errorBody(a === 400 ? 'UNSUPPORTED' : a === 401 ? 'UNAUTHORIZED' : 'DENIED', 'not here'));
        return;
      }

      if (o.brokenTagPages && tags && method === 'GET') {
        if (url.searchParams.has('last')) {
          json(404, errorBody('NAME_UNKNOWN', 'repository name not known to registry'));
          return;
        }
        // docker-registry 2.8.2 does not page tags/list itself: the proxy does.
        const n = o.brokenTagPages.pageSize;
        const u = await send('GET', `/v2/${tags[1]}/tags/list`, req.headers);
        if (u.status !== 200) {
          reply(u.status, u.headers, u.body);
          return;
        }
        const all = ((JSON.parse(u.body.toString()) as { tags?: string[] | null }).tags ?? []).slice().sort();
        const page = all.slice(0, n);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (all.length > n) headers['link'] = `</v2/${tags[1]}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
        reply(200, headers, JSON.stringify({ name: tags[1], tags: page }));
        return;
      }

      if (o.blobHeadStubs && blob && method === 'HEAD') {
        reply(200, { 'content-length': '0', 'docker-content-digest': blob[2]!, 'content-type': 'application/octet-stream' });
        return;
      }

      let forwardPath = req.url ?? '/';
      if (o.digestTagAliases && manifest && (method === 'GET' || method === 'HEAD') && /^sha256-[a-f0-9]{64}$/.test(manifest[2]!)) {
        forwardPath = `/v2/${manifest[1]}/manifests/${manifest[2]!.replace('-', ':')}`;
      }

      if (uploads && method === 'POST' && url.searchParams.has('mount')) {
        const digest = url.searchParams.get('mount') ?? '';
        const from = url.searchParams.get('from') ?? '';
        if (o.refuseMounts || (o.ecrMounts && !referenced.get(from)?.has(digest))) forwardPath = `/v2/${uploads[1]}/blobs/uploads/`;
      }

      let parsed: { subject?: unknown; artifactType?: string; config?: { mediaType?: string; digest?: string }; layers?: Array<{ digest?: string }> } | undefined;
      if (manifest && method === 'PUT') {
        try {
          parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
        } catch {
          parsed = undefined;
        }
        if (o.allowedArtifactTypes && parsed?.subject) {
          const type = parsed.artifactType ?? parsed.config?.mediaType ?? '';
          if (!o.allowedArtifactTypes.includes(type)) {
            json(400, errorBody('MANIFEST_INVALID', `manifest invalid: artifact type ${type} is not allowed`));
            return;
          }
        }
        const ref = manifest[2]!;
        if (o.immutableTags && !ref.startsWith('sha256:')) {
          const head = await send('HEAD', `/v2/${manifest[1]}/manifests/${ref}`, { ...req.headers, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' });
          const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
          if (head.status === 200 && head.headers['docker-content-digest'] !== digest) {
            json(400, errorBody('TAG_INVALID', `The image tag '${ref}' already exists in the '${manifest[1]}' repository and cannot be overwritten because the repository is immutable.`));
            return;
          }
        }
      }

      if (manifest && method === 'PUT') await manifestsReleased;
      const u = await send(method, forwardPath, req.headers, body.length > 0 || method === 'PUT' || method === 'POST' || method === 'PATCH' ? body : undefined);
      const headers = { ...u.headers };
      if (manifest && parsed && u.status === 201) {
        let set = referenced.get(manifest[1]!);
        if (!set) referenced.set(manifest[1]!, (set = new Set()));
        for (const d of [parsed.config?.digest, ...(parsed.layers ?? []).map((l) => l.digest)]) if (d) set.add(d);
      }
      if (quota && manifest && (method === 'GET' || method === 'HEAD') && u.status === 200) {
        if (method === 'GET') quota.remaining = Math.max(0, quota.remaining - 1);
        headers['ratelimit-limit'] = `${quota.limit};w=${WINDOW_SECONDS}`;
        headers['ratelimit-remaining'] = `${quota.remaining};w=${WINDOW_SECONDS}`;
      }
      if (method === 'HEAD') {
        entry.status = u.status;
        const h: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(headers)) if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') h[k] = v;
        res.writeHead(u.status, h);
        res.end();
        return;
      }
      reply(u.status, headers, u.body);
    })().catch(() => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  const port = await listen(server);
  return {
    host: `127.0.0.1:${port}`,
    log,
    ...(quota ? { quota } : {}),
    releaseManifests: () => releaseManifests(),
    answered: (test) => {
      if (log.some((e) => e.status !== 0 && test(e))) return Promise.resolve();
      return new Promise<void>((resolve) => watchers.push({ test, resolve }));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A clock the tests move by hand: `sleep` resolves once `advance` passes its time, so a
 * multi-minute Retry-After costs no real time; `auto` makes every sleep pass at once (time jumps).
 */
export class ManualClock {
  private t = 1_700_000_000_000;
  private sleepers: Array<{ at: number; resolve: () => void }> = [];
  private waiters: Array<() => void> = [];
  /** Every sleep asked for, in ms. */
  readonly sleeps: number[] = [];

  constructor(private readonly auto = false) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (this.auto) {
      this.t += ms;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const s = { at: this.t + ms, resolve };
      this.sleepers.push(s);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((x) => x !== s);
          reject(signal.reason);
        },
        { once: true },
      );
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves when something is asleep on this clock. */
  async sleeping(): Promise<void> {
    if (this.sleepers.length > 0) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  get pending(): number {
    return this.sleepers.length;
  }

  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
  }
}
