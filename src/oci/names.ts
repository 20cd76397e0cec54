/**
 * The grammar of the names a registry hands back (tags, digests, repository names) and the one way
 * request paths are built from them. A registry is untrusted input: a listed tag such as
 * `v1/../../other/app/manifests/latest`, or an index entry whose "digest" is a tag, would otherwise
 * turn into a request against another repository. Everything taken from a response is checked
 * here before it is used, and every request path is built by `apiPath`, which refuses what these
 * checks refuse and percent-encodes each segment.
 *
 * User input (specs, CLI references) goes through reference.ts, which applies the same grammar
 * with messages aimed at a person editing a spec.
 */
import { OciError, type OciErrorCode } from './errors.js';

/** OCI distribution tag grammar: at most 128 characters, never starting with `.` or `-`. */
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const TAG_MAX_LENGTH = 128;
/** One `/`-separated component of a repository name (distribution's path-component grammar). */
export const REPOSITORY_COMPONENT_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** distribution caps a whole name at 255 characters; a repository path alone cannot be longer. */
export const REPOSITORY_MAX_LENGTH = 255;
/** The only digest algorithm whose content this project verifies. */
export const SHA256_DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
/** `algorithm:encoded` as the OCI image spec writes it (any algorithm). */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const DIGEST_MAX_LENGTH = 256;
/** RFC 6838 `type/subtype` (the base media type; parameters are not part of a manifest type). */
const MEDIA_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function isValidTag(s: unknown): s is string {
  return typeof s === 'string' && s.length <= TAG_MAX_LENGTH && TAG_PATTERN.test(s);
}

/** Why `s` is not a repository path (`library/nginx`), or undefined when it is one. */
export function repositoryProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return 'repository name is not a string';
  if (s === '') return 'empty repository name';
  if (s.length > REPOSITORY_MAX_LENGTH) return `repository name longer than ${REPOSITORY_MAX_LENGTH} characters`;
  for (const c of s.split('/')) {
    if (!REPOSITORY_COMPONENT_PATTERN.test(c)) return `invalid repository path component ${quote(c)} in ${quote(s)}`;
  }
  return undefined;
}

export function isValidRepository(s: unknown): s is string {
  return repositoryProblem(s) === undefined;
}

export function isSha256Digest(s: unknown): s is string {
  return typeof s === 'string' && SHA256_DIGEST_PATTERN.test(s);
}

/** Something written as `algorithm:encoded`, whether or not it is a digest this project can verify. */
export function looksLikeDigest(s: string): boolean {
  return s.length <= DIGEST_MAX_LENGTH && DIGEST_GRAMMAR.test(s);
}

/** Why `s` is not a sha256 digest this project can verify, or undefined when it is one. */
export function digestProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return `digest is ${s === undefined ? 'missing' : `a ${s === null ? 'null' : typeof s}, not a string`}`;
  if (SHA256_DIGEST_PATTERN.test(s)) return undefined;
  if (!looksLikeDigest(s)) return `${quote(s)} is not a digest (want sha256:<64 lowercase hex digits>)`;
  const algorithm = s.slice(0, s.indexOf(':'));
  if (algorithm !== 'sha256') return `unsupported digest algorithm ${quote(algorithm)} in ${quote(s)} (only sha256 content can be verified)`;
  return `${quote(s)} is not a sha256 digest (want 64 lowercase hex digits)`;
}

export function isValidMediaType(s: unknown): s is string {
  return typeof s === 'string' && MEDIA_TYPE_PATTERN.test(s);
}

export interface RemoteContext {
  registry: string;
  repository?: string;
  /** What was being done, e.g. `HEAD manifest r.example/app:1.0`. */
  what: string;
}

/** `value` when it is a sha256 digest; else an OciError naming the registry, repository and value. */
export function requireDigest(value: unknown, ctx: RemoteContext, code: OciErrorCode = 'DIGEST_INVALID'): string {
  const problem = digestProblem(value);
  if (problem === undefined) return value as string;
  throw new OciError({ code, message: `${ctx.what}: ${problem}`, registry: ctx.registry, repository: ctx.repository });
}

/**
 * A string from a remote (or from a user) made safe to put in one line of a message: quoted, control
 * characters escaped, cut to a length that keeps the line readable.
 */
export function quote(s: string, max = 80): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(cut).replace(/[\u2028\u2029\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export type ApiKind = 'manifests' | 'blobs' | 'referrers' | 'tags/list' | 'blobs/uploads/';

/**
 * Every path segment percent-encoded (`:` kept: it is legal in a path segment and registries expect
 * `sha256:` unencoded). Valid names never need encoding; this is what keeps an unforeseen character
 * from ever changing the path's structure.
 */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':');
}

/**
 * The request path for `kind` of `repository`: `/v2/<name>/manifests/<tag|digest>`,
 * `/v2/<name>/blobs/<digest>`, `/v2/<name>/referrers/<digest>`, `/v2/<name>/tags/list`,
 * `/v2/<name>/blobs/uploads/`. The repository keeps its `/` separators and each component is
 * checked; a reference must be a tag or a sha256 digest (blobs and referrers: a digest). Throws
 * OciError INVALID_REFERENCE (a bad name or tag) or DIGEST_INVALID (a bad or unsupported digest),
 * so a name that could step outside the repository never reaches the wire.
 */
export function apiPath(repository: string, kind: ApiKind, reference?: string): string {
  const rp = repositoryProblem(repository);
  if (rp !== undefined) {
    throw new OciError({ code: 'INVALID_REFERENCE', message: `refusing a request path: ${rp}`, ...(typeof repository === 'string' ? { repository } : {}) });
  }
  const base = `/v2/${repository.split('/').map(encodeSegment).join('/')}`;
  if (kind === 'tags/list' || kind === 'blobs/uploads/') {
    if (reference !== undefined) throw new OciError({ code: 'INVALID_REFERENCE', message: `refusing a request path: ${kind} takes no reference`, repository });
    return `${base}/${kind}`;
  }
  const ref = reference ?? '';
  const digestOnly = kind !== 'manifests';
  if (digestOnly || ref.includes(':')) {
    const dp = digestProblem(ref);
    if (dp !== undefined) throw new OciError({ code: 'DIGEST_INVALID', message: `refusing a request path for ${repository}: ${dp}`, repository });
  } else if (!isValidTag(ref)) {
    throw new OciError({ code: 'INVALID_REFERENCE', message: `refusing a request path for ${repository}: ${quote(ref)} is not a valid tag`, repository });
  }
  return `${base}/${kind}/${encodeSegment(ref)}`;
}
