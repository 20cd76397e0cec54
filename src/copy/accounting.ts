/**
 * Per target tag accounting: bytes copied are blob bytes uploaded; bytes
 * saved are blobs the target needed and did not receive over the wire, by how (exists, mount,
 * retag). Each blob counts once per target tag. Metrics are fed as work happens (never in a dry run).
 */
import type { Descriptor } from '../oci/content.js';
import { describeError, isOciError } from '../oci/errors.js';
import { TargetAction, type BlobAction } from './actions.js';
import type { CopyObserver } from './observer.js';
import type { TargetReport } from './report.js';

export class TargetTally {
  bytesCopied = 0;
  bytesSaved = 0;
  readonly blobs = { exists: 0, mount: 0, upload: 0 };
  private readonly seen = new Set<string>();

  constructor(private readonly metrics: CopyObserver | undefined) {}

  blob(action: BlobAction, desc: Pick<Descriptor, 'digest' | 'size'>): void {
    if (this.seen.has(desc.digest)) return;
    this.seen.add(desc.digest);
    this.blobs[action]++;
    if (action === 'upload') this.bytesCopied += desc.size;
    else this.bytesSaved += desc.size;
    this.metrics?.countBlob(action, desc.size);
  }

  /** A whole image tagged by manifest only: every blob it needs was saved. */
  retag(blobs: readonly Descriptor[]): void {
    let bytes = 0;
    for (const b of blobs) {
      if (this.seen.has(b.digest)) continue;
      this.seen.add(b.digest);
      bytes += b.size;
    }
    this.bytesSaved += bytes;
    this.metrics?.countSaved('retag', bytes);
  }

  report(reference: string, digest: string, action: TargetAction, message?: string, errorCode?: string): TargetReport {
    const r: TargetReport = {
      reference,
      digest,
      action,
      bytesCopied: this.bytesCopied,
      bytesSaved: this.bytesSaved,
      blobs: { ...this.blobs },
    };
    if (message !== undefined) r.message = message;
    if (errorCode !== undefined) r.errorCode = errorCode;
    return r;
  }
}

/** One line for a failed target, and the code behind it. */
export function failure(e: unknown): { message: string; errorCode: string } {
  const message = describeError(e).split('\n')[0] ?? 'unknown error';
  return { message, errorCode: isOciError(e) ? e.code : 'ERROR' };
}
