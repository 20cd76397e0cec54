/** One vocabulary for status, CLI, JSON and metrics. */
export const TargetAction = {
  UpToDate: 'UpToDate',
  Retagged: 'Retagged',
  Copied: 'Copied',
  Conflict: 'Conflict',
  Failed: 'Failed',
  /** A target tag prune deleted (in a dry run: would delete). */
  Pruned: 'Pruned',
  /** Left the selection but could not be deleted; the row's message says why. */
  NotPruned: 'NotPruned',
} as const;
export type TargetAction = (typeof TargetAction)[keyof typeof TargetAction];

/** Metric label value for a target action: `up_to_date`, `retagged`, … */
export function targetActionLabel(a: TargetAction): string {
  return a.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

export const BlobAction = { Exists: 'exists', Mount: 'mount', Upload: 'upload' } as const;
export type BlobAction = (typeof BlobAction)[keyof typeof BlobAction];

/** How bytes were saved: a blob already there, a mount, or a whole image tagged by manifest only. */
export const SavedMethod = { Exists: 'exists', Mount: 'mount', Retag: 'retag' } as const;
export type SavedMethod = (typeof SavedMethod)[keyof typeof SavedMethod];
