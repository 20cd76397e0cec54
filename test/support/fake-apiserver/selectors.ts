import { badRequest } from './errors.js';
import type { KObject } from './types.js';

type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export type Matcher = (obj: KObject) => boolean;

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

function parseLabelRequirement(p: string): Requirement {
  let m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(p);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '');
    return { key: checkKey(m[1]!), op: m[2] as 'in' | 'notin', values };
  }
  m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p);
  if (m) return { key: checkKey(m[1]!), op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]! };
  m = /^!\s*(\S+)$/.exec(p);
  if (m) return { key: checkKey(m[1]!), op: 'notexists' };
  if (KEY.test(p)) return { key: p, op: 'exists' };
  throw badRequest(`unable to parse requirement: ${p}`);
}

function checkKey(k: string): string {
  if (!KEY.test(k)) throw badRequest(`unable to parse requirement: invalid label key "${k}"`);
  return k;
}

function test(req: Requirement, get: (k: string) => string | undefined): boolean {
  const v = get(req.key);
  switch (req.op) {
    case 'eq':
      return v === req.value;
    case 'neq':
      return v !== req.value;
    case 'in':
      return v !== undefined && req.values.includes(v);
    case 'notin':
      return v === undefined || !req.values.includes(v);
    case 'exists':
      return v !== undefined;
    case 'notexists':
      return v === undefined;
  }
}

/** Kubernetes label selector: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`. */
export function parseLabelSelector(s: string | null | undefined): Matcher {
  if (!s) return () => true;
  const reqs = splitTopLevel(s).map(parseLabelRequirement);
  return (obj) => {
    const labels = obj.metadata?.labels ?? {};
    return reqs.every((r) => test(r, (k) => labels[k]));
  };
}

function pathValue(obj: KObject, path: string): string | undefined {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : String(cur);
}

/**
 * Field selector over the fields a real server supports: metadata.name and metadata.namespace
 * everywhere, plus the per-kind extras (`extra`); anything else is a 400 like a real server.
 */
export function parseFieldSelector(s: string | null | undefined, extra: string[] = []): Matcher {
  if (!s) return () => true;
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...extra]);
  const reqs = splitTopLevel(s).map((p) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(p);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${p}'`);
    if (!allowed.has(m[1]!)) throw badRequest(`field label not supported: ${m[1]}`);
    return { key: m[1]!, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]! } as Requirement;
  });
  return (obj) => reqs.every((r) => test(r, (k) => pathValue(obj, k)));
}
