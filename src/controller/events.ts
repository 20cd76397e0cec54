/**
 * core/v1 Events on ImageMirrors. A repeat of the same (object, type, reason, message) within the
 * aggregation window bumps count/lastTimestamp on the existing Event (merge patch) instead of
 * creating another, as client-go's EventCorrelator does, so a mirror failing every backoff step
 * leaves one Event with a count.
 */
import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, KIND, type ImageMirror } from '../mirror/types.js';
import { apiMessage } from './status.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  kubeconfig: KubeConfig;
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

const MAX_TRACKED = 4096;

export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly recent = new Map<string, Recorded>();
  private readonly windowMs: number;
  private readonly component: string;

  constructor(private readonly o: EventRecorderOptions) {
    this.api = o.kubeconfig.makeApiClient(CoreV1Api);
    this.windowMs = o.windowMs ?? 10 * 60_000;
    this.component = o.component ?? 'image-mirror-controller';
  }

  /** Records an event; never throws (events are best effort). */
  async record(mirror: ImageMirror, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = mirror.metadata.namespace ?? 'default';
    const key = [namespace, mirror.metadata.name, mirror.metadata.uid ?? '', type, reason, message].join('\u0000');
    const now = new Date();
    const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const prev = this.recent.get(key);
    try {
      if (prev && now.getTime() - prev.at < this.windowMs) {
        const count = prev.count + 1;
        try {
          await this.api.patchNamespacedEvent(
            { name: prev.name, namespace, body: { count, lastTimestamp: ts } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
          this.remember(key, { ...prev, count, at: now.getTime() });
          return;
        } catch (err) {
          if (!(err instanceof ApiException && err.code === 404)) throw err;
          // The Event expired (TTL) or was deleted: fall through and create a fresh one.
        }
      }
      const name = `${mirror.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
      const body: CoreV1Event = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: API_VERSION,
          kind: KIND,
          name: mirror.metadata.name,
          namespace,
          uid: mirror.metadata.uid,
          resourceVersion: mirror.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.length > 1024 ? message.slice(0, 1023) + '…' : message,
        count: 1,
        // Plain strings on the wire: second precision, as core/v1 Time wants.
        firstTimestamp: ts as unknown as Date,
        lastTimestamp: ts as unknown as Date,
        source: { component: this.component, ...(this.o.instance ? { host: this.o.instance } : {}) },
        reportingComponent: this.component,
        reportingInstance: this.o.instance ?? '',
      };
      await this.api.createNamespacedEvent({ namespace, body });
      this.remember(key, { name, namespace, count: 1, first: ts, at: now.getTime() });
    } catch (err) {
      const detail = err instanceof ApiException ? `HTTP ${err.code}${apiMessage(err.body)}` : err instanceof Error ? err.message : String(err);
      this.o.log?.warn(`event ${type}/${reason} for ${namespace}/${mirror.metadata.name} not recorded: ${detail}`);
    }
  }

  private remember(key: string, r: Recorded): void {
    this.recent.delete(key);
    this.recent.set(key, r);
    if (this.recent.size > MAX_TRACKED) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }
}
