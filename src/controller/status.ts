/**
 * Writes ImageMirror status through the /status subresource as a JSON merge patch, over KubeApi's
 * kept-alive connections. The patch carries the resourceVersion the status was computed from, so
 * a status computed from a stale object is refused (409) and the key is requeued. Nothing is
 * written when nothing changed. The answer (the whole object) is not parsed: the watch brings it.
 */
import { GROUP, PLURAL, VERSION, type Condition, type ImageMirror, type ImageMirrorStatus } from '../mirror/types.js';
import { KubeHttpError, type KubeApi } from './kube-http.js';

const MERGE_PATCH = 'application/merge-patch+json';

export type StatusWriteResult = 'written' | 'unchanged' | 'conflict' | 'gone';

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
type JsonObject = { [k: string]: JsonValue };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 7386 merge patch turning `from` into `to` (undefined when equal). Arrays are replaced whole. */
export function mergePatch(from: unknown, to: unknown): JsonValue | undefined {
  if (deepEqual(from, to)) return undefined;
  if (!isObject(from) || !isObject(to)) return (to === undefined ? null : (to as JsonValue));
  const patch: JsonObject = {};
  for (const k of Object.keys(from)) if (from[k] !== undefined && to[k] === undefined) patch[k] = null;
  for (const k of Object.keys(to)) {
    if (to[k] === undefined) continue;
    const p = mergePatch(from[k], to[k]);
    if (p !== undefined) patch[k] = p;
  }
  return Object.keys(patch).length ? patch : undefined;
}

/** Keep lastTransitionTime of conditions whose status did not change. */
export function mergeConditions(prev: readonly Condition[] | undefined, next: readonly Condition[] | undefined): Condition[] | undefined {
  if (!next) return undefined;
  return next.map((c) => {
    const old = prev?.find((p) => p.type === c.type);
    return old && old.status === c.status && old.lastTransitionTime ? { ...c, lastTransitionTime: old.lastTransitionTime } : c;
  });
}

export class StatusWriter {
  constructor(private readonly api: KubeApi) {}

  /** The status that would be written for `mirror` (conditions merged). */
  static next(mirror: ImageMirror, status: ImageMirrorStatus): ImageMirrorStatus {
    const merged: ImageMirrorStatus = { ...status };
    const conditions = mergeConditions(mirror.status?.conditions, status.conditions);
    if (conditions) merged.conditions = conditions;
    return merged;
  }

  async write(mirror: ImageMirror, status: ImageMirrorStatus): Promise<StatusWriteResult> {
    const next = StatusWriter.next(mirror, status);
    const diff = mergePatch(JSON.parse(JSON.stringify(mirror.status ?? {})), JSON.parse(JSON.stringify(next)));
    if (diff === undefined) return 'unchanged';
    const body: JsonObject = { status: diff };
    if (mirror.metadata.resourceVersion) body.metadata = { resourceVersion: mirror.metadata.resourceVersion };
    const namespace = mirror.metadata.namespace ?? 'default';
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}/${encodeURIComponent(mirror.metadata.name)}/status`;
    try {
      await this.api.request('PATCH', path, body, MERGE_PATCH, `patch status of ${namespace}/${mirror.metadata.name}`);
      return 'written';
    } catch (err) {
      if (err instanceof KubeHttpError && err.code === 409) return 'conflict';
      if (err instanceof KubeHttpError && err.code === 404) return 'gone';
      throw err;
    }
  }
}

export function apiMessage(body: unknown): string {
  try {
    const s = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string };
    return s?.message ? `: ${String(s.message).split('\n')[0]}` : '';
  } catch {
    return '';
  }
}
