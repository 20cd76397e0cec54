/**
 * The shared work loop with a real reconciler-shaped stub store: outcomes become queue operations
 * and metrics in one place; "now" bypasses backoff; pushes coalesce within PUSH_COALESCE_MS; the
 * webhook token file is bounded.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../../src/metrics.js';
import type { ReconcileResult } from '../../src/mirror/reconciler.js';
import { API_VERSION, KIND, type ImageMirror } from '../../src/mirror/types.js';
import { createWorkLoop, PUSH_COALESCE_MS, type WorkLoop } from '../../src/runtime/loop.js';
import { MAX_TOKEN_FILE_BYTES, readTokenFile } from '../../src/runtime/webhook.js';

const mirror: ImageMirror = { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'm', namespace: 'ns' }, spec: { source: { repository: 'r.example/a', tags: ['1'] }, targets: [{ repository: 'r.example/b' }] } };

function loopWith(outcome: ReconcileResult['outcome']): { loop: WorkLoop; calls: number[]; waitCalls(n: number): Promise<void> } {
  const calls: number[] = [];
  const waiters: Array<() => void> = [];
  const loop = createWorkLoop({
    metrics: new Metrics(),
    backoff: { baseMs: 3600_000, maxMs: 3600_000 },
    reconciler: {
      reconcile: async () => {
        calls.push(Date.now());
        for (const w of waiters.splice(0)) w();
        return { outcome, status: {}, reason: 'R', message: 'm', targets: [], requeueAfterMs: 3600_000 };
      },
    },
    store: {
      get: () => mirror,
      list: () => [mirror],
      statuses: () => [],
      context: (_m, signal) => ({ credentials: async () => ({ get: async () => undefined }), signal }),
      writeStatus: async () => 'written',
    },
  });
  const waitCalls = async (n: number): Promise<void> => {
    while (calls.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { loop, calls, waitCalls };
}

async function idle(loop: WorkLoop, key: string): Promise<void> {
  while (loop.pending(key).queued) await new Promise((r) => setImmediate(r));
}

describe('work loop (src/runtime/loop.ts)', () => {
  it('retry backs off (1 h here); enqueue reconciles at once regardless', async () => {
    const { loop, calls, waitCalls } = loopWith('retry');
    loop.start();
    loop.add('ns/m');
    await waitCalls(1);
    await idle(loop, 'ns/m');
    assert.ok(loop.pending('ns/m').scheduledAt! - Date.now() > 30 * 60_000, 'backing off');
    loop.enqueue('ns/m', 'test');
    await waitCalls(2);
    assert.equal(calls.length, 2);
    await loop.stop(1000);
  });

  it(`pushed: a burst within PUSH_COALESCE_MS (${PUSH_COALESCE_MS} ms) is one reconcile, not before the window`, async () => {
    const { loop, calls, waitCalls } = loopWith('synced');
    loop.start();
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) loop.pushed('ns/m', `push ${i}`);
    await waitCalls(1);
    assert.ok(calls[0]! - t0 >= PUSH_COALESCE_MS - 5, `ran after ${calls[0]! - t0} ms`);
    await idle(loop, 'ns/m');
    assert.equal(calls.length, 1);
    assert.ok(loop.pending('ns/m').scheduledAt! - Date.now() > 30 * 60_000, 'only the resync is left');
    await loop.stop(1000);
  });

  it(`MAX_TOKEN_FILE_BYTES (${MAX_TOKEN_FILE_BYTES}): a bigger token file is refused, naming the file but not its content`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'token-'));
    try {
      await writeFile(join(dir, 'ok'), `${'s'.repeat(MAX_TOKEN_FILE_BYTES - 1)}\n`);
      assert.equal(readTokenFile(join(dir, 'ok')).length, MAX_TOKEN_FILE_BYTES - 1);
      await writeFile(join(dir, 'big'), 'S'.repeat(MAX_TOKEN_FILE_BYTES + 1));
      assert.throws(() => readTokenFile(join(dir, 'big')), (e: Error) => e.message.includes(join(dir, 'big')) && !e.message.includes('SSSS'));
      await writeFile(join(dir, 'empty'), '\n');
      assert.throws(() => readTokenFile(join(dir, 'empty')), /is empty/);
      assert.throws(() => readTokenFile(join(dir, 'absent')), /ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
