// A real kubectl pointed at the fake API server through a kubeconfig: what users will type.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { policyCrdPath, projectCrdPath, SAMPLE_CRD_YAML } from '../support/fake-apiserver/sample-crd.js';

const run = promisify(execFile);
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function mirrorYaml(tag: string): string {
  return `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata:
  name: web
  namespace: team-a
spec:
  source:
    repository: registry.example.com:8221/dev/web
    tags: ["${tag}"]
  targets:
    - repository: registry.example.com:8221/prod/web
`;
}

describe('kubectl against the fake API server', function () {
  let dir: string;
  let crdPath: string;
  let api: FakeApiServer;

  const kubectl = async (...args: string[]): Promise<{ stdout: string; stderr: string }> => {
    // HOME in the temp dir: kubectl's discovery cache stays there, not in the user's ~/.kube.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
    return run('kubectl', ['--kubeconfig', join(dir, 'kubeconfig'), ...args], { env, timeout: 30_000 });
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubectl-fake-'));
    crdPath = projectCrdPath() ?? join(dir, 'crd.yaml');
    if (!projectCrdPath()) await writeFile(crdPath, SAMPLE_CRD_YAML);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    api = await startFakeApiServer({ namespaces: ['team-a'], openapi: true });
    await api.writeKubeconfig(join(dir, 'kubeconfig'));
  });
  afterEach(async () => {
    await api.stop();
  });

  it('apply CRD, apply/edit/re-apply a mirror, get with printer columns and jsonpath, delete', async () => {
    const applied = await kubectl('apply', '-f', crdPath);
    assert.match(applied.stdout, /customresourcedefinition.apiextensions.k8s.io\/imagemirrors.imagemirror.dev created/);
    const file = join(dir, 'mirror.yaml');
    await writeFile(file, mirrorYaml('1.4.2'));

    assert.match((await kubectl('apply', '-f', file)).stdout, /imagemirror.imagemirror.dev\/web created/);
    assert.equal(api.count('create', 'imagemirrors'), 1);
    const first = api.get<KObject & { metadata: { generation: number; annotations: Record<string, string> } }>('imagemirror.dev/v1alpha1', 'imagemirrors', 'team-a', 'web');
    assert.equal(first?.metadata.generation, 1);
    assert.ok(first?.metadata.annotations[LAST_APPLIED], 'client-side apply records last-applied');

    await writeFile(file, mirrorYaml('1.4.3'));
    assert.match((await kubectl('apply', '-f', file)).stdout, /imagemirror.imagemirror.dev\/web configured/);
    const patches = api.requests.filter((r) => r.verb === 'patch' && r.resource === 'imagemirrors');
    assert.deepEqual(patches.map((r) => [r.contentType, r.status]), [['application/merge-patch+json', 200]], 'a custom resource gets a merge patch');
    const second = api.get<KObject & { metadata: { generation: number }; spec: { source: { tags: string[] } } }>('imagemirror.dev/v1alpha1', 'ImageMirror', 'team-a', 'web');
    assert.deepEqual(second?.spec.source.tags, ['1.4.3']);
    assert.equal(second?.metadata.generation, 2);
    assert.match((await kubectl('apply', '-f', file)).stdout, /imagemirror.imagemirror.dev\/web unchanged/);

    // The controller's status, as it would patch it.
    const cur = second!;
    api.putObject({
      ...cur,
      status: {
        observedGeneration: 2,
        summary: '1/1 in sync',
        lastSyncTime: new Date(Date.now() - 90_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: '1 image, 1 target tag in sync', observedGeneration: 2, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }],
      },
    });

    const table = (await kubectl('get', 'imagemirrors', '-A')).stdout.trimEnd().split('\n');
    const crd = parse(await readFile(crdPath, 'utf8')) as { spec: { versions: { additionalPrinterColumns?: { name: string; priority?: number; jsonPath: string }[] }[] } };
    const cols = (crd.spec.versions[0]!.additionalPrinterColumns ?? []).filter((c) => !c.priority);
    const header = table[0]!.split(/\s{2,}/);
    assert.deepEqual(header, ['NAMESPACE', 'NAME', ...cols.map((c) => c.name.toUpperCase())]);
    assert.equal(table.length, 2);
    const row = table[1]!;
    assert.match(row, /^team-a\s+web\s/);
    if (cols.some((c) => c.jsonPath === '.spec.source.repository')) assert.ok(row.includes('registry.example.com:8221/dev/web'), row);
    if (cols.some((c) => c.jsonPath.includes('"Ready"') && c.jsonPath.endsWith('.status'))) assert.match(row, /\sTrue\s/);
    // date columns are rendered by the server as ages, like a real apiserver.
    if (cols.some((c) => c.jsonPath === '.status.lastSyncTime')) assert.match(row, /\s9\ds\s/);

    const byShortName = await kubectl('get', 'im', 'web', '-n', 'team-a', '-o', 'jsonpath={.spec.source.repository}');
    assert.equal(byShortName.stdout, 'registry.example.com:8221/dev/web');

    assert.match((await kubectl('delete', '-f', file)).stdout, /imagemirror.imagemirror.dev "web" deleted/);
    assert.equal(api.get('imagemirror.dev/v1alpha1', 'imagemirrors', 'team-a', 'web'), undefined);
    assert.match((await kubectl('get', 'imagemirrors', '-A')).stderr, /No resources found/);
  });

  it('kubectl get im shows Reason without -o wide, Suspended (and Message) only with it; the category is imagemirror, not all', async () => {
    await kubectl('apply', '-f', crdPath);
    const file = join(dir, 'mirror.yaml');
    await writeFile(file, `${mirrorYaml('1.4.2')}  suspend: true\n`);
    await kubectl('apply', '-f', file);
    const cur = api.get<KObject>('imagemirror.dev/v1alpha1', 'imagemirrors', 'team-a', 'web')!;
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    api.putObject({ ...cur, status: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'False', reason: 'AuthFailed', message: 'registry.example.com:8221 refused the credentials', observedGeneration: 1, lastTransitionTime: at }] } });

    const plain = (await kubectl('get', 'im', '-n', 'team-a')).stdout.trimEnd().split('\n');
    assert.deepEqual(plain[0]!.split(/\s{2,}/), ['NAME', 'READY', 'REASON', 'SOURCE', 'TARGETS', 'LAST SYNC', 'AGE']);
    assert.match(plain[1]!, /^web\s+False\s+AuthFailed\s+registry\.example\.com:8221\/dev\/web\s/);

    const wide = (await kubectl('get', 'im', '-n', 'team-a', '-o', 'wide')).stdout.trimEnd().split('\n');
    assert.deepEqual(wide[0]!.split(/\s{2,}/), ['NAME', 'READY', 'REASON', 'SOURCE', 'TARGETS', 'LAST SYNC', 'AGE', 'SUSPENDED', 'MESSAGE']);
    assert.match(wide[1]!, /\strue\s+registry\.example\.com:8221 refused the credentials$/);

    // The category: discovery lists it under imagemirror, not all; kubectl expands it (and keeps NAME working).
    assert.equal((await kubectl('api-resources', '--categories=imagemirror', '-o', 'name')).stdout.trim(), 'imagemirrors.imagemirror.dev');
    assert.doesNotMatch((await kubectl('api-resources', '--categories=all', '-o', 'name')).stdout, /imagemirror/);
    assert.match((await kubectl('get', 'imagemirror', 'web', '-n', 'team-a', '-o', 'name')).stdout, /^imagemirror\.imagemirror\.dev\/web$/m);
  });

  it('without /openapi/v2 kubectl apply needs --validate=false', async () => {
    api.options.openapi = false;
    await assert.rejects(kubectl('apply', '-f', crdPath), (e: Error & { stderr?: string }) => /failed to download openapi/.test(e.stderr ?? ''));
    assert.match((await kubectl('apply', '--validate=false', '-f', crdPath)).stdout, / created/);
    const file = join(dir, 'mirror.yaml');
    await writeFile(file, mirrorYaml('1.0'));
    assert.match((await kubectl('apply', '--validate=false', '-f', file)).stdout, /web created/);
  });

  it('the server rejects an invalid mirror with a 422 kubectl reports', async () => {
    await kubectl('apply', '-f', crdPath);
    const file = join(dir, 'bad.yaml');
    await writeFile(file, mirrorYaml('1.0').replace(/  targets:\n.*\n/, '  targets: []\n'));
    await assert.rejects(kubectl('apply', '-f', file), (e: Error & { stderr?: string }) => /is invalid/.test(e.stderr ?? '') && /spec.targets/.test(e.stderr ?? ''));
  });

  it('apply the ImageMirrorPolicy CRD and a policy (cluster-scoped), get it by short name with its columns; a bad glob is a 422', async () => {
    assert.match((await kubectl('apply', '-f', policyCrdPath())).stdout, /customresourcedefinition.apiextensions.k8s.io\/imagemirrorpolicies.imagemirror.dev created/);
    const file = join(dir, 'policy.yaml');
    const policyYaml = (target: string) => `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirrorPolicy
metadata: {name: team-a}
spec:
  namespaces: [team-a]
  sources: ["registry.example.com/dev/**"]
  targets: ["${target}"]
`;
    await writeFile(file, policyYaml('registry.example.com/staging/team-a/**'));
    assert.match((await kubectl('apply', '-f', file)).stdout, /imagemirrorpolicy.imagemirror.dev\/team-a created/);
    const stored = api.get<KObject & { spec: { targets: string[] } }>('imagemirror.dev/v1alpha1', 'imagemirrorpolicies', undefined, 'team-a');
    assert.deepEqual(stored?.spec.targets, ['registry.example.com/staging/team-a/**']);
    assert.equal(stored?.metadata?.namespace, undefined, 'cluster-scoped: no namespace');

    const table = (await kubectl('get', 'imp')).stdout.trimEnd().split('\n');
    assert.deepEqual(table[0]!.split(/\s{2,}/), ['NAME', 'NAMESPACES', 'SOURCES', 'TARGETS', 'AGE']);
    assert.match(table[1]!, /^team-a\s+\["team-a"\]\s+\["registry.example.com\/dev\/\*\*"\]\s+\["registry.example.com\/staging\/team-a\/\*\*"\]/);

    await writeFile(file, policyYaml('Registry.Example.com/x'));
    await assert.rejects(kubectl('apply', '-f', file), (e: Error & { stderr?: string }) => /is invalid/.test(e.stderr ?? '') && /spec.targets/.test(e.stderr ?? ''));
  });
});
