/**
 * Image references: the distribution grammar (`[host[:port]/]path[:tag][@digest]`) with Docker Hub
 * defaults, and one canonical string form used everywhere — logs, metric labels, cache keys,
 * credential lookups — so one registry is never counted as two.
 *
 * Canonical form decisions:
 * - The registry host is lowercased (DNS is case-insensitive); IPv6 literals keep their brackets and
 *   are compressed (`[0:0:0:0:0:0:0:1]` → `[::1]`).
 * - `docker.io`, `index.docker.io` and `registry-1.docker.io` (any case, with or without `:443`) are
 *   all `docker.io`; one-component Hub names get `library/`.
 * - An explicit `:443` is dropped from non-loopback hosts: every client talks HTTPS to them, so
 *   `host:443` and `host` are the same registry. It is kept on a loopback host (which the client may
 *   reach over plain HTTP, where 443 is not the default) and when dropping it would leave a
 *   single-label host that would then read as a Docker Hub path (`myhost:443/app`).
 *   Other ports are always kept (`:80` too: dropping it would send the client to 443).
 * - A reference with both a tag and a digest keeps both; the digest is what gets pulled.
 * - A first component with uppercase letters is, in distribution's grammar, a registry host
 *   (`Foo/bar` → host `Foo`). Lowercased it would read as a Docker Hub path, so such a
 *   reference is refused instead of silently pointing somewhere else; dotted hosts
 *   (`Registry.Example.com/app`) are fine and lowercased.
 * - The 255-character limit applies to the canonical `registry/repository`, so anything this
 *   module formats parses again.
 */
import { isIP, isIPv6 } from 'node:net';
import { OciError } from './errors.js';
import { REPOSITORY_COMPONENT_PATTERN, TAG_PATTERN, quote } from './names.js';

export interface ImageReference {
  /** Canonical registry host[:port], e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  registry: string;
  /** Path inside the registry, e.g. `library/nginx`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
export const NAME_TOTAL_LENGTH_MAX = 255;

const TAG = TAG_PATTERN;
const PATH_COMPONENT = REPOSITORY_COMPONENT_PATTERN;
const DOMAIN_COMPONENT = /^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;
const PORT = /^[0-9]{1,5}$/;
/** Digest algorithms this project can verify, with the exact encoding each one requires. */
const DIGEST_ENCODINGS: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export function isValidTag(t: string): boolean {
  return TAG.test(t);
}

/** `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`. */
export function isValidDigest(d: string): boolean {
  return digestProblem(d) === undefined;
}

function digestProblem(d: string): string | undefined {
  const i = d.indexOf(':');
  if (i <= 0) return 'a digest is "<algorithm>:<hex>", e.g. "sha256:" followed by 64 hex digits';
  const algo = d.slice(0, i);
  const enc = d.slice(i + 1);
  const re = DIGEST_ENCODINGS[algo];
  if (!re) return `unsupported digest algorithm ${quote(algo)} (use sha256 or sha512)`;
  if (!re.test(enc)) {
    const want = algo === 'sha256' ? 64 : 128;
    return `${algo} digest must be ${want} lowercase hex digits, got ${enc.length} character${enc.length === 1 ? '' : 's'}${/[A-F]/.test(enc) ? ' with uppercase' : ''}`;
  }
  return undefined;
}

/** Splits `host[:port]`; the host keeps IPv6 brackets. */
function splitHostPort(s: string): { host: string; port?: string } {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return { host: s };
    const rest = s.slice(end + 1);
    return rest.startsWith(':') ? { host: s.slice(0, end + 1), port: rest.slice(1) } : { host: s.slice(0, end + 1) + rest };
  }
  const i = s.lastIndexOf(':');
  return i < 0 ? { host: s } : { host: s.slice(0, i), port: s.slice(i + 1) };
}

/** Why `s` is not a valid `host[:port]`, or undefined when it is. */
function domainProblem(s: string): string | undefined {
  const { host, port } = splitHostPort(s);
  if (port !== undefined) {
    if (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535) return `invalid port ${quote(port)} in registry ${quote(s)}`;
  }
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || !isIPv6(host.slice(1, -1))) return `invalid IPv6 address ${quote(host)} in registry ${quote(s)}`;
    return undefined;
  }
  if (host === '') return `empty host in registry ${quote(s)}`;
  if (isIPv6(host)) return `IPv6 address ${quote(host)} must be in brackets, e.g. "[${host}]:5000"`;
  for (const c of host.split('.')) {
    if (!DOMAIN_COMPONENT.test(c)) return `invalid registry host ${quote(host)}`;
  }
  return undefined;
}

function compressIPv6(bracketed: string): string {
  try {
    return new URL(`http://${bracketed}/`).hostname;
  } catch {
    return bracketed;
  }
}

function hostIsLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (host.startsWith('[')) {
    const a = compressIPv6(host);
    return a === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(a);
  }
  return isIP(host) === 4 && host.startsWith('127.');
}

/** True when a bare first path component would be read as a registry host. */
function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[');
}

/**
 * Canonical form of a registry host[:port]: lowercase, Docker Hub aliases folded into `docker.io`,
 * IPv6 compressed, `:443` dropped where that keeps it unambiguous (see the module comment).
 * Lenient: it normalizes whatever it is given and never throws.
 */
export function canonicalRegistry(host: string): string {
  const lower = host.trim().toLowerCase();
  let { host: h, port } = splitHostPort(lower);
  if (h.startsWith('[') && h.endsWith(']')) h = compressIPv6(h);
  if (DOCKER_HUB_ALIASES.has(h) && (port === undefined || port === '443')) return DOCKER_HUB;
  if (port === '443' && !hostIsLoopback(h) && looksLikeRegistry(h)) port = undefined;
  return port === undefined ? h : `${h}:${port}`;
}

/** The host to send HTTP requests to: Docker Hub's API lives on `registry-1.docker.io`. */
export function registryApiHost(registry: string): string {
  const c = canonicalRegistry(registry);
  return c === DOCKER_HUB ? DOCKER_HUB_API : c;
}

/** `localhost`, `127.0.0.0/8` and `[::1]`, with any port: hosts a client may reach over plain HTTP. */
export function isLoopbackRegistry(registry: string): boolean {
  return hostIsLoopback(splitHostPort(registry.trim().toLowerCase()).host);
}

function invalid(input: string, why: string): OciError {
  // The input may hold anything (a newline, control characters): quoted, it stays one line.
  return new OciError({ code: 'INVALID_REFERENCE', message: `invalid image reference ${quote(input, 300)}: ${why}` });
}

function pathProblem(path: string): string | undefined {
  if (path === '') return 'empty repository path';
  for (const c of path.split('/')) {
    if (c === '') return `empty path component in ${quote(path)} (check for "//" or a leading/trailing "/")`;
    if (PATH_COMPONENT.test(c)) continue;
    if (PATH_COMPONENT.test(c.toLowerCase())) return `repository name must be lowercase (${quote(c)})`;
    const bad = /[^a-z0-9._-]/.exec(c.toLowerCase());
    if (bad) return `invalid character ${quote(bad[0])} in repository path component ${quote(c)}`;
    return `repository path component ${quote(c)} must start and end with a letter or digit and separate words with ".", "_", "__" or "-"`;
  }
  return undefined;
}

/**
 * Parses `[host[:port]/]path[:tag][@digest]` into its canonical parts. Throws OciError
 * INVALID_REFERENCE with a message saying what is wrong.
 */
export function parseReference(s: string): ImageReference {
  const input = s;
  if (s === '') throw invalid(input, 'empty reference');
  if (/\s/.test(s)) throw invalid(input, 'contains whitespace');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest === '') throw invalid(input, 'empty digest after "@"');
    if (digest.includes('@')) throw invalid(input, 'more than one "@"');
    const p = digestProblem(digest);
    if (p) throw invalid(input, p);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && !rest.slice(colon).includes(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') throw invalid(input, 'empty tag after ":"');
    if (!isValidTag(tag)) {
      throw invalid(
        input,
        tag.length > 128
          ? `tag is ${tag.length} characters, at most 128 allowed`
          : `invalid tag ${quote(tag)} (letters, digits, "_", "." and "-", not starting with "." or "-")`,
      );
    }
  }
  if (rest === '') throw invalid(input, 'empty repository name');

  let registry: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash >= 0 && looksLikeRegistry(first)) {
    const p = domainProblem(first);
    if (p) throw invalid(input, p);
    registry = canonicalRegistry(first);
    path = rest.slice(slash + 1);
  } else if (slash >= 0 && first !== first.toLowerCase()) {
    throw invalid(
      input,
      `${quote(first)} has uppercase letters; repository names must be lowercase (a registry host needs a "." or a port, e.g. "${first.toLowerCase()}:5000/...")`,
    );
  } else {
    registry = DOCKER_HUB;
    path = rest;
  }
  const pp = pathProblem(path);
  if (pp) throw invalid(input, pp);
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  const name = `${registry}/${path}`;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `repository name "${name.slice(0, 40)}…" is ${name.length} characters, at most ${NAME_TOTAL_LENGTH_MAX} allowed`);
  }
  const ref: ImageReference = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Parses `[host[:port]/]path` and refuses a tag or digest. */
export function parseRepository(s: string): { registry: string; repository: string } {
  const r = parseReference(s);
  if (r.digest !== undefined) throw invalid(s, `a repository must not include a digest ("@${r.digest}")`);
  if (r.tag !== undefined) {
    const hint = s.includes('/') ? '' : ` (if ${quote(s)} is a registry, add a repository path: "${s}/name")`;
    throw invalid(s, `a repository must not include a tag (":${r.tag}")${hint}`);
  }
  return { registry: r.registry, repository: r.repository };
}

/** Canonical `registry/repository[:tag][@digest]`. */
export function formatReference(r: ImageReference): string {
  let s = `${canonicalRegistry(r.registry)}/${r.repository}`;
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** Canonical `registry/repository`, the key for a repository in caches and logs. */
export function formatRepository(r: { registry: string; repository: string }): string {
  return `${canonicalRegistry(r.registry)}/${r.repository}`;
}
