import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { CONTROLLER_API_CALLS } from '../../src/controller/rbac.js';
import { REPO_ROOT, find, kustomize, renderChart, type K8sObject } from '../support/helm-render/render.js';

interface ApiCall {
  group: string;
  resource: string;
  verbs: string[];
  namespaced?: boolean;
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

// Leader election is the one call made only in the controller's own namespace (a Role there);
// cluster-scoped resources (ImageMirrorPolicies) are read cluster-wide whatever is watched (a
// ClusterRole); everything else is made in the watched namespaces (a ClusterRole, or a Role per
// watched namespace).
const CONTROLLER_NAMESPACE_ONLY = new Set(['coordination.k8s.io/leases']);

/** `scope|group|resource|verb` for every permission; scope is `cluster` or the Role's namespace. */
function granted(objs: K8sObject[]): string[] {
  const out = new Set<string>();
  for (const o of [...find(objs, 'ClusterRole'), ...find(objs, 'Role')]) {
    const scope = o.kind === 'ClusterRole' ? 'cluster' : `ns:${o.metadata.namespace}`;
    for (const r of (o as unknown as { rules: Rule[] }).rules) {
      assert.ok(!r.resourceNames && !r.nonResourceURLs, `${o.kind} ${o.metadata.name}: unexpected resourceNames/nonResourceURLs`);
      for (const g of r.apiGroups ?? []) {
        for (const res of r.resources ?? []) {
          for (const v of r.verbs ?? []) {
            assert.ok(g !== '*' && res !== '*' && v !== '*', `${o.kind} ${o.metadata.name} grants a wildcard`);
            out.add(`${scope}|${g}|${res}|${v}`);
          }
        }
      }
    }
  }
  return [...out].sort();
}

function expected(calls: ApiCall[], controllerNs: string, watched: string[] = []): string[] {
  const out = new Set<string>();
  for (const c of calls) {
    const scopes = CONTROLLER_NAMESPACE_ONLY.has(`${c.group}/${c.resource}`)
      ? [`ns:${controllerNs}`]
      : c.namespaced === false || !watched.length
        ? ['cluster']
        : watched.map((n) => `ns:${n}`);
    for (const s of scopes) for (const v of c.verbs) out.add(`${s}|${c.group}|${c.resource}|${v}`);
  }
  return [...out].sort();
}

describe('ship: RBAC is exactly what the controller calls', function () {
  this.timeout(240_000);
  const calls: ApiCall[] = CONTROLLER_API_CALLS;

  it('CONTROLLER_API_CALLS covers the calls the design names', () => {
    const flat = expected(calls, 'x');
    for (const need of ['cluster|imagemirror.dev|imagemirrors|list', 'cluster|imagemirror.dev|imagemirrors|watch', 'cluster|imagemirror.dev|imagemirrors/status|patch', 'cluster||secrets|get', 'cluster||events|create', 'ns:x|coordination.k8s.io|leases|update', 'cluster|imagemirror.dev|imagemirrorpolicies|list', 'cluster|imagemirror.dev|imagemirrorpolicies|watch']) {
      assert.ok(flat.includes(need), `CONTROLLER_API_CALLS lacks ${need}`);
    }
  });

  it('deploy/ grants every call and nothing more', async () => {
    const objs = await kustomize(join(REPO_ROOT, 'deploy'));
    assert.deepEqual(granted(objs), expected(calls, 'image-mirror-system'));
  });

  it('the chart (default values) grants every call and nothing more', async () => {
    assert.deepEqual(granted(await renderChart({ namespace: 'ops' })), expected(calls, 'ops'));
  });

  it('the chart watching named namespaces grants them per namespace, cluster-wide only the cluster-scoped policies', async () => {
    const objs = await renderChart({ namespace: 'ops', values: { watchNamespaces: ['team-a', 'team-b'] } });
    assert.deepEqual(granted(objs), expected(calls, 'ops', ['team-a', 'team-b']));
  });

  it('every Role/ClusterRole is bound to the controller ServiceAccount', async () => {
    for (const objs of [await kustomize(join(REPO_ROOT, 'deploy')), await renderChart()]) {
      const roles = [...find(objs, 'ClusterRole'), ...find(objs, 'Role')].map((r) => `${r.kind}/${r.metadata.name}`).sort();
      const bound = [...find(objs, 'ClusterRoleBinding'), ...find(objs, 'RoleBinding')].map((b) => {
        const rb = b as unknown as { roleRef: { kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }> };
        assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: 'image-mirror-controller', namespace: 'image-mirror-system' }]);
        return `${rb.roleRef.kind}/${rb.roleRef.name}`;
      });
      assert.deepEqual(bound.sort(), roles);
    }
  });
});
