// A faithful in-process fake Kubernetes API server for tests: a real HTTP server on loopback
// that @kubernetes/client-node 1.4 and kubectl 1.32 talk to unmodified. See fake-apiserver/*.ts.
//
// Faithful where controllers break: one global resourceVersion; list+watch with replay from a
// bounded history and 410 Gone (HTTP or in-stream ERROR, `options.expiredWatch`); bookmarks only
// with allowWatchBookmarks; timeoutSeconds; status subresource and generation rules; 409 on stale
// writes; finalizers; merge / JSON (RFC 6902) patch, 415 for strategic merge on custom resources;
// CRD schemas enforced with ajv (pruning, defaults, 422 with causes); MicroTime needs 6 digits.
//
// kubectl: discovery is legacy (aggregated discovery is not offered, kubectl falls back). By
// default (`openapi: true`) /openapi/v2 serves a protobuf Document with no schemas and /openapi/v3
// an empty index, so `kubectl apply` skips client-side validation and works with default flags
// (validation is the server's, against the CRD schema); with `openapi: false` both are 404 and
// kubectl apply fails "failed to download openapi" unless given --validate=false.
//
// Not modelled: CEL rules, server-side apply field ownership (apply is a merge patch), strategic
// merge list semantics (lists replaced), Table watches (`kubectl get -w`), consistent paging
// snapshots, namespace Terminating phase (deleting a namespace deletes its contents at once),
// fieldValidation=Strict, managedFields, RBAC/authn (use failNext for 401/403).
import { readFile } from 'node:fs/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ApiHttpServer, type LoggedRequest, type RequestInfo, type RequestMatcher, type ServerOptions } from './fake-apiserver/server.js';
import { Store, type StoredEvent } from './fake-apiserver/store.js';
import type { KObject, ResourceType } from './fake-apiserver/types.js';
import { kubeConfigFor, writeKubeconfigFile } from './kubeconfig.js';

export type { KObject, LoggedRequest, RequestInfo, RequestMatcher, ResourceType, StoredEvent };

export interface FakeApiServerOptions {
  /** Paths of CRD YAML files (multi-document allowed) to create at start. */
  crds?: string[];
  /** Namespaces to create at start (default, kube-system, kube-public, kube-node-lease always exist). */
  namespaces?: string[];
  /** How a watch from a compacted resourceVersion is refused (default 'http'; changeable later via options). */
  expiredWatch?: 'http' | 'event';
  /** Interval of BOOKMARK events on watches that allow them (default 60 s, like a real server's ~1 min). */
  bookmarkIntervalMs?: number;
  /** Serve minimal /openapi/v2 and /openapi/v3 documents (default true); false answers 404. */
  openapi?: boolean;
  /** Events kept per resource for watch replay (default 1000). */
  historyLimit?: number;
}

export interface FakeApiServer {
  url: string;
  /** Mutable server behaviour (expiredWatch, bookmarkIntervalMs, openapi). */
  options: ServerOptions;
  kubeconfig(): KubeConfig;
  writeKubeconfig(path: string, namespace?: string): Promise<void>;
  /** Creates through the same path as a POST (validation, defaults, generation, watch event). */
  create<T extends KObject>(obj: T): Promise<T>;
  /** Current stored object as served, or undefined. */
  get<T extends KObject = KObject>(apiVersion: string, kindOrPlural: string, namespace: string | undefined, name: string): T | undefined;
  getObject<T extends KObject = KObject>(apiVersion: string, kindOrPlural: string, namespace: string | undefined, name: string): T | undefined;
  list<T extends KObject = KObject>(apiVersion: string, kindOrPlural: string, namespace?: string): T[];
  /** Stores `obj` verbatim (no validation/status rules), bumping resourceVersion and emitting the watch event. */
  putObject<T extends KObject>(obj: T): T;
  /** Deletes as a DELETE request would (finalizers honoured). */
  deleteObject(apiVersion: string, kindOrPlural: string, namespace: string | undefined, name: string): void;
  /** Watch events emitted for a resource since start. */
  emitted(apiVersion: string, kindOrPlural: string): StoredEvent[];
  resourceVersion(): string;
  dropWatches(): void;
  closeWatches(): void;
  silenceWatches(): void;
  sendBookmarks(): void;
  activeWatches(): number;
  compactHistory(): void;
  failNext(matcher: RequestMatcher, status: number, o?: { times?: number; message?: string }): void;
  requests: LoggedRequest[];
  count(verb: string, resource: string, subresource?: string): number;
  /**
   * Resolves with fn()'s first non-undefined value, re-evaluated on every store change and request
   * (and every 10 ms, for client-side state such as an informer's cache).
   */
  waitFor<T>(fn: () => T | undefined, timeoutMs?: number, what?: string): Promise<T>;
  stop(): Promise<void>;
}

export async function startFakeApiServer(o: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const store = new Store(o.historyLimit ?? 1000);
  const options: ServerOptions = { expiredWatch: o.expiredWatch ?? 'http', bookmarkIntervalMs: o.bookmarkIntervalMs ?? 60_000, openapi: o.openapi ?? true };
  const http = new ApiHttpServer(store, options);
  await http.listen();

  const resolve = (apiVersion: string, kindOrPlural: string): ResourceType => store.resolve(apiVersion, kindOrPlural);
  const typeOf = (obj: KObject): ResourceType => {
    if (!obj.apiVersion || !obj.kind) throw new Error('fake apiserver: object needs apiVersion and kind');
    return resolve(obj.apiVersion, obj.kind);
  };
  const nsOf = (t: ResourceType, obj: KObject): string | undefined => (t.namespaced ? obj.metadata?.namespace ?? 'default' : undefined);
  const getObject = <T extends KObject>(apiVersion: string, kindOrPlural: string, namespace: string | undefined, name: string): T | undefined =>
    store.tryGet(resolve(apiVersion, kindOrPlural), namespace, name) as T | undefined;

  const api: FakeApiServer = {
    url: http.url,
    options,
    kubeconfig: () => kubeConfigFor({ server: http.url }),
    writeKubeconfig: (path, namespace) => writeKubeconfigFile(path, { server: http.url, namespace }),
    create: async <T extends KObject>(obj: T) => {
      const t = typeOf(obj);
      return store.create(t, nsOf(t, obj), obj) as T;
    },
    get: getObject,
    getObject,
    list: <T extends KObject>(apiVersion: string, kindOrPlural: string, namespace?: string) => store.list(resolve(apiVersion, kindOrPlural), namespace) as T[],
    putObject: <T extends KObject>(obj: T) => store.put(typeOf(obj), obj) as T,
    deleteObject: (apiVersion, kindOrPlural, namespace, name) => {
      store.delete(resolve(apiVersion, kindOrPlural), namespace, name);
    },
    emitted: (apiVersion, kindOrPlural) => store.emitted(resolve(apiVersion, kindOrPlural)),
    resourceVersion: () => String(store.rv),
    dropWatches: () => http.dropWatches(),
    closeWatches: () => http.closeWatches(),
    silenceWatches: () => http.silenceWatches(),
    sendBookmarks: () => http.sendBookmarks(),
    activeWatches: () => http.activeWatches(),
    compactHistory: () => store.compact(),
    failNext: (m, status, opt) => http.failNext(m, status, opt),
    requests: http.requests,
    count: (verb, resource, subresource) =>
      http.requests.filter((r) => r.verb === verb && r.resource === resource && r.subresource === subresource).length,
    waitFor: <T>(fn: () => T | undefined, timeoutMs = 5000, what = 'condition') =>
      new Promise<T>((resolveP, reject) => {
        const check = (): boolean => {
          let v: T | undefined;
          try {
            v = fn();
          } catch (e) {
            done();
            reject(e as Error);
            return true;
          }
          if (v === undefined) return false;
          done();
          resolveP(v);
          return true;
        };
        const offStore = store.onEvent(() => void check());
        const offReq = http.onRequest(() => void check());
        // Client-side state (informer caches, received events) changes without a server event: poll it too.
        const poll = setInterval(() => void check(), 10);
        const timer = setTimeout(() => {
          done();
          reject(new Error(`fake apiserver: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        const done = (): void => {
          offStore();
          offReq();
          clearTimeout(timer);
          clearInterval(poll);
        };
        check();
      }),
    stop: () => http.close(),
  };

  for (const ns of o.namespaces ?? []) {
    if (!store.tryGet(resolve('v1', 'namespaces'), undefined, ns)) await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }
  for (const path of o.crds ?? []) {
    for (const doc of parseAllDocuments(await readFile(path, 'utf8'))) {
      const crd = doc.toJS() as KObject | null;
      if (crd) await api.create(crd);
    }
  }
  return api;
}
