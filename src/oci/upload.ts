/**
 * Making a blob present in a repository: cross-repository mount attempts, then an upload
 * (monolithic, or chunked when a chunk size is set) streamed from the source and verified on the
 * fly so that nothing is committed under the digest unless the bytes hash to it.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobReader, CallOptions, Descriptor, PutBlobOptions, PutBlobResult, RegistryCapabilities } from './content.js';
import { isOciError, OciError } from './errors.js';
import { drop, header, resolveUrl, type HttpResponse } from './http.js';
import { VerifiedUploadBody, assertSha256 } from './digest.js';
import { pausedByRegistry, type RegistrySession } from './session.js';
import { withRetry } from './retry.js';

export interface UploadTarget {
  session: RegistrySession;
  repository: string;
  capabilities: RegistryCapabilities;
  setCapability(c: 'mount' | 'referrers_api', supported: boolean): void;
  /** Clock time in ms (for re-probing mounts). */
  now(): number;
  chunkSize?: number;
  pushScopes: string[];
  mountScopes(from: string): string[];
}

/** `Location` with `digest` appended, keeping its own query (distribution's `_state`). */
export function withDigest(loc: URL, digest: string): string {
  const sep = loc.search && loc.search !== '?' ? '&' : loc.search === '?' ? '' : '?';
  return `${loc.href}${sep}digest=${encodeURIComponent(digest)}`;
}

function location(res: HttpResponse, what: string, registry: string): URL {
  const loc = header(res, 'location');
  if (!loc) throw new OciError({ code: 'PROTOCOL', message: `${what}: ${res.status} without a Location header`, registry });
  return resolveUrl(loc, res.url);
}

/** Last byte the registry holds, from `Range: 0-N` (or `bytes=0-N`); -1 when none. */
export function rangeEnd(range: string | undefined): number | undefined {
  if (range === undefined) return undefined;
  const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(range.trim());
  if (!m) return undefined;
  return Number(m[2]);
}

export async function putBlob(
  t: UploadTarget,
  desc: Descriptor,
  open: (offset: number) => Promise<BlobReader>,
  options: PutBlobOptions = {},
): Promise<PutBlobResult> {
  const { session } = t;
  assertSha256(desc.digest, `blob for ${session.registry}/${t.repository}`);
  const call: CallOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(options.whileWaiting ? { whileWaiting: options.whileWaiting } : {}) };
  let triedMounts = false;
  // A mid-stream failure cannot be replayed by the request layer; the whole upload restarts here
  // with a fresh open(). Mounts are tried once.
  return withRetry(
    session.retry,
    async () => {
      let sessionUrl: URL | undefined;
      if (!triedMounts) {
        triedMounts = true;
        const m = await tryMounts(t, desc, options, call);
        if (m.result) return m.result;
        sessionUrl = m.session;
      }
      if (!sessionUrl) sessionUrl = await startUpload(t, call);
      try {
        if (t.chunkSize && t.chunkSize > 0) await uploadChunked(t, desc, open, sessionUrl, call);
        else await uploadMonolithic(t, desc, open, sessionUrl, call);
      } catch (e) {
        await cancel(t, sessionUrl, call);
        throw e;
      }
      return { transfer: 'upload' as const };
    },
    options.signal,
    pausedByRegistry,
  );
}

/**
 * One cross-repository mount from `from`, never an upload: true when the registry mounted (201).
 * A "not mounted" answer (202) opens an upload session, which is cancelled; it counts toward giving
 * up on mounting as putBlob's attempts do, and the re-probe window is honoured.
 */
export async function mountBlob(t: UploadTarget, desc: Descriptor, from: string, options: CallOptions = {}): Promise<boolean> {
  assertSha256(desc.digest, `blob for ${t.session.registry}/${t.repository}`);
  const call: CallOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(options.whileWaiting ? { whileWaiting: options.whileWaiting } : {}) };
  const m = await tryMounts(t, desc, { mountFrom: [from] }, call);
  if (m.session) await cancel(t, m.session, call);
  return m.result !== undefined;
}

const MOUNT_REFUSALS_BEFORE_GIVING_UP = 3;
/**
 * How long a registry that refused mounts is left alone before one is tried again: a refusal may
 * have been the registry's (ECR mounts only once a pushed manifest references the blob,
 * aws/containers-roadmap#2860; an account may enable mounting later), never for the process's life.
 */
export const MOUNT_REPROBE_MS = 30 * 60_000;

interface MountState {
  /** Consecutive "not mounted" answers from candidates that hold the blob for sure. */
  refusals: number;
  /** When mounting was last given up on (or a re-probe refused). */
  refusedAt?: number;
}
/** Per registry (keyed by its capabilities record). */
const mountStates = new WeakMap<RegistryCapabilities, MountState>();

function mountState(c: RegistryCapabilities): MountState {
  let s = mountStates.get(c);
  if (!s) mountStates.set(c, (s = { refusals: 0 }));
  return s;
}

async function tryMounts(
  t: UploadTarget,
  desc: Descriptor,
  options: PutBlobOptions,
  call: CallOptions,
): Promise<{ result?: PutBlobResult; session?: URL }> {
  const { session } = t;
  const candidates = (options.mountFrom ?? []).filter((r) => r !== t.repository);
  if (candidates.length === 0) return {};
  const state = mountState(t.capabilities);
  if (t.capabilities.mount === false && state.refusedAt !== undefined && t.now() - state.refusedAt < MOUNT_REPROBE_MS) return {};
  const provisional = new Set(options.provisionalMountFrom ?? []);
  for (let i = 0; i < candidates.length; i++) {
    const from = candidates[i]!;
    const what = `mount ${desc.digest} from ${from} into ${session.registry}/${t.repository}`;
    let res: HttpResponse;
    try {
      res = await session.request({
        method: 'POST',
        url: `/v2/${t.repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
        headers: { 'content-length': '0' },
        scopes: t.mountScopes(from),
        ok: [201, 202],
        ctx: { registry: session.registry, repository: t.repository, what },
        ...call,
      });
    } catch (e) {
      // Harbor and distribution answer 401 when `from` is not readable; any other refusal
      // (400, 404, 405...) also just means "upload instead" (ggcr#1404).
      if (isOciError(e) && (e.code === 'CANCELLED' || (e.retryable && e.code !== 'UNAUTHORIZED'))) throw e;
      options.onMountRefused?.(from);
      return {};
    }
    await res.body.dump().catch(() => undefined);
    if (res.status === 201) {
      state.refusals = 0;
      delete state.refusedAt;
      t.setCapability('mount', true);
      return { result: { transfer: 'mount', mountedFrom: from } };
    }
    // 202: not mounted, and an upload session is open.
    options.onMountRefused?.(from);
    const loc = location(res, what, session.registry);
    // Once a registry has mounted, a 202 only says this repo lacks the blob; before that it
    // says the registry will not mount, and further candidates would cost requests for nothing.
    const known = t.capabilities.mount === true;
    if (t.capabilities.mount === false) {
      // A re-probe refused: leave the registry alone for another while.
      state.refusedAt = t.now();
    } else if (!known && !provisional.has(from)) {
      // One 202 may only mean a stale location; three in a row with no 201 ever means the
      // registry does not mount (e.g. Artifactory), and further attempts would waste requests.
      state.refusals++;
      if (state.refusals >= MOUNT_REFUSALS_BEFORE_GIVING_UP) {
        state.refusedAt = t.now();
        t.setCapability('mount', false);
      }
    }
    const last = i === candidates.length - 1 || !known;
    if (last) return { session: loc };
    await cancel(t, loc, call);
  }
  return {};
}

async function startUpload(t: UploadTarget, call: CallOptions): Promise<URL> {
  const { session } = t;
  const what = `start upload to ${session.registry}/${t.repository}`;
  const res = await session.request({
    method: 'POST',
    url: `/v2/${t.repository}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    scopes: t.pushScopes,
    ok: [202],
    ctx: { registry: session.registry, repository: t.repository, what, notFound: 'NAME_UNKNOWN', push: true },
    ...call,
  });
  await res.body.dump().catch(() => undefined);
  return location(res, what, session.registry);
}

/** Cancelling needs a `delete` grant most accounts lack, so failure is expected and ignored. */
async function cancel(t: UploadTarget, loc: URL, call: CallOptions): Promise<void> {
  try {
    const res = await t.session.request({
      method: 'DELETE',
      url: loc.href,
      scopes: t.pushScopes,
      ok: [200, 202, 204, 404],
      once: true,
      ctx: { registry: t.session.registry, repository: t.repository, what: 'cancel upload' },
      ...call,
    });
    await res.body.dump().catch(() => undefined);
  } catch {
    // ignored on purpose
  }
}

function checkCommitted(res: HttpResponse, desc: Descriptor, what: string, registry: string): void {
  const got = header(res, 'docker-content-digest');
  if (got && got !== desc.digest) {
    throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: registry stored ${got}, expected ${desc.digest}`, registry });
  }
}

async function uploadMonolithic(t: UploadTarget, desc: Descriptor, open: (offset: number) => Promise<BlobReader>, loc: URL, call: CallOptions): Promise<void> {
  const { session } = t;
  const what = `upload ${desc.digest} to ${session.registry}/${t.repository}`;
  const reader = await open(0);
  const body = new VerifiedUploadBody(reader.stream, desc.digest, desc.size, what);
  let res: HttpResponse;
  try {
    res = await session.request({
      method: 'PUT',
      url: withDigest(loc, desc.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: () => body,
      bodyBytes: desc.size,
      scopes: t.pushScopes,
      ok: [201, 204],
      ctx: { registry: session.registry, repository: t.repository, what, notFound: 'BLOB_UPLOAD_UNKNOWN' },
      ...call,
    });
  } catch (e) {
    // The body stream's own error (digest or size mismatch) explains the abort better than the
    // socket error undici reports for it.
    const own = body.errored ?? reader.stream.errored;
    drop(reader.stream);
    if (isOciError(own)) throw own;
    throw e;
  }
  await res.body.dump().catch(() => undefined);
  checkCommitted(res, desc, what, session.registry);
}

/** Reads a stream in fixed-size chunks (the last may be shorter). */
async function* chunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of stream) {
    let b = c as Buffer;
    while (b.length > 0) {
      const take = Math.min(size - have, b.length);
      parts.push(b.subarray(0, take));
      have += take;
      b = b.subarray(take);
      if (have === size) {
        yield Buffer.concat(parts);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts);
}

async function uploadChunked(t: UploadTarget, desc: Descriptor, open: (offset: number) => Promise<BlobReader>, start: URL, call: CallOptions): Promise<void> {
  const { session } = t;
  const what = `upload ${desc.digest} to ${session.registry}/${t.repository}`;
  const ctx = { registry: session.registry, repository: t.repository, what, notFound: 'BLOB_UPLOAD_UNKNOWN' as const };
  const reader = await open(0);
  const hash: Hash = createHash('sha256');
  let loc = start;
  let offset = 0;
  try {
    for await (const chunk of chunks(reader.stream, t.chunkSize!)) {
      if (offset + chunk.length > desc.size) {
        throw new OciError({ code: 'SIZE_INVALID', message: `${what}: source sent more than ${desc.size} bytes`, registry: session.registry });
      }
      hash.update(chunk);
      loc = await sendChunk(t, loc, chunk, offset, ctx, call);
      offset += chunk.length;
    }
  } finally {
    drop(reader.stream);
  }
  if (offset !== desc.size) {
    throw new OciError({ code: 'SIZE_INVALID', message: `${what}: source sent ${offset} bytes, expected ${desc.size}`, registry: session.registry });
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== desc.digest) {
    // Nothing was committed: the closing PUT is what commits, and it is never sent.
    throw new OciError({ code: 'DIGEST_INVALID', message: `${what}: content hashes to ${got}, expected ${desc.digest}`, registry: session.registry });
  }
  const res = await session.request({
    method: 'PUT',
    url: withDigest(loc, desc.digest),
    headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
    scopes: t.pushScopes,
    ok: [201, 204],
    ctx,
    ...call,
  });
  await res.body.dump().catch(() => undefined);
  checkCommitted(res, desc, what, session.registry);
}

/**
 * PATCH one chunk at `offset`; on a failed chunk (416, 5xx, network) ask the session where it
 * stands (`GET <loc>` → `Range`) and send what it lacks. Returns the newest Location.
 */
async function sendChunk(
  t: UploadTarget,
  loc: URL,
  chunk: Buffer,
  offset: number,
  ctx: { registry: string; repository: string; what: string; notFound: 'BLOB_UPLOAD_UNKNOWN' },
  call: CallOptions,
): Promise<URL> {
  const { session } = t;
  let from = 0; // index into chunk
  for (let attempt = 1; ; attempt++) {
    const part = chunk.subarray(from);
    const first = offset + from;
    try {
      const res = await session.request({
        method: 'PATCH',
        url: loc.href,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${first}-${first + part.length - 1}`,
          'content-length': String(part.length),
        },
        body: part,
        bodyBytes: part.length,
        scopes: t.pushScopes,
        ok: [202, 204],
        once: true,
        ctx,
        ...call,
      });
      await res.body.dump().catch(() => undefined);
      return location(res, ctx.what, session.registry);
    } catch (e) {
      if (!isOciError(e) || !(e.retryable || e.code === 'RANGE_INVALID') || e.code === 'BLOB_UPLOAD_UNKNOWN') throw e;
      if (attempt >= session.retry.attempts) throw e;
      const status = await uploadStatus(t, loc, ctx, call);
      // distribution reports `0-0` for both an empty session and one byte; assume empty.
      const held = status.end <= 0 ? 0 : status.end + 1;
      if (held < offset || held > offset + chunk.length) {
        // Lost more than this chunk (or claims more than sent): restart the upload.
        throw new OciError({ code: 'BLOB_UPLOAD_UNKNOWN', message: `${ctx.what}: upload session lost data (holds ${held} bytes)`, registry: session.registry });
      }
      loc = status.loc;
      from = held - offset;
      if (from === chunk.length) return loc;
    }
  }
}

async function uploadStatus(
  t: UploadTarget,
  loc: URL,
  ctx: { registry: string; repository: string; what: string; notFound: 'BLOB_UPLOAD_UNKNOWN' },
  call: CallOptions,
): Promise<{ end: number; loc: URL }> {
  const res = await t.session.request({ method: 'GET', url: loc.href, scopes: t.pushScopes, ok: [204], ctx, ...call });
  await res.body.dump().catch(() => undefined);
  const range = header(res, 'range');
  const end = range === undefined ? -1 : rangeEnd(range);
  if (end === undefined) throw new OciError({ code: 'PROTOCOL', message: `${ctx.what}: unreadable upload Range ${range}`, registry: t.session.registry });
  const l = header(res, 'location');
  return { end, loc: l ? resolveUrl(l, res.url) : loc };
}
