/** What the copy engine says about one target tag: the row status, the CLI and metrics share. */
import type { TargetAction } from './actions.js';

export interface TargetReport {
  reference: string;
  /** What the tag points at (or, for a Conflict, the other image it points at). */
  digest: string;
  /** The source image's digest, when the digest written differs from it (a platform-filtered index). */
  sourceDigest?: string;
  action: TargetAction;
  bytesCopied: number;
  bytesSaved: number;
  blobs: { exists: number; mount: number; upload: number };
  message?: string;
  /** For action Failed: the OciError code (or another short code) behind `message`. */
  errorCode?: string;
  /**
   * Something the tag's sync could not do that does not make the tag wrong, e.g. a referrer the
   * target refused (registries that accept only listed artifact types). Shown on the row and as a
   * Warning event; the tag still counts as in sync.
   */
  warning?: string;
}
