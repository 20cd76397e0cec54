/** sha256 digests: computing, checking, and verifying a stream as it flows. */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OciError } from './errors.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A digest reference (`algo:hex`) rather than a tag. */
export function isDigest(ref: string): boolean {
  return ANY_DIGEST.test(ref) && ref.includes(':');
}

export function isSha256Digest(d: string): boolean {
  return DIGEST.test(d);
}

export function assertSha256(d: string, what: string): void {
  if (!DIGEST.test(d)) throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: unsupported or malformed digest ${d}` });
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
