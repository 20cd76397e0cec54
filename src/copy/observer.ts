/**
 * Where the copy engine's counts go. The engine only reports what happened; the process's metrics
 * (src/metrics.ts) implement this, tests may pass their own, and a dry run passes none.
 */
import type { BlobAction, SavedMethod, TargetAction } from './actions.js';

/** A capability the engine learns about a blob store by trying. */
export type LearnedCapability = 'mount' | 'referrers_api';

export interface CopyObserver {
  /** One blob a target needed, and how it got there (`size` bytes uploaded or saved). */
  countBlob(action: BlobAction, size: number): void;
  /** Bytes a target needed and did not receive over the wire, other than per blob (a retag). */
  countSaved(method: SavedMethod, bytes: number): void;
  /** One target tag finished with `action`. */
  countTarget(action: TargetAction): void;
  /** What a registry turned out to support. */
  setCapability(registry: string, capability: LearnedCapability, supported: boolean): void;
}
