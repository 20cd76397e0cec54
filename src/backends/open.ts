/**
 * The one way to a Repository from a reference: the reference's form picks the backend.
 * `oci:<path>` (skopeo's form) names an OCI image layout directory; `oci-archive:<path>` the same
 * layout as a tar file, and `oci-archive:<path>#<repository>` one repository of a bundle holding
 * several (see src/backends/archive); everything else is a registry repository `[host[:port]/]path`.
 *
 * A layout reference names a repository, so it has no tag: `oci:PATH`. skopeo's image form
 * `oci:PATH:TAG` ends the path at its first `:` (see splitLayoutImage), so a layout path never
 * holds a `:` and `oci:PATH:TAG` given where a repository is wanted is refused rather than read
 * as a directory named `PATH:TAG`.
 */
import type { Repository } from '../oci/content.js';
import type { CredentialProvider } from '../oci/credentials.js';
import { OciError } from '../oci/errors.js';
import { isValidRepository, quote } from '../oci/names.js';
import { parseRepository } from '../oci/reference.js';
import { openArchive } from './archive/index.js';
import { openLayout } from './layout/index.js';
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
  if (kind === 'oci-archive') {
    const { path, scope } = archiveOf(reference);
    return openArchive(path, scope);
  }
  if (kind === 'oci-layout') return openLayout(layoutPathOf(reference));
  const ref = parseRepository(reference);
  return options.pool.repository(ref.registry, ref.repository, credentials, options.insecure ?? false);
}

/** The directory of an `oci:PATH` repository reference. */
export function layoutPathOf(reference: string): string {
  const path = reference.slice('oci:'.length);
  if (path === '') throw new OciError({ code: 'INVALID_REFERENCE', message: `${quote(reference)}: an OCI image layout reference needs a path (oci:PATH)` });
  if (path.includes(':')) {
    throw new OciError({ code: 'INVALID_REFERENCE', message: `${quote(reference)}: a layout repository is oci:PATH without a tag, and a layout path cannot contain ':'` });
  }
  return path;
}

/**
 * skopeo's image form `oci:PATH[:TAG]` split as skopeo splits it (at the first `:` after the
 * prefix): the repository reference `oci:PATH` and the tag, if any. For front ends taking image
 * references.
 */
export function splitLayoutImage(reference: string): { repository: string; tag?: string } {
  const rest = reference.slice('oci:'.length);
  const i = rest.indexOf(':');
  if (i < 0) return { repository: `oci:${layoutPathOf(reference)}` };
  const repository = `oci:${rest.slice(0, i)}`;
  layoutPathOf(repository);
  const tag = rest.slice(i + 1);
  if (tag === '') return { repository };
  return { repository, tag };
}

/**
 * The file and repository of an `oci-archive:PATH[#REPOSITORY]` reference. Like a layout path, an
 * archive path holds no `:` (skopeo's `oci-archive:PATH:TAG` ends it there).
 */
export function archiveOf(reference: string): { path: string; scope?: string } {
  const rest = reference.slice('oci-archive:'.length);
  const hash = rest.indexOf('#');
  const path = hash < 0 ? rest : rest.slice(0, hash);
  if (path === '') throw new OciError({ code: 'INVALID_REFERENCE', message: `${quote(reference)}: an OCI archive reference needs a path (oci-archive:PATH)` });
  if (rest.includes(':')) {
    throw new OciError({ code: 'INVALID_REFERENCE', message: `${quote(reference)}: an archive repository is oci-archive:PATH without a tag, and an archive path cannot contain ':'` });
  }
  if (hash < 0) return { path };
  const scope = rest.slice(hash + 1);
  if (!isValidRepository(scope)) throw new OciError({ code: 'INVALID_REFERENCE', message: `${quote(reference)}: ${quote(scope)} after '#' is not a repository path` });
  return { path, scope };
}
