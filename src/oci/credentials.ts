/** A credential for one registry, as docker config.json or a dockerconfigjson Secret carries it. */
export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint. */
  | { kind: 'identityToken'; username?: string; identityToken: string }
  /** A bearer token used as is (`registrytoken`). */
  | { kind: 'registryToken'; registryToken: string };

/** Resolves credentials for a canonical registry host (`docker.io`, `localhost:5000`). */
export interface CredentialProvider {
  get(registry: string): Promise<Credential | undefined>;
}

export const anonymous: CredentialProvider = { get: async () => undefined };

/** A stable, non-secret label for a credential, for cache keys (never logged with the secret). */
export function credentialAccount(c: Credential | undefined): string {
  if (!c) return 'anonymous';
  switch (c.kind) {
    case 'basic':
      return `basic:${c.username}`;
    case 'identityToken':
      return `identity:${c.username ?? ''}`;
    case 'registryToken':
      return 'registrytoken';
  }
}
