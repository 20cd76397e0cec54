/**
 * Signing images the way cosign does, with keys made at test time: the simple-signing payload,
 * the `sha256-<hex>.sig` manifest (an image whose layers are payloads, the base64 signature in an
 * annotation; config lists them as diff_ids), and the OCI 1.1 variant: the same layer in an
 * artifact manifest with `subject`, found through the referrers API or the fallback tag.
 */
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { Descriptor, Repository } from '../../src/oci/content.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { blobOf, pushBlobs, type Blob } from '../support/images.js';

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIG_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';

export type KeyKind = 'ecdsa-p256' | 'rsa' | 'rsa-pss' | 'ed25519' | 'ecdsa-p384';

export interface TestKey {
  kind: KeyKind;
  privateKey: KeyObject;
  /** SPKI PEM, as `cosign public-key` prints it. */
  pem: string;
}

export function makeKey(kind: KeyKind): TestKey {
  const pair =
    kind === 'ecdsa-p256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : kind === 'ecdsa-p384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : kind === 'ed25519'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kind, privateKey: pair.privateKey, pem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** The signature cosign makes with this key (RSA: PKCS#1 v1.5, or for 'rsa-pss' PSS with the largest salt, Go's default). */
export function cosignSign(key: TestKey, payload: Buffer): Buffer {
  switch (key.kind) {
    case 'ed25519':
      return sign(null, payload, key.privateKey);
    case 'rsa-pss':
      return sign('sha256', payload, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
    case 'rsa':
      return sign('sha256', payload, { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING });
    default:
      return sign('sha256', payload, { key: key.privateKey, dsaEncoding: 'der' });
  }
}

/** cosign's payload for `digest` (field order and `optional: null` as cosign writes them). */
export function simpleSigningPayload(digest: string, reference = 'registry.example/app', type = 'cosign container image signature'): Buffer {
  return Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type }, optional: null }));
}

export interface SignedLayer {
  blob: Blob;
  payload: Buffer;
}

/** A payload layer signed by `key` (or carrying `signature` as given). */
export function signatureLayer(payload: Buffer, key: TestKey, signature?: string): SignedLayer {
  const sig = signature ?? cosignSign(key, payload).toString('base64');
  return { blob: blobOf(payload, SIMPLE_SIGNING, { 'dev.cosignproject.cosign/signature': sig }), payload };
}

function manifestBytes(json: unknown): { bytes: Buffer; digest: string; descriptor: Descriptor } {
  const bytes = Buffer.from(JSON.stringify(json));
  const digest = sha256Digest(bytes);
  return { bytes, digest, descriptor: { mediaType: MediaType.OciManifest, digest, size: bytes.length } };
}

/** Pushes the `sha256-<hex>.sig` manifest for `subject` holding `layers`, as `cosign sign` does. */
export async function pushSigTag(repo: Repository, subject: string, layers: SignedLayer[]): Promise<string> {
  const config = blobOf(
    Buffer.from(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.blob.descriptor.digest) } })),
    MediaType.OciConfig,
  );
  await pushBlobs(repo, [config, ...layers.map((l) => l.blob)]);
  const m = manifestBytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.descriptor, layers: layers.map((l) => l.blob.descriptor) });
  await repo.putManifest(`${subject.replace(':', '-')}.sig`, { mediaType: MediaType.OciManifest, bytes: m.bytes });
  return m.digest;
}

/**
 * Pushes an artifact manifest with `subject` (cosign's OCI 1.1 mode, or a Sigstore bundle), and,
 * unless `fallbackIndex` is false, the `sha256-<hex>` fallback index listing it, as clients do for
 * registries without the referrers API.
 */
export async function pushReferrerArtifact(
  repo: Repository,
  subject: Descriptor,
  artifactType: string,
  layers: Blob[],
  o: { fallbackIndex?: boolean; annotations?: Record<string, string> } = {},
): Promise<string> {
  const empty = blobOf(Buffer.from('{}'), MediaType.OciEmpty);
  await pushBlobs(repo, [empty, ...layers]);
  const m = manifestBytes({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType,
    config: empty.descriptor,
    layers: layers.map((l) => l.descriptor),
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    ...(o.annotations ? { annotations: o.annotations } : {}),
  });
  await repo.putManifest(m.digest, { mediaType: MediaType.OciManifest, bytes: m.bytes });
  if (o.fallbackIndex !== false) {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...m.descriptor, artifactType }] }));
    await repo.putManifest(subject.digest.replace(':', '-'), { mediaType: MediaType.OciIndex, bytes: index });
  }
  return m.digest;
}
