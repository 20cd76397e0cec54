/**
 * Synthetic images for tests: random layers, image manifests with config, 3-platform OCI indexes,
 * eStargz-annotated layers and signature-like referrers, pushed through the content interface.
 * Everything returns digests, exact bytes and blob lists so tests can assert on them.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobReader, Descriptor, Platform, Repository } from '../../src/oci/content.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';

/** Uncompressed OCI layer: diff_id = digest, no gzip needed. */
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const STARGZ_TOC = 'containerd.io/snapshot/stargz/toc.digest';
export const STARGZ_UNCOMPRESSED = 'io.containers.estargz.uncompressed-size';
export const SIGNATURE_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface BuiltManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
  descriptor: Descriptor;
}

export interface BuiltImage extends BuiltManifest {
  config: Blob;
  layers: Blob[];
  /** Config and layers. */
  blobs: Blob[];
}

export interface BuiltIndex extends BuiltManifest {
  children: BuiltImage[];
  /** Every blob of every child (deduplicated by digest). */
  blobs: Blob[];
}

export function blobOf(bytes: Buffer, mediaType: string = OCI_LAYER_TAR, annotations?: Record<string, string>): Blob {
  const descriptor: Descriptor = { mediaType, digest: sha256Digest(bytes), size: bytes.length };
  if (annotations) descriptor.annotations = annotations;
  return { descriptor, bytes };
}

export function randomBlob(size: number, mediaType: string = OCI_LAYER_TAR): Blob {
  return blobOf(randomBytes(size), mediaType);
}

/** An `open` for putBlob that serves `bytes` from any offset, counting calls. */
export function opener(bytes: Buffer): ((offset: number) => Promise<BlobReader>) & { calls: number } {
  const f = async (offset: number): Promise<BlobReader> => {
    f.calls++;
    return { stream: Readable.from([bytes.subarray(offset)]), size: bytes.length };
  };
  f.calls = 0;
  return f;
}

function manifestOf(obj: unknown, mediaType: string, extra: Partial<Descriptor> = {}): BuiltManifest {
  const bytes = Buffer.from(JSON.stringify(obj, null, 2));
  const digest = sha256Digest(bytes);
  return { digest, mediaType, size: bytes.length, bytes, descriptor: { mediaType, digest, size: bytes.length, ...extra } };
}

export interface ImageOptions {
  /** Layer sizes in bytes (random content), default [1024, 2048]. */
  layers?: number[];
  /** Reuse these layers instead of random ones (e.g. to share blobs between images). */
  layerBlobs?: Blob[];
  platform?: Platform;
  /** Annotations per layer index. */
  layerAnnotations?: Array<Record<string, string> | undefined>;
  annotations?: Record<string, string>;
  /** Use Docker schema2 media types instead of OCI. */
  docker?: boolean;
}

export function buildImage(o: ImageOptions = {}): BuiltImage {
  const platform = o.platform ?? { architecture: 'amd64', os: 'linux' };
  const layerType = o.docker ? MediaType.DockerLayerGzip : OCI_LAYER_TAR;
  const layers =
    o.layerBlobs ??
    (o.layers ?? [1024, 2048]).map((n, i) => blobOf(randomBytes(n), layerType, o.layerAnnotations?.[i]));
  const config = blobOf(
    Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        created: '2026-01-01T00:00:00Z',
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.descriptor.digest) },
        config: {},
      }),
    ),
    o.docker ? MediaType.DockerConfig : MediaType.OciConfig,
  );
  const mediaType = o.docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const m = manifestOf(
    {
      schemaVersion: 2,
      mediaType,
      config: config.descriptor,
      layers: layers.map((l) => l.descriptor),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    mediaType,
    { platform },
  );
  return { ...m, config, layers, blobs: [config, ...layers] };
}

/** eStargz-style layers: the descriptor carries the TOC digest and uncompressed size annotations. */
export function buildEstargzImage(o: { layers?: number[] } = {}): BuiltImage {
  const sizes = o.layers ?? [1024, 2048];
  return buildImage({
    layers: sizes,
    layerAnnotations: sizes.map((n) => ({
      [STARGZ_TOC]: sha256Digest(randomBytes(32)),
      [STARGZ_UNCOMPRESSED]: String(n * 2),
    })),
  });
}

export const THREE_PLATFORMS: Platform[] = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux', variant: 'v8' },
  { architecture: 'ppc64le', os: 'linux' },
];

export function buildIndex(o: { platforms?: Platform[]; layers?: number[]; annotations?: Record<string, string> } = {}): BuiltIndex {
  const children = (o.platforms ?? THREE_PLATFORMS).map((platform) => buildImage({ platform, layers: o.layers ?? [512, 768] }));
  const m = manifestOf(
    {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: children.map((c) => c.descriptor),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    MediaType.OciIndex,
  );
  const seen = new Map<string, Blob>();
  for (const c of children) for (const b of c.blobs) seen.set(b.descriptor.digest, b);
  return { ...m, children, blobs: [...seen.values()] };
}

export async function pushBlobs(repo: Repository, blobs: Blob[]): Promise<void> {
  for (const b of blobs) {
    if ((await repo.headBlob(b.descriptor.digest)) !== undefined) continue;
    await repo.putBlob(b.descriptor, opener(b.bytes));
  }
}

/** Blobs, then the manifest by digest, then the tag (if any). */
export async function pushImage(repo: Repository, img: BuiltImage, tag?: string): Promise<BuiltImage> {
  await pushBlobs(repo, img.blobs);
  await repo.putManifest(img.digest, { mediaType: img.mediaType, bytes: img.bytes });
  if (tag) await repo.putManifest(tag, { mediaType: img.mediaType, bytes: img.bytes });
  return img;
}

export async function pushIndex(repo: Repository, idx: BuiltIndex, tag?: string): Promise<BuiltIndex> {
  for (const c of idx.children) await pushImage(repo, c);
  await repo.putManifest(idx.digest, { mediaType: idx.mediaType, bytes: idx.bytes });
  if (tag) await repo.putManifest(tag, { mediaType: idx.mediaType, bytes: idx.bytes });
  return idx;
}

export interface BuiltReferrer extends BuiltManifest {
  blobs: Blob[];
  /** `sha256-<hex>`: the referrers fallback tag, holding an index of referrers. */
  fallbackTag: string;
  fallbackIndex: BuiltManifest;
  /** `sha256-<hex>.sig`, cosign style (points at the artifact manifest itself). */
  cosignTag: string;
}

export function fallbackTagOf(digest: string): string {
  return digest.replace(':', '-');
}

/** A signature-like artifact whose `subject` is `subject`. */
export function buildReferrer(subject: Descriptor, o: { artifactType?: string; payload?: Buffer } = {}): { artifact: BuiltManifest; blobs: Blob[] } {
  const artifactType = o.artifactType ?? SIGNATURE_ARTIFACT;
  const empty = blobOf(Buffer.from('{}'), MediaType.OciEmpty);
  const payload = blobOf(o.payload ?? Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': subject.digest } }, nonce: randomBytes(8).toString('hex') })), 'application/vnd.dev.cosign.simplesigning.v1+json', {
    'dev.cosignproject.cosign/signature': randomBytes(48).toString('base64'),
  });
  const artifact = manifestOf(
    {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType,
      config: empty.descriptor,
      layers: [payload.descriptor],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    },
    MediaType.OciManifest,
    { artifactType },
  );
  return { artifact, blobs: [empty, payload] };
}

/**
 * Pushes a referrer of `subject` the way clients do on registries without the referrers API:
 * the artifact by digest, the `sha256-<hex>` fallback index listing it, and a cosign `.sig` tag.
 */
export async function pushReferrer(repo: Repository, subject: Descriptor, o: { artifactType?: string; cosignTag?: boolean } = {}): Promise<BuiltReferrer> {
  const { artifact, blobs } = buildReferrer(subject, o);
  await pushBlobs(repo, blobs);
  await repo.putManifest(artifact.digest, { mediaType: artifact.mediaType, bytes: artifact.bytes });
  const fallbackTag = fallbackTagOf(subject.digest);
  const fallbackIndex = manifestOf(
    { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [artifact.descriptor] },
    MediaType.OciIndex,
  );
  await repo.putManifest(fallbackTag, { mediaType: fallbackIndex.mediaType, bytes: fallbackIndex.bytes });
  const cosignTag = `${fallbackTag}.sig`;
  if (o.cosignTag !== false) await repo.putManifest(cosignTag, { mediaType: artifact.mediaType, bytes: artifact.bytes });
  return { ...artifact, blobs, fallbackTag, fallbackIndex, cosignTag };
}
