// Validation of custom resources against the CRD's openAPIV3Schema, the way the apiserver
// treats a structural schema: unknown fields pruned, `default:` applied, violations → 422.
// CEL rules (x-kubernetes-validations) are not evaluated.
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject } from 'ajv';
import type { KObject, StatusCause } from './types.js';
import { isObject } from './types.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function structural(schema: unknown, root: boolean): unknown {
  if (Array.isArray(schema)) return schema.map((s) => structural(s, false));
  if (!isObject(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'properties' && isObject(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, structural(pv, false)]));
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not') {
      out[k] = typeof v === 'boolean' ? v : structural(v, false);
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      out[k] = structural(v, false);
    } else {
      out[k] = v;
    }
  }
  if (schema['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    if (!out.anyOf) out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (root) {
    const props = (isObject(out.properties) ? { ...out.properties } : {}) as Record<string, unknown>;
    props.apiVersion ??= { type: 'string' };
    props.kind ??= { type: 'string' };
    props.metadata = { type: 'object' };
    out.properties = props;
    out.type ??= 'object';
  }
  // Pruning: an object with declared properties keeps only those, unless it preserves unknowns.
  if (out.type === 'object' && isObject(out.properties) && out.additionalProperties === undefined && schema['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

function fieldOf(e: ErrorObject): string {
  const base = e.instancePath.split('/').filter((s) => s !== '').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let path = base.map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`)).join('').replace(/^\./, '');
  if (e.keyword === 'required') path = (path ? path + '.' : '') + String((e.params as { missingProperty: string }).missingProperty);
  return path;
}

function causeOf(e: ErrorObject, obj: unknown): StatusCause {
  const field = fieldOf(e);
  switch (e.keyword) {
    case 'required':
      return { reason: 'FieldValueRequired', field, message: 'Required value' };
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
      return { reason: 'FieldValueNotSupported', field, message: `Unsupported value: ${JSON.stringify(valueAt(obj, e.instancePath))}: supported values: ${allowed}` };
    }
    case 'type':
      return { reason: 'FieldValueTypeInvalid', field, message: `Invalid value: "${typeof valueAt(obj, e.instancePath)}": ${field} in body must be of type ${String((e.params as { type: string }).type)}: ${JSON.stringify(valueAt(obj, e.instancePath))}` };
    default:
      return { reason: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(valueAt(obj, e.instancePath))}: ${field} in body ${e.message ?? 'is invalid'}` };
  }
}

function valueAt(obj: unknown, pointer: string): unknown {
  let cur = obj;
  for (const t of pointer.split('/').filter((s) => s !== '')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[t.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

/** A validator that prunes and defaults `obj` in place and returns the causes of any violation. */
export function compileSchema(openAPIV3Schema: unknown): (obj: KObject) => StatusCause[] {
  const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true, removeAdditional: true, logger: false });
  addFormats(ajv);
  // Kubernetes accepts formats ajv does not know (int32, byte, ...) and ignores unknown ones.
  for (const f of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password', 'quantity', 'bsonobjectid', 'cidr', 'mac', 'isbn', 'creditcard', 'ssn', 'hexcolor', 'rgbcolor', 'datetime']) {
    ajv.addFormat(f, true);
  }
  const validate = ajv.compile(structural(openAPIV3Schema, true) as object);
  return (obj) => {
    if (validate(obj)) return [];
    return (validate.errors ?? []).map((e) => causeOf(e, obj));
  };
}
