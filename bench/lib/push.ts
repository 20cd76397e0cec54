/**
 * A deliberately small registry writer for the bench and the demo: it only pushes fixtures, over
 * plain HTTP to a loopback registry with no auth. It does not share code with src/oci on purpose,
 * so a bug in our client cannot make its own fixtures look right.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createGzip } from 'node:zlib';

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
}

export interface PushedImage {
  /** Digest of the image manifest. */
  digest: string;
  mediaType: string;
  size: number;
  config: Blob;
  layers: Blob[];
  /** Exact manifest bytes, for pushing the same image into other repos. */
  manifest: Uint8Array;
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function expectStatus(r: Response, ok: number[], what: string): Promise<void> {
  if (ok.includes(r.status)) return;
  const body = (await r.text()).slice(0, 200).replace(/\s+/g, ' ');
  throw new Error(`${what}: HTTP ${r.status} ${body}`);
}

function absolute(base: string, location: string): URL {
  return new URL(location, base);
}

async function startUpload(base: string, repo: string): Promise<URL> {
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(r, [202], `start upload to ${repo}`);
  await r.arrayBuffer();
  const loc = r.headers.get('location');
  if (!loc) throw new Error(`start upload to ${repo}: no Location header`);
  return absolute(base, loc);
}

async function blobExists(base: string, repo: string, digest: string): Promise<boolean> {
  const r = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  return r.status === 200;
}

/** Pushes `bytes` as one blob (monolithic PUT), unless the repo already has it. */
export async function pushBlob(base: string, repo: string, bytes: Uint8Array, mediaType: string): Promise<Blob> {
  const digest = sha256(bytes);
  if (!(await blobExists(base, repo, digest))) {
    const url = await startUpload(base, repo);
    url.searchParams.set('digest', digest);
    const r = await fetch(url, { method: 'PUT', body: Buffer.from(bytes), headers: { 'content-type': 'application/octet-stream' } });
    await expectStatus(r, [201], `upload ${digest} to ${repo}`);
    await r.arrayBuffer();
  }
  return { digest, size: bytes.length, mediaType };
}

/**
 * Streams a gzip layer of `size` random bytes (stored, level 0: valid gzip that does not shrink)
 * straight into the registry, hashing on the way, so 1 GiB never sits in memory or on our disk.
 * A real gzip matters: skopeo re-compresses layers it finds uncompressed, which would change digests.
 */
export async function pushRandomLayer(base: string, repo: string, size: number): Promise<Blob & { diffId: string }> {
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let blobSize = 0;
  const gzip = createGzip({ level: 0 });
  const CHUNK = 1 << 20;
  // Feeding the gzip stream from a loop that respects backpressure keeps memory flat.
  (async () => {
    try {
      for (let left = size; left > 0; ) {
        const n = Math.min(CHUNK, left);
        const chunk = randomFillSync(Buffer.allocUnsafe(n));
        diff.update(chunk);
        left -= n;
        if (!gzip.write(chunk)) await new Promise<void>((r) => gzip.once('drain', r));
      }
      gzip.end();
    } catch (e) {
      gzip.destroy(e as Error);
    }
  })();
  async function* body(): AsyncGenerator<Uint8Array> {
    for await (const c of gzip as AsyncIterable<Buffer>) {
      blob.update(c);
      blobSize += c.length;
      yield c;
    }
  }
  const url = await startUpload(base, repo);
  const patch = await fetch(url, {
    method: 'PATCH',
    body: body() as unknown as ReadableStream,
    headers: { 'content-type': 'application/octet-stream' },
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  await expectStatus(patch, [202], `stream layer to ${repo}`);
  await patch.arrayBuffer();
  const loc = patch.headers.get('location');
  if (!loc) throw new Error(`stream layer to ${repo}: no Location header after PATCH`);
  const digest = `sha256:${blob.digest('hex')}`;
  const put = absolute(base, loc);
  put.searchParams.set('digest', digest);
  const r = await fetch(put, { method: 'PUT' });
  await expectStatus(r, [201], `commit layer ${digest} in ${repo}`);
  await r.arrayBuffer();
  return { digest, size: blobSize, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', diffId: `sha256:${diff.digest('hex')}` };
}

/** Cross-repository mount within one registry; falls back to nothing: the caller pushed the source. */
export async function mountBlob(base: string, repo: string, from: string, digest: string): Promise<void> {
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, { method: 'POST' });
  await expectStatus(r, [201], `mount ${digest} from ${from} into ${repo}`);
  await r.arrayBuffer();
}

export async function putManifest(base: string, repo: string, reference: string, mediaType: string, bytes: Uint8Array): Promise<string> {
  const r = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: Buffer.from(bytes), headers: { 'content-type': mediaType } });
  await expectStatus(r, [201], `put manifest ${repo}:${reference}`);
  await r.arrayBuffer();
  return sha256(bytes);
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export interface RandomImageOptions {
  layers: number;
  layerSize: number;
  /** Tag to push the manifest under. */
  tag: string;
  platform?: { os: string; architecture: string; variant?: string };
}

/** Pushes an OCI image of random incompressible layers and returns its manifest and blobs. */
export async function pushRandomImage(base: string, repo: string, o: RandomImageOptions): Promise<PushedImage> {
  const layers: Array<Blob & { diffId: string }> = [];
  for (let i = 0; i < o.layers; i++) layers.push(await pushRandomLayer(base, repo, o.layerSize));
  return pushImageFromLayers(base, repo, o.tag, layers, o.platform);
}

export async function pushImageFromLayers(
  base: string,
  repo: string,
  /** undefined: push by digest only (e.g. the children of an index). */
  tag: string | undefined,
  layers: Array<Blob & { diffId: string }>,
  platform: { os: string; architecture: string; variant?: string } = { os: 'linux', architecture: 'amd64' },
): Promise<PushedImage> {
  const configJson = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['/bin/app'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    // Random bytes make every config, hence every image, unique even with identical layers.
    history: [{ created_by: `bench ${randomFillSync(Buffer.alloc(8)).toString('hex')}` }],
  };
  const config = await pushBlob(base, repo, encodeJson(configJson), 'application/vnd.oci.image.config.v1+json');
  const manifestJson = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config,
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifest = encodeJson(manifestJson);
  const digest = await putManifest(base, repo, tag ?? sha256(manifest), manifestJson.mediaType, manifest);
  return { digest, mediaType: manifestJson.mediaType, size: manifest.length, config, layers: layers.map(({ diffId: _d, ...b }) => b), manifest };
}

/** Makes `repo:tag` hold `image` by mounting its blobs from `from` (same registry) and putting the manifest. */
export async function cloneImage(base: string, from: string, repo: string, tag: string, image: PushedImage): Promise<void> {
  for (const b of [image.config, ...image.layers]) await mountBlob(base, repo, from, b.digest);
  await putManifest(base, repo, tag, image.mediaType, image.manifest);
}
