/**
 * Turns the registries' own access logs into the bench's counts, so both tools are measured by the
 * same neutral observer rather than by what each tool says it did.
 */
import type { AccessLogEntry } from '../../test/support/registry.js';

export interface LoggedRequest extends AccessLogEntry {
  /** `127.0.0.1:PORT` of the registry that logged it. */
  registry: string;
}

export interface ParsedRequest {
  repo: string;
  kind: 'blob' | 'upload' | 'manifest' | 'tags' | 'referrers' | 'other';
  /** Digest or tag after /blobs/ or /manifests/; the `digest` query of an upload PUT. */
  reference?: string;
  query: URLSearchParams;
}

const ROUTE = /^\/v2\/(.+?)\/(blobs\/uploads|blobs|manifests|tags|referrers)(?:\/([^?]*))?(?:\?(.*))?$/;

export function parseRequest(path: string): ParsedRequest {
  const m = ROUTE.exec(path);
  if (!m) return { repo: '', kind: 'other', query: new URLSearchParams(path.split('?')[1] ?? '') };
  const query = new URLSearchParams(m[4] ?? '');
  const repo = m[1]!;
  switch (m[2]) {
    case 'blobs/uploads':
      return { repo, kind: 'upload', reference: query.get('digest') ?? query.get('mount') ?? undefined, query };
    case 'blobs':
      return { repo, kind: 'blob', reference: m[3], query };
    case 'manifests':
      return { repo, kind: 'manifest', reference: m[3], query };
    case 'tags':
      return { repo, kind: 'tags', query };
    default:
      return { repo, kind: 'referrers', reference: m[3], query };
  }
}

export interface TrafficCounts {
  requests: number;
  blobUploads: number;
  blobMounts: number;
  /** Digests committed by upload (PUT …/blobs/uploads/…?digest= answered 201), one entry per upload. */
  uploadedDigests: string[];
  sourceBlobGets: number;
}

export interface SourceRepo {
  registry: string;
  repo: string;
}

export function countTraffic(entries: readonly LoggedRequest[], sources: readonly SourceRepo[]): TrafficCounts {
  const c: TrafficCounts = { requests: entries.length, blobUploads: 0, blobMounts: 0, uploadedDigests: [], sourceBlobGets: 0 };
  for (const e of entries) {
    const p = parseRequest(e.path);
    if (p.kind === 'upload' && e.method === 'PUT' && e.status === 201 && p.query.has('digest')) {
      c.blobUploads++;
      c.uploadedDigests.push(p.query.get('digest')!);
    } else if (p.kind === 'upload' && e.method === 'POST' && e.status === 201 && p.query.has('mount')) {
      c.blobMounts++;
    } else if (p.kind === 'blob' && e.method === 'GET' && e.status >= 200 && e.status < 300) {
      if (sources.some((s) => s.registry === e.registry && s.repo === p.repo)) c.sourceBlobGets++;
    }
  }
  return c;
}
