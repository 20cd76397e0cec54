/** sha256 digests: computing, checking, and verifying a stream as it flows. */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OciError } from './errors.js';
import { digestProblem, isSha256Digest as isSha256, looksLikeDigest } from './names.js';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A digest reference (`algo:encoded`) rather than a tag; says nothing about whether it is supported. */
export function isDigest(ref: string): boolean {
  return looksLikeDigest(ref);
}

export function isSha256Digest(d: string): boolean {
  return isSha256(d);
}

export function assertSha256(d: string, what: string): void {
  const problem = digestProblem(d);
  if (problem !== undefined) throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: ${problem}` });
}

/**
 * Passes bytes through while hashing them, and holds the last chunk back until the whole
 * stream is known to hash to `digest` with exactly `size` bytes. A request reading from it
 * therefore never sends its final byte for wrong content, so the registry commits nothing.
 * `hash` may start from a saved state when resuming at `offset`.
 */
export class VerifyingStream extends Transform {
  private held: Buffer | undefined;
  private seen: number;
  readonly hash: Hash;

  constructor(
    private readonly digest: string,
    private readonly size: number,
    private readonly what: string,
    opts: { offset?: number; hash?: Hash } = {},
  ) {
    super();
    this.seen = opts.offset ?? 0;
    this.hash = opts.hash ?? createHash('sha256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.size) {
      cb(sizeError(this.what, this.size, `more than ${this.size}`));
      return;
    }
    this.hash.update(chunk);
    const prev = this.held;
    this.held = chunk;
    if (prev) this.push(prev);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.size) {
      cb(sizeError(this.what, this.size, String(this.seen)));
      return;
    }
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.digest) {
      cb(new OciError({ code: 'DIGEST_INVALID', message: `${this.what}: content hashes to ${got}, expected ${this.digest}` }));
      return;
    }
    if (this.held) this.push(this.held);
    this.held = undefined;
    cb();
  }
}

function sizeError(what: string, size: number, got: string): OciError {
  return new OciError({ code: 'SIZE_INVALID', message: `${what}: source sent ${got} bytes, expected ${size}` });
}
