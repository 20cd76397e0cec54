/**
 * A work queue with client-go/controller-runtime semantics, shared by the controller and `run` mode
 * (so no Kubernetes imports here):
 * - keys are de-duplicated while waiting (dirty set);
 * - a key is never handed to two workers at once (processing set); a key added while it is being
 *   processed is queued again when its worker calls done();
 * - addRateLimited: per-key exponential backoff with jitter, reset by forget();
 * - addAfter: delayed add, the earliest pending deadline wins; any delay is honoured, however long
 *   (timers are chained in slices a JavaScript timer can hold);
 * - shutdown: stop handing out keys, let in-flight work finish within a grace period, then abort.
 */

/**
 * Longest delay one timer is armed for. Node (like browsers) stores the delay in a signed 32-bit
 * int: anything above 2^31-1 ms (~24.8 days) — or Infinity, or NaN — fires after 1 ms instead,
 * which would turn a long resync interval into a hot loop. Longer delays chain timers.
 */
export const MAX_TIMER_SLICE_MS = 2 ** 31 - 1;

export interface TimerHandle {
  /** Opaque; whatever setTimeout returned. */
  readonly ref?: unknown;
}

/** Time source and timers, injectable so backoff tests read deadlines instead of sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending retry must not keep a CLI process alive on its own.
    t.unref?.();
    return { ref: t };
  },
  clearTimeout: (h) => clearTimeout(h.ref as NodeJS.Timeout),
};

export interface BackoffOptions {
  /** First retry delay (ms). Default 1000. */
  baseMs?: number;
  /** Cap (ms). Default 300000 (5 min). */
  maxMs?: number;
  /** Relative jitter: the delay is scaled by a factor in [1 - jitter, 1 + jitter]. Default 0.1. */
  jitter?: number;
}

export interface WorkQueueOptions {
  backoff?: BackoffOptions;
  clock?: Clock;
  /** Source of randomness for jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  /** Called with the number of keys waiting (not delayed, not in progress) whenever it changes. */
  onDepth?: (depth: number) => void;
}

export interface ShutdownOptions {
  /** How long in-flight work may run before the abort signal fires. Default 30000. */
  graceMs?: number;
  /** How long to wait for workers after the abort before giving up on them. Default 5000. */
  abortWaitMs?: number;
}

export interface ShutdownResult {
  /** True when every in-flight item finished within the grace period. */
  drained: boolean;
  /** Keys still in progress when shutdown gave up waiting (empty when drained). */
  abandoned: string[];
}

export type WorkHandler = (key: string, signal: AbortSignal) => Promise<void>;

interface Delayed {
  deadline: number;
  timer: TimerHandle;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly failures = new Map<string, number>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly onDepth?: (depth: number) => void;
  private shuttingDown = false;
  private workers: Promise<void>[] = [];
  private lastDepth = -1;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.baseMs = options.backoff?.baseMs ?? 1000;
    this.maxMs = options.backoff?.maxMs ?? 300_000;
    this.jitter = options.backoff?.jitter ?? 0.1;
    this.onDepth = options.onDepth;
    this.reportDepth();
  }

  /** Aborted when shutdown's grace period runs out. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get shuttingDownNow(): boolean {
    return this.shuttingDown;
  }

  /** Keys waiting to be handed out. */
  get length(): number {
    return this.queue.length;
  }

  /** Keys currently handed to a worker. */
  inProgress(): string[] {
    return [...this.processing];
  }

  /** Deadline (clock ms) of a delayed add pending for key, if any. */
  scheduledAt(key: string): number | undefined {
    return this.delayed.get(key)?.deadline;
  }

  /** Whether key is waiting to be handed out, or handed out now (delayed adds aside: scheduledAt). */
  has(key: string): boolean {
    return this.dirty.has(key) || this.processing.has(key);
  }

  /** Failures counted for key since the last forget(). */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /**
   * Add key after ms; when a delayed add is already pending, the earlier deadline wins. Delays
   * longer than MAX_TIMER_SLICE_MS are waited out in slices; Infinity never fires; NaN or a
   * delay ≤ 0 adds now.
   */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const deadline = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing) {
      if (existing.deadline <= deadline) return;
      this.clock.clearTimeout(existing.timer);
    }
    const entry: Delayed = { deadline, timer: {} };
    this.delayed.set(key, entry);
    this.arm(key, entry, ms);
  }

  /**
   * Arms the next slice of a delayed add. What is left is counted down by slices, not read from
   * clock.now(), so a wall-clock jump cannot stretch or shorten the wait.
   */
  private arm(key: string, entry: Delayed, remainingMs: number): void {
    const slice = Math.min(remainingMs, MAX_TIMER_SLICE_MS);
    entry.timer = this.clock.setTimeout(() => {
      if (this.delayed.get(key) !== entry) return;
      const rest = remainingMs - slice;
      if (rest > 0) {
        this.arm(key, entry, rest);
        return;
      }
      this.delayed.delete(key);
      this.add(key);
    }, slice);
  }

  /** The delay the next addRateLimited(key) would use, without counting a failure. */
  nextBackoffMs(key: string): number {
    return this.backoffFor(this.numRequeues(key) + 1);
  }

  /** Count a failure for key and add it after its backoff; returns the delay used (ms). */
  addRateLimited(key: string): number {
    const n = this.numRequeues(key) + 1;
    this.failures.set(key, n);
    const delay = this.backoffFor(n);
    this.addAfter(key, delay);
    return delay;
  }

  /** Reset key's backoff (after a success or when it is no longer wanted). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Drop a pending delayed add for key (e.g. the object was deleted). */
  cancelDelayed(key: string): void {
    const d = this.delayed.get(key);
    if (!d) return;
    this.clock.clearTimeout(d.timer);
    this.delayed.delete(key);
  }

  /**
   * Next key to work on; resolves undefined once the queue is shutting down. The caller owns the key
   * until done(key).
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    if (this.processing.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Start `concurrency` workers calling handler for each key. A handler that throws gets its key
   * re-added with backoff (onError is told); a handler decides forget/addAfter itself otherwise.
   */
  run(concurrency: number, handler: WorkHandler, onError?: (key: string, err: unknown) => void): void {
    for (let i = 0; i < Math.max(1, concurrency); i++) this.workers.push(this.workerLoop(handler, onError));
  }

  /**
   * Stop handing out keys, drop pending and delayed keys, wait for in-flight work for graceMs, then
   * fire the abort signal and wait abortWaitMs more. Idempotent.
   */
  async shutdown(options: ShutdownOptions = {}): Promise<ShutdownResult> {
    const graceMs = options.graceMs ?? 30_000;
    const abortWaitMs = options.abortWaitMs ?? 5000;
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const d of this.delayed.values()) this.clock.clearTimeout(d.timer);
      this.delayed.clear();
      this.queue.length = 0;
      this.dirty.clear();
      this.reportDepth();
      for (const w of this.waiters.splice(0)) w(undefined);
    }
    let drained = await this.waitIdle(graceMs);
    if (!drained) {
      this.abort.abort(new Error('work queue shut down: grace period over'));
      await this.waitIdle(abortWaitMs);
    }
    drained = drained && this.processing.size === 0;
    if (this.processing.size === 0) await Promise.all(this.workers);
    return { drained, abandoned: [...this.processing] };
  }

  private async workerLoop(handler: WorkHandler, onError?: (key: string, err: unknown) => void): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      try {
        await handler(key, this.abort.signal);
      } catch (err) {
        onError?.(key, err);
        this.addRateLimited(key);
      } finally {
        this.done(key);
      }
    }
  }

  private waitIdle(ms: number): Promise<boolean> {
    if (this.processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      // Real timers on purpose: the grace period is wall time even when tests inject a clock.
      const t = setTimeout(() => {
        const i = this.idleWaiters.indexOf(onIdle);
        if (i >= 0) this.idleWaiters.splice(i, 1);
        resolve(false);
      }, ms);
      const onIdle = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.idleWaiters.push(onIdle);
    });
  }

  private backoffFor(n: number): number {
    const exp = this.baseMs * 2 ** Math.min(n - 1, 52);
    const capped = Math.min(this.maxMs, exp);
    const factor = 1 - this.jitter + 2 * this.jitter * this.random();
    return Math.max(0, Math.min(this.maxMs, Math.round(capped * factor)));
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.reportDepth();
  }

  private take(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    this.reportDepth();
    return key;
  }

  private reportDepth(): void {
    if (this.queue.length === this.lastDepth) return;
    this.lastDepth = this.queue.length;
    this.onDepth?.(this.lastDepth);
  }
}
