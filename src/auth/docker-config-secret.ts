/**
 * A `kubernetes.io/dockerconfigjson` Secret as registry credentials: the one implementation behind
 * the controller (Secrets from its informer cache) and the file modes (Secret documents in the
 * spec files), so both apply the same rules.
 *
 * Rules: the Secret must be of that type and carry a valid `.dockerconfigjson`; only its `auths`
 * are used. `credHelpers` and `credsStore` are ignored, because Secrets come from whoever may write
 * to a namespace (or a spec file) and must not make this process run programs. The host's own
 * docker config, which the operator wrote, may still name helpers (file modes fall back to it).
 *
 * The provider's identity names the Secret and a digest of its content, so a rotated Secret gets
 * a new registry client at once, and an unchanged one keeps its client across reconciles.
 */
import { CredentialsNotFoundError, type CredentialProvider } from '../oci/credentials.js';
import { dockerConfigProvider, parseDockerConfig, type DockerConfig } from '../oci/docker-config.js';

export const DOCKERCONFIGJSON = 'kubernetes.io/dockerconfigjson';

export interface DockerConfigSecret {
  namespace: string;
  name: string;
  /** The Secret's type; empty or absent reads as `Opaque`, as the API server defaults it. */
  type?: string;
  /** The decoded `.dockerconfigjson` text; absent when the Secret has none (or none that decodes). */
  dockerConfigJson?: string;
}

/**
 * The Secret's `auths`, then `fallback` (the host's docker config in file modes), as one provider.
 * Throws CredentialsNotFoundError (one line, no secret) for a Secret of another type or without a
 * readable `.dockerconfigjson`.
 */
export function dockerConfigSecretCredentials(secret: DockerConfigSecret, fallback: readonly DockerConfig[] = []): CredentialProvider {
  return dockerConfigProvider(secretAuths(secret), ...fallback);
}

/** The Secret parsed and stripped to its `auths` (see the rules above). */
export function secretAuths(secret: DockerConfigSecret): DockerConfig {
  const what = `secret ${secret.namespace}/${secret.name}`;
  const type = secret.type || 'Opaque';
  if (type !== DOCKERCONFIGJSON) throw new CredentialsNotFoundError(`${what} is of type ${type}, want ${DOCKERCONFIGJSON}`);
  if (secret.dockerConfigJson === undefined) throw new CredentialsNotFoundError(`${what} has no valid .dockerconfigjson`);
  let parsed: DockerConfig;
  try {
    parsed = parseDockerConfig(secret.dockerConfigJson, what);
  } catch (e) {
    throw new CredentialsNotFoundError(e instanceof Error ? e.message : `${what}: unreadable`);
  }
  return authsOnly(parsed);
}

/** A config without its helpers: all a Secret may contribute. */
export function authsOnly(c: DockerConfig): DockerConfig {
  return { auths: c.auths, credHelpers: {}, source: c.source };
}
