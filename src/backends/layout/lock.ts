/**
 * One lock per layout path within the process: index.json is read, changed and replaced as a
 * whole, so two writers at once would lose one's entry.
 */
export class LayoutLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier `run` for `key` has settled. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with a holder or waiters (for tests: the map does not grow without bound). */
  get size(): number {
    return this.tails.size;
  }
}
