/**
 * Artifact Registry and Container Registry credentials from Google application default
 * credentials: the GCE/GKE metadata server (GKE Workload Identity serves the same endpoint), a
 * key or workload-identity-federation file named by GOOGLE_APPLICATION_CREDENTIALS, or gcloud's
 * well-known file. The registries take an OAuth2 access token as the password of the user
 * `oauth2accesstoken`; it lives about an hour.
 *
 * google-auth-library is imported when a provider is made, never by importing this module.
 */
import { readFile } from 'node:fs/promises';
import type { Credential } from '../oci/credentials.js';
import { RenewingCredential, cloudError, registryCredentials, type CloudCredentialOptions, type CloudCredentialProvider, type Expiring } from './provider.js';

export const GCP_USERNAME = 'oauth2accesstoken';
export const GCP_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** The account an ADC file names (a key's client_email, the target of impersonation), or where the token comes from. */
async function who(env: NodeJS.ProcessEnv): Promise<string> {
  const file = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!file) return 'application-default';
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as { client_email?: unknown; service_account_impersonation_url?: unknown; type?: unknown };
    if (typeof json.client_email === 'string') return json.client_email;
    const target = typeof json.service_account_impersonation_url === 'string' ? /([^/]+):generateAccessToken$/.exec(json.service_account_impersonation_url)?.[1] : undefined;
    if (target) return target;
    return typeof json.type === 'string' ? json.type : 'credentials-file';
  } catch {
    // The library reports an unreadable file when asked for a token; the label only needs to be stable.
    return 'credentials-file';
  }
}

export async function gcpCredentials(registry: string, o: CloudCredentialOptions = {}): Promise<CloudCredentialProvider> {
  let auth: import('google-auth-library').GoogleAuth;
  try {
    const { GoogleAuth } = await import('google-auth-library');
    auth = new GoogleAuth({ scopes: [GCP_SCOPE] });
  } catch (e) {
    throw cloudError('gcp', registry, e);
  }
  let secret: string | undefined;
  const fetch = async (): Promise<Expiring<Credential>> => {
    // The client found once (ADC discovery probes files, the environment and the metadata server)
    // and asked for a fresh token on every renewal: our clock decides when, not the library's cache.
    const client = await auth.getClient();
    let token: string | null | undefined;
    let expiry: number | null | undefined;
    if ('refreshAccessToken' in client && typeof client.refreshAccessToken === 'function') {
      const { credentials } = await client.refreshAccessToken();
      token = credentials.access_token;
      expiry = credentials.expiry_date;
    } else {
      // Federated (external account) clients renew through their own cache, by the same margin.
      token = (await client.getAccessToken()).token;
      expiry = client.credentials.expiry_date;
    }
    if (!token) throw new Error('no access token in the response');
    secret = token;
    return { value: { kind: 'basic', username: GCP_USERNAME, password: token }, lifetimeMs: expiry ? expiry - Date.now() : 0 };
  };
  const renewing = new RenewingCredential<Credential>(fetch, { now: o.now, timeoutMs: o.timeoutMs });
  return registryCredentials('gcp', registry, await who(process.env), renewing, () => [secret]);
}
