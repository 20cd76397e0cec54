/** sha256 digests: computing, checking, and verifying a stream as it flows. */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { OciError } from './errors.js';
import { UPLOAD_METER, UPLOAD_SLICE_BYTES, type UploadMetered } from './http.js';
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

/**
 * VerifyingStream for an upload body, in one stage: a Readable fed by `source`'s 'data' events
 * (not a Transform piped from it, which adds a Writable side and a pipe per chunk) that also counts
 * what it hands on for the request's rate rule (http.ts), so that no counting stage is needed
 * either. A GiB arrives as some 16,000 socket reads; every stage costs CPU for each of them.
 * Like VerifyingStream it holds the last chunk back until the content hashes to `digest` at
 * exactly `size` bytes, and fails instead of sending it otherwise.
 */
export class VerifiedUploadBody extends Readable implements UploadMetered {
  [UPLOAD_METER]: ((bytes: number) => void) | undefined;
  private held: Buffer | undefined;
  private seen = 0;
  private ended = false;
  private readonly hash = createHash('sha256');

  constructor(
    private readonly source: Readable,
    private readonly digest: string,
    private readonly size: number,
    private readonly what: string,
  ) {
    // What the request has not taken yet waits here (the source is paused beyond this), where the
    // rate rule sees it; one socket read's worth.
    super({ highWaterMark: UPLOAD_SLICE_BYTES });
    source.on('data', (c: Buffer) => this.onData(c));
    source.once('end', () => this.onEnd());
    source.once('error', (e) => this.destroy(e));
    source.once('close', () => {
      if (!this.ended) this.destroy(sizeError(this.what, this.size, `only ${this.seen} (the source closed)`));
    });
  }

  override _read(): void {
    this.source.resume();
  }

  private onData(chunk: Buffer): void {
    this.seen += chunk.length;
    if (this.seen > this.size) {
      this.destroy(sizeError(this.what, this.size, `more than ${this.size}`));
      return;
    }
    this.hash.update(chunk);
    const prev = this.held;
    this.held = chunk;
    if (prev && !this.pass(prev)) this.source.pause();
  }

  private onEnd(): void {
    this.ended = true;
    if (this.seen !== this.size) {
      this.destroy(sizeError(this.what, this.size, String(this.seen)));
      return;
    }
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.digest) {
      this.destroy(new OciError({ code: 'DIGEST_INVALID', message: `${this.what}: content hashes to ${got}, expected ${this.digest}` }));
      return;
    }
    if (this.held) this.pass(this.held);
    this.held = undefined;
    this.push(null);
  }

  /** Hands a chunk on, in slices of at most UPLOAD_SLICE_BYTES (see there); false: stop the source. */
  private pass(chunk: Buffer): boolean {
    this[UPLOAD_METER]?.(chunk.length);
    if (chunk.length <= UPLOAD_SLICE_BYTES) return this.push(chunk);
    let more = true;
    for (let i = 0; i < chunk.length; i += UPLOAD_SLICE_BYTES) more = this.push(chunk.subarray(i, i + UPLOAD_SLICE_BYTES));
    return more;
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.ended = true;
    if (!this.source.destroyed) {
      this.source.on('error', () => undefined);
      this.source.destroy();
    }
    cb(err);
  }
}

function sizeError(what: string, size: number, got: string): OciError {
  return new OciError({ code: 'SIZE_INVALID', message: `${what}: source sent ${got} bytes, expected ${size}` });
}
