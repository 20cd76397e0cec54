/**
 * Credentials in file modes: a mirror's `credentials.secretName` names a dockerconfigjson Secret
 * document in the same files (same namespace; none means `default`); every side also falls back to
 * --docker-config. Never another namespace's Secret. A named Secret missing from the files is an
 * error, unless --credentials-fallback says to use --docker-config for it. (`credentials.provider` is resolved by the
 * reconciler, with the identity of the host this runs on.)
 *
 * Secret documents follow the controller's rules, through the same implementation
 * (src/auth/docker-config-secret.ts): `auths` only, because spec files may come from many teams and
 * a Secret must not make this process run programs. The host's --docker-config may still name
 * helpers, as for docker.
 */
import { dockerConfigSecretCredentials } from '../auth/docker-config-secret.js';
import { CredentialsNotFoundError, type CredentialProvider } from '../oci/credentials.js';
import { dockerConfigProvider, type DockerConfig } from '../oci/docker-config.js';
import type { SecretRef } from '../mirror/types.js';
import { findSecret, type SecretDoc } from './spec-files.js';

export interface FileCredentialsOptions {
  /**
   * --credentials-fallback: a named Secret that is not in the files (a SealedSecret or
   * ExternalSecret in the repository, unreadable here) means the --docker-config credentials
   * instead of an error. A Secret that is present but wrong is still an error.
   */
  fallbackForMissingSecrets?: boolean;
}

export function fileCredentials(secrets: SecretDoc[], dockerConfig: DockerConfig | undefined, o: FileCredentialsOptions = {}) {
  const fallback: DockerConfig[] = dockerConfig ? [dockerConfig] : [];
  return async (namespace: string, ref: SecretRef | undefined): Promise<CredentialProvider> => {
    if (!ref) return dockerConfigProvider(...fallback);
    const secret = findSecret(secrets, namespace, ref.secretName);
    if (!secret && o.fallbackForMissingSecrets) return dockerConfigProvider(...fallback);
    if (!secret) {
      throw new CredentialsNotFoundError(`secret ${namespace}/${ref.secretName} not found in the spec files (with --credentials-fallback, --docker-config is used instead)`);
    }
    return dockerConfigSecretCredentials(secret, fallback);
  };
}

/**
 * ReconcileContext.secretValue in file modes: one key of a Secret document of any type in the spec
 * files (same namespace rule as credentials; `stringData` wins over `data`, as the API server merges
 * them). No --docker-config fallback: a verification key has no stand-in. Throws
 * CredentialsNotFoundError naming secret and key, never a value.
 */
export function fileSecretValue(secrets: SecretDoc[]) {
  return async (namespace: string, secretName: string, key: string): Promise<string> => {
    const what = `secret ${namespace}/${secretName}`;
    const secret = findSecret(secrets, namespace, secretName);
    if (!secret) throw new CredentialsNotFoundError(`${what} not found in the spec files`);
    const text = secret.stringData?.[key];
    if (text !== undefined) return text;
    const b64 = secret.data?.[key];
    if (b64 === undefined) throw new CredentialsNotFoundError(`${what} has no key ${key} in data or stringData (${secret.source})`);
    const compact = b64.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
      throw new CredentialsNotFoundError(`${what}: data.${key} is not valid base64 (use stringData for plain text) (${secret.source})`);
    }
    return Buffer.from(compact, 'base64').toString('utf8');
  };
}
