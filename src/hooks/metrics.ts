/**
 * The notification receiver's two metrics, registered on the process's Metrics registry (one set
 * per registry: asking twice returns the same objects). Labels stay low-cardinality: the format
 * (six values) and the result (below), never a repository, tag or sender.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Metrics } from '../metrics.js';
import { WEBHOOK_FORMATS } from './formats.js';

export const WEBHOOK_METRIC_NAMES = ['imagemirror_webhook_events_total', 'imagemirror_webhook_sync_delay_seconds'] as const;

/**
 * accepted: a push that enqueued at least one mirror; unmatched: a push no mirror sources or
 * selects; ignored: not a push of an image (pull, delete, layer, ping, other event types);
 * invalid: a push naming no valid repository, or a body that is not the format (one per request);
 * unauthorized, too_large, timeout: the request was refused before its events were read (one per request).
 */
export const WEBHOOK_RESULTS = ['accepted', 'unmatched', 'ignored', 'invalid', 'unauthorized', 'too_large', 'timeout'] as const;
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number];

export const SYNC_DELAY_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800];

export interface WebhookMetrics {
  events: Counter<'format' | 'result'>;
  syncDelay: Histogram;
}

const byRegistry = new WeakMap<Registry, WebhookMetrics>();

export function webhookMetrics(metrics: Pick<Metrics, 'registry'>): WebhookMetrics {
  const registry = metrics.registry;
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: WebhookMetrics = {
    events: new Counter({
      name: 'imagemirror_webhook_events_total',
      help: 'Registry push notifications received, by format and result (accepted, unmatched, ignored, invalid, unauthorized, too_large, timeout)',
      labelNames: ['format', 'result'],
      registers,
    }),
    syncDelay: new Histogram({
      name: 'imagemirror_webhook_sync_delay_seconds',
      help: 'Time from receiving a push notification to the end of the reconcile of the mirror it enqueued (target tags written)',
      buckets: SYNC_DELAY_BUCKETS,
      registers,
    }),
  };
  // Every known series exported at zero, so a rate() or an alert sees the first event.
  for (const format of WEBHOOK_FORMATS) for (const result of WEBHOOK_RESULTS) m.events.inc({ format, result }, 0);
  byRegistry.set(registry, m);
  return m;
}
