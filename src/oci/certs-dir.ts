/**
 * Per-registry TLS material from a certs directory, by the convention Docker and the containers
 * tools (podman, skopeo, buildah) share: `<dir>/<host[:port]>/` holds CA certificates (`*.crt`)
 * and client certificates (`*.cert`, each with the `*.key` of the same name). Reading the same
 * directories they do lets one mounted Secret serve every tool on a node.
 */
import { X509Certificate } from 'node:crypto';
import { createSecureContext, rootCertificates } from 'node:tls';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OciError } from './errors.js';

/** Where the containers tools look, in their order, when no directory is given. */
export const DEFAULT_CERTS_DIRS: readonly string[] = ['/etc/containers/certs.d', '/etc/docker/certs.d'];

export interface HostTls {
  /** The directory the material came from, e.g. `/etc/containers/certs.d/registry.example:5000`. */
  dir: string;
  /**
   * What to trust for this host: Node's root store, the `NODE_EXTRA_CA_CERTS` file and the
   * directory's `*.crt`, one PEM certificate per entry. Absent when the directory holds no CA, so
   * the default trust applies unchanged. (A TLS `ca` option replaces the defaults rather than
   * adding to them, hence the full list.)
   */
  ca?: string[];
  /** The first client certificate pair (by file name): PEM certificate chain and key. */
  cert?: string;
  key?: string;
  /** Files the material was read from, for messages. */
  files: string[];
}

export function defaultCertsDirs(): string[] {
  return [...DEFAULT_CERTS_DIRS];
}

/**
 * Directory names that may hold a host's material, in lookup order: the host exactly as given
 * (with its port, IPv6 in brackets), then without the port, as Kubernetes volumes cannot
 * always carry a `:` in a path. Names that could leave the certs directory yield nothing.
 */
export function certsDirNames(host: string): string[] {
  if (host === '' || host === '.' || host === '..' || /[/\\\0]/.test(host)) return [];
  const m = /^(\[[^\]]*\]|[^:[\]]*):\d+$/.exec(host);
  const bare = m?.[1];
  return bare && bare !== '.' && bare !== '..' ? [host, bare] : [host];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks in a bundle (anything between them is ignored, as OpenSSL does). */
export function pemCertificates(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

function certsError(host: string, message: string, cause?: unknown): OciError {
  // A broken certs directory is configuration: retrying will not mend it.
  return new OciError({ code: 'NETWORK', message: `TLS files for ${host}: ${message}`, registry: host, retryable: false, cause });
}

function oneLineReason(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return err.code ?? (err.message ?? String(e)).split('\n')[0]!;
}

async function readText(host: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw certsError(host, `cannot read ${path}: ${oneLineReason(e)}`, e);
  }
}

async function isDirectory(host: string, path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw certsError(host, `cannot read certs directory ${path}: ${oneLineReason(e)}`, e);
  }
}

/**
 * The system trust Node starts with: its bundled roots plus the file named by
 * `NODE_EXTRA_CA_CERTS` (which Node reads at start-up and ignores with a warning when unreadable;
 * the same here).
 */
export async function defaultTrust(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const out = [...rootCertificates];
  const extra = env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      out.push(...pemCertificates(await readFile(extra, 'utf8')));
    } catch {
      // Node already warned about this file when it started.
    }
  }
  return out;
}

/** Reads one host directory; every problem is one line naming the file. */
async function readHostDir(host: string, dir: string, env: NodeJS.ProcessEnv): Promise<HostTls> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw certsError(host, `cannot read certs directory ${dir}: ${oneLineReason(e)}`, e);
  }
  const present = new Set(names);
  const files: string[] = [];
  const cas: string[] = [];
  let pair: { cert: string; key: string } | undefined;
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt')) {
      const pems = pemCertificates(await readText(host, path));
      if (pems.length === 0) throw certsError(host, `${path}: no PEM certificate in it (CA files are *.crt; client certificates are *.cert)`);
      for (const pem of pems) {
        try {
          new X509Certificate(pem);
        } catch (e) {
          throw certsError(host, `${path}: not a valid certificate (${oneLineReason(e)})`, e);
        }
      }
      cas.push(...pems);
      files.push(path);
    } else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!present.has(keyName)) throw certsError(host, `${path}: client certificate without its key ${keyName} (CA certificates use the .crt extension)`);
      if (pair) continue;
      const keyPath = join(dir, keyName);
      const cert = await readText(host, path);
      const key = await readText(host, keyPath);
      try {
        createSecureContext({ cert, key });
      } catch (e) {
        throw certsError(host, `${path} with ${keyName}: unusable client certificate (${oneLineReason(e)})`, e);
      }
      pair = { cert, key };
      files.push(path, keyPath);
    } else if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`;
      if (!present.has(certName)) throw certsError(host, `${path}: key without its client certificate ${certName}`);
    }
  }
  const tls: HostTls = { dir, files };
  if (cas.length > 0) tls.ca = [...(await defaultTrust(env)), ...cas];
  if (pair) {
    tls.cert = pair.cert;
    tls.key = pair.key;
  }
  return tls;
}

/**
 * The TLS material for `host` (`registry.example`, `registry.example:5000`, `[::1]:5000`), or
 * undefined when no directory has any. The first of `dirs` holding a directory for the host wins;
 * within it `host:port` is tried before the bare host.
 */
export async function loadHostTls(host: string, dirs: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<HostTls | undefined> {
  const names = certsDirNames(host);
  for (const dir of dirs) {
    for (const name of names) {
      const hostDir = join(dir, name);
      if (await isDirectory(host, hostDir)) return readHostDir(host, hostDir, env);
    }
  }
  return undefined;
}
