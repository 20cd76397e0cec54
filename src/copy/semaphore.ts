/** Counting semaphore and a bounded parallel map: the two concurrency limits of the copy engine. */
import { OciError } from '../oci/errors.js';

export interface Slot {
  /**
   * Gives the slot up while `wait` is pending and takes one again after it resolves (queueing like
   * any other taker), so a holder that must wait (a registry's Retry-After) does not keep others out.
   * When `wait` rejects, the slot is not taken again.
   */
  yieldDuring(wait: Promise<void>): Promise<void>;
}

export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
  }

  /** Resolves with a release function once a slot is free. Waiters are served in order. */
  async acquire(): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
    } else {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so `active` stays the same.
      if (next) next();
      else this.active--;
    };
  }

  /** Runs `fn` holding a slot; `fn` may give the slot up while it waits on something else. */
  async run<T>(fn: (slot: Slot) => Promise<T>): Promise<T> {
    let release: (() => void) | undefined = await this.acquire();
    const slot: Slot = {
      yieldDuring: async (wait) => {
        if (!release) return wait;
        release();
        release = undefined;
        await wait;
        release = await this.acquire();
      },
    };
    try {
      return await fn(slot);
    } finally {
      release?.();
    }
  }

  get inUse(): number {
    return this.active;
  }
}

/**
 * Like Promise.all(items.map(fn)) with at most `limit` calls running. Stops starting new items
 * after the first failure and rejects with it once the running ones have settled.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (e) {
        failed ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failed) throw failed.error;
  return results;
}

/** Throws a CANCELLED OciError when `signal` is aborted: called before starting each unit of work. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new OciError({ code: 'CANCELLED', message: `cancelled before ${what}` });
}
