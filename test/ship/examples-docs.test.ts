import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse, parseAllDocuments } from 'yaml';
import { validateMirror } from '../../src/mirror/validate.js';
import { Reason } from '../../src/mirror/types.js';
import { renderApiDocs, CRD_PATH, API_DOC_PATH } from '../../scripts/gen-api-docs.js';
import { CHART_DIR, REPO_ROOT, kustomize } from '../support/helm-render/render.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** The CRD schema for ajv: x-kubernetes-* dropped, unknown fields rejected (not pruned) so typos show. */
function strictSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strictSchema);
  if (s === null || typeof s !== 'object') return s;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, ps]) => [p, strictSchema(ps)])) : strictSchema(v);
  }
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

async function filesUnder(dir: string, name: RegExp): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p, name)));
    else if (name.test(e.name)) out.push(p);
  }
  return out.sort();
}
/** What `kubectl apply -f <dir> -R` reads. */
const yamlFiles = (dir: string) => filesUnder(dir, /\.(ya?ml|json)$/);

/** Checks every ImageMirror in a YAML text against the CRD schema and validateMirror; returns how many. */
async function mirrorValidator(): Promise<(text: string, where: string) => number> {
  const crd = parse(await readFile(CRD_PATH, 'utf8')) as { spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: unknown } }> } };
  const schema = strictSchema(crd.spec.versions[0]!.schema.openAPIV3Schema) as Record<string, unknown>;
  // metadata is `type: object` in a CRD (the API server owns it); check what matters by hand.
  (schema.properties as Record<string, unknown>).metadata = { type: 'object', required: ['name'], properties: { name: { type: 'string' }, namespace: { type: 'string' } }, additionalProperties: true };
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const f of ['int32', 'int64', 'byte']) ajv.addFormat(f, true);
  const validate = ajv.compile(schema);
  return (text, file) => {
    let mirrors = 0;
    for (const doc of parseAllDocuments(text)) {
      assert.equal(doc.errors.length, 0, `${file}: ${doc.errors[0]?.message}`);
      const obj = doc.toJS() as { kind?: string; apiVersion?: string; metadata?: { name?: string } } | null;
      if (obj?.kind !== 'ImageMirror') continue;
      const where = `${file} ${obj.metadata?.name}`;
      assert.equal(obj.apiVersion, 'imagemirror.dev/v1alpha1', where);
      assert.ok(validate(obj), `${where}: CRD schema: ${ajv.errorsText(validate.errors)}`);
      const v = validateMirror(obj);
      assert.ok(v.ok, `${where}: ${v.ok ? '' : v.errors.join('; ')}`);
      mirrors++;
    }
    return mirrors;
  };
}

describe('ship: examples', () => {
  it('every ImageMirror in examples/ validates against the CRD schema and validateMirror', async () => {
    const check = await mirrorValidator();
    const seen = new Set<string>();
    for (const file of await yamlFiles(join(REPO_ROOT, 'examples'))) {
      if (check(await readFile(file, 'utf8'), relative(REPO_ROOT, file)) > 0) seen.add(relative(join(REPO_ROOT, 'examples'), file).split('/')[0]!);
    }
    assert.deepEqual([...seen].sort(), ['digest-pinned', 'gitops', 'promotion', 'upstream-to-private']);
  });

  it('nothing `kubectl apply -f examples/ -R` reads holds a ${...} placeholder (the demo templates live in scripts/demo/)', async () => {
    const files = await yamlFiles(join(REPO_ROOT, 'examples'));
    assert.ok(files.length >= 5, `only ${files.length} files found`);
    for (const file of files) assert.doesNotMatch(await readFile(file, 'utf8'), /\$\{[A-Za-z_]+\}/, `${relative(REPO_ROOT, file)} has a placeholder`);
  });

  it('the demo templates npm run demo fills in are valid ImageMirrors once the registries are substituted, under a name kubectl skips', async () => {
    const check = await mirrorValidator();
    const demo = await readFile(join(REPO_ROOT, 'scripts', 'demo.sh'), 'utf8');
    const glob = /for template in (\S+)\/\*(\.\S+); do/.exec(demo);
    assert.ok(glob, 'scripts/demo.sh no longer loops over its templates');
    const [, dir, suffix] = glob as unknown as [string, string, string];
    assert.doesNotMatch(suffix, /\.(ya?ml|json)$/, 'kubectl apply -f would read the templates');
    const templates = await filesUnder(join(REPO_ROOT, dir), new RegExp(`${suffix.replace(/\./g, '\\.')}$`));
    assert.equal(templates.length, 2, `templates under ${dir}: ${templates.join(', ')}`);
    let mirrors = 0;
    for (const file of templates) {
      const text = await readFile(file, 'utf8');
      assert.match(text, /\$\{REGISTRY_A\}/);
      const filled = text.replaceAll('${REGISTRY_A}', '127.0.0.1:5001').replaceAll('${REGISTRY_B}', '127.0.0.1:5002');
      assert.doesNotMatch(filled, /\$\{/, `${file}: a placeholder demo.sh does not fill`);
      mirrors += check(filled, relative(REPO_ROOT, file));
    }
    assert.equal(mirrors, 2);
  });

  it('the validator used above rejects a broken example (it can fail)', () => {
    const broken = { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'x' }, spec: { source: { repository: 'r.example.com/a', tags: ['1'], semver: '^1' }, targets: [] } };
    assert.equal(validateMirror(broken).ok, false);
  });

  it('the GitOps layout renders with kustomize and Flux health-checks every mirror in it', async () => {
    const mirrors = await kustomize(join(REPO_ROOT, 'examples', 'gitops', 'mirrors'));
    assert.ok(mirrors.length > 0 && mirrors.every((m) => m.kind === 'ImageMirror' && m.metadata.namespace === 'team-a'));
    const flux = parse(await readFile(join(REPO_ROOT, 'examples', 'gitops', 'flux', 'kustomization.yaml'), 'utf8')) as {
      apiVersion: string;
      spec: { path: string; healthChecks: Array<{ apiVersion: string; kind: string; name: string; namespace: string }> };
    };
    assert.equal(flux.apiVersion, 'kustomize.toolkit.fluxcd.io/v1');
    assert.ok(existsSync(join(REPO_ROOT, flux.spec.path)), `Flux path ${flux.spec.path} does not exist`);
    assert.deepEqual(
      flux.spec.healthChecks.map((h) => `${h.apiVersion}/${h.kind}/${h.namespace}/${h.name}`).sort(),
      mirrors.map((m) => `${m.apiVersion}/${m.kind}/${m.metadata.namespace}/${m.metadata.name}`).sort(),
    );
    const app = parse(await readFile(join(REPO_ROOT, 'examples', 'gitops', 'argocd', 'application.yaml'), 'utf8')) as { spec: { source: { path: string } } };
    assert.ok(existsSync(join(REPO_ROOT, app.spec.source.path)), `Argo CD path ${app.spec.source.path} does not exist`);
  });
});

describe('ship: docs', () => {
  it('docs/api.md is what scripts/gen-api-docs.ts generates from the CRD', async () => {
    const generated = renderApiDocs(await readFile(CRD_PATH, 'utf8'));
    assert.equal(await readFile(API_DOC_PATH, 'utf8'), generated, 'docs/api.md is stale: run node --import tsx scripts/gen-api-docs.ts');
    for (const field of ['tagPattern', 'semver', 'latest', 'overwrite', 'referrers', 'observedGeneration', 'sourceDigests']) {
      assert.ok(generated.includes(`\`${field}\``), `generated docs lack ${field}`);
    }
  });

  it('docs/troubleshooting.md has a section for every failure reason, and every runbook link lands on a heading', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'troubleshooting.md'), 'utf8');
    const slugs = new Set(
      [...doc.matchAll(/^#{2,3} (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')),
    );
    for (const reason of [Reason.InvalidSpec, Reason.CredentialsNotFound, Reason.AuthFailed, Reason.SourceNotFound, Reason.TagConflict, Reason.RegistryError, Reason.Suspended]) {
      assert.ok(slugs.has(reason.toLowerCase()), `no "## ${reason}" section`);
    }
    const rules = await readFile(join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8');
    for (const m of rules.matchAll(/runbook_url: \S*troubleshooting\.md(?:#(\S+))?/g)) {
      if (m[1]) assert.ok(slugs.has(m[1]), `runbook anchor #${m[1]} has no heading`);
    }
  });

  it("the README's install section names files that exist and values the chart has", async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /<!-- install:begin -->([\s\S]*)<!-- install:end -->/.exec(readme)?.[1] ?? '';
    assert.ok(section.length > 200, 'install section is empty');
    const paths = new Set<string>();
    for (const m of section.matchAll(/(?:^|[\s`(])((?:deploy|charts|docs|examples|crds)\/[A-Za-z0-9_./-]*)/g)) paths.add(m[1]!.replace(/[.]$/, ''));
    assert.ok(paths.size >= 8, `only ${paths.size} paths found`);
    for (const p of paths) assert.ok(existsSync(join(REPO_ROOT, p)), `README install section names ${p}, which does not exist`);
    const values = parse(await readFile(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const has = (path: string) => path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' && k in v ? (v as Record<string, unknown>)[k] : undefined), values) !== undefined;
    const named = new Set<string>();
    for (const m of section.matchAll(/--set ([A-Za-z.]+)=/g)) named.add(m[1]!);
    const valuesPara = /Values worth knowing[\s\S]*?\n\n/.exec(section)?.[0] ?? '';
    for (const m of valuesPara.matchAll(/`([A-Za-z]+(?:\.[A-Za-z]+)*)`/g)) if (!m[1]!.includes('/') && !/^[A-Z_]+$/.test(m[1]!)) named.add(m[1]!);
    for (const v of named) if (/\.(ya?ml|json)$/.test(v)) named.delete(v);
    assert.ok(named.size >= 8, `only ${named.size} value names found`);
    for (const v of named) assert.ok(has(v), `README names value ${v}, which values.yaml lacks`);
    // The commands name the objects deploy/ and the chart actually create.
    for (const name of ['deployment/image-mirror-controller', 'svc/image-mirror-controller-metrics', 'image-mirror-system']) assert.ok(section.includes(name));
  });
});
