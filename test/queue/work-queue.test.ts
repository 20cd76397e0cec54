import assert from 'node:assert/strict';
import { MAX_TIMER_SLICE_MS, WorkQueue, type Clock, type TimerHandle } from '../../src/queue/work-queue.js';

/** A clock the test advances by hand: delayed adds fire in deadline order, no sleeping. */
class ManualClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return { ref: id };
  }
  clearTimeout(h: TimerHandle): void {
    this.timers.delete(h.ref as number);
  }
  pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= until && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = until;
  }
}

/**
 * ManualClock with Node's timer arithmetic: a delay above 2^31-1 ms, Infinity, NaN or below 1 ms
 * fires after 1 ms (Node warns "TimeoutOverflowWarning" and does exactly that). Records what was asked.
 */
class NodeTimerClock extends ManualClock {
  readonly asked: number[] = [];
  override setTimeout(fn: () => void, ms: number): TimerHandle {
    this.asked.push(ms);
    return super.setTimeout(fn, ms >= 1 && ms <= 2 ** 31 - 1 ? ms : 1);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  it('de-duplicates keys waiting in the queue', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    assert.equal(q.length, 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.length, 0);
    q.done('a');
    q.done('b');
    assert.equal(q.length, 0);
    assert.deepEqual(await q.shutdown({ graceMs: 10 }), { drained: true, abandoned: [] });
  });

  it('never hands one key to two workers; a key re-added while processing is queued again at done()', async () => {
    const q = new WorkQueue();
    q.add('k');
    const first = await q.get();
    assert.equal(first, 'k');
    q.add('k');
    q.add('k');
    assert.equal(q.length, 0, 'a key being processed is not queued while its worker holds it');
    let second: string | undefined;
    const pending = q.get().then((k) => (second = k));
    await new Promise((r) => setImmediate(r));
    assert.equal(second, undefined, 'get must wait while the only key is in progress');
    q.done('k');
    await pending;
    assert.equal(second, 'k', 'the re-added key is handed out once done() is called');
    q.done('k');
    assert.equal(q.length, 0, 'two adds while processing produce one re-run');
    await q.shutdown({ graceMs: 10 });
  });

  it('runs N workers concurrently, with at most one worker per key', async () => {
    const q = new WorkQueue();
    let active = 0;
    let maxActive = 0;
    const activeByKey = new Map<string, number>();
    const runs: string[] = [];
    const gates: Array<() => void> = [];
    const allStarted = deferred();
    q.run(3, async (key) => {
      runs.push(key);
      active++;
      maxActive = Math.max(maxActive, active);
      activeByKey.set(key, (activeByKey.get(key) ?? 0) + 1);
      assert.ok((activeByKey.get(key) ?? 0) <= 1, `key ${key} handed to two workers`);
      const gate = deferred();
      gates.push(gate.resolve);
      if (gates.length === 3) allStarted.resolve();
      await gate.promise;
      activeByKey.set(key, (activeByKey.get(key) ?? 0) - 1);
      active--;
    });
    q.add('a');
    q.add('b');
    q.add('c');
    q.add('d');
    await allStarted.promise;
    assert.equal(maxActive, 3);
    q.add('a'); // re-added while processing
    for (const g of gates.splice(0)) g();
    // Let 'd' and the second 'a' run to completion.
    for (let i = 0; i < 50 && runs.length < 5; i++) {
      await new Promise((r) => setImmediate(r));
      for (const g of gates.splice(0)) g();
    }
    assert.deepEqual(runs.slice(0, 3).sort(), ['a', 'b', 'c']);
    assert.deepEqual(runs.slice(3).sort(), ['a', 'd']);
    await q.shutdown({ graceMs: 1000 });
  });

  it('addRateLimited backs off exponentially per key from the base to the cap, and forget resets it', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, random: () => 0.5, backoff: { baseMs: 1000, maxMs: 300_000, jitter: 0.1 } });
    const delays: number[] = [];
    for (let i = 0; i < 11; i++) {
      const t = clock.now();
      delays.push(q.addRateLimited('x'));
      assert.equal(q.scheduledAt('x'), t + delays[i]!);
      clock.advance(delays[i]!); // fire it so the next one is not swallowed by "earliest wins"
      assert.equal(q.length, 1);
      q.done((await q.get())!);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000]);
    assert.equal(q.numRequeues('x'), 11);
    assert.equal(q.nextBackoffMs('other'), 1000, 'backoff is per key');
    q.forget('x');
    assert.equal(q.numRequeues('x'), 0);
    assert.equal(q.nextBackoffMs('x'), 1000);
  });

  it('jitters backoff within ±jitter', () => {
    const clock = new ManualClock();
    const low = new WorkQueue({ clock, random: () => 0, backoff: { baseMs: 1000, jitter: 0.2 } });
    const high = new WorkQueue({ clock, random: () => 0.999999, backoff: { baseMs: 1000, jitter: 0.2 } });
    assert.equal(low.addRateLimited('k'), 800);
    assert.equal(high.addRateLimited('k'), 1200);
    const real = new WorkQueue({ clock, backoff: { baseMs: 1000, jitter: 0.2 } });
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const d = real.nextBackoffMs('k');
      assert.ok(d >= 800 && d <= 1200, `delay ${d} outside jitter bounds`);
      seen.add(d);
    }
    assert.ok(seen.size > 1, 'default randomness must vary the delay');
  });

  it('addAfter: the earliest deadline wins', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    const t0 = clock.now();
    q.addAfter('k', 5000);
    q.addAfter('k', 10_000); // later: ignored
    assert.equal(q.scheduledAt('k'), t0 + 5000);
    q.addAfter('k', 2000); // earlier: replaces
    assert.equal(q.scheduledAt('k'), t0 + 2000);
    assert.equal(clock.pending(), 1, 'the replaced timer is cleared');
    clock.advance(1999);
    assert.equal(q.length, 0);
    clock.advance(1);
    assert.equal(q.length, 1);
    assert.equal(await q.get(), 'k');
    q.done('k');
    clock.advance(10_000);
    assert.equal(q.length, 0, 'superseded deadlines never fire');
    q.addAfter('now', 0);
    assert.equal(q.length, 1, 'a zero delay adds at once');
  });

  it('MAX_TIMER_SLICE_MS is the largest delay a Node timer holds', () => {
    assert.equal(MAX_TIMER_SLICE_MS, 2 ** 31 - 1);
  });

  it('addAfter never fires early, whatever the delay: 2^31 ms, 30 days, 1e12 ms (timers chained in slices)', () => {
    const clock = new NodeTimerClock();
    for (const [key, ms] of [['2^31', 2 ** 31], ['30d', 30 * 24 * 3_600_000 + 1], ['1e12', 1e12]] as const) {
      const q = new WorkQueue({ clock });
      const t0 = clock.now();
      q.addAfter(key, ms);
      assert.equal(q.scheduledAt(key), t0 + ms);
      clock.advance(ms - 1);
      assert.equal(q.length, 0, `${key}: fired before its deadline`);
      clock.advance(1);
      assert.equal(q.length, 1, `${key}: did not fire at its deadline`);
      assert.equal(q.scheduledAt(key), undefined);
    }
    assert.ok(clock.asked.every((ms) => ms >= 1 && ms <= MAX_TIMER_SLICE_MS), `a timer was armed past 2^31-1 ms: ${Math.max(...clock.asked)}`);
    assert.ok(clock.asked.length > 466, 'a 1e12 ms delay takes ~466 slices');
  });

  it('addAfter(Infinity) never fires and yields to an earlier deadline; NaN adds at once', () => {
    const clock = new NodeTimerClock();
    const q = new WorkQueue({ clock });
    q.addAfter('inf', Infinity);
    assert.equal(q.scheduledAt('inf'), Infinity);
    clock.advance(1e13);
    assert.equal(q.length, 0, 'Infinity fired');
    assert.equal(clock.pending(), 1, 'one slice armed at a time');
    q.addAfter('inf', 5);
    assert.equal(clock.pending(), 1, 'the long chain is cleared when an earlier deadline replaces it');
    clock.advance(5);
    assert.equal(q.length, 1);
    q.addAfter('nan', Number.NaN);
    assert.equal(q.length, 2, 'NaN is read as no delay');
  });

  it('cancelDelayed and a shorter addAfter stop a chained delay between slices', () => {
    const clock = new NodeTimerClock();
    const q = new WorkQueue({ clock });
    q.addAfter('c', 3 * MAX_TIMER_SLICE_MS);
    clock.advance(MAX_TIMER_SLICE_MS + 5);
    q.cancelDelayed('c');
    assert.equal(clock.pending(), 0);
    q.addAfter('s', 3 * MAX_TIMER_SLICE_MS);
    clock.advance(MAX_TIMER_SLICE_MS + 5);
    q.addAfter('s', 1000);
    clock.advance(1000);
    assert.equal(q.length, 1);
    clock.advance(4 * MAX_TIMER_SLICE_MS);
    assert.equal(q.length, 1, 'neither the cancelled nor the superseded chain fired');
  });

  it('reports depth through the hook', async () => {
    const depths: number[] = [];
    const q = new WorkQueue({ onDepth: (d) => depths.push(d) });
    q.add('a');
    q.add('b');
    q.add('b');
    q.done((await q.get())!);
    assert.deepEqual(depths, [0, 1, 2, 1]);
    await q.shutdown({ graceMs: 10, abortWaitMs: 10 });
  });

  it('shutdown drains in-flight work, hands out nothing new, and resolves when done', async () => {
    const q = new WorkQueue();
    const started = deferred();
    const release = deferred();
    const finished: string[] = [];
    let aborted = false;
    q.run(2, async (key, signal) => {
      if (key === 'slow') {
        started.resolve();
        await release.promise;
        aborted = signal.aborted;
      }
      finished.push(key);
    });
    q.add('slow');
    await started.promise;
    q.add('later');
    await new Promise((r) => setImmediate(r));
    const before = finished.length;
    const done = q.shutdown({ graceMs: 5000 });
    q.add('after-shutdown');
    setTimeout(release.resolve, 20);
    const result = await done;
    assert.equal(result.drained, true);
    assert.deepEqual(result.abandoned, []);
    assert.equal(aborted, false, 'work that finishes within the grace period is not aborted');
    assert.ok(finished.includes('slow'));
    assert.ok(!finished.includes('after-shutdown'));
    assert.equal(finished.length, before + 1);
    assert.equal(await q.get(), undefined);
  });

  it('shutdown aborts in-flight work after the grace period', async () => {
    const q = new WorkQueue();
    const started = deferred();
    q.run(1, async (_key, signal) => {
      started.resolve();
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    });
    q.add('stuck');
    await started.promise;
    const t = Date.now();
    const result = await q.shutdown({ graceMs: 50, abortWaitMs: 1000 });
    assert.equal(result.drained, false);
    assert.deepEqual(result.abandoned, []);
    assert.ok(q.signal.aborted);
    assert.ok(Date.now() - t < 900, 'workers that honour the signal end promptly');
  });

  it('a handler that throws is retried with backoff', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, random: () => 0.5, backoff: { baseMs: 100 } });
    const errors: string[] = [];
    let calls = 0;
    const twice = deferred();
    q.run(
      1,
      async () => {
        calls++;
        if (calls === 2) twice.resolve();
        if (calls === 1) throw new Error('boom');
      },
      (key, err) => errors.push(`${key}: ${(err as Error).message}`),
    );
    q.add('k');
    for (let i = 0; i < 20 && q.scheduledAt('k') === undefined; i++) await new Promise((r) => setImmediate(r));
    assert.equal(q.scheduledAt('k'), clock.now() + 100);
    clock.advance(100);
    await twice.promise;
    assert.deepEqual(errors, ['k: boom']);
    await q.shutdown({ graceMs: 100 });
  });
});
