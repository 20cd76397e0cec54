/**
 * Registry credentials for the controller: `credentials.secretName` names a
 * kubernetes.io/dockerconfigjson Secret in the mirror's own namespace, never another one. Secrets
 * come from an informer cache filtered to that type; a miss is confirmed with one GET so the error
 * can say whether the Secret is missing or of the wrong type. An index secret → mirror keys lets a
 * rotated Secret re-queue the mirrors that use it.
 */
import type { KubeTransport } from './kube-config.js';
import { KubeApi, KubeHttpError } from './kube-http.js';
import { DOCKERCONFIGJSON, dockerConfigSecretCredentials } from '../auth/docker-config-secret.js';
import { anonymous, CredentialsNotFoundError, type CredentialProvider } from '../oci/credentials.js';
import type { CredentialsRef, ImageMirror, SecretRef } from '../mirror/types.js';

export { DOCKERCONFIGJSON };

/** A Secret as it arrives on the wire (data values base64). */
export interface SecretObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  type?: string;
  data?: Record<string, string>;
}

export interface SecretSource {
  /** The cached Secret, from a cache filtered to type kubernetes.io/dockerconfigjson. */
  get(namespace: string, name: string): SecretObject | undefined;
}

/** Tells a missing Secret from one of another type, on a cache miss. */
export type SecretLookup = (namespace: string, name: string) => Promise<SecretObject | undefined>;

/** A SecretLookup that GETs the Secret from the API server (404 → undefined). */
export function apiSecretLookup(kc: KubeTransport): SecretLookup {
  const core = new KubeApi(kc);
  return async (namespace, name) => {
    try {
      const s = await readSecret(core, namespace, name);
      return { metadata: { name, namespace, resourceVersion: s.metadata?.resourceVersion }, type: s.type };
    } catch (err) {
      if (err instanceof KubeHttpError && err.code === 404) return undefined;
      throw err;
    }
  };
}

/**
 * ReconcileContext.secretValue for the controller: one data key of a Secret of any type (the keys
 * and trusted roots `spec.verify` names are Opaque Secrets, outside the dockerconfigjson cache),
 * read with one GET per call. Throws CredentialsNotFoundError naming secret and key, never a value.
 */
export function apiSecretValue(kc: KubeTransport): (namespace: string, secretName: string, key: string) => Promise<string> {
  const core = new KubeApi(kc);
  return async (namespace, name, key) => {
    const what = `secret ${namespace}/${name}`;
    let data: Record<string, string> | undefined;
    try {
      data = (await readSecret(core, namespace, name)).data;
    } catch (err) {
      if (err instanceof KubeHttpError && err.code === 404) throw new CredentialsNotFoundError(`${what} not found`);
      if (err instanceof KubeHttpError && err.code === 403) throw new CredentialsNotFoundError(`${what} cannot be read: forbidden`);
      throw err;
    }
    const b64 = data?.[key];
    if (b64 === undefined) throw new CredentialsNotFoundError(`${what} has no key ${key}`);
    return Buffer.from(b64, 'base64').toString('utf8');
  };
}

async function readSecret(api: KubeApi, namespace: string, name: string): Promise<SecretObject> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
  return JSON.parse((await api.request('GET', path, undefined, '', `get secret ${namespace}/${name}`)).body) as SecretObject;
}

/** Secret names a mirror references (source and every target). */
export function referencedSecrets(m: Pick<ImageMirror, 'spec'>): string[] {
  const names = new Set<string>();
  const add = (ref: CredentialsRef | undefined): void => {
    if (ref && 'secretName' in ref) names.add(ref.secretName);
  };
  add(m.spec?.source?.credentials);
  for (const t of m.spec?.targets ?? []) add(t.credentials);
  return [...names];
}

export class SecretCredentials {
  /** `ns/secret` → mirror keys. */
  private readonly bySecret = new Map<string, Set<string>>();
  /** mirror key → `ns/secret` keys it referenced last. */
  private readonly byMirror = new Map<string, string[]>();
  /** `ns/secret` → the provider made from the cached Secret at resourceVersion `rv`. */
  private readonly parsed = new Map<string, { rv: string; provider: CredentialProvider }>();

  constructor(
    private readonly cache: SecretSource,
    private readonly lookup?: SecretLookup,
  ) {}

  /**
   * ReconcileContext.credentials: the provider for `ref` in `namespace`. No ref → anonymous.
   * Throws CredentialsNotFoundError when the Secret is missing, of the wrong type, or unusable.
   */
  async credentials(namespace: string, ref: SecretRef | undefined): Promise<CredentialProvider> {
    if (!ref?.secretName) return anonymous;
    const name = ref.secretName;
    const what = `secret ${namespace}/${name}`;
    const s = this.cache.get(namespace, name);
    if (!s) {
      const found = this.lookup ? await this.lookup(namespace, name) : undefined;
      if (found && found.type !== DOCKERCONFIGJSON)
        throw new CredentialsNotFoundError(`${what} is of type ${found.type || 'Opaque'}, want ${DOCKERCONFIGJSON}`);
      throw new CredentialsNotFoundError(`${what} not found`);
    }
    const key = `${namespace}/${name}`;
    const rv = s.metadata?.resourceVersion ?? '';
    let hit = this.parsed.get(key);
    if (!hit || hit.rv !== rv || rv === '') {
      const b64 = s.data?.['.dockerconfigjson'];
      const provider = dockerConfigSecretCredentials({
        namespace,
        name,
        type: s.type,
        dockerConfigJson: b64 ? Buffer.from(b64, 'base64').toString('utf8') : undefined,
      });
      hit = { rv, provider };
      this.parsed.set(key, hit);
    }
    return hit.provider;
  }

  /** Record which Secrets a mirror references (call on add/update). */
  track(mirror: ImageMirror, key: string): void {
    this.untrack(key);
    const ns = mirror.metadata.namespace ?? 'default';
    const secrets = referencedSecrets(mirror).map((n) => `${ns}/${n}`);
    if (secrets.length === 0) return;
    this.byMirror.set(key, secrets);
    for (const s of secrets) {
      let set = this.bySecret.get(s);
      if (!set) this.bySecret.set(s, (set = new Set()));
      set.add(key);
    }
  }

  untrack(key: string): void {
    for (const s of this.byMirror.get(key) ?? []) {
      const set = this.bySecret.get(s);
      set?.delete(key);
      if (set?.size === 0) this.bySecret.delete(s);
    }
    this.byMirror.delete(key);
  }

  /** Mirror keys referencing Secret namespace/name. */
  mirrorsFor(namespace: string, name: string): string[] {
    return [...(this.bySecret.get(`${namespace}/${name}`) ?? [])];
  }

  /** Forget a parsed Secret (on change or delete). */
  invalidate(namespace: string, name: string): void {
    this.parsed.delete(`${namespace}/${name}`);
  }
}
