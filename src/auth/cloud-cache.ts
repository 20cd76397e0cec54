/**
 * One cloud credential provider per (provider, registry, TLS mode) for the life of the process:
 * every mirror and every reconcile of a registry shares its cached token and renewal, so a token
 * renewed for one reconcile serves the next, and the registry client keyed by the provider's
 * identity keeps what it learned.
 *
 * A provider that could not be made (the SDK found no identity, no region) is not kept: the next
 * reconcile tries again, after the environment or the pod's identity was fixed.
 */
import { cloudCredentials } from './index.js';
import type { CloudCredentialOptions, CloudCredentialProvider, CloudProvider } from './provider.js';

/**
 * Providers kept at most, least recently used dropped first. Far more registries than one
 * controller mirrors into; a bound still, because registry names come from tenants' specs.
 */
export const MAX_CLOUD_PROVIDERS = 256;

/** Options shared by every provider the cache makes (tests: a clock; a CA for a private token authority). */
export type CloudCacheOptions = Pick<CloudCredentialOptions, 'now' | 'ca' | 'timeoutMs' | 'region' | 'hostTools'>;

export interface CloudProviderRequest {
  provider: CloudProvider;
  registry: string;
  /** The mirror's `insecure` for this registry (azure: how its token exchange is verified). */
  insecure?: boolean;
  /** azure: the registry host's certs.d material, for its token exchange. */
  registryTls?: CloudCredentialOptions['registryTls'];
}

export class CloudCredentialCache {
  private readonly providers = new Map<string, Promise<CloudCredentialProvider>>();

  constructor(private readonly options: CloudCacheOptions = {}) {}

  get(r: CloudProviderRequest): Promise<CloudCredentialProvider> {
    const key = `${r.provider}|${r.registry}|${r.insecure === true}`;
    let p = this.providers.get(key);
    if (p) {
      this.providers.delete(key); // re-inserted below: most recently used last
    } else {
      p = cloudCredentials(r.provider, r.registry, { ...this.options, insecure: r.insecure, registryTls: r.registryTls });
      const made = p;
      made.catch(() => {
        if (this.providers.get(key) === made) this.providers.delete(key);
      });
    }
    this.providers.set(key, p);
    while (this.providers.size > MAX_CLOUD_PROVIDERS) this.providers.delete(this.providers.keys().next().value as string);
    return p;
  }

  /** Providers held (for tests of the bound). */
  get size(): number {
    return this.providers.size;
  }
}
