/**
 * Credentials in file modes: a mirror's `credentials.secretName` names a dockerconfigjson Secret
 * document in the same files (same namespace; none means `default`); every side also falls back to
 * --docker-config. Never another namespace's Secret.
 *
 * Secret documents follow the controller's rule: `auths` only. Their `credHelpers` and
 * `credsStore` are ignored, because spec files may come from many teams and a Secret must not make
 * this process run programs. The host's --docker-config may still name helpers, as for docker.
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
    return dockerConfigProvider(secretAuthsOnly(parsed), ...fallback);
  };
}

/** A Secret's config without helpers: what the controller also does with cluster Secrets. */
export function secretAuthsOnly(c: DockerConfig): DockerConfig {
  return { auths: c.auths, credHelpers: {}, source: c.source };
}
