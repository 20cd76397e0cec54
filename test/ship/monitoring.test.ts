import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { METRIC_NAMES, Metrics } from '../../src/metrics.js';
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
  const m = new Metrics({ defaultMetrics: true });
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

async function dashboardExprs(): Promise<string[]> {
  const dash = JSON.parse(await readFile(join(CHART_DIR, 'files', 'dashboards', 'image-mirror-controller.json'), 'utf8')) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    templating: { list: Array<{ query?: unknown }> };
  };
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

  it('alerts cover not-ready mirrors (30m), failing syncs, registry 429/5xx and a growing queue, each with severity and a summary', async () => {
    const rules = await alertRules();
    const byName = new Map(rules.map((r) => [r.alert, r]));
    const notReady = byName.get('ImageMirrorNotReady');
    assert.match(notReady?.expr ?? '', /imagemirror_mirrors\{ready="False"\}/);
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
    ]) {
      assert.ok(used.has(need), `dashboard has no panel on ${need}`);
    }
    assert.ok(exprs.some((e) => /sum by \(method\) \(.*imagemirror_bytes_saved_total/.test(e)), 'no bytes-saved-by-method panel');
    assert.ok(exprs.some((e) => /histogram_quantile\(0\.99/.test(e)), 'no sync duration quantiles');
  });

  it('docs/metrics.md documents every registered metric with its labels', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'metrics.md'), 'utf8');
    const m = new Metrics();
    for (const metric of await m.registry.getMetricsAsJSON()) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${metric.name}\``));
      assert.ok(row, `docs/metrics.md has no table row for ${metric.name}`);
      const labels = (m.registry.getSingleMetric(metric.name) as unknown as { labelNames?: string[] }).labelNames ?? [];
      for (const l of labels) assert.ok(row.includes(`\`${l}\``), `docs/metrics.md: ${metric.name} row does not name label ${l}`);
    }
    for (const name of METRIC_NAMES) assert.ok(doc.includes(`\`${name}\``), `docs/metrics.md does not mention ${name}`);
  });
});
