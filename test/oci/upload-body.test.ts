/**
 * The monolithic upload's body (VerifiedUploadBody): one stage that hashes, counts for the rate rule
 * and holds the last chunk back until the content is known to be right, so that a wrong blob never
 * reaches its final byte and the registry commits nothing.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { VerifiedUploadBody } from '../../src/oci/digest.js';
import { isOciError } from '../../src/oci/errors.js';
import { UPLOAD_METER, UPLOAD_SLICE_BYTES } from '../../src/oci/http.js';

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Everything the body hands on, chunk by chunk as undici takes it ('data' events), and the error it ended with. */
function drain(body: Readable): Promise<{ chunks: Buffer[]; error?: unknown }> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    body.on('data', (c: Buffer) => chunks.push(c));
    body.once('end', () => resolve({ chunks }));
    body.once('error', (error) => resolve({ chunks, error }));
  });
}

describe('VerifiedUploadBody', () => {
  it('passes the exact bytes on in slices of at most UPLOAD_SLICE_BYTES, and counts each byte once', async () => {
    const blob = randomBytes(5 * UPLOAD_SLICE_BYTES + 123);
    // A source with chunks larger than a slice (a file read, a buffer) and smaller ones.
    const parts = [blob.subarray(0, 3 * UPLOAD_SLICE_BYTES + 7), blob.subarray(3 * UPLOAD_SLICE_BYTES + 7, 3 * UPLOAD_SLICE_BYTES + 10), blob.subarray(3 * UPLOAD_SLICE_BYTES + 10)];
    const body = new VerifiedUploadBody(Readable.from(parts, { objectMode: false }), digestOf(blob), blob.length, 'upload x');
    let metered = 0;
    body[UPLOAD_METER] = (n) => (metered += n);
    const { chunks, error } = await drain(body);
    assert.equal(error, undefined);
    assert.ok(chunks.every((c) => c.length <= UPLOAD_SLICE_BYTES), 'a chunk larger than a slice was handed on');
    assert.ok(Buffer.concat(chunks).equals(blob));
    assert.equal(metered, blob.length);
  });

  it('holds the last chunk back until the source has ended and the content verified', async () => {
    const blob = randomBytes(3000);
    const source = new PassThrough();
    const body = new VerifiedUploadBody(source, digestOf(blob), blob.length, 'upload x');
    const seen: Buffer[] = [];
    body.on('data', (c: Buffer) => seen.push(c));
    source.write(blob.subarray(0, 1000));
    source.write(blob.subarray(1000, 2000));
    source.write(blob.subarray(2000));
    // All three are through the source, yet only two are handed on.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(Buffer.concat(seen).length, 2000);
    source.end();
    await once(body, 'end');
    assert.ok(Buffer.concat(seen).equals(blob));
  });

  it('content that does not hash to the digest fails DIGEST_INVALID and its last chunk is never handed on', async () => {
    const blob = randomBytes(3 * UPLOAD_SLICE_BYTES);
    const wrong = Buffer.from(blob);
    wrong[wrong.length - 1]! ^= 1;
    const parts = [wrong.subarray(0, UPLOAD_SLICE_BYTES), wrong.subarray(UPLOAD_SLICE_BYTES, 2 * UPLOAD_SLICE_BYTES), wrong.subarray(2 * UPLOAD_SLICE_BYTES)];
    const body = new VerifiedUploadBody(Readable.from(parts, { objectMode: false }), digestOf(blob), blob.length, 'upload app@x');
    const { chunks, error } = await drain(body);
    assert.ok(isOciError(error) && error.code === 'DIGEST_INVALID', String(error));
    assert.match((error as Error).message, /^upload app@x: content hashes to sha256:/);
    assert.equal(Buffer.concat(chunks).length, 2 * UPLOAD_SLICE_BYTES, 'the final chunk went out');
  });

  it('more bytes than the size fail SIZE_INVALID at once; fewer when the source ends or closes early', async () => {
    const blob = randomBytes(1000);
    const more = new VerifiedUploadBody(Readable.from([blob, Buffer.from('x')], { objectMode: false }), digestOf(blob), blob.length, 'upload x');
    const a = await drain(more);
    assert.ok(isOciError(a.error) && a.error.code === 'SIZE_INVALID' && /more than 1000/.test(a.error.message), String(a.error));

    const fewer = new VerifiedUploadBody(Readable.from([blob.subarray(0, 10)], { objectMode: false }), digestOf(blob), blob.length, 'upload x');
    const b = await drain(fewer);
    assert.ok(isOciError(b.error) && b.error.code === 'SIZE_INVALID' && /sent 10 bytes, expected 1000/.test(b.error.message), String(b.error));

    const source = new PassThrough();
    const cut = new VerifiedUploadBody(source, digestOf(blob), blob.length, 'upload x');
    source.write(blob.subarray(0, 10));
    source.destroy();
    const c = await drain(cut);
    assert.ok(isOciError(c.error) && c.error.code === 'SIZE_INVALID' && /the source closed/.test(c.error.message), String(c.error));
  });

  it('a source error fails the body with it; destroying the body destroys the source', async () => {
    const blob = randomBytes(1000);
    const source = new PassThrough();
    const body = new VerifiedUploadBody(source, digestOf(blob), blob.length, 'upload x');
    source.destroy(new Error('connection reset'));
    const { error } = await drain(body);
    assert.equal((error as Error).message, 'connection reset');

    const source2 = new PassThrough();
    const body2 = new VerifiedUploadBody(source2, digestOf(blob), blob.length, 'upload x');
    body2.on('error', () => undefined);
    body2.destroy(new Error('request failed'));
    await once(source2, 'close');
    assert.equal(source2.destroyed, true);
  });
});
