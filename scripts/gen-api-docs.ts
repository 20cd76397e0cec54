/**
 * Renders docs/api.md from the CRD text, so the API reference cannot drift from the schema;
 * `npm run gen:api` (scripts/gen-api.ts) writes it with the CRDs it generates from src/api/, and
 * test/ship/examples-docs.test.ts and test/api/drift.test.ts regenerate it in memory and compare.
 *
 *   node --import tsx scripts/gen-api-docs.ts          # docs/api.md from crds/imagemirror.yaml
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';

export interface JSONSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JSONSchema>;
  items?: JSONSchema;
  additionalProperties?: JSONSchema | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  'x-kubernetes-validations'?: Array<{ rule: string; message?: string; messageExpression?: string }>;
  [key: string]: unknown;
}

interface CRD {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; shortNames?: string[]; categories?: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      additionalPrinterColumns?: Array<{ name: string; type: string; jsonPath: string; priority?: number }>;
      schema: { openAPIV3Schema: JSONSchema };
    }>;
  };
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CRD_PATH = join(root, 'crds', 'imagemirror.yaml');
export const API_DOC_PATH = join(root, 'docs', 'api.md');

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ').trim();
}

function typeOf(s: JSONSchema): string {
  if (s.type === 'array') return `[]${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') return `map[string]${typeOf(s.additionalProperties)}`;
  if (s.format) return `${s.type ?? 'any'} (${s.format})`;
  return s.type ?? (s['x-kubernetes-int-or-string'] ? 'int-or-string' : 'any');
}

function constraints(s: JSONSchema): string[] {
  const out: string[] = [];
  if (s.enum) out.push(`one of ${s.enum.map((e) => `\`${String(e)}\``).join(', ')}`);
  if (s.pattern) out.push(`pattern \`${s.pattern}\``);
  for (const k of ['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems'] as const) {
    if (s[k] !== undefined) out.push(`${k} ${s[k]}`);
  }
  if (s.default !== undefined) out.push(`default \`${JSON.stringify(s.default)}\``);
  const items = s.type === 'array' ? s.items : undefined;
  if (items?.pattern) out.push(`items match \`${items.pattern}\``);
  if (items?.maxLength !== undefined) out.push(`items maxLength ${items.maxLength}`);
  return out;
}

/** Object-typed schemas reachable from `s` (objects and arrays of objects), depth first. */
function objects(path: string, s: JSONSchema, out: Array<[string, JSONSchema]>): void {
  const obj = s.type === 'array' ? s.items : s;
  if (!obj || obj.type !== 'object' || !obj.properties) return;
  out.push([path, obj]);
  for (const [name, child] of Object.entries(obj.properties)) objects(`${path}.${name}${child.type === 'array' ? '[]' : ''}`, child, out);
}

/** Rules longer than this are shown by their message alone: a reader needs the words, not the regex. */
export const MAX_RULE_SHOWN = 120;

function rules(s: JSONSchema): string[] {
  return (s['x-kubernetes-validations'] ?? []).map((v) => {
    const message = v.message ?? v.messageExpression ?? '';
    return (v.rule.length > MAX_RULE_SHOWN ? `- ${message}` : `- \`${v.rule}\` — ${message}`).trimEnd();
  });
}

export function renderApiDocs(crdText: string): string {
  const crd = parse(crdText) as CRD;
  const { group, names, scope } = crd.spec;
  const lines: string[] = [
    `# API reference: \`${names.kind}\``,
    '',
    '<!-- Generated from src/api/imagemirror.ts (through crds/imagemirror.yaml) by `npm run gen:api`.',
    '     Do not edit by hand. -->',
    '',
    `- Group: \`${group}\``,
    `- Scope: ${scope}`,
    `- Plural: \`${names.plural}\`${names.shortNames?.length ? `; short names: ${names.shortNames.map((n) => `\`${n}\``).join(', ')}` : ''}`,
    ...(names.categories?.length ? [`- Categories: ${names.categories.map((n) => `\`${n}\``).join(', ')}`] : []),
    '',
  ];
  for (const v of crd.spec.versions) {
    lines.push(`## ${group}/${v.name}${v.storage ? ' (storage version)' : ''}`, '');
    if (v.additionalPrinterColumns?.length) {
      lines.push('`kubectl get` columns (`-o wide` adds those marked wide):', '', '| column | type | from |', '|---|---|---|');
      for (const c of v.additionalPrinterColumns) lines.push(`| ${c.name}${c.priority ? ' (wide)' : ''} | ${c.type} | \`${cell(c.jsonPath)}\` |`);
      lines.push('');
    }
    const schema = v.schema.openAPIV3Schema;
    const found: Array<[string, JSONSchema]> = [];
    for (const top of ['spec', 'status']) {
      const s = schema.properties?.[top];
      if (s) objects(top, s, found);
    }
    for (const [path, obj] of found) {
      lines.push(`### \`${path}\``, '');
      if (obj.description) lines.push(cell(obj.description), '');
      const required = new Set(obj.required ?? []);
      lines.push('| field | type | required | description |', '|---|---|---|---|');
      for (const [name, child] of Object.entries(obj.properties ?? {})) {
        const c = constraints(child).map(cell);
        const desc = [child.description ? cell(child.description) : '', c.length ? `(${c.join('; ')})` : ''].filter(Boolean).join(' ');
        lines.push(`| \`${name}\` | ${cell(typeOf(child))} | ${required.has(name) ? 'yes' : ''} | ${desc} |`);
      }
      lines.push('');
      const own = rules(obj);
      // Rules on object-typed children appear in that child's own section.
      const childRules = Object.entries(obj.properties ?? {})
        .filter(([, child]) => !(child.type === 'object' && child.properties))
        .flatMap(([name, child]) => rules(child).map((r) => r.replace(/^- /, `- \`${name}\`: `)));
      if (own.length || childRules.length) lines.push('Validation rules (CEL):', '', ...own, ...childRules, '');
    }
  }
  return lines.join('\n').replace(/\n+$/, '\n');
}

async function main(): Promise<void> {
  await writeFile(API_DOC_PATH, renderApiDocs(await readFile(CRD_PATH, 'utf8')));
  console.log(`wrote ${API_DOC_PATH}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`gen-api-docs: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
