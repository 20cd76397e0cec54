/**
 * Reads a user-written value against a declaration node, the way the API server would judge it
 * with the CRD (types, bounds, patterns, enums, required fields, unknown fields refused under
 * strict field validation, nulls dropped first) plus the declaration's JS checks, and reports in
 * the declaration's words. Returns what it read, with declared defaults filled in and refused
 * fields left out (undefined when the value itself is refused); whether the value is valid is
 * whether anything was reported.
 *
 * Cost: a string's length is checked before its pattern or any rule sees it, and a list over its
 * bound is not walked, so reading any input takes time linear in its size.
 *
 * Rules that need more than the declaration (compiling RE2 or semver, parsing a repository) come
 * in as Extras from the caller, keyed by schema path (`spec.targets[].repository`): a value rule
 * runs once the declared checks of that value passed; extra object checks run after the
 * declaration's at the same position.
 */
import { describeValue as describe, get, isObj, quoteValue as q, tooLong, type Obj } from './fields.js';
import type { Check, Node, ObjectNode, Reporter, StringNode } from './schema.js';

export interface Extras {
  values?: Readonly<Record<string, (value: unknown, path: string, r: Reporter) => unknown>>;
  checks?: Readonly<Record<string, readonly Check[]>>;
}

export interface ReadContext {
  r: Reporter;
  /** The whole document, for checks that look across it. */
  root: Obj;
  extras?: Extras;
}

const compiled = new Map<string, RegExp>();
function re(pattern: string): RegExp {
  let r = compiled.get(pattern);
  if (!r) compiled.set(pattern, (r = new RegExp(pattern)));
  return r;
}

/** Reports `path.<key>: unknown field` for every key of `o` not in `known`. */
export function unknownFields(r: Reporter, path: string, o: Obj, known: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (known.includes(k)) continue;
    const name = /^[A-Za-z0-9_-]{1,64}$/.test(k) ? k : q(k);
    r.err(`${path}.${name}`, `unknown field (known: ${known.join(', ')})`);
  }
}

export function readValue(node: Node, v: unknown, path: string, schemaPath: string, ctx: ReadContext, required = false): unknown {
  if (v === undefined) {
    if (required) ctx.r.err(path, (node.kind === 'array' && node.messages?.required) || 'required');
    return undefined;
  }
  let out: unknown;
  switch (node.kind) {
    case 'string':
      out = readString(node, v, path, -1, ctx.r);
      break;
    case 'boolean':
      if (typeof v === 'boolean') out = v;
      else ctx.r.err(path, `must be true or false, got ${describe(v)}`);
      break;
    case 'integer':
      if (typeof v === 'number' && Number.isInteger(v) && (node.minimum === undefined || v >= node.minimum)) out = v;
      else ctx.r.err(path, `must be a whole number${node.minimum !== undefined ? ` of at least ${node.minimum}` : ''}, got ${describe(v)}`);
      break;
    case 'array':
      out = readList(node, v, path, schemaPath, ctx);
      break;
    case 'object':
      out = readObject(node, v, path, schemaPath, ctx);
      break;
    case 'map':
      if (isObj(v)) out = { ...v };
      else ctx.r.err(path, `must be a mapping, got ${describe(v)}`);
      break;
  }
  const extra = ctx.extras?.values?.[schemaPath];
  return out !== undefined && extra ? extra(out, path, ctx.r) : out;
}

/** The path of a list entry is built only for an error (a list of 10⁴ valid tags builds none). */
function at(path: string, index: number): string {
  return index < 0 ? path : `${path}[${index}]`;
}

/** A string at `path`, or at entry `index` of the list at `path` (index ≥ 0). */
function readString(node: StringNode, v: unknown, path: string, index: number, r: Reporter): string | undefined {
  if (node.enum) {
    if (typeof v === 'string' && node.enum.includes(v)) return v;
    r.err(at(path, index), `must be one of ${node.enum.join(', ')}, got ${typeof v === 'string' ? q(v) : describe(v)}`);
    return undefined;
  }
  if (typeof v !== 'string') {
    r.err(at(path, index), `must be a string, got ${describe(v)}${node.notStringHint ?? ''}`);
    return undefined;
  }
  const max = node.maxLength ?? Infinity;
  if (node.lengthIsPattern) {
    // One message says both (a tag is at most 128 of these characters).
    if (tooLong(v, max) !== undefined || (node.pattern !== undefined && !re(node.pattern).test(v))) {
      r.err(at(path, index), node.invalid ? node.invalid(v) : `invalid value ${q(v)}`);
      return undefined;
    }
    return v;
  }
  if (v === '') {
    r.err(at(path, index), 'must not be empty');
    return undefined;
  }
  const long = tooLong(v, max);
  if (long !== undefined) {
    r.err(at(path, index), `invalid ${node.what ?? 'value'}: ${long}`);
    return undefined;
  }
  if (node.invalid && ((node.pattern !== undefined && !re(node.pattern).test(v)) || (node.accept && !node.accept(v)))) {
    r.err(at(path, index), node.invalid(v));
    return undefined;
  }
  return v;
}

function readList(node: Extract<Node, { kind: 'array' }>, v: unknown, path: string, schemaPath: string, ctx: ReadContext): unknown[] | undefined {
  const m = node.messages ?? {};
  if (!Array.isArray(v)) {
    ctx.r.err(path, `${m.notList ?? 'must be a list'}, got ${describe(v)}`);
    return undefined;
  }
  if (v.length === 0 && (node.minItems ?? 0) > 0) {
    ctx.r.err(path, m.empty ?? 'must list at least one entry');
    return undefined;
  }
  if (node.maxItems !== undefined && v.length > node.maxItems) {
    ctx.r.err(path, m.tooMany ? m.tooMany(v.length, node.maxItems) : `too many entries: ${v.length}, at most ${node.maxItems} allowed`);
    return undefined;
  }
  const set = node.listType === 'set';
  const seen = new Set<string>();
  const out: unknown[] = [];
  const itemSchemaPath = `${schemaPath}[]`;
  const items = node.items;
  // Plain strings (tags) take the short way: no path string unless something is wrong.
  const plain = items.kind === 'string' && !ctx.extras?.values?.[itemSchemaPath];
  let ok = true;
  v.forEach((x, i) => {
    const item = plain && x !== undefined ? readString(items as StringNode, x, path, i, ctx.r) : readValue(items, x, at(path, i), itemSchemaPath, ctx, true);
    if (item === undefined) ok = false;
    else if (set && typeof x === 'string' && seen.has(x)) {
      ctx.r.err(at(path, i), m.duplicate ? m.duplicate(x) : `duplicate ${q(x)}`);
      ok = false;
    } else out.push(item);
    if (set && typeof x === 'string') seen.add(x);
  });
  return ok ? out : undefined;
}

function readObject(node: ObjectNode, v: unknown, path: string, schemaPath: string, ctx: ReadContext): Obj | undefined {
  if (!isObj(v)) {
    ctx.r.err(path, `${node.notMapping ?? 'must be a mapping'}, got ${describe(v)}`);
    return undefined;
  }
  if (node.opaque) return { ...v };
  unknownFields(ctx.r, path, v, Object.keys(node.properties));
  const checks = [...(node.checks ?? []), ...(ctx.extras?.checks?.[schemaPath] ?? [])];
  const out: Obj = {};
  const run = (after: string | undefined): boolean => {
    for (const c of checks) if (c.after === after && c.run(v, ctx.r, path, out, ctx.root) === false) return false;
    return true;
  };
  if (!run('')) return undefined;
  const required = new Set(node.required ?? []);
  for (const k of node.readOrder ?? Object.keys(node.properties)) {
    const child = node.properties[k]!;
    const raw = get(v, k);
    const value = readValue(child, raw, `${path}.${k}`, `${schemaPath}.${k}`, ctx, required.has(k));
    if (value !== undefined) out[k] = value;
    else if (raw === undefined && (child.kind === 'string' || child.kind === 'boolean') && child.default !== undefined) out[k] = child.default;
    if (!run(k)) return undefined;
  }
  if (!run(undefined)) return undefined;
  if (!node.readOrder) return out;
  // The value keeps the declared order whatever order it was read in.
  const ordered: Obj = {};
  for (const k of Object.keys(node.properties)) if (k in out) ordered[k] = out[k];
  return ordered;
}
