// Kubeconfig for a plain-HTTP loopback API server, for client-node and for kubectl.
import { writeFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  server: string;
  namespace?: string;
  token?: string;
  name?: string;
}

/**
 * A client-node KubeConfig for `server`. client-node 1.4 refuses an http:// cluster unless
 * skipTLSVerify is set ("HTTP protocol is not allowed when skipTLSVerify is not set").
 */
export function kubeConfigFor(o: KubeconfigOptions): KubeConfig {
  const name = o.name ?? 'fake';
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name, server: o.server, skipTLSVerify: true }, { name, ...(o.token ? { token: o.token } : {}) });
  return kc;
}

/** The YAML kubectl reads with --kubeconfig. */
export function kubeconfigYaml(o: KubeconfigOptions): string {
  const name = o.name ?? 'fake';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: o.server } }],
    users: [{ name, user: o.token ? { token: o.token } : {} }],
    contexts: [{ name, context: { cluster: name, user: name, ...(o.namespace ? { namespace: o.namespace } : {}) } }],
    'current-context': name,
    preferences: {},
  });
}

export async function writeKubeconfigFile(path: string, o: KubeconfigOptions): Promise<void> {
  await writeFile(path, kubeconfigYaml(o), { mode: 0o600 });
}
