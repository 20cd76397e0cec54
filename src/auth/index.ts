/**
 * Registry credentials from the cloud identity of the pod (IRSA / EKS Pod Identity, GKE Workload
 * Identity / metadata server, Entra Workload ID / managed identity): no Secret to create or rotate.
 *
 * Each cloud's SDK is loaded only when a mirror asks for that provider: the SDKs are large (the
 * Azure one alone takes about 2 s to import), and a controller mirroring between plain
 * registries should start as fast as it did without them. The provider modules themselves are
 * small and SDK-free until called, so they are imported statically: a dynamic import of our own
 * modules would, under a CommonJS loader (tests run through tsx that way), create a second copy of
 * src/oci/errors.ts whose OciError the registry client does not recognise.
 */
import { OciError } from '../oci/errors.js';
import { awsCredentials } from './aws.js';
import { azureCredentials } from './azure.js';
import { gcpCredentials } from './gcp.js';
import type { CloudCredentialOptions, CloudCredentialProvider, CloudProvider } from './provider.js';

export { CLOUD_PROVIDERS, isCloudProvider, type CloudCredentialOptions, type CloudCredentialProvider, type CloudProvider } from './provider.js';

/**
 * A CredentialProvider for `registry` that renews its token before it expires, and the
 * non-secret identity to key the registry client by. Rejects (one line, no secret) when the
 * provider's SDK cannot be set up; token failures surface when the registry client asks.
 */
export async function cloudCredentials(provider: CloudProvider, registry: string, opts: CloudCredentialOptions = {}): Promise<CloudCredentialProvider> {
  switch (provider) {
    case 'aws':
      return awsCredentials(registry, opts);
    case 'gcp':
      return gcpCredentials(registry, opts);
    case 'azure':
      return azureCredentials(registry, opts);
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
