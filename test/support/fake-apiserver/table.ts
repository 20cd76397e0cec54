import { jsonPathFirst } from './jsonpath.js';
import type { KObject, ResourceType } from './types.js';

/** The caller asked for a meta.k8s.io/v1 Table (what `kubectl get` does). */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const p = part.split(';').map((s) => s.trim());
    return p.includes('as=Table') && (p.includes('v=v1') || p.includes('v=v1beta1')) && p.includes('g=meta.k8s.io');
  });
}

function cell(o: KObject, type: string, path: string): unknown {
  let v: unknown;
  try {
    v = jsonPathFirst(o, path);
  } catch {
    return null;
  }
  if (v === undefined || v === null) return null;
  if (type === 'string') return typeof v === 'string' ? v : JSON.stringify(v);
  if (type === 'integer' || type === 'number') return typeof v === 'number' ? v : Number(v);
  if (type === 'boolean') return typeof v === 'boolean' ? v : v === 'true';
  if (type === 'date') {
    if (typeof v !== 'string') return null;
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? '<invalid>' : humanDuration(Date.now() - ms);
  }
  return v;
}

/** apimachinery's duration.HumanDuration: the server renders `date` printer columns as ages. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.trunc(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${days / 365}y` : `${Math.trunc(days / 365)}y${days % 365}d`;
  return `${Math.trunc(days / 365)}y`;
}

/**
 * A Table as the apiserver renders it: Name, then the printer columns (for a custom resource,
 * the CRD's additionalPrinterColumns); rows carry PartialObjectMetadata unless includeObject says otherwise.
 */
export function toTable(t: ResourceType, items: KObject[], resourceVersion: string, includeObject: string | null, extraMeta: Record<string, unknown> = {}): Record<string, unknown> {
  const columnDefinitions = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
    ...t.printerColumns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })),
  ];
  const rows = items.map((o) => {
    const cells = [o.metadata?.name ?? '', ...t.printerColumns.map((c) => cell(o, c.type, c.jsonPath))];
    let object: unknown;
    if (includeObject === 'Object') object = o;
    else if (includeObject === 'None') object = undefined;
    else object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    return object === undefined ? { cells } : { cells, object };
  });
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion, ...extraMeta }, columnDefinitions, rows };
}
