/**
 * Credentials in file modes: a mirror's `credentials.secretName` names a dockerconfigjson Secret
 * document in the same files (same namespace; none means `default`); every side also falls back to
 * --docker-config. Never another namespace's Secret. (`credentials.provider` is resolved by the
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

export function fileCredentials(secrets: SecretDoc[], dockerConfig: DockerConfig | undefined) {
  const fallback: DockerConfig[] = dockerConfig ? [dockerConfig] : [];
  return async (namespace: string, ref: SecretRef | undefined): Promise<CredentialProvider> => {
    if (!ref) return dockerConfigProvider(...fallback);
    const secret = findSecret(secrets, namespace, ref.secretName);
    if (!secret) throw new CredentialsNotFoundError(`secret ${namespace}/${ref.secretName} not found`);
    return dockerConfigSecretCredentials(secret, fallback);
  };
}
