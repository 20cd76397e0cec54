import { registerBasicCredential, registerSecret } from './redact.js';

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

/**
 * Registers a credential's secret values for redaction. Called wherever credentials are loaded,
 * so that an error or log line quoting one (a registry echoing our request) cannot leak it.
 */
export function rememberCredential(c: Credential | undefined): void {
  if (!c) return;
  switch (c.kind) {
    case 'basic':
      registerBasicCredential(c.username, c.password);
      return;
    case 'identityToken':
      registerSecret(c.identityToken);
      // Sent as Basic `<user>:<token>` where a token endpoint has no OAuth2.
      registerBasicCredential(c.username ?? '<token>', c.identityToken);
      return;
    case 'registryToken':
      registerSecret(c.registryToken);
      return;
  }
}
