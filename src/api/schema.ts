/**
 * The shape of an API declaration: a tree of typed nodes carrying, in one place, what the CRD
 * schema says (types, bounds, patterns, enums, defaults, descriptions, CEL rules), what the
 * TypeScript types say (interface names, named types for enums and unions), and what the file-mode
 * validator says when a value does not fit (the wording of each message). src/api/crd.ts,
 * src/api/typescript.ts and src/api/validate.ts each walk the same tree.
 */
import type { Obj } from './fields.js';

/** A CEL rule as the CRD carries it (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  /** Only the form `self + ' words'`: cheap to evaluate and cannot fail. */
  messageExpression?: string;
}

/** Where the validator reports. */
export interface Reporter {
  err(path: string, message: string): void;
}

/**
 * A JS rule the validator runs on an object: a CEL rule's twin, or one CEL cannot state. It sees
 * the raw object (nulls read as absent through get()), what has been read of it so far, the root
 * document, and reports through `r`; returning false stops reading the object's remaining fields.
 */
export interface Check {
  /** Run right after this property is read; '' runs before any property. Default: after all. */
  after?: string;
  run(raw: Obj, r: Reporter, path: string, read: Obj, root: Obj): boolean | void;
}

interface Common {
  description?: string;
  rules?: readonly CelRule[];
  /** Required in TypeScript though the schema leaves it optional (apiVersion, kind, metadata). */
  tsRequired?: boolean;
}

export interface StringNode extends Common {
  kind: 'string';
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: 'date-time';
  enum?: readonly string[];
  default?: string;
  /** TypeScript type name for an enum (e.g. CloudProvider); else `string`. */
  tsType?: string;
  /** Names the value in the too-long message: `invalid <what>: N characters, at most M allowed`. */
  what?: string;
  /**
   * The message when the pattern (or `accept`) refuses the value. Without it the validator leaves
   * the pattern to a rule that parses the value and words its own error (interval).
   */
  invalid?: (v: string) => string;
  /** A too-long value is reported with `invalid` (a tag is a tag: the pattern states its length). */
  lengthIsPattern?: boolean;
  /** Appended to `must be a string, got X` (e.g. quote numeric tags). */
  notStringHint?: string;
  /** A check CEL cannot state, reported with `invalid` (the validator's only). */
  accept?: (v: string) => boolean;
}

export interface BooleanNode extends Common {
  kind: 'boolean';
  default?: boolean;
}

export interface IntegerNode extends Common {
  kind: 'integer';
  format: 'int32' | 'int64';
  minimum?: number;
}

export interface ListMessages {
  /** when absent and required (default `required`) */
  required?: string;
  /** `<notList>, got X` (default `must be a list`) */
  notList?: string;
  /** default `must list at least one entry` */
  empty?: string;
  tooMany?: (n: number, max: number) => string;
  /** a repeated entry of a set list (default `duplicate "x"`) */
  duplicate?: (v: string) => string;
}

export interface ArrayNode extends Common {
  kind: 'array';
  items: Node;
  minItems?: number;
  maxItems?: number;
  listType?: 'set' | 'map';
  listMapKeys?: readonly string[];
  messages?: ListMessages;
}

/** A union of object shapes for the TypeScript side (`credentials`: a SecretRef or a CloudRef). */
export interface Variant {
  typeName: string;
  description: string;
  /** The properties this shape has, all required. */
  properties: readonly string[];
}

export interface ObjectNode extends Common {
  kind: 'object';
  /** TypeScript interface name. */
  typeName?: string;
  properties: Readonly<Record<string, Node>>;
  required?: readonly string[];
  /** `<notMapping>, got X` (default `must be a mapping`). */
  notMapping?: string;
  checks?: readonly Check[];
  /**
   * The order the validator reads (and reports) the properties in, when it is not the declared
   * order: errors keep the order they had before the declaration existed.
   */
  readOrder?: readonly string[];
  variants?: { typeName: string; description: string; shapes: readonly Variant[] };
  /** A mapping the schema does not describe (metadata). */
  opaque?: boolean;
}

/** A string-to-string mapping (status.sourceDigests). */
export interface MapNode extends Common {
  kind: 'map';
  values: StringNode;
}

export type Node = StringNode | BooleanNode | IntegerNode | ArrayNode | ObjectNode | MapNode;

/** One API kind: the CRD around the schema, and the schema. */
export interface Resource {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  listKind: string;
  scope: 'Namespaced' | 'Cluster';
  shortNames: readonly string[];
  categories?: readonly string[];
  statusSubresource: boolean;
  printerColumns: ReadonlyArray<{ name: string; type: 'string' | 'date' | 'boolean' | 'integer'; jsonPath: string; priority?: number; comment?: string }>;
  /** Comment lines at the top of the generated CRD file. */
  comment: string;
  /** The root: apiVersion, kind, metadata, spec, status. */
  schema: ObjectNode;
}

export const str = (n: Omit<StringNode, 'kind'>): StringNode => ({ kind: 'string', ...n });
export const bool = (n: Omit<BooleanNode, 'kind'>): BooleanNode => ({ kind: 'boolean', ...n });
export const int = (n: Omit<IntegerNode, 'kind'>): IntegerNode => ({ kind: 'integer', ...n });
export const list = (n: Omit<ArrayNode, 'kind'>): ArrayNode => ({ kind: 'array', ...n });
export const obj = (n: Omit<ObjectNode, 'kind'>): ObjectNode => ({ kind: 'object', ...n });
export const map = (n: Omit<MapNode, 'kind'>): MapNode => ({ kind: 'map', ...n });

/** The node at a schema path such as `spec.targets[].repository` (tests and generators). */
export function nodeAt(root: Node, path: string): Node {
  let n: Node = root;
  for (const part of path.split('.')) {
    const name = part.replace(/\[\]$/g, '');
    if (n.kind !== 'object' || !n.properties[name]) throw new Error(`no field ${part} in ${path}`);
    n = n.properties[name]!;
    for (let i = part.indexOf('[]'); i >= 0; i = part.indexOf('[]', i + 2)) {
      if (n.kind !== 'array') throw new Error(`${part} is not a list in ${path}`);
      n = n.items;
    }
  }
  return n;
}

/** Defaults the declaration gives the properties of an object node. */
export function defaultsOf(n: ObjectNode): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const [k, c] of Object.entries(n.properties)) {
    if ((c.kind === 'string' || c.kind === 'boolean') && c.default !== undefined) out[k] = c.default;
  }
  return out;
}
