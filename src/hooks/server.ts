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

export interface WebhookServerHandle {
  /** `host:port` bound. */
  address: string;
  /** Base URL for loopback clients, e.g. `http://127.0.0.1:41234`. */
  url: string;
  close(): Promise<void>;
}

export async function startWebhookServer(o: { addr: string; receiver: Pick<WebhookReceiver, 'handle'> }): Promise<WebhookServerHandle> {
  const { host, port } = parseListenAddr(o.addr);
  const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, o.receiver.handle);
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
