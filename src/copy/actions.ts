/** One vocabulary for status, CLI, JSON and metrics: declared with the API (src/api/vocabulary.ts). */
import type { TargetAction } from '../api/vocabulary.js';
export { TargetAction } from '../api/vocabulary.js';

/** Metric label value for a target action: `up_to_date`, `retagged`, … */
export function targetActionLabel(a: TargetAction): string {
  return a.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

export const BlobAction = { Exists: 'exists', Mount: 'mount', Upload: 'upload' } as const;
export type BlobAction = (typeof BlobAction)[keyof typeof BlobAction];

/** How bytes were saved: a blob already there, a mount, or a whole image tagged by manifest only. */
export const SavedMethod = { Exists: 'exists', Mount: 'mount', Retag: 'retag' } as const;
export type SavedMethod = (typeof SavedMethod)[keyof typeof SavedMethod];
