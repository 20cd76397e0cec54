import type { StatusCause } from './types.js';

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
}

/** A meta/v1 Status failure, thrown inside handlers and written as the response body. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly reason: string = REASONS[code] ?? 'Unknown',
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return statusBody(this.code, this.message, this.reason, this.details);
  }
}

export function statusBody(code: number, message: string, reason?: string, details?: StatusDetails): Record<string, unknown> {
  const body: Record<string, unknown> = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: reason ?? REASONS[code] ?? 'Unknown',
    code,
  };
  if (details) body.details = details;
  return body;
}

export function groupResource(group: string, plural: string): string {
  return group ? `${plural}.${group}` : plural;
}

export function notFound(group: string, plural: string, name: string): ApiError {
  return new ApiError(404, `${groupResource(group, plural)} "${name}" not found`, 'NotFound', { name, group, kind: plural });
}

export function alreadyExists(group: string, plural: string, name: string): ApiError {
  return new ApiError(409, `${groupResource(group, plural)} "${name}" already exists`, 'AlreadyExists', { name, group, kind: plural });
}

export function conflict(group: string, plural: string, name: string): ApiError {
  return new ApiError(
    409,
    `Operation cannot be fulfilled on ${groupResource(group, plural)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    'Conflict',
    { name, group, kind: plural },
  );
}

export function invalid(group: string, kind: string, name: string, causes: StatusCause[]): ApiError {
  const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const msg = `${kind}${group ? '.' + group : ''} "${name}" is invalid: ${list.length > 1 ? '[' + list.join(', ') + ']' : list[0] ?? ''}`;
  return new ApiError(422, msg, 'Invalid', { name, group, kind, causes: causes.map((c) => ({ reason: c.reason ?? 'FieldValueInvalid', message: c.message, field: c.field })) });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, message, 'BadRequest');
}
