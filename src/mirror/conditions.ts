/**
 * kstatus-compatible conditions: Ready, plus Reconciling and Stalled only while they are True
 * (abnormal-true), so Flux and Argo CD health checks read them unchanged.
 */
import { ConditionType, type Condition, type ConditionStatus } from './types.js';

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * Returns conditions with `type` set; lastTransitionTime moves only when the status changes.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: { type: string; status: ConditionStatus; reason: string; message: string; observedGeneration?: number },
  now: Date,
): Condition[] {
  const prev = findCondition(conditions, next.type);
  const lastTransitionTime = prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString();
  const cond: Condition = { ...next, message: truncate(next.message, 32768), lastTransitionTime };
  if (cond.observedGeneration === undefined) delete cond.observedGeneration;
  const rest = (conditions ?? []).filter((c) => c.type !== next.type);
  return sortConditions([...rest, cond]);
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Ready first, then the rest by type, so status diffs stay stable. */
function sortConditions(cs: Condition[]): Condition[] {
  const order = (t: string) => (t === ConditionType.Ready ? 0 : t === ConditionType.Reconciling ? 1 : t === ConditionType.Stalled ? 2 : 3);
  return cs.sort((a, b) => order(a.type) - order(b.type) || a.type.localeCompare(b.type));
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}
