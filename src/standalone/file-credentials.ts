/**
 * Credentials in file modes: a mirror's `credentials.secretName` names a dockerconfigjson Secret
 * document in the same files (same namespace; none means `default`); every side also falls back to
 * --docker-config. Never another namespace's Secret.
 */
import type { CredentialProvider } from '../oci/credentials.js';
import { dockerConfigProvider, parseDockerConfig, type DockerConfig } from '../oci/docker-config.js';
import { CredentialsNotFoundError } from '../mirror/reconciler.js';
import type { SecretRef } from '../mirror/types.js';
import { findSecret, type SecretDoc } from './spec-files.js';

const DOCKERCONFIGJSON = 'kubernetes.io/dockerconfigjson';

export function fileCredentials(secrets: SecretDoc[], dockerConfig: DockerConfig | undefined) {
  const fallback: DockerConfig[] = dockerConfig ? [dockerConfig] : [];
  return async (namespace: string, ref: SecretRef | undefined): Promise<CredentialProvider> => {
    if (!ref) return dockerConfigProvider(...fallback);
    const secret = findSecret(secrets, namespace, ref.secretName);
    if (!secret) throw new CredentialsNotFoundError(`secret ${namespace}/${ref.secretName} not found`);
    if (secret.type === DOCKERCONFIGJSON && secret.dockerConfigJson === undefined) {
      throw new CredentialsNotFoundError(`secret ${namespace}/${ref.secretName} has no valid .dockerconfigjson`);
    }
    if (secret.type !== DOCKERCONFIGJSON || secret.dockerConfigJson === undefined) {
      throw new CredentialsNotFoundError(`secret ${namespace}/${ref.secretName} is of type ${secret.type || 'Opaque'}, want ${DOCKERCONFIGJSON}`);
    }
    let parsed: DockerConfig;
    try {
      parsed = parseDockerConfig(secret.dockerConfigJson, `secret ${namespace}/${ref.secretName}`);
    } catch (e) {
      throw new CredentialsNotFoundError(e instanceof Error ? e.message : String(e));
    }
    return dockerConfigProvider(parsed, ...fallback);
  };
}
