/**
 * The listener for --webhook-addr: its own port, apart from /metrics and the probes, so it can be
 * exposed to registries (or an ingress) without exposing those. Header and request timeouts bound
 * what a slow sender can hold open.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseListenAddr } from '../server.js';
import type { WebhookReceiver } from './receiver.js';

/** Time for a sender to deliver its request headers. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Time for a whole request, headers and body (the receiver bounds the body on its own too). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How often Node looks for connections past those timeouts (its default, 30 s, would let them run long). */
export const CONNECTIONS_CHECK_MS = 1000;

export interface WebhookServerHandle {
  /** `host:port` bound. */
  address: string;
  /** Base URL for loopback clients, e.g. `http://127.0.0.1:41234`. */
  url: string;
  close(): Promise<void>;
}

export interface WebhookServerOptions {
  /** `:8443`, `127.0.0.1:0`, `[::1]:9000`, or a bare port (as --metrics-addr). */
  addr: string;
  receiver: Pick<WebhookReceiver, 'handle'>;
  /** Tests shorten these; the defaults are HEADERS_TIMEOUT_MS and REQUEST_TIMEOUT_MS. */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServerHandle> {
  const { host, port } = parseListenAddr(o.addr);
  const server = http.createServer(
    {
      headersTimeout: o.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
      requestTimeout: o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    },
    o.receiver.handle,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const shownHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  const loopHost = a.address === '::' || a.address === '0.0.0.0' ? '127.0.0.1' : shownHost;
  return {
    address: `${shownHost}:${a.port}`,
    url: `http://${loopHost}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
