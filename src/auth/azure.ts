/**
 * Azure Container Registry credentials from the pod's Entra identity: an Entra access token for
 * Azure Resource Manager (ACR accepts ARM-audience tokens; Flux asks for the same scope),
 * exchanged at the registry's `/oauth2/exchange` for an ACR refresh token, which the registry
 * takes as the password of the all-zero user. Its lifetime (about 3 h) is the JWT's `exp`.
 *
 * The identity comes from, in this order: Entra Workload ID (AZURE_FEDERATED_TOKEN_FILE with
 * AZURE_CLIENT_ID and AZURE_TENANT_ID), a service principal in the environment
 * (AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH), else the managed identity. That is
 * DefaultAzureCredential without the developer tools it would shell out to (az, azd, pwsh),
 * which a controller has no use for, and it reports the one failure that matters instead of a
 * chain of them. On a host (`sync`, `run`: option hostTools) the Azure CLI's login is tried
 * before the managed identity, so a CI job signed in with `az login` works.
 *
 * @azure/identity is imported when a provider is made, never by importing this module.
 */
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { jwtExpiry } from '../oci/auth.js';
import type { Credential } from '../oci/credentials.js';
import { CLOUD_REQUEST_TIMEOUT_MS, RenewingCredential, cloudError, registryCredentials, type CloudCredentialOptions, type CloudCredentialProvider, type Expiring } from './provider.js';

export { jwtExpiry };

/** The user ACR expects with a refresh token as the password. */
export const ACR_REFRESH_TOKEN_USER = '00000000-0000-0000-0000-000000000000';

/** Entra scope for the registry's cloud: the Resource Manager audience of that cloud. */
export function acrScope(registry: string): string {
  const host = registry.toLowerCase();
  if (host.endsWith('.azurecr.cn')) return 'https://management.chinacloudapi.cn/.default';
  if (host.endsWith('.azurecr.us')) return 'https://management.usgovcloudapi.net/.default';
  return 'https://management.azure.com/.default';
}

/** Authority hosts MSAL knows; any other one (a sovereign or private cloud, a test fake) cannot be instance-validated. */
const KNOWN_AUTHORITIES = new Set(['login.microsoftonline.com', 'login.chinacloudapi.cn', 'login.microsoftonline.us', 'login.microsoftonline.de']);

function who(env: NodeJS.ProcessEnv, hostTools: boolean): string {
  const tenant = env.AZURE_TENANT_ID ? `@${env.AZURE_TENANT_ID}` : '';
  const cli = hostTools && !env.AZURE_FEDERATED_TOKEN_FILE && !env.AZURE_CLIENT_SECRET && !env.AZURE_CLIENT_CERTIFICATE_PATH;
  return `${cli ? 'azure-cli-or-' : ''}${env.AZURE_CLIENT_ID ?? 'managed-identity'}${tenant}`;
}

interface ExchangeResponse {
  refresh_token?: unknown;
  errors?: Array<{ code?: unknown; message?: unknown }>;
  error?: unknown;
  error_description?: unknown;
}

/** What a refused exchange says, without the body's other fields (which could echo what we sent). */
function exchangeRefusal(status: number, body: string): string {
  let detail = '';
  try {
    const j = JSON.parse(body) as ExchangeResponse;
    const e = j.errors?.[0];
    if (e) detail = [e.code, e.message].filter((x) => typeof x === 'string').join(': ');
    else if (typeof j.error === 'string') detail = [j.error, j.error_description].filter((x) => typeof x === 'string').join(': ');
  } catch {
    // not JSON: the status says enough
  }
  return `token exchange refused (${status})${detail ? `: ${detail}` : ''}`;
}

export async function azureCredentials(registry: string, o: CloudCredentialOptions = {}): Promise<CloudCredentialProvider> {
  const env = process.env;
  const timeoutMs = o.timeoutMs ?? CLOUD_REQUEST_TIMEOUT_MS;
  let credential: import('@azure/identity').TokenCredential;
  try {
    const identity = await import('@azure/identity');
    const authorityHost = env.AZURE_AUTHORITY_HOST;
    const common = {
      ...(o.ca ? { tlsOptions: { ca: [...rootCertificates, o.ca] } } : {}),
      disableInstanceDiscovery: authorityHost !== undefined && !KNOWN_AUTHORITIES.has(new URL(authorityHost).hostname.toLowerCase()),
    };
    if (env.AZURE_FEDERATED_TOKEN_FILE) credential = new identity.WorkloadIdentityCredential(common);
    else if (env.AZURE_CLIENT_SECRET || env.AZURE_CLIENT_CERTIFICATE_PATH) credential = new identity.EnvironmentCredential(common);
    else {
      const managed = env.AZURE_CLIENT_ID ? new identity.ManagedIdentityCredential(env.AZURE_CLIENT_ID, common) : new identity.ManagedIdentityCredential(common);
      // On an operator's host or a CI runner (`az login`, GitHub's azure/login with OIDC), the
      // Azure CLI's login comes first; a pod has no CLI and uses its managed identity alone.
      credential = o.hostTools
        ? new identity.ChainedTokenCredential(new identity.AzureCliCredential({ ...(env.AZURE_TENANT_ID ? { tenantId: env.AZURE_TENANT_ID } : {}), processTimeoutInMs: timeoutMs }), managed)
        : managed;
    }
  } catch (e) {
    throw cloudError('azure', registry, e);
  }
  // The exchange goes to the registry host: its certs.d material decides what to trust there.
  const exchangeCa = o.registryTls?.ca ? [...o.registryTls.ca] : o.ca ? [...rootCertificates, o.ca] : undefined;
  const clientCert = o.registryTls?.cert && o.registryTls.key ? { cert: o.registryTls.cert, key: o.registryTls.key } : {};
  const dispatcher: Dispatcher | undefined =
    exchangeCa || o.insecure || clientCert.cert
      ? new Agent({ connect: { ...(exchangeCa ? { ca: exchangeCa } : {}), ...clientCert, rejectUnauthorized: !o.insecure } })
      : undefined;
  const scope = acrScope(registry);
  const secrets: Array<string | undefined> = [];

  const fetch = async (signal: AbortSignal): Promise<Expiring<Credential>> => {
    const aad = await credential.getToken(scope, { abortSignal: signal });
    if (!aad?.token) throw new Error(`Entra returned no token for ${scope}`);
    secrets[0] = aad.token;
    const form = new URLSearchParams({ grant_type: 'access_token', service: registry, access_token: aad.token });
    if (env.AZURE_TENANT_ID) form.set('tenant', env.AZURE_TENANT_ID);
    const res = await request(`https://${registry}/oauth2/exchange`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      dispatcher,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(exchangeRefusal(res.statusCode, text));
    let refresh: unknown;
    try {
      refresh = (JSON.parse(text) as ExchangeResponse).refresh_token;
    } catch {
      throw new Error('token exchange returned a response that is not JSON');
    }
    if (typeof refresh !== 'string' || refresh === '') throw new Error('token exchange returned no refresh_token');
    secrets[1] = refresh;
    const exp = jwtExpiry(refresh);
    if (exp === undefined) throw new Error('token exchange returned a refresh token without an expiry (not a JWT with exp)');
    return { value: { kind: 'basic', username: ACR_REFRESH_TOKEN_USER, password: refresh }, lifetimeMs: exp - Date.now() };
  };
  const renewing = new RenewingCredential<Credential>(fetch, { now: o.now, timeoutMs });
  return registryCredentials('azure', registry, who(env, o.hostTools === true), renewing, () => secrets);
}
