/**
 * Source reads shared by every mirror that needs them: thousands of mirrors of one source
 * repository make one tags/list (and one manifest HEAD per reference) per short window, not one each.
 *
 * Keyed by the Repository's `identity` (client + credentials + repository), never by the repository
 * name alone: a listing read with one tenant's credentials is never handed to another tenant.
 *
 * Single flight: concurrent callers of one key share one request. A success is kept for
 * LISTING_TTL_MS; a failure is shared by the callers of that request but never kept, so the next
 * caller asks again. The shared request does not run on any one caller's signal: a caller that is
 * aborted (its deadline, a shutdown) gives up waiting alone; the request is aborted only when every
 * caller waiting for it has gone.
 */
import type { ManifestInfo, Repository } from '../oci/content.js';
import { OciError } from '../oci/errors.js';

/**
 * How long a listing or HEAD answer serves later callers. Short against any resync interval (10 s
 * at least), so a resync never sees a stale source; a push-triggered reconcile bypasses it (`fresh`).
 */
export const LISTING_TTL_MS = 5_000;
/** Answers kept at most (least recently used dropped first): bounds memory with many sources. */
export const SHARED_READS_MAX = 1_000;

export interface SharedReadsOptions {
  ttlMs?: number;
  max?: number;
  /** Milliseconds clock (tests). Default Date.now. */
  now?: () => number;
}

export interface SharedReadOptions {
  signal?: AbortSignal;
  /**
   * Ask the registry now instead of taking a kept answer or joining a request already under way
   * (a reconcile triggered by a push must see the push). Its answer is kept for the others.
   */
  fresh?: boolean;
}

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

/** One keyed single flight with a TTL'd, size-bounded store of successes. */
export class SharedFlights<T> {
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;
  /** Insertion order is recency order (a hit is moved to the end). */
  private readonly kept = new Map<string, { value: T; at: number }>();
  private readonly flights = new Map<string, Flight<T>>();

  constructor(o: SharedReadsOptions = {}) {
    this.ttlMs = o.ttlMs ?? LISTING_TTL_MS;
    this.max = Math.max(1, o.max ?? SHARED_READS_MAX);
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.kept.size;
  }

  /**
   * The answer for key: a kept one younger than the TTL, else the request under way, else a new
   * request load(signal). `what` names the read in a cancellation error; `keep` says whether a
   * successful answer may be kept (a HEAD that found nothing is not).
   */
  async get(key: string, what: string, load: (signal: AbortSignal) => Promise<T>, o: SharedReadOptions = {}, keep: (value: T) => boolean = () => true): Promise<T> {
    if (o.signal?.aborted) throw cancelled(what, o.signal.reason);
    if (!o.fresh) {
      const hit = this.kept.get(key);
      if (hit && this.now() - hit.at < this.ttlMs) {
        this.kept.delete(key);
        this.kept.set(key, hit);
        return hit.value;
      }
      if (hit) this.kept.delete(key);
    }
    let flight = o.fresh ? undefined : this.flights.get(key);
    if (!flight) flight = this.start(key, load, keep);
    return this.wait(key, what, flight, o.signal);
  }

  private start(key: string, load: (signal: AbortSignal) => Promise<T>, keep: (value: T) => boolean): Flight<T> {
    const controller = new AbortController();
    // The answer is as old as the request: a slow one must not pass for newer than it is.
    const startedAt = this.now();
    const flight: Flight<T> = { controller, waiters: 0, promise: Promise.resolve() as Promise<T> };
    flight.promise = (async () => {
      try {
        const value = await load(controller.signal);
        if (keep(value) && !controller.signal.aborted) this.store(key, value, startedAt);
        return value;
      } finally {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      }
    })();
    // Nobody may be left waiting (every caller aborted): the rejection is then nobody's.
    flight.promise.catch(() => undefined);
    this.flights.set(key, flight);
    return flight;
  }

  private store(key: string, value: T, at: number): void {
    // A request overtaken by a fresh one (a push) must not replace the fresher answer.
    const kept = this.kept.get(key);
    if (kept && kept.at > at) return;
    this.kept.delete(key);
    this.kept.set(key, { value, at });
    while (this.kept.size > this.max) {
      const oldest = this.kept.keys().next().value as string;
      this.kept.delete(oldest);
    }
  }

  private wait(key: string, what: string, flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    flight.waiters++;
    if (!signal) return flight.promise.finally(() => flight.waiters--);
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = (): boolean => {
        if (left) return false;
        left = true;
        signal.removeEventListener('abort', onAbort);
        flight.waiters--;
        return true;
      };
      const onAbort = (): void => {
        if (!leave()) return;
        // Only a request nobody waits for any more is stopped: its answer would go unused.
        if (flight.waiters === 0) {
          if (this.flights.get(key) === flight) this.flights.delete(key);
          flight.controller.abort(signal.reason);
        }
        reject(cancelled(what, signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (v) => {
          if (leave()) resolve(v);
        },
        (e: unknown) => {
          if (leave()) reject(e);
        },
      );
    });
  }
}

function cancelled(what: string, reason: unknown): OciError {
  return new OciError({ code: 'CANCELLED', message: `${what}: cancelled`, cause: reason });
}

/** tags/list and manifest HEADs of source repositories, shared per Repository identity. */
export class SharedReads {
  private readonly listings: SharedFlights<readonly string[]>;
  private readonly heads: SharedFlights<ManifestInfo | undefined>;

  constructor(o: SharedReadsOptions = {}) {
    this.listings = new SharedFlights(o);
    this.heads = new SharedFlights(o);
  }

  /** The repository's tags; a copy, so a caller's sort or push cannot change another's. */
  async listTags(repo: Repository, o: SharedReadOptions = {}): Promise<string[]> {
    const tags = await this.listings.get(repo.identity, `tags/list of ${repo.registry}/${repo.repository}`, (signal) => repo.listTags({ signal }), o);
    return [...tags];
  }

  /** HEAD of reference; an absent manifest is shared with concurrent callers but not kept. */
  headManifest(repo: Repository, reference: string, o: SharedReadOptions = {}): Promise<ManifestInfo | undefined> {
    return this.heads.get(`${repo.identity}\n${reference}`, `manifest HEAD of ${repo.registry}/${repo.repository}:${reference}`, (signal) => repo.headManifest(reference, { signal }), o, (v) => v !== undefined);
  }
}
