/**
 * The TypeScript types of the declared kinds, as the text of src/api/types.gen.ts: one interface
 * per object node with a typeName, the description as its doc comment.
 */
import type { Node, ObjectNode, Resource } from './schema.js';

function doc(text: string | undefined, indent: string): string[] {
  if (!text) return [];
  return [`${indent}/** ${text.replace(/\*\//g, '*\\/')} */`];
}

function typeOf(n: Node): string {
  switch (n.kind) {
    case 'string':
      return n.tsType ?? (n.enum ? n.enum.map((e) => JSON.stringify(e)).join(' | ') : 'string');
    case 'boolean':
      return 'boolean';
    case 'integer':
      return 'number';
    case 'map':
      return 'Record<string, string>';
    case 'array': {
      const t = typeOf(n.items);
      return /[ |]/.test(t) ? `Array<${t}>` : `${t}[]`;
    }
    case 'object':
      if (n.variants) return n.variants.typeName;
      if (!n.typeName) throw new Error('an object node needs a typeName for the TypeScript types');
      return n.typeName;
  }
}

function fieldLines(n: ObjectNode, only?: readonly string[]): string[] {
  const required = new Set(n.required ?? []);
  const lines: string[] = [];
  for (const [k, c] of Object.entries(n.properties)) {
    if (only && !only.includes(k)) continue;
    const optional = only ? false : !(required.has(k) || c.tsRequired);
    lines.push(...doc(c.description, '  '), `  ${k}${optional ? '?' : ''}: ${typeOf(c)};`);
  }
  return lines;
}

/** Interfaces for every named object node under the roots, each once, in declaration order. */
export function renderTypes(resources: readonly Resource[], imports: string[]): string {
  const out: string[] = [
    '// Generated from the declarations in src/api/ by `npm run gen:api`; do not edit by hand.',
    '// test/api/drift.test.ts fails when this file is stale.',
    ...imports,
    '',
  ];
  const done = new Set<string>();
  const visit = (n: Node): void => {
    if (n.kind === 'array') return visit(n.items);
    if (n.kind !== 'object') return;
    if (n.opaque) return;
    const name = n.variants?.typeName ?? n.typeName;
    if (name && !done.has(name)) {
      done.add(name);
      if (n.variants) {
        for (const v of n.variants.shapes) {
          out.push(...doc(v.description, ''), `export interface ${v.typeName} {`, ...fieldLines(n, v.properties), '}', '');
        }
        out.push(...doc(n.variants.description, ''), `export type ${name} = ${n.variants.shapes.map((v) => v.typeName).join(' | ')};`, '');
      } else {
        out.push(...doc(n.description, ''), `export interface ${name} {`, ...fieldLines(n), '}', '');
      }
    }
    for (const c of Object.values(n.properties)) visit(c);
  };
  for (const r of resources) visit(r.schema);
  return out.join('\n').replace(/\n+$/, '\n');
}
