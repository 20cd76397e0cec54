import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CHART_DIR, REPO_ROOT, deploymentOf, find, kustomize, renderChart, type K8sObject } from '../support/helm-render/render.js';

const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

describe('ship: kustomize install (deploy/)', function () {
  this.timeout(240_000);
  let deploy: K8sObject[];
  let chart: K8sObject[];

  before(async () => {
    [deploy, chart] = await Promise.all([kustomize(join(REPO_ROOT, 'deploy')), renderChart()]);
  });

  it('renders the namespace, CRD, RBAC, Deployment and Service, all in image-mirror-system', () => {
    assert.deepEqual(deploy.map(key).sort(), [
      'ClusterRole//image-mirror-controller',
      'ClusterRole//image-mirror-controller-policies',
      'ClusterRoleBinding//image-mirror-controller',
      'ClusterRoleBinding//image-mirror-controller-policies',
      'CustomResourceDefinition//imagemirrorpolicies.imagemirror.dev',
      'CustomResourceDefinition//imagemirrors.imagemirror.dev',
      'Deployment/image-mirror-system/image-mirror-controller',
      'Namespace//image-mirror-system',
      'Role/image-mirror-system/image-mirror-controller-leader-election',
      'RoleBinding/image-mirror-system/image-mirror-controller-leader-election',
      'Service/image-mirror-system/image-mirror-controller-metrics',
      'ServiceAccount/image-mirror-system/image-mirror-controller',
    ]);
  });

  it('has the same objects as the chart default render (the chart does not create the namespace)', () => {
    assert.deepEqual(deploy.filter((o) => o.kind !== 'Namespace').map(key).sort(), chart.map(key).sort());
    for (const kind of ['ClusterRole', 'Role']) {
      for (const o of find(deploy, kind)) {
        const twin = chart.find((c) => key(c) === key(o));
        assert.deepEqual(o.rules, twin?.rules, `${key(o)} rules differ from the chart`);
      }
    }
    for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
      for (const o of find(deploy, kind)) {
        const twin = chart.find((c) => key(c) === key(o));
        assert.deepEqual([o.roleRef, o.subjects], [twin?.roleRef, twin?.subjects], `${key(o)} differs from the chart`);
      }
    }
    const [ds] = find(deploy, 'Service');
    const [cs] = find(chart, 'Service');
    assert.deepEqual(ds!.spec, cs!.spec);
  });

  it('runs the same container as the chart: image, args, env, probes, ports, resources, securityContext, volumes', () => {
    const k = deploymentOf(deploy);
    const h = deploymentOf(chart);
    assert.equal(k.replicas, h.replicas);
    assert.deepEqual(k.pod.securityContext, h.pod.securityContext);
    assert.deepEqual(k.pod.volumes, h.pod.volumes);
    assert.equal(k.pod.serviceAccountName, h.pod.serviceAccountName);
    assert.equal(k.pod.terminationGracePeriodSeconds, h.pod.terminationGracePeriodSeconds);
    assert.deepEqual(k.container, h.container);
    const dep = find(deploy, 'Deployment')[0]!;
    const hdep = find(chart, 'Deployment')[0]!;
    assert.deepEqual((dep.spec as { selector: unknown }).selector, (hdep.spec as { selector: unknown }).selector);
    const limit = (o: K8sObject) => (o.spec as { revisionHistoryLimit?: number }).revisionHistoryLimit;
    assert.equal(limit(dep), limit(hdep), 'revisionHistoryLimit differs from the chart');
  });

  for (const file of ['imagemirror.yaml', 'imagemirrorpolicy.yaml']) {
    it(`carries crds/${file} unchanged`, async () => {
      const source = await readFile(join(REPO_ROOT, 'crds', file), 'utf8');
      assert.equal(await readFile(join(REPO_ROOT, 'deploy', 'crds', file), 'utf8'), source, `deploy/crds/${file} differs from crds/${file}: copy it again`);
      const expected = parse(source) as K8sObject;
      const crd = find(deploy, 'CustomResourceDefinition').find((c) => c.metadata.name === expected.metadata.name);
      assert.ok(crd, `${expected.metadata.name} not in deploy/`);
      const { labels: _l, ...meta } = crd.metadata;
      const { labels: _e, ...expectedMeta } = expected.metadata;
      assert.deepEqual({ ...crd, metadata: meta }, { ...expected, metadata: expectedMeta });
    });
  }

  it('deploy/monitoring matches the chart: same ServiceMonitor, rules and dashboard', async () => {
    const mon = await kustomize(join(REPO_ROOT, 'deploy', 'monitoring'));
    assert.deepEqual(mon.map(key).sort(), [
      'ConfigMap/image-mirror-system/image-mirror-controller-dashboard',
      'PrometheusRule/image-mirror-system/image-mirror-controller',
      'ServiceMonitor/image-mirror-system/image-mirror-controller',
    ]);
    const chartMon = await renderChart({
      values: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboards: { enabled: true } },
    });
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) {
      assert.deepEqual(find(mon, kind)[0]!.spec, find(chartMon, kind)[0]!.spec, `${kind} spec differs from the chart`);
    }
    const rules = parse(await readFile(join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8')) as unknown;
    assert.deepEqual(find(mon, 'PrometheusRule')[0]!.spec, rules);

    const dashboard = await readFile(join(CHART_DIR, 'files', 'dashboards', 'image-mirror-controller.json'), 'utf8');
    assert.equal(await readFile(join(REPO_ROOT, 'deploy', 'monitoring', 'dashboards', 'image-mirror-controller.json'), 'utf8'), dashboard);
    const data = (o: K8sObject) => (o as unknown as { data: Record<string, string> }).data['image-mirror-controller.json'];
    const cm = find(mon, 'ConfigMap')[0]!;
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    assert.deepEqual(JSON.parse(data(cm)!), JSON.parse(dashboard));
    assert.deepEqual(JSON.parse(data(find(chartMon, 'ConfigMap')[0]!)!), JSON.parse(dashboard));
  });
});
