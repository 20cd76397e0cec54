/**
 * The registry backend's client pool: one RegistryClient per (registry, TLS mode, credentials
 * identity), so what a client learned (capabilities, auth challenges, tokens, connections) is kept
 * across reconciles, and a rotated credential takes effect at once.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../log.js';
import { silentLogger } from '../../log.js';
import { DEFAULT_CERTS_DIRS, loadHostTls } from '../../oci/certs-dir.js';
import type { Repository } from '../../oci/content.js';
import type { Credential, CredentialProvider } from '../../oci/credentials.js';
import { RegistryClient, type Capability, type RegistryClientOptions } from '../../oci/registry.js';

type RequestEvent = Parameters<NonNullable<RegistryClientOptions['onRequest']>>[0];

/** Clients kept at once; the least recently used one is closed beyond it. */
export const CLIENT_POOL_MAX = 64;

export interface RegistryPoolOptions {
  /** Client settings other than credentials and TLS, which come from each call. */
  client?: Omit<RegistryClientOptions, 'credentials' | 'insecure' | 'onRequest' | 'onCapability' | 'tls'>;
  /** Directories in the containers certs.d layout; default /etc/containers/certs.d, then /etc/docker/certs.d. */
  certsDirs?: readonly string[];
  /** At debug level every request and token request is logged. */
  log?: Logger;
  onRequest?: (e: RequestEvent) => void;
  onCapability?: (registry: string, c: Capability, supported: boolean) => void;
  /** Bound on pooled clients (default CLIENT_POOL_MAX). */
  max?: number;
}

/** The credential provider failed when asked up front; `cause` is its error. */
export class CredentialLookupError extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'CredentialLookupError';
  }
}

export class RegistryPool {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly certsDirs: readonly string[];
  private readonly log: Logger;
  private readonly max: number;

  constructor(private readonly o: RegistryPoolOptions = {}) {
    this.certsDirs = o.certsDirs ?? DEFAULT_CERTS_DIRS;
    this.log = o.log ?? silentLogger;
    this.max = Math.max(1, o.max ?? CLIENT_POOL_MAX);
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * The repository `repository` of `registry` through a pooled client. The client asks its
   * provider before every request, so a renewed cloud token keeps the client and what it learned;
   * a rotated Secret has another identity, so it gets another client. A provider without an
   * identity is asked once and its credential baked into a client keyed by a hash of it, never
   * the secret.
   */
  async repository(registry: string, repository: string, creds: CredentialProvider, insecure: boolean): Promise<Repository> {
    // Asked once up front even when the client will ask again: a side without usable credentials
    // fails here, before any copy starts (a renewing provider serves the next ask from its cache).
    let credential: Credential | undefined;
    try {
      credential = await creds.get(registry);
    } catch (e) {
      throw new CredentialLookupError(e);
    }
    const identity = creds.identity;
    const key = `${registry}|${insecure}|${identity ?? `credential:${fingerprint(credential)}`}`;
    let client = this.clients.get(key);
    if (!client) {
      const tls = await loadHostTls(registry, this.certsDirs);
      // Concurrent first calls for one key all awaited above: the first to get here makes the
      // client, the others take it (else each makes one, the pool keeps the last and leaks the rest).
      client = this.clients.get(key);
      if (!client) client = this.create(key, registry, creds, credential, insecure, tls);
    }
    this.clients.delete(key); // re-insert: most recently used last
    this.clients.set(key, client);
    return client.repository(repository);
  }

  /** A new pooled client; the least recently used one is closed past the bound. */
  private create(
    key: string,
    registry: string,
    creds: CredentialProvider,
    credential: Credential | undefined,
    insecure: boolean,
    tls: Awaited<ReturnType<typeof loadHostTls>>,
  ): RegistryClient {
    // At debug level every request is a line, as skopeo --debug traces them; its URL carries no
    // credentials and no upload state. Below debug nothing is built.
    const log = this.log;
    const trace = log.isLevelEnabled?.('debug') === true;
    const { onRequest, onCapability } = this.o;
    const client = new RegistryClient(registry, {
      ...this.o.client,
      insecure,
      tls,
      credentials: creds.identity !== undefined ? creds : { get: async (r) => (r === registry ? credential : undefined) },
      onRequest: (e) => {
        onRequest?.(e);
        if (trace) log.debug('registry request', { ...e });
      },
      onTokenRequest: trace ? (e) => log.debug('token request', { ...e }) : undefined,
      onCapability: (c, supported) => onCapability?.(registry, c, supported),
    });
    if (this.clients.size >= this.max) {
      const [oldestKey, oldest] = this.clients.entries().next().value as [string, RegistryClient];
      this.clients.delete(oldestKey);
      void oldest.close().catch(() => {});
    }
    this.clients.set(key, client);
    return client;
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close().catch(() => {})));
  }
}

function fingerprint(c: Credential | undefined): string {
  if (!c) return 'anonymous';
  return createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 16);
}
