import assert from 'node:assert/strict';
import { Metrics } from '../../src/metrics.js';
import { webhookMetrics, WEBHOOK_RESULTS } from '../../src/hooks/metrics.js';
import { WEBHOOK_FORMATS } from '../../src/hooks/formats.js';

describe('webhook metrics', () => {
  it('every format × result series is exported at zero before any event, so rate() and alerts see the first one', async () => {
    const metrics = new Metrics();
    webhookMetrics(metrics);
    const text = await metrics.exposition();
    for (const format of WEBHOOK_FORMATS) {
      for (const result of WEBHOOK_RESULTS) {
        assert.match(text, new RegExp(`^imagemirror_webhook_events_total\\{format="${format}",result="${result}"\\} 0$`, 'm'), `${format}/${result}`);
      }
    }
  });
});
