/**
 * The API declared once (src/api/): it depends on nothing else in src/, the old import paths give
 * the same objects, defaults are read through accessors, and a field added to the declaration
 * reaches the CRD, the TypeScript types, the validator and docs/api.md with no other edit.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as api from '../../src/api/index.js';
import { renderCrd } from '../../src/api/crd.js';
import { nodeAt, str, type Node, type ObjectNode, type Resource } from '../../src/api/schema.js';
import { renderTypes } from '../../src/api/typescript.js';
import { readValue } from '../../src/api/validate.js';
import { TargetAction } from '../../src/copy/actions.js';
import { CLOUD_PROVIDERS } from '../../src/auth/provider.js';
import { DURATION_PATTERN, MAX_DURATION_LENGTH } from '../../src/mirror/duration.js';
import { Reason } from '../../src/mirror/types.js';
import { validateMirror } from '../../src/mirror/validate.js';
import { renderApiDocs } from '../../scripts/gen-api-docs.js';

const API_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../src/api');

describe('src/api', () => {
  it('imports nothing from src/ outside src/api (only packages)', () => {
    for (const f of readdirSync(API_DIR).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(join(API_DIR, f), 'utf8');
      for (const m of text.matchAll(/\bfrom '([^']+)'/g)) {
        const spec = m[1]!;
        if (!spec.startsWith('.')) continue;
        assert.equal(dirname(resolve(API_DIR, spec)), API_DIR, `${f} imports ${spec}`);
      }
    }
  });

  it('a readOrder names every property of its object once', () => {
    const walk = (n: Node, p: string): void => {
      if (n.kind === 'array') return walk(n.items, `${p}[]`);
      if (n.kind !== 'object') return;
      if (n.readOrder) assert.deepEqual([...n.readOrder].sort(), Object.keys(n.properties).sort(), p);
      for (const [k, c] of Object.entries(n.properties)) walk(c, `${p}.${k}`);
    };
    walk(api.MIRROR.schema, 'ImageMirror');
    walk(api.POLICY.schema, 'ImageMirrorPolicy');
  });

  it('validateMirror reads spec.interval after the flags and verify, and returns spec in declared order', () => {
    const r = validateMirror({ apiVersion: api.API_VERSION, kind: api.KIND, metadata: { name: 'w' }, spec: { source: { repository: 'localhost:5000/a', tags: ['1'] }, targets: [{ repository: 'localhost:5000/b' }], interval: 'soon', suspend: 'no', verify: [] } });
    assert.ok(!r.ok);
    assert.deepEqual(r.errors.map((e) => e.split(':')[0]), ['spec.suspend', 'spec.verify', 'spec.interval']);
    const ok = validateMirror({ apiVersion: api.API_VERSION, kind: api.KIND, metadata: { name: 'w' }, spec: { suspend: true, interval: '1m', targets: [{ repository: 'localhost:5000/b' }], source: { repository: 'localhost:5000/a', tags: ['1'] } } });
    assert.ok(ok.ok);
    assert.deepEqual(Object.keys(ok.mirror.spec), ['source', 'targets', 'referrers', 'overwrite', 'interval', 'suspend']);
  });

  it('the old modules re-export the same vocabulary', () => {
    assert.equal(TargetAction, api.TargetAction);
    assert.equal(Reason, api.Reason);
    assert.equal(CLOUD_PROVIDERS, api.CLOUD_PROVIDERS);
    assert.equal(api.Reason.VerificationFailed, 'VerificationFailed');
    assert.equal(api.TargetAction.Pruned, 'Pruned');
    assert.equal(api.TargetAction.NotPruned, 'NotPruned');
  });

  it("the duration pattern and bound are duration.ts's", () => {
    assert.equal(api.PATTERNS.interval, DURATION_PATTERN);
    assert.equal(api.LIMITS.intervalLength, MAX_DURATION_LENGTH);
  });

  it('defaults are read through accessors, with the values the CRD declares', () => {
    const crd = parse(renderCrd(api.MIRROR)) as { spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, { default?: unknown }> } } } } }> } };
    const props = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties;
    for (const [k, v] of Object.entries(api.DEFAULTS)) assert.equal(props[k]!.default, v, k);
    assert.equal(api.referrersEnabled({}), true);
    assert.equal(api.referrersEnabled({ referrers: false }), false);
    assert.equal(api.overwriteEnabled({}), true);
    assert.equal(api.intervalOf({}), '10m');
    assert.equal(api.suspended({}), false);
    assert.equal(api.pruneEnabled({}), false);
    assert.equal(api.pruneEnabled({ prune: true }), true);
    assert.equal(api.trustedRootKey({}), 'trusted_root.json');
    assert.equal(api.trustedRootKey({ key: 'root.json' }), 'root.json');
  });

  it('status.owned: digests is optional (statuses of the earlier shape have none) and bounded like the tags it is parallel to', () => {
    const entry = nodeAt(api.MIRROR.schema, 'status.owned[]') as ObjectNode;
    assert.deepEqual([...(entry.required ?? [])].sort(), ['repository', 'tags']);
    const tags = entry.properties.tags!;
    const digests = entry.properties.digests!;
    assert.ok(tags.kind === 'array' && digests.kind === 'array');
    assert.equal(digests.maxItems, tags.maxItems);
    assert.equal(digests.maxItems, api.OWNED_TAGS_CAP);
    assert.ok(digests.items.kind === 'string' && (digests.items.maxLength ?? 0) >= `sha512:${'0'.repeat(128)}`.length);
  });

  it('a field added to the declaration reaches the CRD, the types, the validator and the docs', () => {
    // The one edit: a property in the declaration (here on a copy of it).
    const source = nodeAt(api.MIRROR.schema, 'spec.source') as ObjectNode;
    const withField: ObjectNode = {
      ...source,
      properties: { ...source.properties, mediaType: str({ description: 'Only images of this media type.', maxLength: 12, what: 'media type' }) },
    };
    const spec = nodeAt(api.MIRROR.schema, 'spec') as ObjectNode;
    const root = api.MIRROR.schema;
    const edited: Resource = {
      ...api.MIRROR,
      schema: { ...root, properties: { ...root.properties, spec: { ...spec, properties: { ...spec.properties, source: withField } } } },
    };

    const crdText = renderCrd(edited);
    const crd = parse(crdText) as { spec: { versions: Array<{ schema: { openAPIV3Schema: unknown } }> } };
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema as { properties: { spec: { properties: { source: { properties: Record<string, unknown> } } } } };
    assert.deepEqual(schema.properties.spec.properties.source.properties.mediaType, { type: 'string', description: 'Only images of this media type.', maxLength: 12 });

    const types = renderTypes([edited], []);
    const sourceSpec = types.slice(types.indexOf('export interface SourceSpec {'), types.indexOf('\n}\n', types.indexOf('export interface SourceSpec {')));
    assert.match(sourceSpec, /\n {2}mediaType\?: string;$/);

    assert.match(renderApiDocs(crdText), /\| `mediaType` \| string \| {2}\| Only images of this media type\. \(maxLength 12\) \|/);

    const errors: string[] = [];
    const ctx = { r: { err: (p: string, m: string) => errors.push(`${p}: ${m}`) }, root: {} };
    const read = (v: unknown) => readValue(withField, { repository: 'localhost:5000/a', tags: ['1'], mediaType: v }, 'spec.source', 'spec.source', ctx);
    assert.deepEqual(read('oci'), { repository: 'localhost:5000/a', tags: ['1'], mediaType: 'oci' });
    assert.deepEqual(errors, []);
    read('x'.repeat(13));
    assert.deepEqual(errors, ['spec.source.mediaType: invalid media type: 13 characters, at most 12 allowed']);
    // Without the edit the same field is refused as unknown.
    errors.length = 0;
    readValue(source, { repository: 'localhost:5000/a', tags: ['1'], mediaType: 'oci' }, 'spec.source', 'spec.source', ctx);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^spec\.source\.mediaType: unknown field/);
  });
});
