import { registerBasicCredential, registerSecret } from './redact.js';

/** A credential for one registry, as docker config.json or a dockerconfigjson Secret carries it. */
export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint. */
  | { kind: 'identityToken'; username?: string; identityToken: string }
  /** A bearer token used as is (`registrytoken`). */
  | { kind: 'registryToken'; registryToken: string };

/**
 * Resolves credentials for a canonical registry host (`docker.io`, `localhost:5000`). The registry
 * client asks before every request that needs them, so a provider may renew what it hands out.
 */
export interface CredentialProvider {
  get(registry: string): Promise<Credential | undefined>;
  /**
   * Where the credentials come from, never a secret (`gcp:<registry>:<account>`,
   * `secret:<ns>/<name>@<digest>`): the reconciler keeps one registry client per identity, so a
   * renewed token keeps the client and what it learned (mount and referrers support, open
   * connections), while a changed Secret has another identity and takes effect at once. A
   * provider without one is asked once and its credential baked into a client of its own.
   */
  readonly identity?: string;
}

export const anonymous: CredentialProvider = { get: async () => undefined, identity: 'anonymous' };

/**
 * The credentials a mirror names cannot be had: a Secret that is missing, of the wrong type or
 * unreadable, or a cloud identity that is not there. Status reason CredentialsNotFound, retried.
 */
export class CredentialsNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsNotFoundError';
  }
}

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
