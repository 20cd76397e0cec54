// The object store: one global resourceVersion counter, per-resource bounded event history,
// and the write semantics of the apiserver's generic registry (generation, status subresource,
// finalizers, optimistic concurrency).
import { randomBytes, randomUUID } from 'node:crypto';
import { builtinTypes } from './builtins.js';
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound } from './errors.js';
import { compileSchema } from './schema.js';
import type { KObject, PrinterColumn, ResourceType, StatusCause } from './types.js';
import { apiVersionOf, clone, isObject } from './types.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  type: EventType;
  rv: number;
  object: KObject;
  /** The object before this change (MODIFIED/DELETED), to turn selector transitions into ADDED/DELETED. */
  old?: KObject;
}

interface Bucket {
  objects: Map<string, KObject>;
  history: StoredEvent[];
  /** Watches from a resourceVersion below this are answered with 410 Gone. */
  floor: number;
  all: StoredEvent[];
}

export interface WriteOptions {
  subresource?: string;
  dryRun?: boolean;
}

const MICROTIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

function key(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function bodyOf(o: KObject): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...o };
  delete rest.metadata;
  delete rest.status;
  delete rest.apiVersion;
  delete rest.kind;
  return rest;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

function canon(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canon);
  if (!isObject(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])]));
}

export class Store {
  rv = 1;
  historyLimit: number;
  private types = new Map<string, ResourceType>(); // group/version/plural
  private buckets = new Map<string, Bucket>(); // group/plural
  private listeners = new Set<(b: string, e: StoredEvent) => void>();

  constructor(historyLimit = 1000) {
    this.historyLimit = historyLimit;
    for (const t of builtinTypes()) this.types.set(`${t.group}/${t.version}/${t.plural}`, t);
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      this.create(this.type('', 'v1', 'namespaces'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }
  }

  onEvent(fn: (bucket: string, e: StoredEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  allTypes(): ResourceType[] {
    return [...this.types.values()];
  }

  /** Finds a served resource by group, version and plural; undefined if not served. */
  findType(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.get(`${group}/${version}/${plural}`);
  }

  type(group: string, version: string, plural: string): ResourceType {
    const t = this.findType(group, version, plural);
    if (!t) throw new ApiError(404, `the server could not find the requested resource`, 'NotFound');
    return t;
  }

  /** Resolves `apiVersion` plus a kind or plural (any case) to a served type. */
  resolve(apiVersion: string, kindOrPlural: string): ResourceType {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') as [string, string] : ['', apiVersion];
    const k = kindOrPlural.toLowerCase();
    for (const t of this.types.values()) {
      if (t.group === group && t.version === version && (t.plural === k || t.kind.toLowerCase() === k || t.singular === k)) return t;
    }
    throw new Error(`fake apiserver: no resource ${kindOrPlural} in ${apiVersion}`);
  }

  bucketName(t: ResourceType): string {
    return `${t.group}/${t.plural}`;
  }

  private bucket(t: ResourceType): Bucket {
    const n = this.bucketName(t);
    let b = this.buckets.get(n);
    if (!b) {
      b = { objects: new Map(), history: [], floor: 0, all: [] };
      this.buckets.set(n, b);
    }
    return b;
  }

  /** Events emitted for a resource since start (not trimmed by compaction). */
  emitted(t: ResourceType): StoredEvent[] {
    return this.bucket(t).all;
  }

  floor(t: ResourceType): number {
    return this.bucket(t).floor;
  }

  /** Events after `rv` still in history; undefined when `rv` is older than the history holds. */
  since(t: ResourceType, rv: number): StoredEvent[] | undefined {
    const b = this.bucket(t);
    if (rv < b.floor) return undefined;
    return b.history.filter((e) => e.rv > rv);
  }

  /**
   * Forgets all history: a watch from any resourceVersion issued so far (even the newest) gets
   * 410 Gone, so a test can force the next re-watch of a client to relist.
   */
  compact(): void {
    for (const b of this.buckets.values()) {
      b.history = [];
      b.floor = this.rv + 1;
    }
  }

  private emit(t: ResourceType, e: StoredEvent): void {
    const b = this.bucket(t);
    b.history.push(e);
    b.all.push(e);
    while (b.history.length > this.historyLimit) {
      const dropped = b.history.shift()!;
      b.floor = dropped.rv;
    }
    const name = this.bucketName(t);
    for (const fn of [...this.listeners]) fn(name, e);
  }

  /** The object as served under `t`'s version. */
  present(t: ResourceType, o: KObject): KObject {
    const c = clone(o);
    return { ...c, apiVersion: apiVersionOf(t), kind: t.kind };
  }

  list(t: ResourceType, ns: string | undefined): KObject[] {
    const out: KObject[] = [];
    for (const [k, o] of [...this.bucket(t).objects.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (ns === undefined || k.startsWith(`${ns}/`)) out.push(this.present(t, o));
    }
    return out;
  }

  get(t: ResourceType, ns: string | undefined, name: string): KObject {
    const o = this.bucket(t).objects.get(key(t.namespaced ? ns : undefined, name));
    if (!o) throw notFound(t.group, t.plural, name);
    return this.present(t, o);
  }

  tryGet(t: ResourceType, ns: string | undefined, name: string): KObject | undefined {
    const o = this.bucket(t).objects.get(key(t.namespaced ? ns : undefined, name));
    return o && this.present(t, o);
  }

  private checkNamespace(t: ResourceType, ns: string | undefined): void {
    if (!t.namespaced) return;
    if (!ns) throw badRequest('the server could not find the requested resource: a namespace is required');
    const nsType = this.type('', 'v1', 'namespaces');
    if (!this.bucket(nsType).objects.has(key(undefined, ns))) throw notFound('', 'namespaces', ns);
  }

  create(t: ResourceType, ns: string | undefined, input: KObject, opts: WriteOptions = {}): KObject {
    if (!isObject(input)) throw badRequest('the body of the request was not a JSON object');
    const o = clone(input);
    const meta = (o.metadata = isObject(o.metadata) ? o.metadata : {});
    if (t.namespaced) {
      if (meta.namespace && ns && meta.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = ns ?? meta.namespace;
      ns = meta.namespace;
    } else {
      delete meta.namespace;
      ns = undefined;
    }
    if (!meta.name) {
      if (!meta.generateName) throw invalid(t.group, t.kind, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
      const b = this.bucket(t);
      do meta.name = meta.generateName + randomBytes(4).toString('hex').slice(0, 5);
      while (b.objects.has(key(ns, meta.name)));
    }
    this.checkNamespace(t, ns);
    const b = this.bucket(t);
    if (b.objects.has(key(ns, meta.name))) throw alreadyExists(t.group, t.plural, meta.name);
    if (t.statusSubresource && t.custom) delete o.status;
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.resourceVersion;
    if (t.generation) meta.generation = 1;
    else delete meta.generation;
    this.admit(t, o, undefined);
    if (opts.dryRun) return this.present(t, { ...o, metadata: { ...meta, resourceVersion: String(this.rv) } });
    meta.resourceVersion = String(++this.rv);
    b.objects.set(key(ns, meta.name), o);
    this.afterWrite(t, undefined, o);
    this.emit(t, { type: 'ADDED', rv: this.rv, object: this.present(t, o) });
    return this.present(t, o);
  }

  /**
   * PUT semantics (also the tail of every patch): optimistic concurrency, status/main split,
   * generation, finalizers. A write that changes nothing does not bump resourceVersion.
   */
  update(t: ResourceType, ns: string | undefined, name: string, input: KObject, opts: WriteOptions = {}): KObject {
    if (!isObject(input)) throw badRequest('the body of the request was not a JSON object');
    if (!t.namespaced) ns = undefined;
    const b = this.bucket(t);
    const old = b.objects.get(key(ns, name));
    if (!old) throw notFound(t.group, t.plural, name);
    const oldMeta = old.metadata!;
    let o = clone(input);
    const inMeta = isObject(o.metadata) ? o.metadata : {};
    if (inMeta.name !== undefined && inMeta.name !== name) throw badRequest(`the name of the object (${String(inMeta.name)}) does not match the name on the URL (${name})`);
    if (t.namespaced && inMeta.namespace !== undefined && inMeta.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (inMeta.resourceVersion === undefined || inMeta.resourceVersion === '') {
      if (t.custom) throw invalid(t.group, t.kind, name, [{ reason: 'FieldValueInvalid', field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update' }]);
    } else if (String(inMeta.resourceVersion) !== oldMeta.resourceVersion) {
      throw conflict(t.group, t.plural, name);
    }
    if (opts.subresource === 'status') {
      if (!t.statusSubresource) throw new ApiError(404, 'the server could not find the requested resource', 'NotFound');
      const next = clone(old);
      if ('status' in o) next.status = o.status;
      else delete next.status;
      o = next;
    } else if (opts.subresource) {
      throw new ApiError(404, 'the server could not find the requested resource', 'NotFound');
    } else {
      if (t.statusSubresource) {
        if ('status' in old) o.status = clone(old.status);
        else delete o.status;
      }
      const meta = { ...inMeta };
      meta.name = name;
      if (t.namespaced) meta.namespace = ns;
      else delete meta.namespace;
      meta.uid = oldMeta.uid;
      meta.creationTimestamp = oldMeta.creationTimestamp;
      if (oldMeta.deletionTimestamp) {
        meta.deletionTimestamp = oldMeta.deletionTimestamp;
        meta.deletionGracePeriodSeconds = oldMeta.deletionGracePeriodSeconds;
        const had = new Set(oldMeta.finalizers ?? []);
        const added = (meta.finalizers ?? []).filter((f) => !had.has(f));
        if (added.length > 0) {
          throw invalid(t.group, t.kind, name, [{ reason: 'FieldValueForbidden', field: 'metadata.finalizers', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }]);
        }
      } else {
        delete meta.deletionTimestamp;
        delete meta.deletionGracePeriodSeconds;
      }
      meta.generation = oldMeta.generation;
      if (meta.generation === undefined) delete meta.generation;
      o.metadata = meta;
    }
    const meta = o.metadata!;
    meta.resourceVersion = oldMeta.resourceVersion;
    this.admit(t, o, old);
    if (t.generation && !same(bodyOf(o), bodyOf(old))) meta.generation = (oldMeta.generation ?? 0) + 1;
    o.apiVersion = old.apiVersion;
    o.kind = old.kind;
    if (same(o, old)) return this.present(t, old);
    if (opts.dryRun) return this.present(t, o);
    return this.commitModified(t, b, ns, name, old, o);
  }

  private commitModified(t: ResourceType, b: Bucket, ns: string | undefined, name: string, old: KObject, o: KObject): KObject {
    const meta = o.metadata!;
    meta.resourceVersion = String(++this.rv);
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      b.objects.delete(key(ns, name));
      this.afterDelete(t, o);
      this.emit(t, { type: 'DELETED', rv: this.rv, object: this.present(t, o), old: this.present(t, old) });
      return this.present(t, o);
    }
    b.objects.set(key(ns, name), o);
    this.afterWrite(t, old, o);
    this.emit(t, { type: 'MODIFIED', rv: this.rv, object: this.present(t, o), old: this.present(t, old) });
    return this.present(t, o);
  }

  /** DELETE: immediate when no finalizers remain, else deletionTimestamp is set and the object stays. */
  delete(t: ResourceType, ns: string | undefined, name: string, preconditions?: { uid?: string; resourceVersion?: string }, opts: WriteOptions = {}): { object: KObject; gone: boolean } {
    if (!t.namespaced) ns = undefined;
    const b = this.bucket(t);
    const old = b.objects.get(key(ns, name));
    if (!old) throw notFound(t.group, t.plural, name);
    if (preconditions?.uid && preconditions.uid !== old.metadata!.uid) {
      throw new ApiError(409, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${old.metadata!.uid}`, 'Conflict', { name, group: t.group, kind: t.plural });
    }
    if (preconditions?.resourceVersion && preconditions.resourceVersion !== old.metadata!.resourceVersion) {
      throw new ApiError(409, `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${old.metadata!.resourceVersion}`, 'Conflict', { name, group: t.group, kind: t.plural });
    }
    if ((old.metadata!.finalizers ?? []).length > 0) {
      if (old.metadata!.deletionTimestamp) return { object: this.present(t, old), gone: false };
      const o = clone(old);
      o.metadata!.deletionTimestamp = now();
      o.metadata!.deletionGracePeriodSeconds = 0;
      if (t.generation) o.metadata!.generation = (old.metadata!.generation ?? 0) + 1;
      if (opts.dryRun) return { object: this.present(t, o), gone: false };
      return { object: this.commitModified(t, b, ns, name, old, o), gone: false };
    }
    if (opts.dryRun) return { object: this.present(t, old), gone: true };
    const o = clone(old);
    o.metadata!.resourceVersion = String(++this.rv);
    b.objects.delete(key(ns, name));
    this.afterDelete(t, o);
    this.emit(t, { type: 'DELETED', rv: this.rv, object: this.present(t, o), old: this.present(t, old) });
    return { object: this.present(t, o), gone: true };
  }

  /**
   * Test backdoor: store `o` as given (no validation, no status/generation rules), bumping
   * resourceVersion and emitting the watch event a real write would.
   */
  put(t: ResourceType, o: KObject): KObject {
    const c = clone(o);
    const meta = (c.metadata ??= {});
    const ns = t.namespaced ? meta.namespace ?? 'default' : undefined;
    if (t.namespaced) meta.namespace = ns;
    if (!meta.name) throw new Error('fake apiserver putObject: metadata.name is required');
    const b = this.bucket(t);
    const old = b.objects.get(key(ns, meta.name));
    meta.uid ??= old?.metadata?.uid ?? randomUUID();
    meta.creationTimestamp ??= old?.metadata?.creationTimestamp ?? now();
    if (t.generation) meta.generation ??= old?.metadata?.generation ?? 1;
    c.apiVersion = apiVersionOf(t);
    c.kind = t.kind;
    meta.resourceVersion = String(++this.rv);
    b.objects.set(key(ns, meta.name), c);
    this.afterWrite(t, old, c);
    this.emit(t, old ? { type: 'MODIFIED', rv: this.rv, object: this.present(t, c), old: this.present(t, old) } : { type: 'ADDED', rv: this.rv, object: this.present(t, c) });
    return this.present(t, c);
  }

  /** Per-kind validation and defaulting, as the registry strategies do. Mutates `o`. */
  private admit(t: ResourceType, o: KObject, old: KObject | undefined): void {
    const name = o.metadata?.name ?? '';
    if (t.custom && t.validate) {
      const causes = t.validate(o);
      if (causes.length > 0) throw invalid(t.group, t.kind, name, causes);
    }
    if (t.group === 'coordination.k8s.io' && t.plural === 'leases') {
      const spec = isObject(o.spec) ? o.spec : {};
      for (const f of ['acquireTime', 'renewTime']) {
        const v = spec[f];
        if (v !== undefined && v !== null && (typeof v !== 'string' || !MICROTIME.test(v))) {
          throw badRequest(`Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${typeof v === 'string' ? v.slice(19) : ''}" as ".000000"`);
        }
      }
    }
    if (t.group === '' && t.plural === 'events') {
      const v = o.eventTime;
      if (v !== undefined && v !== null && (typeof v !== 'string' || !MICROTIME.test(v))) {
        throw badRequest(`Event in version "v1" cannot be handled as a Event: parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${typeof v === 'string' ? v.slice(19) : ''}" as ".000000"`);
      }
      const io = isObject(o.involvedObject) ? o.involvedObject : undefined;
      if (!io) throw invalid('', 'Event', name, [{ reason: 'FieldValueRequired', field: 'involvedObject', message: 'Required value' }]);
      if (io.namespace !== undefined && io.namespace !== o.metadata?.namespace) {
        throw invalid('', 'Event', name, [{ field: 'involvedObject.namespace', message: `Invalid value: ${JSON.stringify(io.namespace)}: does not match event.namespace` }]);
      }
    }
    if (t.group === '' && t.plural === 'secrets') admitSecret(o, name);
    if (t.group === '' && t.plural === 'namespaces') {
      o.status = isObject(o.status) ? o.status : {};
      (o.status as Record<string, unknown>).phase ??= 'Active';
      o.spec ??= { finalizers: ['kubernetes'] };
      o.metadata!.labels = { ...(o.metadata!.labels ?? {}), 'kubernetes.io/metadata.name': name };
    }
    if (t.group === 'apiextensions.k8s.io') this.admitCrd(o, old);
  }

  private admitCrd(o: KObject, old: KObject | undefined): void {
    const name = o.metadata?.name ?? '';
    const spec = (isObject(o.spec) ? o.spec : {}) as Record<string, unknown>;
    const names = (isObject(spec.names) ? spec.names : {}) as Record<string, unknown>;
    const causes: StatusCause[] = [];
    if (typeof spec.group !== 'string' || !spec.group.includes('.')) causes.push({ field: 'spec.group', message: `Invalid value: ${JSON.stringify(spec.group)}: should be a domain with at least one dot` });
    if (typeof names.plural !== 'string' || !names.plural) causes.push({ field: 'spec.names.plural', message: 'Required value' });
    if (typeof names.kind !== 'string' || !names.kind) causes.push({ field: 'spec.names.kind', message: 'Required value' });
    if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') causes.push({ field: 'spec.scope', message: `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"` });
    const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObject) : [];
    if (versions.length === 0) causes.push({ field: 'spec.versions', message: 'Invalid value: must have exactly one version marked as storage version' });
    if (versions.filter((v) => v.storage === true).length !== 1) causes.push({ field: 'spec.versions', message: 'Invalid value: must have exactly one version marked as storage version' });
    if (causes.length === 0 && name !== `${String(names.plural)}.${String(spec.group)}`) {
      causes.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: must be spec.names.plural+"."+spec.group` });
    }
    for (const v of versions) {
      const sch = isObject(v.schema) ? v.schema.openAPIV3Schema : undefined;
      if (sch !== undefined) {
        try {
          compileSchema(sch);
        } catch (e) {
          causes.push({ field: `spec.versions[${String(v.name)}].schema.openAPIV3Schema`, message: `Invalid value: ${(e as Error).message}` });
        }
      }
    }
    if (old && isObject(old.spec) && old.spec.group !== spec.group) causes.push({ field: 'spec.group', message: 'Invalid value: field is immutable' });
    if (causes.length > 0) throw invalid('apiextensions.k8s.io', 'CustomResourceDefinition', name, causes);
    const status = (isObject(o.status) ? o.status : {}) as Record<string, unknown>;
    const ts = now();
    status.conditions = [
      { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: ts },
      { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: ts },
    ];
    status.acceptedNames = clone(names);
    status.storedVersions = versions.filter((v) => v.storage === true).map((v) => String(v.name));
    o.status = status;
  }

  private afterWrite(t: ResourceType, _old: KObject | undefined, o: KObject): void {
    if (t.group === 'apiextensions.k8s.io' && t.plural === 'customresourcedefinitions') this.registerCrd(o);
  }

  private afterDelete(t: ResourceType, o: KObject): void {
    if (t.group === 'apiextensions.k8s.io' && t.plural === 'customresourcedefinitions') {
      const name = o.metadata!.name!;
      const gone = [...this.types.values()].filter((x) => x.crdName === name);
      const first = gone[0];
      if (first) {
        for (const obj of [...this.bucket(first).objects.values()]) this.delete(first, obj.metadata!.namespace, obj.metadata!.name!);
      }
      for (const x of gone) this.types.delete(`${x.group}/${x.version}/${x.plural}`);
    }
    if (t.group === '' && t.plural === 'namespaces') {
      const ns = o.metadata!.name!;
      for (const x of this.uniqueBuckets()) {
        if (!x.namespaced) continue;
        for (const obj of [...this.bucket(x).objects.values()]) {
          if (obj.metadata!.namespace !== ns) continue;
          const f = obj.metadata!.finalizers;
          // The namespace controller eventually removes everything; finalizers are not waited for here.
          if (f && f.length > 0) this.update(x, ns, obj.metadata!.name!, { ...obj, metadata: { ...obj.metadata, finalizers: [] } });
          if (this.tryGet(x, ns, obj.metadata!.name!)) this.delete(x, ns, obj.metadata!.name!);
        }
      }
    }
  }

  private uniqueBuckets(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.types.values()) if (!seen.has(this.bucketName(t))) seen.set(this.bucketName(t), t);
    return [...seen.values()];
  }

  private registerCrd(crd: KObject): void {
    const spec = crd.spec as Record<string, unknown>;
    const names = spec.names as Record<string, unknown>;
    const name = crd.metadata!.name!;
    for (const [k, x] of [...this.types.entries()]) if (x.crdName === name) this.types.delete(k);
    const versions = (spec.versions as Record<string, unknown>[]).filter((v) => v.served !== false);
    for (const v of versions) {
      const schema = isObject(v.schema) ? v.schema.openAPIV3Schema : undefined;
      const subs = isObject(v.subresources) ? v.subresources : {};
      const cols = Array.isArray(v.additionalPrinterColumns)
        ? (v.additionalPrinterColumns as PrinterColumn[]).map((c) => ({ ...c }))
        : [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }];
      const t: ResourceType = {
        group: String(spec.group),
        version: String(v.name),
        plural: String(names.plural),
        singular: String(names.singular ?? String(names.kind).toLowerCase()),
        kind: String(names.kind),
        listKind: String(names.listKind ?? `${String(names.kind)}List`),
        namespaced: spec.scope === 'Namespaced',
        shortNames: Array.isArray(names.shortNames) ? names.shortNames.map(String) : [],
        categories: Array.isArray(names.categories) ? names.categories.map(String) : [],
        verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
        statusSubresource: isObject(subs.status),
        custom: true,
        generation: true,
        printerColumns: cols,
        crdName: name,
      };
      if (schema !== undefined) t.validate = compileSchema(schema);
      this.types.set(`${t.group}/${t.version}/${t.plural}`, t);
    }
  }
}

function admitSecret(o: KObject, name: string): void {
  const data: Record<string, unknown> = isObject(o.data) ? { ...o.data } : {};
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
      throw badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0 (key ${k})`);
    }
  }
  if (isObject(o.stringData)) {
    for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
    delete o.stringData;
  }
  if (Object.keys(data).length > 0) o.data = data;
  o.type ??= 'Opaque';
  if (o.type === 'kubernetes.io/dockerconfigjson') {
    const raw = data['.dockerconfigjson'];
    if (typeof raw !== 'string') throw invalid('', 'Secret', name, [{ reason: 'FieldValueRequired', field: 'data[.dockerconfigjson]', message: 'Required value' }]);
    try {
      JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
    } catch (e) {
      throw invalid('', 'Secret', name, [{ field: 'data[.dockerconfigjson]', message: `Invalid value: "<secret contents redacted>": ${(e as Error).message}` }]);
    }
  }
}
