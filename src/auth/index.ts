/**
 * Registry credentials from the cloud identity of the pod (IRSA / EKS Pod Identity, GKE Workload
 * Identity / metadata server, Entra Workload ID / managed identity): no Secret to create or rotate.
 *
 * Each provider's module, and with it that cloud's SDK, is loaded only when a mirror asks for
 * that provider: the SDKs are large, and a controller mirroring between plain registries should
 * start as fast as it did without them.
 */
import type { CloudCredentialOptions, CloudCredentialProvider, CloudProvider } from './provider.js';
import { OciError } from '../oci/errors.js';

export { CLOUD_PROVIDERS, isCloudProvider, type CloudCredentialOptions, type CloudCredentialProvider, type CloudProvider } from './provider.js';

/**
 * A CredentialProvider for `registry` that renews its token before it expires, and the
 * non-secret identity to key the registry client by. Rejects (one line, no secret) when the
 * provider's SDK cannot be set up; token failures surface when the registry client asks.
 */
export async function cloudCredentials(provider: CloudProvider, registry: string, opts: CloudCredentialOptions = {}): Promise<CloudCredentialProvider> {
  switch (provider) {
    case 'aws':
      return (await import('./aws.js')).awsCredentials(registry, opts);
    case 'gcp':
      return (await import('./gcp.js')).gcpCredentials(registry, opts);
    case 'azure':
      return (await import('./azure.js')).azureCredentials(registry, opts);
    default: {
      const p: unknown = provider;
      throw new OciError({
        code: 'UNAUTHORIZED',
        registry,
        retryable: false,
        message: `credentials for ${registry}: unknown cloud provider ${JSON.stringify(String(p))} (expected aws, gcp or azure)`,
      });
    }
  }
}
