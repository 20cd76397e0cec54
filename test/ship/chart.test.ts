import { strict as assert } from 'node:assert';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { CHART_DIR, REPO_ROOT, checkValues, deploymentOf, find, renderChart, renderChartText, type K8sObject } from '../support/helm-render/render.js';

const KNOWN_KINDS = new Set([
  'v1/ServiceAccount',
  'v1/Service',
  'v1/ConfigMap',
  'apps/v1/Deployment',
  'policy/v1/PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding',
  'apiextensions.k8s.io/v1/CustomResourceDefinition',
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
]);
const MONITORING = 'monitoring.coreos.com/v1';

describe('ship: Helm chart', function () {
  this.timeout(240_000);
  let defaults: K8sObject[];

  before(async () => {
    defaults = await renderChart();
  });

  it('renders only known apiVersion/kind pairs, each with a name', async () => {
    const all = await renderChart({
      values: { replicaCount: 2, serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboards: { enabled: true }, podDisruptionBudget: { enabled: true } },
    });
    for (const o of [...defaults, ...all]) {
      assert.ok(KNOWN_KINDS.has(`${o.apiVersion}/${o.kind}`), `unexpected ${o.apiVersion}/${o.kind}`);
      assert.match(o.metadata?.name ?? '', /^[a-z0-9.-]+$/, `${o.kind} has a bad name`);
    }
    assert.deepEqual(
      [...new Set(all.map((o) => o.kind))].sort(),
      ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'CustomResourceDefinition', 'Deployment', 'PodDisruptionBudget', 'PrometheusRule', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'ServiceMonitor'],
    );
  });

  it('runs the controller hardened: non-root 65532, read-only root with /tmp emptyDir, no capabilities, RuntimeDefault seccomp', () => {
    const { pod, container } = deploymentOf(defaults);
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(container.securityContext, {
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] },
    });
    assert.deepEqual(container.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
    assert.ok(pod.volumes.some((v) => v.name === 'tmp' && v.emptyDir), 'no emptyDir volume for /tmp');
  });

  it('probes /healthz and /readyz on the http-metrics port and passes the controller flags', () => {
    const { container } = deploymentOf(defaults);
    assert.deepEqual(container.ports, [{ name: 'http-metrics', containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'http-metrics' });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'http-metrics' });
    assert.equal(container.image, 'ghcr.io/image-mirror-controller/image-mirror-controller:0.1.0');
    assert.deepEqual(container.args, [
      'controller', '--metrics-addr=:8080', '--concurrency=4', '--log-level=info', '--log-format=json',
      '--leader-elect', '--leader-elect-namespace=$(POD_NAMESPACE)', '--lease-duration=15s', '--renew-deadline=10s', '--retry-period=2s',
    ]);
    assert.ok(container.env?.some((e) => e.name === 'POD_NAMESPACE'), 'POD_NAMESPACE not set for $(POD_NAMESPACE)');
    const [svc] = find(defaults, 'Service');
    assert.deepEqual((svc!.spec as { ports: unknown[] }).ports, [{ name: 'http-metrics', port: 8080, targetPort: 'http-metrics', protocol: 'TCP' }]);
  });

  it('renders ServiceMonitor and PrometheusRule whenever enabled, without asking .Capabilities (helm template, Argo CD)', async () => {
    const on = { serviceMonitor: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } }, prometheusRule: { enabled: true } };
    const kinds = (objs: K8sObject[]) => objs.map((o) => o.kind).filter((k) => k === 'ServiceMonitor' || k === 'PrometheusRule').sort();
    assert.deepEqual(kinds(defaults), []);
    assert.deepEqual(kinds(await renderChart({ apiVersions: [MONITORING] })), [], 'rendered while disabled');
    // No API list at all, as `helm template` and Argo CD render: both objects are still there.
    const both = await renderChart({ values: on });
    assert.deepEqual(kinds(both), ['PrometheusRule', 'ServiceMonitor']);
    assert.deepEqual(kinds(await renderChart({ values: on, apiVersions: [MONITORING] })), ['PrometheusRule', 'ServiceMonitor']);
    const [sm] = find(both, 'ServiceMonitor');
    assert.equal(sm!.metadata.labels?.release, 'kube-prometheus-stack');
    assert.doesNotMatch(await renderChartText({ values: on, notes: true }), /WARNING|not rendered/);
  });

  it('ServiceMonitor: namespace, relabelings and metricRelabelings; it still scrapes the release namespace', async () => {
    const [plain] = find(await renderChart({ values: { serviceMonitor: { enabled: true } } }), 'ServiceMonitor');
    assert.equal(plain!.metadata.namespace, 'image-mirror-system');
    const endpoint = (o: K8sObject) => (o.spec as { endpoints: Array<Record<string, unknown>> }).endpoints[0]!;
    assert.deepEqual(Object.keys(endpoint(plain!)).sort(), ['honorLabels', 'interval', 'path', 'port', 'scrapeTimeout'], 'empty relabelings rendered');
    assert.equal(endpoint(plain!).honorLabels, true, 'the mirror namespace/name labels are kept, not renamed exported_namespace');
    const relabelings = [{ action: 'replace', sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }];
    const metricRelabelings = [{ action: 'drop', sourceLabels: ['__name__'], regex: 'nodejs_gc_.*' }];
    const [sm] = find(
      await renderChart({ namespace: 'ops', values: { serviceMonitor: { enabled: true, namespace: 'monitoring', relabelings, metricRelabelings } } }),
      'ServiceMonitor',
    );
    assert.equal(sm!.metadata.namespace, 'monitoring');
    assert.deepEqual((sm!.spec as { namespaceSelector: unknown }).namespaceSelector, { matchNames: ['ops'] });
    assert.deepEqual(endpoint(sm!).relabelings, relabelings);
    assert.deepEqual(endpoint(sm!).metricRelabelings, metricRelabelings);
  });

  it('nameOverride and fullnameOverride name the objects; commonLabels land on every object and the pods but never replace the selector labels', async () => {
    const named = await renderChart({ name: 'prod', values: { nameOverride: 'mirror' } });
    assert.equal(find(named, 'Deployment')[0]!.metadata.name, 'prod-mirror');
    assert.equal(find(named, 'Deployment')[0]!.metadata.labels?.['app.kubernetes.io/name'], 'mirror');
    const objs = await renderChart({
      values: {
        fullnameOverride: 'mirrors',
        commonLabels: { team: 'platform', 'app.kubernetes.io/name': 'clash' },
        podLabels: { team: 'mirrors-pod' },
        serviceMonitor: { enabled: true, additionalLabels: { team: 'observability' } },
        prometheusRule: { enabled: true },
        dashboards: { enabled: true },
      },
    });
    const names = objs.filter((o) => o.kind !== 'CustomResourceDefinition').map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(names, [
      'ClusterRole/mirrors', 'ClusterRole/mirrors-policies', 'ClusterRoleBinding/mirrors', 'ClusterRoleBinding/mirrors-policies',
      'ConfigMap/mirrors-dashboard', 'Deployment/mirrors', 'PrometheusRule/mirrors', 'Role/mirrors-leader-election',
      'RoleBinding/mirrors-leader-election', 'Service/mirrors-metrics', 'ServiceAccount/mirrors', 'ServiceMonitor/mirrors',
    ]);
    for (const o of objs) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'image-mirror-controller', `${o.kind}: commonLabels replaced a chart label`);
      const team = o.kind === 'ServiceMonitor' ? 'observability' : 'platform';
      assert.equal(o.metadata.labels?.team, team, `${o.kind} ${o.metadata.name} lacks commonLabels`);
    }
    const dep = find(objs, 'Deployment')[0]!.spec as { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } };
    assert.equal(dep.template.metadata.labels.team, 'mirrors-pod', 'podLabels do not win over commonLabels on the pods');
    for (const [k, v] of Object.entries(dep.selector.matchLabels)) assert.equal(dep.template.metadata.labels[k], v, `pod label ${k} no longer matches the selector`);
    // A name at the 63-character limit: the Service ("-metrics" included) must still be a DNS label.
    const long = 'a'.repeat(63);
    const [svc] = find(await renderChart({ values: { fullnameOverride: long } }), 'Service');
    assert.match(svc!.metadata.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, svc!.metadata.name);
    assert.match(await renderChartText({ values: { fullnameOverride: long }, notes: true }), new RegExp(`svc/${svc!.metadata.name} `));
  });

  it('revisionHistoryLimit reaches the Deployment (10, the Kubernetes default, unless set)', async () => {
    const limit = (objs: K8sObject[]) => (find(objs, 'Deployment')[0]!.spec as { revisionHistoryLimit?: number }).revisionHistoryLimit;
    assert.equal(limit(defaults), 10);
    assert.equal(limit(await renderChart({ values: { revisionHistoryLimit: 2 } })), 2);
    assert.equal(limit(await renderChart({ values: { revisionHistoryLimit: 0 } })), 0);
  });

  it('PodDisruptionBudget: none with one replica (it would block every drain; NOTES says so), minAvailable by default, maxUnavailable instead when set', async () => {
    const pdb = async (values: Record<string, unknown>) => find(await renderChart({ values }), 'PodDisruptionBudget').map((p) => p.spec as Record<string, unknown>);
    assert.deepEqual(await pdb({ podDisruptionBudget: { enabled: true } }), [], 'a PDB with one replica');
    assert.deepEqual(await pdb({ replicaCount: 1, podDisruptionBudget: { enabled: true, maxUnavailable: 0 } }), [], 'a PDB with one replica');
    assert.match(await renderChartText({ values: { podDisruptionBudget: { enabled: true } }, notes: true }), /No PodDisruptionBudget was created/);
    assert.doesNotMatch(await renderChartText({ values: { replicaCount: 2, podDisruptionBudget: { enabled: true } }, notes: true }), /PodDisruptionBudget/);
    assert.deepEqual(await pdb({ replicaCount: 2 }), [], 'rendered while disabled');
    const selector = { matchLabels: { 'app.kubernetes.io/name': 'image-mirror-controller', 'app.kubernetes.io/instance': 'image-mirror-controller' } };
    assert.deepEqual(await pdb({ replicaCount: 2, podDisruptionBudget: { enabled: true } }), [{ minAvailable: 1, selector }]);
    assert.deepEqual(await pdb({ replicaCount: 3, podDisruptionBudget: { enabled: true, maxUnavailable: 1 } }), [{ maxUnavailable: 1, selector }]);
    assert.deepEqual(await pdb({ replicaCount: 3, podDisruptionBudget: { enabled: true, maxUnavailable: '50%' } }), [{ maxUnavailable: '50%', selector }]);
    assert.deepEqual(await pdb({ replicaCount: 3, podDisruptionBudget: { enabled: true, maxUnavailable: 0 } }), [{ maxUnavailable: 0, selector }]);
  });

  it('the renderer refuses values the schema refuses, as helm does (so every render above also checked its values)', async () => {
    await assert.rejects(renderChart({ values: { replicas: 2 } }), /values\.schema\.json: \/: must NOT have additional properties \(replicas\)/);
    await assert.rejects(renderChart({ values: { podDisruptionBudget: { maxUnavailable: 'half' } } }), /\/podDisruptionBudget\/maxUnavailable/);
    assert.doesNotThrow(() => checkValues({ image: { digest: `sha256:${'0'.repeat(64)}` } }), 'overrides are merged onto values.yaml before the check');
  });

  it('maps non-default values onto the Deployment', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const objs = await renderChart({
      name: 'mirrors',
      namespace: 'ops',
      values: {
        image: { repository: 'registry.example.com/imc', digest, pullPolicy: 'Always' },
        replicaCount: 2,
        leaderElection: { leaseDuration: '30s' },
        watchNamespaces: ['team-a', 'team-b'],
        labelSelector: 'mirror=yes',
        concurrency: 8,
        logLevel: 'debug',
        logFormat: 'text',
        extraArgs: ['--something=1'],
        extraEnv: [{ name: 'HTTPS_PROXY', value: 'http://proxy:3128' }],
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [{ key: 'dedicated', operator: 'Exists' }],
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }],
        metrics: { port: 9090 },
        podDisruptionBudget: { enabled: true, minAvailable: 1 },
      },
    });
    const { replicas, pod, container } = deploymentOf(objs);
    assert.equal(replicas, 2);
    assert.equal(container.image, `registry.example.com/imc@${digest}`);
    for (const a of ['--namespace=team-a', '--namespace=team-b', '--selector=mirror=yes', '--concurrency=8', '--log-level=debug', '--log-format=text', '--lease-duration=30s', '--renew-deadline=10s', '--metrics-addr=:9090', '--something=1']) {
      assert.ok(container.args.includes(a), `missing ${a} in ${container.args.join(' ')}`);
    }
    assert.ok(container.env?.some((e) => e.name === 'HTTPS_PROXY'));
    assert.equal(container.ports[0]!.containerPort, 9090);
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pod.tolerations?.length, 1);
    assert.equal(pod.topologySpreadConstraints?.length, 1);
    assert.equal(pod.serviceAccountName, 'mirrors-image-mirror-controller');
    assert.equal(find(objs, 'PodDisruptionBudget').length, 1);
    // Watching named namespaces: a Role in each watched namespace; cluster-wide only the read of
    // cluster-scoped ImageMirrorPolicies.
    const clusterRoles = find(objs, 'ClusterRole') as unknown as Array<{ metadata: { name: string }; rules: unknown[] }>;
    assert.deepEqual(
      clusterRoles.map((r) => [r.metadata.name, r.rules]),
      [['mirrors-image-mirror-controller-policies', [{ apiGroups: ['imagemirror.dev'], resources: ['imagemirrorpolicies'], verbs: ['list', 'watch'] }]]],
    );
    const roles = find(objs, 'Role').map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort();
    assert.deepEqual(roles, ['ops/mirrors-image-mirror-controller-leader-election', 'team-a/mirrors-image-mirror-controller', 'team-b/mirrors-image-mirror-controller']);
    for (const rb of find(objs, 'RoleBinding')) {
      assert.deepEqual((rb as unknown as { subjects: unknown[] }).subjects, [{ kind: 'ServiceAccount', name: 'mirrors-image-mirror-controller', namespace: 'ops' }]);
    }
  });

  it('cloud identity: service account annotations, pod labels (Entra Workload ID) and --cloud-credentials', async () => {
    assert.ok(!deploymentOf(defaults).container.args.some((a) => a.startsWith('--cloud-credentials')), 'no cloud provider allowed by default');
    const objs = await renderChart({
      values: {
        serviceAccount: { annotations: { 'azure.workload.identity/client-id': '5b8e6f6a-0b1c-4d2e-9f3a-6c7d8e9f0a1b', 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/image-mirror' } },
        podLabels: { 'azure.workload.identity/use': 'true' },
        cloudCredentials: ['aws', 'azure'],
      },
    });
    const [sa] = find(objs, 'ServiceAccount');
    assert.deepEqual(sa!.metadata.annotations, {
      'azure.workload.identity/client-id': '5b8e6f6a-0b1c-4d2e-9f3a-6c7d8e9f0a1b',
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/image-mirror',
    });
    const dep = find(objs, 'Deployment')[0] as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } };
    assert.equal(dep.spec.template.metadata.labels['azure.workload.identity/use'], 'true');
    assert.ok(deploymentOf(objs).container.args.includes('--cloud-credentials=aws,azure'), deploymentOf(objs).container.args.join(' '));
  });

  it('private CAs and client certificates: a Secret mounted read-only at /etc/containers/certs.d with per-host paths; extra volumes and mounts', async () => {
    assert.deepEqual(deploymentOf(defaults).container.volumeMounts.map((m) => m.mountPath), ['/tmp'], 'nothing mounted by default');
    const objs = await renderChart({
      values: {
        certs: { secretName: 'registry-certs', items: [{ key: 'reg.example.com_ca.crt', path: 'reg.example.com/ca.crt' }] },
        extraVolumes: [{ name: 'extra', configMap: { name: 'x' } }],
        extraVolumeMounts: [{ name: 'extra', mountPath: '/etc/extra' }],
      },
    });
    const { pod, container } = deploymentOf(objs);
    const mount = container.volumeMounts.find((m) => m.mountPath === '/etc/containers/certs.d') as { name: string; readOnly?: boolean } | undefined;
    assert.ok(mount, JSON.stringify(container.volumeMounts));
    assert.equal(mount.readOnly, true);
    const vol = pod.volumes.find((v) => v.name === mount.name) as { secret?: { secretName: string; items?: Array<{ key: string; path: string }> } } | undefined;
    assert.deepEqual(vol?.secret, { secretName: 'registry-certs', items: [{ key: 'reg.example.com_ca.crt', path: 'reg.example.com/ca.crt' }] });
    assert.ok(pod.volumes.some((v) => v.name === 'extra'));
    assert.ok(container.volumeMounts.some((m) => m.mountPath === '/etc/extra'));
  });

  it('without leader election: no Lease Role, --leader-elect=false, and more than one replica is refused', async () => {
    const objs = await renderChart({ values: { leaderElection: { enabled: false } } });
    assert.equal(find(objs, 'Role').length, 0);
    assert.ok(deploymentOf(objs).container.args.includes('--leader-elect=false'));
    await assert.rejects(renderChart({ values: { replicaCount: 3, leaderElection: { enabled: false } } }), /replicaCount > 1 needs leaderElection\.enabled/);
  });

  it('honours rbac.create=false, serviceAccount.create=false (name required) and installCRDs=false', async () => {
    const objs = await renderChart({ values: { rbac: { create: false }, serviceAccount: { create: false, name: 'existing' }, installCRDs: false } });
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['Deployment', 'Service']);
    assert.equal(deploymentOf(objs).pod.serviceAccountName, 'existing');
    await assert.rejects(renderChart({ values: { serviceAccount: { create: false } } }), /serviceAccount\.name is required/);
  });

  for (const file of ['imagemirror.yaml', 'imagemirrorpolicy.yaml']) {
    it(`ships the CRD from crds/${file} unchanged (plus keep-on-uninstall)`, async () => {
      const source = await readFile(join(REPO_ROOT, 'crds', file), 'utf8');
      assert.equal(await readFile(join(CHART_DIR, 'files', 'crds', file), 'utf8'), source, `charts/.../files/crds/${file} differs from crds/${file}: copy it again`);
      const name = (parse(source) as K8sObject).metadata.name;
      const crd = find(defaults, 'CustomResourceDefinition').find((c) => c.metadata.name === name);
      assert.ok(crd, `CRD ${name} not rendered with installCRDs=true`);
      assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
      const expected = parse(source) as K8sObject;
      const strip = (o: K8sObject) => {
        const c = structuredClone(o);
        delete c.metadata.annotations?.['helm.sh/resource-policy'];
        if (c.metadata.annotations && Object.keys(c.metadata.annotations).length === 0) delete c.metadata.annotations;
        delete c.metadata.labels;
        return c;
      };
      assert.deepEqual(strip(crd), strip(expected));
    });
  }

  it('NOTES.txt tells how to check the install', async () => {
    const notes = await renderChartText({ notes: true });
    assert.match(notes, /kubectl get imagemirrors -A/);
    assert.match(notes, /port-forward svc\/image-mirror-controller-metrics 8080/);
    assert.doesNotMatch(notes, /WARNING|PodDisruptionBudget/);
  });
});

describe('ship: chart values', () => {
  let values: Record<string, unknown>;
  let schema: Record<string, unknown>;
  before(async () => {
    values = parse(await readFile(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    schema = JSON.parse(await readFile(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
  });

  it('every .Values path a template reads exists in values.yaml and values.schema.json', async () => {
    const dir = join(CHART_DIR, 'templates');
    const used = new Set<string>();
    for (const f of await readdir(dir)) {
      const text = await readFile(join(dir, f), 'utf8');
      for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) used.add(m[1]!.slice(1));
    }
    assert.ok(used.size > 20, `only ${used.size} value paths found: the scan is broken`);
    for (const path of used) {
      let v: unknown = values;
      let s: Record<string, unknown> | undefined = schema;
      for (const key of path.split('.')) {
        assert.ok(v !== null && typeof v === 'object' && key in (v as object), `.Values.${path} is not in values.yaml`);
        v = (v as Record<string, unknown>)[key];
        s = (s?.properties as Record<string, Record<string, unknown>> | undefined)?.[key];
        assert.ok(s, `.Values.${path} is not in values.schema.json`);
      }
    }
  });

  it('every top-level value is described by the schema, which accepts values.yaml', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    assert.ok(validate(values), `values.yaml fails its schema: ${ajv.errorsText(validate.errors)}`);
    const props = Object.keys(schema.properties as object).sort();
    assert.deepEqual(Object.keys(values).sort(), props);
  });

  it('the schema rejects typos and wrong types', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const bad: Array<[string, Record<string, unknown>]> = [
      ['replicaCount as a string', { replicaCount: 'two' }],
      ['unknown top-level key', { replicas: 2 }],
      ['unknown nested key', { serviceMonitor: { enable: true } }],
      ['bad logFormat', { logFormat: 'yaml' }],
      ['bad duration', { leaderElection: { leaseDuration: '15 seconds' } }],
      ['bad digest', { image: { repository: 'x', digest: 'latest' } }],
      ['concurrency 0', { concurrency: 0 }],
      ['unknown cloud provider', { cloudCredentials: ['alibaba'] }],
      ['cloud provider twice', { cloudCredentials: ['gcp', 'gcp'] }],
      ['cloudCredentials as a string', { cloudCredentials: 'aws,gcp' }],
      ['fullnameOverride not a DNS label', { fullnameOverride: 'Mirror_Controller' }],
      ['nameOverride too long', { nameOverride: 'a'.repeat(64) }],
      ['commonLabels value not a string', { commonLabels: { tier: 1 } }],
      ['negative revisionHistoryLimit', { revisionHistoryLimit: -1 }],
      ['maxUnavailable neither a number nor a percentage', { podDisruptionBudget: { maxUnavailable: 'one' } }],
      ['minAvailable a negative number', { podDisruptionBudget: { minAvailable: -1 } }],
      ['relabelings as one object', { serviceMonitor: { relabelings: { action: 'drop' } } }],
      ['serviceMonitor.namespace with a slash', { serviceMonitor: { namespace: 'a/b' } }],
    ];
    for (const [what, patch] of bad) {
      assert.equal(validate({ ...values, ...patch }), false, `${what} was accepted`);
    }
  });
});
