/**
 * core/v1 Events on ImageMirrors. A repeat of the same (object, type, reason, message) within the
 * aggregation window bumps count/lastTimestamp on the existing Event (merge patch) instead of
 * creating another, as client-go's EventCorrelator does, so a mirror failing every backoff step
 * leaves one Event with a count.
 *
 * Like client-go's broadcaster, recording never waits for the API server: record() queues the
 * Event and returns, a few senders write the queue out in order (repeats of one Event one after
 * another, so they aggregate), and past MAX_PENDING_EVENTS new Events are dropped and counted
 * (an API server that is down must not hold workers or grow memory).
 */
import { randomBytes } from 'node:crypto';
import { API_VERSION, KIND, type ImageMirror } from '../mirror/types.js';
import { KubeHttpError, type KubeApi } from './kube-http.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  api: KubeApi;
  /** source.component / reportingComponent. */
  component?: string;
  /** source.host / reportingInstance. */
  instance?: string;
  /** Repeats within this window are aggregated. Default 10 min. */
  windowMs?: number;
  log?: { warn(msg: string): void };
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
  first: string;
  at: number;
}

interface Pending {
  key: string;
  /** What the Event names (not the whole object: a queued Event must not keep a status alive). */
  mirror: { name: string; namespace: string; uid?: string; resourceVersion?: string };
  type: EventType;
  reason: string;
  message: string;
  at: Date;
}

/** Events remembered for aggregation (least recently recorded dropped first). */
export const EVENTS_TRACKED_MAX = 4096;
/** Events waiting to be sent; client-go's broadcaster queue holds 1000 too. */
export const MAX_PENDING_EVENTS = 1000;
/** Events written at once: keeps up with a thousand reconciles a second on a local API server. */
export const EVENT_SENDERS = 4;
const MERGE_PATCH = 'application/merge-patch+json';

export class EventRecorder {
  private readonly recent = new Map<string, Recorded>();
  private readonly windowMs: number;
  private readonly component: string;
  private readonly queue: Pending[] = [];
  /** Keys being written now: a repeat waits for its first write, so it can aggregate. */
  private readonly sending = new Set<string>();
  private senders = 0;
  private idleWaiters: Array<() => void> = [];
  /** Events dropped because the queue was full. */
  dropped = 0;

  constructor(private readonly o: EventRecorderOptions) {
    this.windowMs = o.windowMs ?? 10 * 60_000;
    this.component = o.component ?? 'image-mirror-controller';
  }

  /** Queues an Event; never throws and never waits (events are best effort). */
  record(mirror: ImageMirror, type: EventType, reason: string, message: string): void {
    if (this.queue.length >= MAX_PENDING_EVENTS) {
      if (this.dropped++ === 0) this.o.log?.warn(`events: ${MAX_PENDING_EVENTS} waiting to be written; dropping new ones until the API server catches up`);
      return;
    }
    const namespace = mirror.metadata.namespace ?? 'default';
    const key = [namespace, mirror.metadata.name, mirror.metadata.uid ?? '', type, reason, message].join('\u0000');
    const { name, uid, resourceVersion } = mirror.metadata;
    this.queue.push({ key, mirror: { name, namespace, uid, resourceVersion }, type, reason, message, at: new Date() });
    this.pump();
  }

  /** Resolves once every queued Event has been written (or failed), or after timeoutMs. */
  flush(timeoutMs = 5000): Promise<void> {
    if (this.queue.length === 0 && this.senders === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private pump(): void {
    while (this.senders < EVENT_SENDERS) {
      const i = this.queue.findIndex((p) => !this.sending.has(p.key));
      if (i < 0) break;
      const [p] = this.queue.splice(i, 1) as [Pending];
      this.senders++;
      this.sending.add(p.key);
      void this.send(p).finally(() => {
        this.senders--;
        this.sending.delete(p.key);
        this.pump();
        if (this.senders === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async send(p: Pending): Promise<void> {
    const { mirror, type, reason, message, key } = p;
    const namespace = mirror.namespace;
    const ts = p.at.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const prev = this.recent.get(key);
    try {
      if (prev && p.at.getTime() - prev.at < this.windowMs) {
        const count = prev.count + 1;
        try {
          await this.o.api.request(
            'PATCH',
            `/api/v1/namespaces/${encodeURIComponent(namespace)}/events/${encodeURIComponent(prev.name)}`,
            { count, lastTimestamp: ts },
            MERGE_PATCH,
            `patch event ${namespace}/${prev.name}`,
          );
          this.remember(key, { ...prev, count, at: p.at.getTime() });
          return;
        } catch (err) {
          if (!(err instanceof KubeHttpError && err.code === 404)) throw err;
          // The Event expired (TTL) or was deleted: fall through and create a fresh one.
        }
      }
      const name = `${mirror.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
      const body = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: API_VERSION,
          kind: KIND,
          name: mirror.name,
          namespace,
          uid: mirror.uid,
          resourceVersion: mirror.resourceVersion,
        },
        type,
        reason,
        message: message.length > 1024 ? message.slice(0, 1023) + '…' : message,
        count: 1,
        // Second precision, as core/v1 Time wants.
        firstTimestamp: ts,
        lastTimestamp: ts,
        source: { component: this.component, ...(this.o.instance ? { host: this.o.instance } : {}) },
        reportingComponent: this.component,
        reportingInstance: this.o.instance ?? '',
      };
      await this.o.api.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, body, 'application/json', `create event in ${namespace}`);
      this.remember(key, { name, namespace, count: 1, first: ts, at: p.at.getTime() });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      this.o.log?.warn(`event ${type}/${reason} for ${namespace}/${mirror.name} not recorded: ${detail}`);
    }
  }

  private remember(key: string, r: Recorded): void {
    this.recent.delete(key);
    this.recent.set(key, r);
    if (this.recent.size > EVENTS_TRACKED_MAX) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }
}
