/**
 * Pushes the demo's sample image to a loopback registry: a 3-platform OCI index (linux/amd64,
 * linux/arm64, linux/arm/v7; one shared base layer and one layer per platform, a few MiB in all)
 * and a signature that refers to it. docker-registry 2.8.2 has no referrers API, so the signature
 * is listed the way the OCI spec's fallback says: an index under the tag `sha256-<hex of subject>`.
 *
 *   node --import tsx scripts/demo/push-samples.ts HOST:PORT REPO TAG
 */
import { encodeJson, pushBlob, pushImageFromLayers, pushRandomLayer, putManifest, sha256 } from '../../bench/lib/push.js';

const [host, repo, tag] = process.argv.slice(2);
if (!host || !repo || !tag) {
  process.stderr.write('usage: push-samples.ts HOST:PORT REPO TAG\n');
  process.exit(2);
}
const base = `http://${host}`;
const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const SIG_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';

const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

const baseLayer = await pushRandomLayer(base, repo, 2 * MiB);
const children = [];
for (const p of platforms) {
  const own = await pushRandomLayer(base, repo, 1 * MiB);
  const img = await pushImageFromLayers(base, repo, undefined, [baseLayer, own], p);
  children.push({ mediaType: OCI_MANIFEST, digest: img.digest, size: img.size, platform: p });
}
const index = encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children });
const indexDigest = await putManifest(base, repo, tag, OCI_INDEX, index);

const empty = await pushBlob(base, repo, new TextEncoder().encode('{}'), 'application/vnd.oci.empty.v1+json');
const payload = await pushBlob(base, repo, encodeJson({ critical: { image: { 'docker-manifest-digest': indexDigest } }, note: 'demo signature' }), 'application/vnd.dev.cosign.simplesigning.v1+json');
const sig = encodeJson({
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  artifactType: SIG_TYPE,
  config: empty,
  layers: [payload],
  subject: { mediaType: OCI_INDEX, digest: indexDigest, size: index.length },
});
const sigDigest = sha256(sig);
await putManifest(base, repo, sigDigest, OCI_MANIFEST, sig);
const fallbackTag = indexDigest.replace(':', '-');
const referrers = encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sigDigest, size: sig.length, artifactType: SIG_TYPE }] });
await putManifest(base, repo, fallbackTag, OCI_INDEX, referrers);

const bytes = baseLayer.size + 3 * MiB;
process.stdout.write(
  `pushed ${host}/${repo}:${tag} = ${indexDigest}\n` +
    `  index of ${platforms.length} platforms (${platforms.map((p) => `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`).join(', ')}), ~${(bytes / MiB).toFixed(0)} MiB of layers\n` +
    `  signature ${sigDigest.slice(0, 19)}… listed under the referrers fallback tag ${fallbackTag.slice(0, 19)}…\n`,
);
