/**
 * A reflector: list, then watch from the list's resourceVersion, keeping a cache and calling
 * handlers. Unlike client-node's ListWatch it survives errors: 410 Gone → re-list (with synthesized
 * deletes/updates for what changed meanwhile); any other error → re-watch after jittered backoff;
 * a staleness watchdog restarts a watch that went silent (half-open TCP); bookmarks advance the
 * resourceVersion. The first completed list marks the cache synced (readiness).
 */
import type { KubeTransport } from './kube-config.js';
import { KubeHttpError, isGone, listObjects, watchObjects, type KubeObject, type WatchEvent } from './kube-http.js';

export interface ReflectorHandlers<T> {
  add?(obj: T): void;
  update?(obj: T, old: T): void;
  delete?(obj: T): void;
}

export interface ReflectorLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface ReflectorOptions<T extends KubeObject> {
  /** For logs, e.g. `imagemirrors in team-a`. */
  name: string;
  kubeconfig: KubeTransport;
  /** Collection path, e.g. `/apis/imagemirror.dev/v1alpha1/namespaces/team-a/imagemirrors`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side watch timeout; the server ends each watch after it and we re-watch. Default 300. */
  timeoutSeconds?: number;
  /** No event or bookmark for this long → the watch is presumed dead and restarted. Default 2× timeoutSeconds. */
  staleAfterMs?: number;
  /** Restart backoff after errors. Defaults 500 ms → 30 s, ±20 %. */
  backoff?: { baseMs?: number; maxMs?: number; jitter?: number };
  /** A list request that takes longer than this is abandoned and retried. Default 60 s. */
  listTimeoutMs?: number;
  handlers?: ReflectorHandlers<T>;
  /**
   * Applied to every object before it is cached and handed to handlers (client-go's
   * SetTransform): drop what the controller never reads, since the cache holds every object.
   */
  transform?: (obj: T) => T;
  /**
   * A 404 on the list means the resource type is not served (its CRD is not installed), so no such
   * object can exist: count it as an empty collection (synced) and list again every `recheckMs`
   * (default 30 s). Any other error still keeps the cache unsynced.
   */
  absentIsEmpty?: { recheckMs?: number };
  onConnected?(connected: boolean): void;
  /** Called for every list after the first, with why. */
  onRelist?(reason: 'gone' | 'error'): void;
  log?: ReflectorLog;
  random?: () => number;
}

type WatchEnd = 'closed' | 'stale' | 'stopped';

/**
 * Objects per list page (client-go's reflector pages by 500 too): ten thousand mirrors in one
 * answer would be a body of several MiB held three times over (chunks, buffer, string) while parsed.
 */
export const LIST_PAGE_SIZE = 500;

export class Reflector<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  private stopped = false;
  private running?: Promise<void>;
  private readonly stopController = new AbortController();
  private isSynced = false;
  private readonly syncWaiters: Array<() => void> = [];
  private isConnected = false;
  private lastActivity = 0;
  private consecutiveFailures = 0;
  private readonly timeoutSeconds: number;
  private readonly staleAfterMs: number;
  /** Restarts caused by the staleness watchdog (for tests and logs). */
  staleRestarts = 0;
  /** Watch or list failures other than 410 (for tests and logs). */
  errors = 0;
  /** Lists made after the first. */
  relists = 0;

  constructor(private readonly o: ReflectorOptions<T>) {
    this.timeoutSeconds = o.timeoutSeconds ?? 300;
    this.staleAfterMs = o.staleAfterMs ?? 2 * this.timeoutSeconds * 1000;
  }

  static key(obj: KubeObject): string {
    return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  }

  get synced(): boolean {
    return this.isSynced;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  start(): void {
    if (this.running) return;
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort(new Error('reflector stopped'));
    await this.running;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** Resolves once the first list completed (or the reflector stopped). */
  waitForSync(): Promise<void> {
    if (this.isSynced || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.objects.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  private async loop(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          if (!(await this.relist())) {
            await this.sleep(this.o.absentIsEmpty?.recheckMs ?? 30_000);
            continue;
          }
          needList = false;
        }
        const started = Date.now();
        const end = await this.watchOnce();
        if (end === 'stopped') break;
        if (end === 'stale') {
          this.staleRestarts++;
          this.o.log?.warn(`watch ${this.o.name}: no event or bookmark for ${this.staleAfterMs} ms, restarting it`);
          continue;
        }
        // A server that ends watches at once would otherwise make us spin.
        if (Date.now() - started < 1000) await this.sleep(this.nextBackoff());
        else this.consecutiveFailures = 0;
      } catch (err) {
        this.setConnected(false);
        if (this.stopped) break;
        if (isGone(err)) {
          this.o.log?.info(`watch ${this.o.name}: resourceVersion ${this.resourceVersion} expired (410 Gone), re-listing`);
          needList = true;
          this.relistReason = 'gone';
          // Gone straight after a fresh list: re-listing at once would spin (client-node #1933).
          if (!this.watchedSinceList) await this.sleep(this.nextBackoff());
          continue;
        }
        this.errors++;
        if (needList) this.relistReason = 'error';
        const delay = this.nextBackoff();
        this.o.log?.warn(`watch ${this.o.name}: ${errorLine(err)}; retrying in ${delay} ms`);
        await this.sleep(delay);
      }
    }
    this.setConnected(false);
  }

  private relistReason: 'gone' | 'error' = 'error';
  /** A watch opened successfully since the last list. */
  private watchedSinceList = true;

  /** Whether the resource was served (false: absent, counted as empty under absentIsEmpty). */
  private absent = false;

  private async relist(): Promise<boolean> {
    const signal = AbortSignal.any([this.stopController.signal, AbortSignal.timeout(this.o.listTimeoutMs ?? 60_000)]);
    let list: { metadata?: { resourceVersion?: string }; items: T[] };
    let served = true;
    try {
      list = { items: [] };
      let cont: string | undefined;
      do {
        // Every page comes from the snapshot of the first (the continue token pins it), so the
        // watch starts from the first page's resourceVersion; a server that pages a moving list
        // then replays what changed meanwhile instead of losing it.
        const page = await listObjects<T>(
          this.o.kubeconfig,
          this.o.path,
          { labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector, limit: LIST_PAGE_SIZE, continue: cont },
          signal,
        );
        for (const item of page.items) list.items.push(this.o.transform ? this.o.transform(item) : item);
        list.metadata ??= page.metadata;
        cont = page.metadata?.continue || undefined;
      } while (cont);
    } catch (err) {
      if (!(this.o.absentIsEmpty && err instanceof KubeHttpError && err.code === 404)) throw err;
      list = { items: [] };
      served = false;
    }
    if (served === this.absent) {
      this.absent = !served;
      const every = Math.round((this.o.absentIsEmpty?.recheckMs ?? 30_000) / 1000);
      this.o.log?.info(served ? `watch ${this.o.name}: now served` : `watch ${this.o.name}: not served (404), counted as none; listing again every ${every} s`);
    }
    if (this.stopped) return served;
    const first = !this.isSynced;
    const fresh = new Map<string, T>();
    for (const item of list.items) fresh.set(Reflector.key(item), item);
    const old = new Map(this.objects);
    this.objects.clear();
    for (const [k, v] of fresh) this.objects.set(k, v);
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.watchedSinceList = false;
    for (const [k, obj] of fresh) {
      const prev = old.get(k);
      if (!prev) this.call('add', () => this.o.handlers?.add?.(obj));
      else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
        this.call('update', () => this.o.handlers?.update?.(obj, prev));
    }
    for (const [k, prev] of old) if (!fresh.has(k)) this.call('delete', () => this.o.handlers?.delete?.(prev));
    if (first) {
      this.isSynced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    } else {
      this.relists++;
      this.o.onRelist?.(this.relistReason);
    }
    return served;
  }

  private async watchOnce(): Promise<WatchEnd> {
    const attempt = new AbortController();
    const signal = AbortSignal.any([this.stopController.signal, attempt.signal]);
    let stale = false;
    this.lastActivity = Date.now();
    const checkEvery = Math.max(50, Math.min(5000, Math.floor(this.staleAfterMs / 4)));
    const watchdog = setInterval(() => {
      if (Date.now() - this.lastActivity > this.staleAfterMs) {
        stale = true;
        attempt.abort(new Error('watch went stale'));
      }
    }, checkEvery);
    try {
      await watchObjects<T>(
        this.o.kubeconfig,
        this.o.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: this.timeoutSeconds,
          labelSelector: this.o.labelSelector,
          fieldSelector: this.o.fieldSelector,
        },
        signal,
        () => {
          this.lastActivity = Date.now();
          this.watchedSinceList = true;
          this.consecutiveFailures = 0;
          this.setConnected(true);
        },
        (e) => {
          this.lastActivity = Date.now();
          this.apply(e);
        },
      );
      this.setConnected(false);
      return 'closed';
    } catch (err) {
      this.setConnected(false);
      if (this.stopped) return 'stopped';
      if (stale) return 'stale';
      throw err;
    } finally {
      clearInterval(watchdog);
    }
  }

  private apply(e: WatchEvent<T>): void {
    const rv = e.object?.metadata?.resourceVersion;
    if (e.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const obj = this.o.transform ? this.o.transform(e.object) : e.object;
    const k = Reflector.key(obj);
    const prev = this.objects.get(k);
    switch (e.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.objects.set(k, obj);
        if (!prev) this.call('add', () => this.o.handlers?.add?.(obj));
        else if (prev.metadata?.resourceVersion !== rv) this.call('update', () => this.o.handlers?.update?.(obj, prev));
        break;
      case 'DELETED':
        this.objects.delete(k);
        if (prev) this.call('delete', () => this.o.handlers?.delete?.(obj));
        break;
    }
    if (rv) this.resourceVersion = rv;
  }

  private call(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.o.log?.warn(`watch ${this.o.name}: ${what} handler failed: ${errorLine(err)}`);
    }
  }

  private setConnected(c: boolean): void {
    if (this.isConnected === c) return;
    this.isConnected = c;
    this.o.onConnected?.(c);
  }

  private nextBackoff(): number {
    this.consecutiveFailures++;
    const base = this.o.backoff?.baseMs ?? 500;
    const max = this.o.backoff?.maxMs ?? 30_000;
    const jitter = this.o.backoff?.jitter ?? 0.2;
    const raw = Math.min(max, base * 2 ** Math.min(this.consecutiveFailures - 1, 30));
    const r = (this.o.random ?? Math.random)();
    return Math.round(Math.min(max, raw * (1 - jitter + 2 * jitter * r)));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const signal = this.stopController.signal;
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }
}

export function errorLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? '';
}

/** The kubectl annotation holding a copy of the whole applied object. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops metadata.managedFields and kubectl's last-applied copy of the object: on a real API server
 * they are one to a few KiB per object, more than the rest of an ImageMirror, and nothing here
 * reads them (what controller-runtime's TransformStripManagedFields does).
 */
export function stripBookkeeping<T extends KubeObject>(obj: T): T {
  const md = obj.metadata as (KubeObject['metadata'] & { managedFields?: unknown; annotations?: Record<string, string> }) | undefined;
  if (!md) return obj;
  if (md.managedFields !== undefined) delete md.managedFields;
  if (md.annotations && LAST_APPLIED_ANNOTATION in md.annotations) {
    const { [LAST_APPLIED_ANNOTATION]: _dropped, ...rest } = md.annotations;
    md.annotations = rest;
  }
  return obj;
}
