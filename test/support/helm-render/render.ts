/**
 * Renders charts/image-mirror-controller with the Go renderer beside this file (Helm's template
 * engine subset: text/template + sprig, built offline against Debian's Go packages). The binary is
 * built once per test process. As Helm does, the values (values.yaml with the overrides merged in)
 * must first pass values.schema.json.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { strict as assert } from 'node:assert';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(here, '..', '..', '..');
export const CHART_DIR = join(REPO_ROOT, 'charts', 'image-mirror-controller');
export const GOPATH = process.env.IMAGE_MIRROR_GOPATH ?? '/usr/share/gocode';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface RenderOptions {
  values?: Record<string, unknown>;
  name?: string;
  namespace?: string;
  apiVersions?: string[];
  notes?: boolean;
}

let built: Promise<{ bin: string; workDir: string }> | undefined;

async function buildRenderer(): Promise<{ bin: string; workDir: string }> {
  const workDir = await mkdtemp(join(tmpdir(), 'helm-render-'));
  process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));
  const bin = join(workDir, 'helm-render');
  const env = {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH,
    GOFLAGS: '',
    // A stable cache keeps rebuilds fast across runs (sprig compiles once).
    GOCACHE: process.env.GOCACHE ?? join(tmpdir(), 'image-mirror-go-build-cache'),
  };
  try {
    await run('go', ['build', '-o', bin, '.'], { cwd: here, env, timeout: 180_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`building the Helm renderer failed: ${(e.stderr ?? e.message).trim().split('\n').slice(0, 5).join(' | ')}`);
  }
  return { bin, workDir };
}

export function renderer(): Promise<{ bin: string; workDir: string }> {
  built ??= buildRenderer();
  return built;
}

type Values = Record<string, unknown>;
const isMap = (v: unknown): v is Values => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Helm's coalescing: maps merge key by key, anything else replaces, an explicit null removes the key. */
export function mergeValues(base: Values, override: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else out[k] = isMap(v) && isMap(out[k]) ? mergeValues(out[k], v) : v;
  }
  return out;
}

let schema: { validate: ValidateFunction; defaults: Values } | undefined;

/** Rejects, as `helm template` does, values that values.schema.json refuses (one line). */
export function checkValues(override: Values = {}): void {
  if (!schema) {
    const ajv = new Ajv({ strict: false, allErrors: true });
    schema = {
      validate: ajv.compile(JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as object),
      defaults: parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Values,
    };
  }
  const { validate, defaults } = schema;
  if (!validate(mergeValues(defaults, override))) {
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
    throw new Error(`values don't meet the specifications of values.schema.json: ${errors.join('; ')}`);
  }
}

let counter = 0;

/** Renders the chart; rejects with the renderer's one-line error (e.g. a `fail` in a template). */
export async function renderChartText(opts: RenderOptions = {}): Promise<string> {
  checkValues(opts.values);
  const { bin, workDir } = await renderer();
  const args = ['--chart', CHART_DIR, '--name', opts.name ?? 'image-mirror-controller', '--namespace', opts.namespace ?? 'image-mirror-system'];
  if (opts.values) {
    const file = join(workDir, `values-${++counter}.json`);
    await writeFile(file, JSON.stringify(opts.values));
    args.push('--values', file);
  }
  if (opts.apiVersions?.length) args.push('--api-versions', opts.apiVersions.join(','));
  if (opts.notes) args.push('--notes');
  try {
    const { stdout } = await run(bin, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error((e.stderr ?? e.message).trim());
  }
}

export async function renderChart(opts: RenderOptions = {}): Promise<K8sObject[]> {
  return parseStream(await renderChartText(opts), 'helm-render output');
}

/** Parses a YAML stream into objects, failing on any YAML error; empty documents are dropped. */
export function parseStream(text: string, what: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${what}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    out.push(value as K8sObject);
  }
  return out;
}

export async function kustomize(dir: string): Promise<K8sObject[]> {
  try {
    const { stdout } = await run('kubectl', ['kustomize', dir], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
    return parseStream(stdout, `kubectl kustomize ${dir}`);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl kustomize ${dir} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

export type Container = {
  name: string;
  args: string[];
  env?: Array<{ name: string }>;
  image: string;
  securityContext: Record<string, unknown>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  ports: Array<{ name: string; containerPort: number }>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
};
export type PodSpec = {
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: Array<{ name: string; emptyDir?: unknown }>;
  serviceAccountName: string;
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  topologySpreadConstraints?: unknown[];
};

export function find(objs: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}
export function deploymentOf(objs: K8sObject[]): { replicas: number; pod: PodSpec; container: Container } {
  const [d] = find(objs, 'Deployment');
  assert.ok(d, 'no Deployment rendered');
  const spec = d.spec as { replicas: number; template: { spec: PodSpec } };
  const container = spec.template.spec.containers[0];
  assert.ok(container, 'Deployment has no container');
  return { replicas: spec.replicas, pod: spec.template.spec, container };
}

