import assert from 'node:assert/strict';
import { Metrics, METRIC_NAMES } from '../src/metrics.js';
import { targetActionLabel, TargetAction } from '../src/copy/actions.js';

describe('metrics', () => {
  it('registers every metric name the docs, dashboard and alerts may use', async () => {
    const m = new Metrics({ controller: true });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    for (const n of METRIC_NAMES) assert.ok(names.includes(n), `${n} not registered`);
  });
  it('labels target actions in lower snake case', () => {
    assert.equal(targetActionLabel(TargetAction.UpToDate), 'up_to_date');
    assert.equal(targetActionLabel(TargetAction.Retagged), 'retagged');
  });
});
