/**
 * Per-key mutual exclusion: work on the same key runs one at a time, in arrival order. The copy
 * engine keys it by (target blob store, blob digest), so a second repository of the same registry
 * waits for the first transfer and then mounts from where it landed instead of uploading again; the
 * layout backend keys it by layout path, since index.json is read, changed and replaced whole.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      done();
      // Only the last holder removes the key, so the map stays as small as the work in flight.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  get size(): number {
    return this.tails.size;
  }
}
