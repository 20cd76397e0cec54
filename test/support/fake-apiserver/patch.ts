import { ApiError, badRequest } from './errors.js';
import { clone, isObject } from './types.js';

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch, approximated as a merge patch that drops the `$`-directives
 * (`$setElementOrder/…`, `$retainKeys`, `$patch`). Lists are replaced, which is what the
 * patches kubectl computes for CRDs and Secrets amount to. Custom resources never get here.
 */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  return mergePatch(target, stripDirectives(patch));
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  if (v.$patch === 'delete') return null;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    out[k] = stripDirectives(val);
  }
  return out;
}

interface Op {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

function decodePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new ApiError(422, `json patch: invalid path "${p}"`, 'Invalid');
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function unprocessable(msg: string): ApiError {
  // What the apiserver answers when a well-formed JSON patch cannot be applied.
  return new ApiError(422, msg, 'Invalid');
}

function parentOf(doc: unknown, tokens: string[], op: string): { parent: unknown; key: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw unprocessable(`${op} operation does not apply: doc is missing path: "/${tokens.join('/')}": missing value`);
  }
  return { parent: cur, key: tokens[tokens.length - 1]! };
}

function getAt(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const t of decodePointer(path)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

function remove(doc: unknown, path: string, op: string): unknown {
  const tokens = decodePointer(path);
  const { parent, key } = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw unprocessable(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
    return parent.splice(i, 1)[0];
  }
  if (isObject(parent) && key in parent) {
    const v = parent[key];
    delete parent[key];
    return v;
  }
  throw unprocessable(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
}

function add(doc: unknown, path: string, value: unknown, op: string): unknown {
  const tokens = decodePointer(path);
  if (tokens.length === 0) return clone(value);
  const { parent, key } = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw unprocessable(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
    if (op === 'replace') parent[i] = clone(value);
    else parent.splice(i, 0, clone(value));
  } else if (isObject(parent)) {
    if (op === 'replace' && !(key in parent)) throw unprocessable(`replace operation does not apply: doc is missing key: ${path}: missing value`);
    parent[key] = clone(value);
  } else {
    throw unprocessable(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
  }
  return doc;
}

/**
 * RFC 6902 JSON patch. A body that is not an array fails to decode (400), as jsonpatch.DecodePatch
 * does in the apiserver — this is the trap for a merge-style body sent with this content type.
 */
export function jsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) {
    const t = isObject(patch) ? 'object' : typeof patch;
    throw badRequest(`json: cannot unmarshal ${t} into Go value of type jsonpatch.Patch`);
  }
  let doc = clone(target);
  for (const raw of patch) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') throw badRequest('json patch: operation missing op or path');
    const o = raw as unknown as Op;
    switch (o.op) {
      case 'add':
        doc = add(doc, o.path, o.value, 'add');
        break;
      case 'replace':
        doc = add(doc, o.path, o.value, 'replace');
        break;
      case 'remove':
        remove(doc, o.path, 'remove');
        break;
      case 'move': {
        const v = remove(doc, o.from ?? '', 'move');
        doc = add(doc, o.path, v, 'add');
        break;
      }
      case 'copy':
        doc = add(doc, o.path, getAt(doc, o.from ?? ''), 'add');
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, o.path)) !== JSON.stringify(o.value)) throw unprocessable(`testing value ${o.path} failed: test failed`);
        break;
      default:
        throw badRequest(`json patch: unexpected operation "${o.op}"`);
    }
  }
  return doc;
}
