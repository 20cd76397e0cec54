/**
 * The one way to a Repository from a reference: the reference's form picks the backend.
 * `oci:<path>` and `oci-archive:<path>` (skopeo's forms) name OCI image layouts and archives,
 * which are recognised here and refused until that backend exists; everything else is a registry
 * repository `[host[:port]/]path`.
 */
import type { Repository } from '../oci/content.js';
import type { CredentialProvider } from '../oci/credentials.js';
import { OciError } from '../oci/errors.js';
import { quote } from '../oci/names.js';
import { parseRepository } from '../oci/reference.js';
import type { RegistryPool } from './registry/pool.js';

export type BackendKind = 'registry' | 'oci-layout' | 'oci-archive';

/**
 * `oci:` followed by digits and `/` is a registry host named `oci` with a port (`oci:5000/app`),
 * not a layout path.
 */
const LAYOUT_FORM = /^(oci-archive|oci):(?!\d+\/)/;

/** Which backend a reference names, from its form alone. */
export function backendOf(reference: string): BackendKind {
  const m = LAYOUT_FORM.exec(reference);
  if (!m) return 'registry';
  return m[1] === 'oci' ? 'oci-layout' : 'oci-archive';
}

export interface OpenOptions {
  /** Registry references: the clients they are served by. */
  pool: RegistryPool;
  /** Registry references: plain HTTP (or HTTPS without verification) allowed. */
  insecure?: boolean;
}

/**
 * The repository `reference` names. A registry reference without credentials for its host reads
 * anonymously; a provider that fails when asked throws CredentialLookupError (see pool.ts).
 */
export async function openRepository(reference: string, credentials: CredentialProvider, options: OpenOptions): Promise<Repository> {
  const kind = backendOf(reference);
  if (kind !== 'registry') {
    const what = kind === 'oci-layout' ? 'OCI image layouts' : 'OCI image archives';
    throw new OciError({ code: 'UNSUPPORTED', message: `${quote(reference)}: ${what} (${kind === 'oci-layout' ? 'oci:' : 'oci-archive:'}) are not supported yet; use a registry repository` });
  }
  const ref = parseRepository(reference);
  return options.pool.repository(ref.registry, ref.repository, credentials, options.insecure ?? false);
}
