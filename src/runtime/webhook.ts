/**
 * --webhook-addr / --webhook-token-file for both long-running front ends: the push-notification
 * receiver on its own listener, its matches handed to the work loop as pushes, and its sync-delay
 * histogram fed from the loop's synced reconciles. The shared secret is read from the file on every
 * request, so a rotated Secret (a projected volume swaps the file) takes effect without a restart;
 * it is never logged.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ImageMirror } from '../mirror/types.js';
import { createWebhookReceiver } from '../hooks/receiver.js';
import { startWebhookServer } from '../hooks/server.js';

/** Largest token file read: a shared secret is a few dozen bytes; a bigger file is the wrong file. */
export const MAX_TOKEN_FILE_BYTES = 4096;

export interface PushReceiverOptions {
  addr: string;
  tokenFile: string;
  metrics: Pick<Metrics, 'registry'>;
  /** Mirrors to match pushes against (the loop's store). */
  mirrors: () => readonly ImageMirror[];
  /** The loop's entry point for a push. */
  pushed: (key: string, why: string) => void;
  /** False answers 503 (a controller replica that is not the leader; shutting down). */
  accepting: () => boolean;
  log: Logger;
}

export interface PushReceiverHandle {
  address: string;
  url: string;
  /** Call after each synced reconcile (the loop's onSynced). */
  observeSynced(key: string, at: number, startedAt: number): void;
  close(): Promise<void>;
}

/** The token file's content, trimmed; throws a one-line error naming the file (never its content). */
export function readTokenFile(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    if (size > MAX_TOKEN_FILE_BYTES) throw new Error(`--webhook-token-file ${file}: ${size} bytes, more than ${MAX_TOKEN_FILE_BYTES}: not a shared secret`);
    const buf = Buffer.alloc(MAX_TOKEN_FILE_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n > MAX_TOKEN_FILE_BYTES) throw new Error(`--webhook-token-file ${file}: more than ${MAX_TOKEN_FILE_BYTES} bytes: not a shared secret`);
    const token = buf.subarray(0, n).toString('utf8').trim();
    if (token === '') throw new Error(`--webhook-token-file ${file} is empty`);
    return token;
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('--webhook-token-file')) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`--webhook-token-file ${file}: ${code}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export async function startPushReceiver(o: PushReceiverOptions): Promise<PushReceiverHandle> {
  // Refuse to start without a usable secret rather than answer 401 to every sender.
  readTokenFile(o.tokenFile);
  let lastProblem: string | undefined;
  const tokens = (): string | undefined => {
    try {
      const t = readTokenFile(o.tokenFile);
      lastProblem = undefined;
      return t;
    } catch (e) {
      const problem = e instanceof Error ? e.message : String(e);
      // Once per new problem: a sender retrying must not flood the log.
      if (problem !== lastProblem) o.log.warn(`webhook secret unavailable, refusing notifications: ${problem}`);
      lastProblem = problem;
      return undefined;
    }
  };
  const receiver = createWebhookReceiver({
    tokens,
    mirrors: o.mirrors,
    enqueue: o.pushed,
    metrics: o.metrics,
    accepting: o.accepting,
    log: o.log,
  });
  const server = await startWebhookServer({ addr: o.addr, receiver });
  return {
    address: server.address,
    url: server.url,
    observeSynced: (key, at, startedAt) => receiver.observeSynced(key, at, startedAt),
    close: () => server.close(),
  };
}
