// HTTP front of the fake API server: routing, discovery, tables, watch streaming, fault injection.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { EXTRA_FIELDS } from './builtins.js';
import { ApiError, badRequest, statusBody } from './errors.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { parseFieldSelector, parseLabelSelector, type Matcher } from './selectors.js';
import type { Store, StoredEvent } from './store.js';
import { toTable, wantsTable } from './table.js';
import type { KObject, ResourceType } from './types.js';
import { apiVersionOf, isObject } from './types.js';

/** What a request was, in Kubernetes terms (the shape the request log and failNext use). */
export interface RequestInfo {
  verb: string; // get list watch create update patch delete deletecollection (discovery: get)
  path: string;
  method: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  contentType?: string;
  query: URLSearchParams;
}

export interface LoggedRequest {
  verb: string;
  path: string;
  status: number;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  contentType?: string;
  query: string;
}

export type RequestMatcher =
  | ((r: RequestInfo) => boolean)
  | { verb?: string; resource?: string; subresource?: string; namespace?: string; name?: string; group?: string; watch?: boolean };

interface Injected {
  match: (r: RequestInfo) => boolean;
  status: number;
  remaining: number;
  message?: string;
}

interface ActiveWatch {
  res: http.ServerResponse;
  socket: Socket;
  silenced: boolean;
  timers: NodeJS.Timeout[];
  close: () => void;
}

export interface ServerOptions {
  /** How a watch from a too-old resourceVersion is refused: HTTP 410, or a 200 stream with an ERROR event. */
  expiredWatch: 'http' | 'event';
  bookmarkIntervalMs: number;
  /** Serve /openapi/v2 and /openapi/v3 (minimal documents) instead of 404. */
  openapi: boolean;
}

const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];

export class ApiHttpServer {
  readonly requests: LoggedRequest[] = [];
  private injected: Injected[] = [];
  private watches = new Set<ActiveWatch>();
  private sockets = new Set<Socket>();
  private server: http.Server;
  private requestListeners = new Set<() => void>();
  url = '';

  constructor(
    readonly store: Store,
    readonly opts: ServerOptions,
  ) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(500, `fake apiserver: ${(e as Error).message}`);
        if (!res.headersSent) this.send(res, err.code, err.toStatus());
        else res.destroy();
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const a = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${a.port}`;
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  onRequest(fn: () => void): () => void {
    this.requestListeners.add(fn);
    return () => this.requestListeners.delete(fn);
  }

  failNext(matcher: RequestMatcher, status: number, o: { times?: number; message?: string } = {}): void {
    const match =
      typeof matcher === 'function'
        ? matcher
        : (r: RequestInfo) =>
            (matcher.verb === undefined || matcher.verb === r.verb) &&
            (matcher.resource === undefined || matcher.resource === r.resource) &&
            (matcher.subresource === undefined || matcher.subresource === r.subresource) &&
            (matcher.namespace === undefined || matcher.namespace === r.namespace) &&
            (matcher.name === undefined || matcher.name === r.name) &&
            (matcher.group === undefined || matcher.group === r.group) &&
            (matcher.watch === undefined || matcher.watch === (r.verb === 'watch'));
    this.injected.push({ match, status, remaining: o.times ?? 1, message: o.message });
  }

  /** Severs every open watch connection mid-stream (no terminating chunk: the client sees a reset). */
  dropWatches(): void {
    for (const w of [...this.watches]) {
      for (const t of w.timers) clearInterval(t);
      this.watches.delete(w);
      w.socket.destroy();
    }
  }

  /** Ends every open watch cleanly (terminating chunk), as a server does at timeoutSeconds; clients re-watch. */
  closeWatches(): void {
    for (const w of [...this.watches]) w.close();
  }

  /** Open watches stay connected but never send again, nor close: a half-open connection. */
  silenceWatches(): void {
    for (const w of this.watches) {
      w.silenced = true;
      for (const t of w.timers) clearInterval(t);
    }
  }

  /** Sends a BOOKMARK now on every open watch that asked for bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watches) w.res.emit('bookmark');
  }

  activeWatches(): number {
    return this.watches.size;
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private parseJson(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
    }
  }

  private classify(method: string, url: URL, contentType: string | undefined): RequestInfo & { kind: 'discovery' | 'resource' | 'other'; segs: string[] } {
    const segs = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    const base = { path: url.pathname, method, query: url.searchParams, contentType, segs };
    let group: string | undefined;
    let version: string | undefined;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 2) {
      group = '';
      version = segs[1];
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 3) {
      group = segs[1];
      version = segs[2];
      rest = segs.slice(3);
    } else {
      return { ...base, verb: 'get', kind: segs[0] === 'api' || segs[0] === 'apis' ? 'discovery' : 'other' };
    }
    if (rest.length === 0) return { ...base, verb: 'get', group, version, kind: 'discovery' };
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [resource, name, subresource] = rest;
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    let verb: string;
    switch (method) {
      case 'GET':
        verb = name === undefined ? (watch ? 'watch' : 'list') : 'get';
        break;
      case 'POST':
        verb = 'create';
        break;
      case 'PUT':
        verb = 'update';
        break;
      case 'PATCH':
        verb = 'patch';
        break;
      case 'DELETE':
        verb = name === undefined ? 'deletecollection' : 'delete';
        break;
      default:
        verb = method.toLowerCase();
    }
    return { ...base, verb, group, version, resource, name, subresource, namespace, kind: 'resource' };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const contentType = req.headers['content-type']?.split(';')[0]?.trim();
    const info = this.classify(req.method ?? 'GET', url, contentType);
    const entry: LoggedRequest = {
      verb: info.verb, path: info.path, status: 0, resource: info.resource, subresource: info.subresource,
      namespace: info.namespace, name: info.name, contentType, query: url.search,
    };
    this.requests.push(entry);
    const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => http.ServerResponse;
    res.writeHead = ((...a: unknown[]) => {
      entry.status = a[0] as number;
      const r = writeHead(...a);
      for (const fn of [...this.requestListeners]) fn();
      return r;
    }) as typeof res.writeHead;

    const inj = this.injected.find((i) => i.remaining > 0 && i.match(info));
    if (inj) {
      inj.remaining--;
      this.injected = this.injected.filter((i) => i.remaining > 0);
      await this.readBody(req);
      this.send(res, inj.status, statusBody(inj.status, inj.message ?? `injected failure for ${info.verb} ${info.path}`));
      return;
    }

    if (info.kind === 'other') return this.handleOther(url, req.headers.accept, res);
    if (info.kind === 'discovery') return this.handleDiscovery(info.segs, res);

    const t = this.store.findType(info.group!, info.version!, info.resource!);
    if (!t || (info.namespace !== undefined && !t.namespaced)) {
      await this.readBody(req);
      throw new ApiError(404, 'the server could not find the requested resource', 'NotFound', {});
    }
    // /api/v1/namespaces/<name>[/status] is the namespace itself, not a namespaced collection.
    const ns = t.namespaced ? info.namespace : undefined;
    const q = url.searchParams;
    const dryRun = q.get('dryRun') === 'All';
    const accept = req.headers.accept;

    switch (info.verb) {
      case 'list': {
        const items = this.filtered(t, ns, q);
        const limit = Number(q.get('limit') ?? 0);
        let start = 0;
        const cont = q.get('continue');
        if (cont) start = Number(Buffer.from(cont, 'base64').toString('utf8')) || 0;
        const page = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
        const more = limit > 0 && start + limit < items.length;
        const meta: Record<string, unknown> = { resourceVersion: String(this.store.rv) };
        if (more) {
          meta.continue = Buffer.from(String(start + limit)).toString('base64');
          meta.remainingItemCount = items.length - start - limit;
        }
        if (wantsTable(accept)) return this.send(res, 200, toTable(t, page, String(this.store.rv), q.get('includeObject'), more ? { continue: meta.continue } : {}));
        // Typed (built-in) lists omit kind/apiVersion on items; custom resource lists keep them.
        const out = t.custom ? page : page.map((o) => { const c = { ...o }; delete c.kind; delete c.apiVersion; return c; });
        return this.send(res, 200, { kind: t.listKind, apiVersion: apiVersionOf(t), metadata: meta, items: out });
      }
      case 'watch':
        return this.handleWatch(t, ns, q, res);
      case 'get': {
        if (info.subresource && !(info.subresource === 'status' && t.statusSubresource)) throw new ApiError(404, 'the server could not find the requested resource', 'NotFound');
        const o = this.store.get(t, ns, info.name!);
        if (wantsTable(accept)) return this.send(res, 200, toTable(t, [o], o.metadata!.resourceVersion!, q.get('includeObject')));
        return this.send(res, 200, o);
      }
      case 'create': {
        if (info.name !== undefined) throw new ApiError(405, `the server does not allow this method on the requested resource`, 'MethodNotAllowed');
        const body = this.parseJson(await this.readBody(req));
        this.checkTypeMeta(t, body);
        return this.send(res, 201, this.store.create(t, ns, body as KObject, { dryRun }));
      }
      case 'update': {
        const body = this.parseJson(await this.readBody(req));
        this.checkTypeMeta(t, body);
        return this.send(res, 200, this.store.update(t, ns, info.name!, body as KObject, { subresource: info.subresource, dryRun }));
      }
      case 'patch':
        return this.handlePatch(t, ns, info, await this.readBody(req), q, res);
      case 'delete': {
        const text = await this.readBody(req);
        const body = text ? this.parseJson(text) : {};
        const pre = isObject(body) && isObject(body.preconditions) ? (body.preconditions as { uid?: string; resourceVersion?: string }) : undefined;
        const { object, gone } = this.store.delete(t, ns, info.name!, pre, { dryRun });
        if (gone && !t.custom) {
          return this.send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: info.name, group: t.group, kind: t.plural, uid: object.metadata?.uid } });
        }
        return this.send(res, gone ? 200 : 200, object);
      }
      case 'deletecollection': {
        await this.readBody(req);
        const items = this.filtered(t, ns, q);
        for (const o of items) this.store.delete(t, o.metadata!.namespace, o.metadata!.name!, undefined, { dryRun });
        return this.send(res, 200, { kind: t.listKind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.store.rv) }, items });
      }
      default:
        throw new ApiError(405, 'the server does not allow this method on the requested resource', 'MethodNotAllowed');
    }
  }

  private checkTypeMeta(t: ResourceType, body: unknown): void {
    if (!isObject(body)) throw badRequest('the body of the request was not a JSON object');
    if (body.kind !== undefined && body.kind !== t.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${t.kind})`);
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(t)) throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`);
  }

  private filtered(t: ResourceType, ns: string | undefined, q: URLSearchParams): KObject[] {
    const lm = parseLabelSelector(q.get('labelSelector'));
    const fm = parseFieldSelector(q.get('fieldSelector'), EXTRA_FIELDS[t.plural]);
    return this.store.list(t, ns).filter((o) => lm(o) && fm(o));
  }

  private handlePatch(t: ResourceType, ns: string | undefined, info: RequestInfo, text: string, q: URLSearchParams, res: http.ServerResponse): void {
    const ct = info.contentType ?? '';
    if (!PATCH_TYPES.includes(ct)) {
      throw new ApiError(415, `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`);
    }
    if (ct === 'application/strategic-merge-patch+json' && t.custom) {
      throw new ApiError(415, `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    }
    const dryRun = q.get('dryRun') === 'All';
    const name = info.name!;
    if (ct === 'application/apply-patch+yaml') {
      if (!q.get('fieldManager')) throw badRequest('PATCH, application/apply-patch+yaml: fieldManager is required for apply requests');
      let body: unknown;
      try {
        body = parseYaml(text);
      } catch (e) {
        throw badRequest(`error decoding YAML: ${(e as Error).message}`);
      }
      if (!isObject(body)) throw badRequest('error decoding YAML: not an object');
      const existing = this.store.tryGet(t, ns, name);
      if (!existing) {
        if (info.subresource) throw new ApiError(404, `${t.plural} "${name}" not found`, 'NotFound');
        return this.send(res, 201, this.store.create(t, ns, { ...body, metadata: { ...(isObject(body.metadata) ? body.metadata : {}), name } } as KObject, { dryRun }));
      }
      // Server-side apply approximated as a merge patch: field ownership is not tracked.
      const merged = mergePatch(existing, body) as KObject;
      return this.send(res, 200, this.store.update(t, ns, name, merged, { subresource: info.subresource, dryRun }));
    }
    const body = this.parseJson(text);
    const existing = this.store.get(t, ns, name);
    let patched: unknown;
    if (ct === 'application/json-patch+json') patched = jsonPatch(existing, body);
    else if (ct === 'application/merge-patch+json') patched = mergePatch(existing, body);
    else patched = strategicMergePatch(existing, body);
    if (!isObject(patched)) throw new ApiError(422, 'patch produced a non-object', 'Invalid');
    return this.send(res, 200, this.store.update(t, ns, name, patched as KObject, { subresource: info.subresource, dryRun }));
  }

  private handleWatch(t: ResourceType, ns: string | undefined, q: URLSearchParams, res: http.ServerResponse): void {
    const lm = parseLabelSelector(q.get('labelSelector'));
    const fm = parseFieldSelector(q.get('fieldSelector'), EXTRA_FIELDS[t.plural]);
    const matches: Matcher = (o) => (ns === undefined || o.metadata?.namespace === ns) && lm(o) && fm(o);
    const rvParam = q.get('resourceVersion') ?? '';
    let replay: { type: string; object: KObject }[];
    if (rvParam === '' || rvParam === '0') {
      replay = this.store.list(t, ns).filter(matches).map((object) => ({ type: 'ADDED', object }));
    } else {
      const rv = Number(rvParam);
      if (!Number.isInteger(rv) || rv < 0) throw badRequest(`invalid resource version "${rvParam}"`);
      const since = this.store.since(t, rv);
      if (!since) {
        const msg = `too old resource version: ${rvParam} (${this.store.floor(t)})`;
        if (this.opts.expiredWatch === 'http') return this.send(res, 410, statusBody(410, msg, 'Expired'));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
        res.end(JSON.stringify({ type: 'ERROR', object: statusBody(410, msg, 'Expired') }) + '\n');
        return;
      }
      replay = since.flatMap((e) => this.translate(e, matches));
    }

    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const socket = res.socket!;
    socket.setNoDelay(true);
    const w: ActiveWatch = {
      res, socket, silenced: false, timers: [],
      close: () => {
        cleanup();
        if (!res.writableEnded) res.end();
      },
    };
    const write = (ev: { type: string; object: unknown }): void => {
      if (w.silenced || res.writableEnded) return;
      res.write(JSON.stringify(ev) + '\n');
    };
    const unsubscribe = this.store.onEvent((bucket, e) => {
      if (bucket !== this.store.bucketName(t)) return;
      for (const ev of this.translate(e, matches)) write({ type: ev.type, object: this.store.present(t, ev.object) });
    });
    const bookmark = (): void => write({ type: 'BOOKMARK', object: { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.store.rv) } } });
    const cleanup = (): void => {
      unsubscribe();
      for (const x of w.timers) clearInterval(x);
      this.watches.delete(w);
    };
    this.watches.add(w);
    res.on('close', cleanup);
    for (const ev of replay) write({ type: ev.type, object: this.store.present(t, ev.object) });
    if (q.get('allowWatchBookmarks') === 'true') {
      res.on('bookmark', bookmark);
      w.timers.push(setInterval(bookmark, this.opts.bookmarkIntervalMs));
    }
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    if (timeout > 0) w.timers.push(setTimeout(() => w.close(), timeout * 1000));
  }

  /** Turns a store event into what a watch with this filter sees (selector transitions become ADDED/DELETED). */
  private translate(e: StoredEvent, matches: Matcher): { type: string; object: KObject }[] {
    const now = matches(e.object);
    const before = e.old !== undefined && matches(e.old);
    switch (e.type) {
      case 'ADDED':
        return now ? [{ type: 'ADDED', object: e.object }] : [];
      case 'DELETED':
        return now || before ? [{ type: 'DELETED', object: e.object }] : [];
      case 'MODIFIED':
        if (now && before) return [{ type: 'MODIFIED', object: e.object }];
        if (now) return [{ type: 'ADDED', object: e.object }];
        if (before) return [{ type: 'DELETED', object: e.object }];
        return [];
    }
  }

  private handleOther(url: URL, accept: string | undefined, res: http.ServerResponse): void {
    const p = url.pathname.replace(/\/+$/, '');
    if (p === '/version') {
      return this.send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-fake', gitCommit: 'fake', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23', compiler: 'gc', platform: 'linux/amd64' });
    }
    if (p === '/healthz' || p === '/readyz' || p === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (this.opts.openapi && p === '/openapi/v2') {
      if (accept?.includes('protobuf')) {
        // kubectl asks for the protobuf form only. A Document with just swagger and info: kubectl
        // finds no schema for any kind, skips client-side validation, and takes patch metadata
        // from its compiled-in types.
        const body = openapiV2Proto();
        res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': body.length });
        res.end(body);
        return;
      }
      return this.send(res, 200, { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths: {}, definitions: {} });
    }
    if (this.opts.openapi && p === '/openapi/v3') return this.send(res, 200, { paths: {} });
    throw new ApiError(404, 'the server could not find the requested resource', 'NotFound', {});
  }

  private handleDiscovery(segs: string[], res: http.ServerResponse): void {
    const types = this.store.allTypes();
    if (segs.length === 1 && segs[0] === 'api') {
      return this.send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace(/^http:\/\//, '') }] });
    }
    const groupsOf = (): Map<string, string[]> => {
      const groups = new Map<string, string[]>();
      for (const t of types) {
        if (!t.group) continue;
        const vs = groups.get(t.group) ?? [];
        if (!vs.includes(t.version)) vs.push(t.version);
        groups.set(t.group, vs);
      }
      return groups;
    };
    const groupJson = (name: string, vs: string[]): Record<string, unknown> => {
      const versions = vs.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
      return { name, versions, preferredVersion: versions[0] };
    };
    if (segs.length === 1 && segs[0] === 'apis') {
      return this.send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groupsOf()].map(([n, vs]) => groupJson(n, vs)) });
    }
    if (segs.length === 2 && segs[0] === 'apis') {
      const vs = groupsOf().get(segs[1]!);
      if (!vs) throw new ApiError(404, 'the server could not find the requested resource', 'NotFound', {});
      return this.send(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...groupJson(segs[1]!, vs) });
    }
    const [group, version] = segs[0] === 'api' ? ['', segs[1]!] : [segs[1]!, segs[2]!];
    const served = types.filter((t) => t.group === group && t.version === version);
    if (served.length === 0) throw new ApiError(404, 'the server could not find the requested resource', 'NotFound', {});
    const resources: Record<string, unknown>[] = [];
    for (const t of served) {
      const r: Record<string, unknown> = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
      if (t.shortNames.length) r.shortNames = t.shortNames;
      if (t.categories.length) r.categories = t.categories;
      resources.push(r);
      if (t.statusSubresource) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
    }
    return this.send(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources });
  }
}

function protoField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
}

/** openapi_v2.Document{swagger: "2.0", info: {title: "Kubernetes", version: "v1.32.0"}} in protobuf wire format. */
function openapiV2Proto(): Buffer {
  const info = Buffer.concat([protoField(1, Buffer.from('Kubernetes')), protoField(2, Buffer.from('v1.32.0'))]);
  return Buffer.concat([protoField(1, Buffer.from('2.0')), protoField(2, info)]);
}
