/**
 * Leader election on a coordination.k8s.io/v1 Lease, after client-go tools/leaderelection:
 * - expiry is judged by when WE last saw the record change (observedTime), never by the record's
 *   renewTime, so clock skew between replicas does not matter;
 * - every write carries the resourceVersion we read (409 Conflict = someone else won);
 * - leaseTransitions is bumped when the holder changes;
 * - a leader that cannot renew within renewDeadline stops leading;
 * - release on stop: holder emptied and leaseDurationSeconds 1 (client-go ReleaseOnCancel), so a
 *   successor need not wait out the full lease.
 */
import type { KubeTransport } from './kube-config.js';
import { KubeApi, KubeHttpError } from './kube-http.js';
import type { Metrics } from '../metrics.js';
import { errorLine } from './reflector.js';

export interface LeaderElectionOptions {
  kubeconfig: KubeTransport;
  namespace: string;
  name: string;
  /** Unique per process: hostname + random suffix. */
  identity: string;
  /** Default 15000. */
  leaseDurationMs?: number;
  /** Default 10000. */
  renewDeadlineMs?: number;
  /** Default 2000. */
  retryPeriodMs?: number;
  /** Acquire retries wait retryPeriod × (1 + random × jitterFactor). Default 1.2. */
  jitterFactor?: number;
  /** Called when this process becomes leader; the signal aborts when leadership ends. */
  onStartedLeading?(signal: AbortSignal): void;
  /** Called when leadership ends (lost or released). */
  onStoppedLeading?(): void;
  /** Called when the observed holder changes (including to this process). */
  onNewLeader?(identity: string): void;
  metrics?: Metrics;
  log?: { info(msg: string): void; warn(msg: string): void };
  random?: () => number;
}

interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

/** The Lease fields read and written (coordination.k8s.io/v1). */
interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** RFC 3339 with six fractional digits, as MicroTime fields require. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function timeString(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return String(v);
}

function recordOf(lease: Lease): LeaseRecord {
  const s = lease.spec ?? {};
  return {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: timeString(s.acquireTime),
    renewTime: timeString(s.renewTime),
    leaseTransitions: s.leaseTransitions ?? 0,
  };
}

function recordKey(r: LeaseRecord): string {
  return JSON.stringify([r.holderIdentity, r.leaseDurationSeconds, r.acquireTime, r.renewTime, r.leaseTransitions]);
}

export class LeaderElector {
  private readonly api: KubeApi;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly jitterFactor: number;
  private observed?: LeaseRecord;
  private observedRaw = '';
  private observedTime = 0;
  private observedResourceVersion?: string;
  private leading = false;
  private stopped = false;
  private release = true;
  private readonly stopController = new AbortController();
  private leadership?: AbortController;
  private running?: Promise<void>;
  private lastRenew = 0;
  private reportedLeader = '';

  constructor(private readonly o: LeaderElectionOptions) {
    // Its own connections: a renewal must not queue behind status writes.
    this.api = new KubeApi(o.kubeconfig, { connections: 1 });
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2000;
    this.jitterFactor = o.jitterFactor ?? 1.2;
    if (this.leaseDurationMs <= this.renewDeadlineMs) throw new Error('leader election: lease duration must exceed the renew deadline');
    if (this.renewDeadlineMs <= this.jitterFactor * this.retryPeriodMs)
      throw new Error('leader election: renew deadline must exceed retry period × jitter factor');
    o.metrics?.leader.set(0);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder this process last observed ('' when none). */
  get leader(): string {
    return this.observed?.holderIdentity ?? '';
  }

  /** ms since the last successful renewal while leading (for liveness), undefined when not leading. */
  sinceLastRenewMs(): number | undefined {
    return this.leading ? Date.now() - this.lastRenew : undefined;
  }

  /** Start campaigning; after losing leadership the elector campaigns again until stop(). */
  start(): void {
    if (this.running) return;
    this.running = this.loop();
  }

  /**
   * Stop campaigning or leading. With release (default), a leader empties the holder so a successor
   * takes over at its next retry. release: false behaves like a crash (tests use it).
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.release = options.release ?? true;
    this.stopped = true;
    this.stopController.abort(new Error('leader election stopped'));
    await this.running;
    this.api.close();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      // Acquire.
      while (!this.stopped) {
        if (await this.tryAcquireOrRenew()) break;
        await this.sleep(this.retryPeriodMs * (1 + (this.o.random ?? Math.random)() * this.jitterFactor));
      }
      if (this.stopped) break;
      this.becomeLeader();
      // Renew until a renewal misses its deadline or we are stopped.
      while (!this.stopped) {
        await this.sleep(this.retryPeriodMs);
        if (this.stopped) break;
        if (!(await this.renewWithinDeadline())) {
          this.o.log?.warn(`leader election: failed to renew lease ${this.o.namespace}/${this.o.name} within ${this.renewDeadlineMs} ms, stepping down`);
          break;
        }
      }
      const wasLeading = this.leading;
      if (this.stopped && wasLeading && this.release) await this.releaseLease();
      this.endLeadership();
    }
  }

  private async renewWithinDeadline(): Promise<boolean> {
    const deadline = Date.now() + this.renewDeadlineMs;
    for (;;) {
      if (await this.tryAcquireOrRenew()) return true;
      if (this.stopped) return true; // stop() decides about releasing
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.sleep(Math.min(this.retryPeriodMs, left));
      if (Date.now() >= deadline) return false;
    }
  }

  private becomeLeader(): void {
    this.leading = true;
    this.lastRenew = Date.now();
    this.leadership = new AbortController();
    this.o.metrics?.leader.set(1);
    this.o.log?.info(`leader election: ${this.o.identity} acquired lease ${this.o.namespace}/${this.o.name}`);
    try {
      this.o.onStartedLeading?.(this.leadership.signal);
    } catch (err) {
      this.o.log?.warn(`leader election: onStartedLeading failed: ${errorLine(err)}`);
    }
  }

  private endLeadership(): void {
    if (!this.leading) return;
    this.leading = false;
    this.o.metrics?.leader.set(0);
    this.leadership?.abort(new Error('leadership lost'));
    this.o.log?.info(`leader election: ${this.o.identity} stopped leading`);
    try {
      this.o.onStoppedLeading?.();
    } catch (err) {
      this.o.log?.warn(`leader election: onStoppedLeading failed: ${errorLine(err)}`);
    }
  }

  private observe(r: LeaseRecord, resourceVersion: string | undefined): void {
    const raw = recordKey(r);
    if (raw !== this.observedRaw) {
      this.observedRaw = raw;
      this.observedTime = Date.now();
    }
    this.observed = r;
    this.observedResourceVersion = resourceVersion;
    if (r.holderIdentity !== this.reportedLeader) {
      this.reportedLeader = r.holderIdentity;
      if (r.holderIdentity) this.o.onNewLeader?.(r.holderIdentity);
    }
  }

  private desired(now: Date, prev?: LeaseRecord): LeaseRecord {
    const mine = prev?.holderIdentity === this.o.identity;
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseDurationMs / 1000)),
      acquireTime: mine && prev?.acquireTime ? prev.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: prev ? (mine ? prev.leaseTransitions : prev.leaseTransitions + 1) : 0,
    };
  }

  private leaseBody(r: LeaseRecord, resourceVersion?: string): Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.o.name, namespace: this.o.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: r.holderIdentity,
        leaseDurationSeconds: r.leaseDurationSeconds,
        acquireTime: r.acquireTime,
        renewTime: r.renewTime,
        leaseTransitions: r.leaseTransitions,
      },
    };
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    let current: Lease;
    try {
      current = await this.call('GET', this.leasePath());
    } catch (err) {
      if (err instanceof KubeHttpError && err.code === 404) {
        const record = this.desired(now);
        try {
          const created = await this.call('POST', this.leasePath(false), this.leaseBody(record));
          this.observe(recordOf(created), created.metadata?.resourceVersion);
          this.lastRenew = Date.now();
          return true;
        } catch (err2) {
          this.logFailure('create', err2);
          return false;
        }
      }
      this.logFailure('get', err);
      return false;
    }
    const old = recordOf(current);
    this.observe(old, current.metadata?.resourceVersion);
    const heldByOther = old.holderIdentity !== '' && old.holderIdentity !== this.o.identity;
    if (heldByOther && this.observedTime + old.leaseDurationSeconds * 1000 > now.getTime()) return false;
    const record = this.desired(now, old);
    try {
      await this.replaceLease(record);
      this.lastRenew = Date.now();
      return true;
    } catch (err) {
      this.logFailure('update', err);
      return false;
    }
  }

  /** PUT with the resourceVersion last seen: a 409 means someone else wrote the Lease meanwhile. */
  private async replaceLease(record: LeaseRecord): Promise<void> {
    const updated = await this.call('PUT', this.leasePath(), this.leaseBody(record, this.observedResourceVersion));
    this.observe(recordOf(updated), updated.metadata?.resourceVersion);
  }

  private async releaseLease(): Promise<void> {
    if (!this.observed || this.observed.holderIdentity !== this.o.identity) return;
    const now = microTime(new Date());
    const record: LeaseRecord = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: this.observed.leaseTransitions,
    };
    try {
      await this.replaceLease(record);
      this.o.log?.info(`leader election: released lease ${this.o.namespace}/${this.o.name}`);
    } catch (err) {
      this.logFailure('release', err);
    }
  }

  private logFailure(what: string, err: unknown): void {
    if (err instanceof KubeHttpError && err.code === 409) return; // lost a race: expected
    const detail = err instanceof KubeHttpError ? `HTTP ${err.code}` : errorLine(err);
    this.o.log?.warn(`leader election: ${what} lease ${this.o.namespace}/${this.o.name} failed: ${detail}`);
  }

  private leasePath(named = true): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases`;
    return named ? `${base}/${encodeURIComponent(this.o.name)}` : base;
  }

  /** One Lease request bounded by the renew deadline: a hung API server must not outlast it. */
  private async call(method: 'GET' | 'POST' | 'PUT', path: string, body?: Lease): Promise<Lease> {
    const r = await this.api.request(method, path, body, 'application/json', `${method} lease ${this.o.namespace}/${this.o.name}`, AbortSignal.timeout(this.renewDeadlineMs));
    return JSON.parse(r.body) as Lease;
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopController.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }
}
