import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Summary } from 'prom-client';
import { parse, stringify } from 'yaml';
import { METRIC_NAMES, Metrics } from '../../src/metrics.js';
import { WEBHOOK_METRIC_NAMES, webhookMetrics } from '../../src/hooks/metrics.js';
import { CHART_DIR, REPO_ROOT } from '../support/helm-render/render.js';

const IDENT = /\b((?:imagemirror|workqueue|process|nodejs)_[A-Za-z0-9_]*)\b/g;

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Every series name our process exports: registered metrics plus histogram/summary suffixes. */
async function exportedSeries(): Promise<Set<string>> {
  const m = new Metrics({ defaultMetrics: true, controller: true });
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(metric.name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(metric.name + s);
  }
  return names;
}

function identifiers(expr: string): string[] {
  return [...expr.matchAll(IDENT)].map((m) => m[1]!);
}

async function alertRules(): Promise<Rule[]> {
  const spec = parse(await readFile(join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return spec.groups.flatMap((g) => g.rules);
}

interface Panel {
  title: string;
  targets: Array<{ expr: string; refId: string }>;
  fieldConfig?: { defaults?: { unit?: string }; overrides?: Array<{ matcher: { id: string; options: string }; properties: Array<{ id: string; value: unknown }> }> };
}

async function dashboard(): Promise<{ panels: Panel[]; templating: { list: Array<{ query?: unknown }> } }> {
  return JSON.parse(await readFile(join(CHART_DIR, 'files', 'dashboards', 'image-mirror-controller.json'), 'utf8')) as {
    panels: Panel[];
    templating: { list: Array<{ query?: unknown }> };
  };
}

async function dashboardExprs(): Promise<string[]> {
  const dash = await dashboard();
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
  for (const v of dash.templating.list) if (typeof v.query === 'string') exprs.push(v.query);
  return exprs;
}

describe('ship: alerts and dashboard use only metrics the controller exports', () => {
  let series: Set<string>;
  before(async () => {
    series = await exportedSeries();
    assert.ok(series.has('imagemirror_sync_duration_seconds_bucket') && series.has('process_resident_memory_bytes'), 'metric discovery is broken');
  });

  it('every metric in an alert expression is registered by src/metrics.ts', async () => {
    const rules = await alertRules();
    assert.ok(rules.length >= 4);
    for (const r of rules) {
      const ids = identifiers(r.expr);
      assert.ok(ids.length > 0, `${r.alert}: no metric found in its expression`);
      for (const id of ids) assert.ok(series.has(id), `${r.alert} uses ${id}, which src/metrics.ts does not export`);
    }
  });

  it('alerts cover not-ready mirrors (30m, each named), failing syncs, registry 429/5xx and a growing queue, each with severity and a summary', async () => {
    const rules = await alertRules();
    const byName = new Map(rules.map((r) => [r.alert, r]));
    const notReady = byName.get('ImageMirrorNotReady');
    // One alert per mirror: the per-mirror series, grouped by the mirror, its name in the summary.
    assert.match(notReady?.expr ?? '', /^max by \(namespace, exported_namespace, name\) \(imagemirror_mirror_ready\) == 0$/);
    assert.match(notReady?.annotations?.summary ?? '', /\{\{ or \$labels\.exported_namespace \$labels\.namespace \}\}\/\{\{ \$labels\.name \}\}/);
    assert.equal(notReady?.for, '30m');
    assert.match(byName.get('ImageMirrorSyncErrors')?.expr ?? '', /imagemirror_target_syncs_total\{result="failed"\}/);
    assert.match(byName.get('ImageMirrorRegistryErrors')?.expr ?? '', /imagemirror_registry_requests_total\{code=~"429\|5\.\."\}/);
    assert.match(byName.get('ImageMirrorWorkQueueGrowing')?.expr ?? '', /imagemirror_workqueue_depth/);
    for (const r of rules) {
      assert.ok(r.labels?.severity, `${r.alert} has no severity`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert} lacks summary/description`);
      assert.match(r.for ?? '', /^\d+[smh]$/, `${r.alert} has no 'for'`);
    }
  });

  it('label values used in alert and dashboard matchers are ones the code emits', async () => {
    const exprs = [...(await alertRules()).map((r) => r.expr), ...(await dashboardExprs())];
    const allowed: Record<string, RegExp> = {
      ready: /^(True|False|Unknown)$/,
      result: /^(up_to_date|retagged|copied|conflict|failed)$/,
      method: /^(exists|mount|retag)$/,
      action: /^(exists|mount|upload)$/,
    };
    for (const e of exprs) {
      for (const m of e.matchAll(/\b(ready|result|method|action)="([^"]*)"/g)) {
        assert.match(m[2]!, allowed[m[1]!]!, `${m[0]} in: ${e}`);
      }
    }
  });

  it('every dashboard query uses only exported metrics, and the panels cover the design', async () => {
    const exprs = await dashboardExprs();
    const used = new Set(exprs.flatMap(identifiers));
    for (const id of used) assert.ok(series.has(id), `dashboard uses ${id}, which src/metrics.ts does not export`);
    for (const need of [
      'imagemirror_bytes_saved_total',
      'imagemirror_bytes_copied_total',
      'imagemirror_target_syncs_total',
      'imagemirror_sync_duration_seconds_bucket',
      'imagemirror_registry_requests_total',
      'imagemirror_workqueue_depth',
      'imagemirror_mirrors',
      'imagemirror_mirror_ready',
      'imagemirror_mirror_last_success_timestamp_seconds',
      'imagemirror_build_info',
    ]) {
      assert.ok(used.has(need), `dashboard has no panel on ${need}`);
    }
    assert.ok(exprs.some((e) => /sum by \(method\) \(.*imagemirror_bytes_saved_total/.test(e)), 'no bytes-saved-by-method panel');
    assert.ok(exprs.some((e) => /histogram_quantile\(0\.99/.test(e)), 'no sync duration quantiles');
  });

  it('the "memory and CPU" panel shows CPU: a rate of process_cpu_seconds_total, in cores on its own axis', async () => {
    const panel = (await dashboard()).panels.find((p) => /memory and CPU/i.test(p.title));
    assert.ok(panel, 'no "memory and CPU" panel');
    const cpu = panel.targets.find((t) => /process_cpu_seconds_total/.test(t.expr));
    assert.ok(cpu, `the panel has no CPU query: ${panel.targets.map((t) => t.expr).join(', ')}`);
    assert.match(cpu.expr, /^rate\(process_cpu_seconds_total\{job=~"\$job"\}\[\$__rate_interval\]\)$/, 'CPU seconds are a counter: plot their rate');
    assert.ok(panel.targets.some((t) => /process_resident_memory_bytes/.test(t.expr)), 'memory is gone from the panel');
    // The panel's unit is bytes; CPU needs its own, or 0.05 cores reads as "50 mB".
    const override = panel.fieldConfig?.overrides?.find((o) => o.matcher.id === 'byFrameRefID' && o.matcher.options === cpu.refId);
    const props = new Map(override?.properties.map((p) => [p.id, p.value]));
    assert.equal(panel.fieldConfig?.defaults?.unit, 'bytes');
    assert.ok(props.has('unit') && props.get('unit') !== 'bytes', 'the CPU series is drawn in bytes');
    assert.equal(props.get('custom.axisPlacement'), 'right');
  });

  it('docs/metrics.md documents every registered metric with its labels', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'metrics.md'), 'utf8');
    const m = new Metrics({ controller: true });
    for (const metric of await m.registry.getMetricsAsJSON()) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${metric.name}\``));
      assert.ok(row, `docs/metrics.md has no table row for ${metric.name}`);
      const labels = (m.registry.getSingleMetric(metric.name) as unknown as { labelNames?: string[] }).labelNames ?? [];
      for (const l of labels) assert.ok(row.includes(`\`${l}\``), `docs/metrics.md: ${metric.name} row does not name label ${l}`);
    }
    for (const name of METRIC_NAMES) assert.ok(doc.includes(`\`${name}\``), `docs/metrics.md does not mention ${name}`);
  });
});

/** Runs promtool with stdin; resolves with its exit code and everything it printed. */
function promtool(args: string[], stdin = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(stdin);
  });
}

/**
 * promtool's lint findings on prom-client's own default metrics: gauges named *_total, names any
 * Node.js dashboard already queries, so they stay as prom-client exports them. Any other finding
 * fails the test.
 */
const PROM_CLIENT_LINT = new Set([
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
]);

/** The /metrics exposition with every metric of ours holding a series (an empty family is not checked). */
async function fullExposition(): Promise<string> {
  const m = new Metrics({ defaultMetrics: true, controller: true });
  webhookMetrics(m);
  for (const metric of m.registry.getMetricsAsArray()) {
    const names = (metric as unknown as { labelNames?: string[] }).labelNames ?? [];
    const name = (metric as unknown as { name: string }).name;
    if (!name.startsWith('imagemirror_')) continue;
    const labels = Object.fromEntries(names.map((l) => [l, 'x']));
    if (metric instanceof Counter) metric.inc(labels, 3);
    else if (metric instanceof Gauge) metric.set(labels, 1);
    else if (metric instanceof Histogram) metric.observe(labels, 0.3);
    else if (metric instanceof Summary) metric.observe(labels, 0.3);
  }
  return m.exposition();
}

describe('ship: promtool checks the alert rules and the /metrics exposition', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imc-promtool-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('promtool check rules accepts the chart\'s rule groups and those of deploy/monitoring', async () => {
    const chartFile = join(CHART_DIR, 'files', 'prometheus-rules.yaml');
    const count = (parse(await readFile(chartFile, 'utf8')) as { groups: Array<{ rules: unknown[] }> }).groups.flatMap((g) => g.rules).length;
    const kustomizeFile = join(dir, 'deploy-monitoring-rules.yaml');
    const object = parse(await readFile(join(REPO_ROOT, 'deploy', 'monitoring', 'prometheusrule.yaml'), 'utf8')) as { kind: string; spec: unknown };
    assert.equal(object.kind, 'PrometheusRule');
    await writeFile(kustomizeFile, stringify(object.spec));
    for (const file of [chartFile, kustomizeFile]) {
      const { code, out } = await promtool(['check', 'rules', file]);
      assert.equal(code, 0, `promtool check rules ${file}: ${out}`);
      assert.match(out, new RegExp(`SUCCESS: ${count} rules found`), out);
    }
  });

  it('promtool test rules: ImageMirrorNotReady names the failing mirror and its current reason, once per mirror across replicas, through a change of reason', async () => {
    const file = join(REPO_ROOT, 'test', 'ship', 'fixtures', 'prometheus-rules.test.yaml');
    const { code, out } = await promtool(['test', 'rules', file]);
    assert.equal(code, 0, `promtool test rules ${file}: ${out}`);
    assert.match(out, /SUCCESS/);
  });

  it('promtool test rules can fail: the same input against a rule that groups by reason fires no alert', async () => {
    const rules = parse(await readFile(join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> };
    for (const r of rules.groups.flatMap((g) => g.rules)) if (r.alert === 'ImageMirrorNotReady') r.expr = 'max by (namespace, exported_namespace, name, reason) (imagemirror_mirror_ready) == 0';
    const rulesFile = join(dir, 'by-reason.yaml');
    await writeFile(rulesFile, stringify(rules));
    const fixture = parse(await readFile(join(REPO_ROOT, 'test', 'ship', 'fixtures', 'prometheus-rules.test.yaml'), 'utf8')) as { rule_files: string[] };
    fixture.rule_files = [rulesFile];
    const testFile = join(dir, 'by-reason.test.yaml');
    await writeFile(testFile, stringify(fixture));
    const { code, out } = await promtool(['test', 'rules', testFile]);
    assert.notEqual(code, 0, out);
    assert.match(out, /got:\s*\[\]/);
  });

  it('promtool check rules can fail: a broken expression is refused', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, stringify({ groups: [{ name: 'g', rules: [{ alert: 'Broken', expr: 'sum(imagemirror_mirrors' }] }] }));
    const { code, out } = await promtool(['check', 'rules', file]);
    assert.notEqual(code, 0, out);
  });

  it('promtool check metrics finds nothing in our metrics on a real /metrics exposition (prom-client defaults excepted)', async () => {
    const text = await fullExposition();
    for (const name of [...METRIC_NAMES, ...WEBHOOK_METRIC_NAMES, 'process_cpu_seconds_total']) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `${name} is not in the exposition`);
      assert.match(text, new RegExp(`^${name}(_bucket|_count|_sum)?(\\{| )`, 'm'), `${name} has no series: promtool would not look at it`);
    }
    const { code, out } = await promtool(['check', 'metrics'], text);
    const findings = out.split('\n').map((l) => l.trim()).filter(Boolean);
    const ours = findings.filter((f) => !PROM_CLIENT_LINT.has(f));
    assert.deepEqual(ours, [], `promtool check metrics (exit ${code}):\n${out}`);
    assert.ok(code === 0 || (code === 3 && findings.length > 0), `promtool exited ${code}: ${out}`);
  });

  it('promtool check metrics can fail: a metric without HELP and a camelCase name are reported', async () => {
    const { code, out } = await promtool(['check', 'metrics'], '# TYPE imagemirrorBad gauge\nimagemirrorBad 1\n');
    assert.notEqual(code, 0);
    assert.match(out, /imagemirrorBad no help text/);
    assert.match(out, /snake_case/);
  });
});
