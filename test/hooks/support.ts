/**
 * Test helpers for the receiver: a recorder for enqueue that tests await (no sleeps), a raw-socket
 * client for requests fetch will not send (a declared length it never delivers, a body that stops
 * halfway), and small payload builders.
 */
import { connect, type Socket } from 'node:net';
import { API_VERSION, KIND, type ImageMirror, type SourceSpec } from '../../src/mirror/types.js';

export const TOKEN = 'hook-secret-0123456789';

export function mirror(name: string, source: SourceSpec, namespace = 'team'): ImageMirror {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec: { source, targets: [{ repository: 'mirror.example.com/copy' }] } };
}

/** A distribution envelope of manifest pushes by tag to `host/repository`. */
export function envelope(host: string, repository: string, tags: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      events: tags.map((tag, i) => ({
        id: `e${i}`,
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository, tag, digest: `sha256:${i.toString(16).padStart(64, '0')}` },
        request: { host, method: 'PUT' },
      })),
    }),
  );
}

/** Records enqueue calls; `waitFor` resolves once `n` calls for `key` have been made, or rejects after `ms`. */
export class EnqueueRecorder {
  readonly calls: Array<{ key: string; why: string; at: number }> = [];
  private waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  readonly enqueue = (key: string, why: string): void => {
    this.calls.push({ key, why, at: performance.now() });
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  };

  count(key: string): number {
    return this.calls.filter((c) => c.key === key).length;
  }

  waitFor(key: string, n = 1, ms = 2000): Promise<void> {
    if (this.count(key) >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`enqueue(${key}) called ${this.count(key)} times within ${ms} ms, want ${n}`)), ms);
      this.waiters.push({
        check: () => this.count(key) >= n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }
}

export interface RawResponse {
  status: number;
  head: string;
}

/**
 * Writes `head` (request line and headers, without the blank line), then body chunks from `body`
 * while the server reads them, and resolves with the status line as soon as an answer arrives —
 * before the body is finished if the server answers early. The socket is returned open.
 */
export function rawRequest(
  port: number,
  head: string,
  body: () => Buffer | undefined,
  o: { allowHalfOpen?: boolean } = {},
): Promise<{ res: RawResponse; socket: Socket; written: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: o.allowHalfOpen ?? false });
    let written = 0;
    let got = '';
    let answered = false;
    socket.on('error', (e) => {
      if (!answered) reject(e);
    });
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      if (answered) return;
      got += c;
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      answered = true;
      const h = got.slice(0, end);
      resolve({ res: { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1] ?? 0), head: h }, socket, written });
    });
    socket.on('connect', () => {
      socket.write(head + '\r\n\r\n');
      const pump = (): void => {
        while (!answered && !socket.destroyed) {
          const chunk = body();
          if (!chunk) return;
          written += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

/** Resolves when the socket is closed (by either side). */
export function closed(socket: Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}
