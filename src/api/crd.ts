/**
 * The CustomResourceDefinition of a declared kind, as an object and as the YAML file shipped in
 * crds/, deploy/crds/ and the chart's files/crds/ (one text, three places).
 */
import { Document } from 'yaml';
import type { Node, Resource } from './schema.js';

type Json = Record<string, unknown>;

/** The openAPIV3Schema of a node: the structural schema the API server validates with. */
export function schemaOf(n: Node): Json {
  const out: Json = {};
  const put = (k: string, v: unknown): void => {
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) out[k] = v;
  };
  switch (n.kind) {
    case 'string':
      put('type', 'string');
      put('format', n.format);
      put('description', n.description);
      put('default', n.default);
      put('enum', n.enum ? [...n.enum] : undefined);
      put('minLength', n.minLength);
      put('maxLength', n.maxLength);
      put('pattern', n.pattern);
      break;
    case 'boolean':
      put('type', 'boolean');
      put('description', n.description);
      put('default', n.default);
      break;
    case 'integer':
      put('type', 'integer');
      put('format', n.format);
      put('description', n.description);
      put('minimum', n.minimum);
      break;
    case 'array':
      put('type', 'array');
      put('description', n.description);
      put('minItems', n.minItems);
      put('maxItems', n.maxItems);
      put('x-kubernetes-list-type', n.listType);
      put('x-kubernetes-list-map-keys', n.listMapKeys ? [...n.listMapKeys] : undefined);
      put('items', schemaOf(n.items));
      break;
    case 'map':
      put('type', 'object');
      put('description', n.description);
      put('additionalProperties', schemaOf(n.values));
      break;
    case 'object':
      put('type', 'object');
      put('description', n.description);
      if (n.opaque) break;
      put('required', n.required ? [...n.required] : undefined);
      put('x-kubernetes-validations', rulesOf(n));
      put('properties', Object.fromEntries(Object.entries(n.properties).map(([k, c]) => [k, schemaOf(c)])));
      return out;
  }
  put('x-kubernetes-validations', rulesOf(n));
  return out;
}

function rulesOf(n: Node): Json[] | undefined {
  return n.rules?.map((r) => ({ rule: r.rule, message: r.message, ...(r.messageExpression !== undefined ? { messageExpression: r.messageExpression } : {}) }));
}

export function crdObject(r: Resource): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${r.plural}.${r.group}`,
      labels: { 'app.kubernetes.io/name': 'image-mirror-controller', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group: r.group,
      scope: r.scope,
      names: {
        kind: r.kind,
        listKind: r.listKind,
        plural: r.plural,
        singular: r.singular,
        shortNames: [...r.shortNames],
        ...(r.categories ? { categories: [...r.categories] } : {}),
      },
      versions: [
        {
          name: r.version,
          served: true,
          storage: true,
          ...(r.statusSubresource ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: r.printerColumns.map(({ comment: _c, ...c }) => c),
          schema: { openAPIV3Schema: schemaOf(r.schema) },
        },
      ],
    },
  };
}

/**
 * The CRD file. Written as YAML 1.1 so every string a 1.1 reader (Helm's fromYaml, kubectl) would
 * take for a boolean or number (`on`, `True`, `0755`) is quoted.
 */
export function renderCrd(r: Resource): string {
  const doc = new Document(crdObject(r), { version: '1.1' });
  doc.commentBefore = r.comment
    .split('\n')
    .map((l) => ` ${l}`)
    .join('\n');
  return doc.toString({ lineWidth: 0, directives: false });
}
