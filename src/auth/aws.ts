/**
 * Amazon ECR and ECR Public credentials from the pod's AWS identity: the SDK's default Node
 * credential chain (IRSA web identity through STS AssumeRoleWithWebIdentity, EKS Pod Identity
 * through AWS_CONTAINER_CREDENTIALS_FULL_URI, environment keys, shared config), then
 * `ecr:GetAuthorizationToken` in the registry's region. ECR speaks Basic only: the token is
 * base64 `AWS:<password>` and lives 12 h.
 *
 * The SDK packages are imported when a provider is made, never by importing this module, so a
 * controller that mirrors no ECR registry never loads them.
 */
import type { Credential } from '../oci/credentials.js';
import { CLOUD_REQUEST_TIMEOUT_MS, RenewingCredential, cloudError, registryCredentials, type CloudCredentialOptions, type CloudCredentialProvider, type Expiring } from './provider.js';

export const ECR_PUBLIC_REGISTRY = 'public.ecr.aws';
/** ECR Public hands out tokens only in this region, whatever region the caller is in. */
export const ECR_PUBLIC_REGION = 'us-east-1';

/** What ECR documents as a token's lifetime, assumed when a response carries no `expiresAt`. */
export const ECR_TOKEN_LIFETIME_MS = 12 * 3600_000;

export type EcrRegistry =
  | { kind: 'private'; account: string; region: string; fips: boolean }
  | { kind: 'public' };

// <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and the dual-stack <account>.dkr-ecr[-fips].<region>.on.aws;
// the ISO partitions (c2s.ic.gov, sc2s.sgov.gov) follow the same shape.
const PRIVATE = /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws|c2s\.ic\.gov|sc2s\.sgov\.gov)$/;

/** What an ECR host name says about the registry, or undefined for a host that is not ECR's. */
export function parseEcrRegistry(registry: string): EcrRegistry | undefined {
  const host = registry.trim().toLowerCase();
  if (host === ECR_PUBLIC_REGISTRY) return { kind: 'public' };
  const m = PRIVATE.exec(host);
  if (!m) return undefined;
  return { kind: 'private', account: m[1]!, region: m[3]!, fips: m[2] !== undefined };
}

/** The account or role the chain will use, from the environment alone (no call to AWS). */
function who(parsed: EcrRegistry | undefined, env: NodeJS.ProcessEnv): string {
  const source = env.AWS_ROLE_ARN
    ? env.AWS_ROLE_ARN
    : env.AWS_CONTAINER_CREDENTIALS_FULL_URI
      ? 'pod-identity'
      : env.AWS_PROFILE
        ? `profile/${env.AWS_PROFILE}`
        : 'default-chain';
  return parsed?.kind === 'private' ? `${parsed.account}/${source}` : source;
}

/** `AWS:<password>` in base64, as both ECR and ECR Public return it. */
export function decodeAuthorizationToken(token: string): { username: string; password: string } {
  const text = Buffer.from(token, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) throw new Error('GetAuthorizationToken returned a token that is not base64 user:password');
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

export async function awsCredentials(registry: string, o: CloudCredentialOptions = {}): Promise<CloudCredentialProvider> {
  const parsed = parseEcrRegistry(registry);
  const region = parsed?.kind === 'public' ? ECR_PUBLIC_REGION : parsed?.kind === 'private' ? parsed.region : (o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION);
  if (!region) throw cloudError('aws', registry, new Error('the registry name carries no region (not <account>.dkr.ecr.<region>.amazonaws.com) and AWS_REGION is not set'));
  const identity = who(parsed, process.env);
  let secret: string | undefined;
  let fetch: (signal: AbortSignal) => Promise<Expiring<Credential>>;
  const toCredential = (token: string | undefined, expiresAt: Date | undefined): Expiring<Credential> => {
    if (!token) throw new Error('GetAuthorizationToken returned no authorization data');
    const { username, password } = decodeAuthorizationToken(token);
    secret = password;
    return { value: { kind: 'basic', username, password }, lifetimeMs: expiresAt ? expiresAt.getTime() - Date.now() : ECR_TOKEN_LIFETIME_MS };
  };
  try {
    const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
    // Web identity assumes the role through STS in the registry's region, not the global endpoint.
    const credentials = fromNodeProviderChain({ clientConfig: { region } });
    const timeout = o.timeoutMs ?? CLOUD_REQUEST_TIMEOUT_MS;
    const requestHandler = { connectionTimeout: timeout, requestTimeout: timeout };
    if (parsed?.kind === 'public') {
      const { ECRPUBLICClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr-public');
      const client = new ECRPUBLICClient({ region, credentials, requestHandler });
      fetch = async (signal) => {
        const out = await client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
        return toCredential(out.authorizationData?.authorizationToken, out.authorizationData?.expiresAt);
      };
    } else {
      const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
      const client = new ECRClient({ region, credentials, requestHandler, useFipsEndpoint: parsed?.kind === 'private' && parsed.fips });
      fetch = async (signal) => {
        const out = await client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
        const data = out.authorizationData?.[0];
        return toCredential(data?.authorizationToken, data?.expiresAt);
      };
    }
  } catch (e) {
    throw cloudError('aws', registry, e);
  }
  const renewing = new RenewingCredential<Credential>(fetch, { now: o.now, timeoutMs: o.timeoutMs });
  return registryCredentials('aws', registry, identity, renewing, () => [secret]);
}
