/**
 * Typed registry errors. Every failure that leaves `oci/` is an OciError, so callers branch on
 * `code` and `retryable` instead of parsing messages. Messages never contain credentials: the
 * constructor redacts them, because messages quote what registries answered (error bodies,
 * challenges), and a registry may echo the request's Authorization back.
 */
import { redact } from './redact.js';

export type OciErrorCode =
  | 'INVALID_REFERENCE'
  | 'NAME_UNKNOWN' // repository does not exist
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_TOO_LARGE'
  | 'TAG_INVALID' // the registry refused to write this tag (ECR: it exists and tags are immutable)
  | 'UNSUPPORTED_SCHEMA1'
  | 'DIGEST_INVALID' // content did not hash to the expected digest (either side)
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED' // 401 after re-authenticating: wrong or missing credentials
  | 'DENIED' // 403, or a token without the needed scope
  | 'UNSUPPORTED' // 405 and friends
  | 'RANGE_INVALID'
  | 'TOO_MANY_REQUESTS'
  | 'SERVER_ERROR' // 5xx
  | 'NETWORK' // connection refused/reset, DNS, TLS
  | 'TIMEOUT'
  | 'PROTOCOL' // the registry answered something the spec does not allow
  | 'CANCELLED';

const RETRYABLE: ReadonlySet<OciErrorCode> = new Set<OciErrorCode>([
  'TOO_MANY_REQUESTS',
  'SERVER_ERROR',
  'NETWORK',
  'TIMEOUT',
  'BLOB_UPLOAD_UNKNOWN',
]);

export interface OciErrorInit {
  code: OciErrorCode;
  message: string;
  status?: number;
  registry?: string;
  repository?: string;
  retryable?: boolean;
  retryAfterMs?: number;
  cause?: unknown;
}

export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly status: number | undefined;
  readonly registry: string | undefined;
  readonly repository: string | undefined;
  readonly retryable: boolean;
  /** From a Retry-After header, when the registry sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(init: OciErrorInit) {
    super(redact(init.message), init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'OciError';
    this.code = init.code;
    this.status = init.status;
    this.registry = init.registry;
    this.repository = init.repository;
    this.retryable = init.retryable ?? RETRYABLE.has(init.code);
    this.retryAfterMs = init.retryAfterMs;
  }
}

export function isOciError(e: unknown): e is OciError {
  return e instanceof OciError;
}

/** True for "the thing asked for is not there" (repository, tag, manifest or blob). */
export function isNotFound(e: unknown): boolean {
  return isOciError(e) && (e.code === 'NAME_UNKNOWN' || e.code === 'MANIFEST_UNKNOWN' || e.code === 'BLOB_UNKNOWN');
}

/** One line, safe for logs, status and CLI output: never a stack, never a credential. */
export function describeError(e: unknown): string {
  if (isOciError(e)) return redact(e.message.split('\n')[0] ?? e.name);
  if (e instanceof Error) return redact(e.message.split('\n')[0] ?? e.name);
  return redact(String(e).split('\n')[0] ?? '');
}
