/**
 * The verification gate: does an image carry a signature the mirror trusts? Any one signature
 * verifying with any one key or keyless identity is enough; otherwise the outcome's `reason` says,
 * in one line, what was wrong with each signature found (never a stack, never key material).
 *
 * Signatures are read from the repository the image comes from: cosign's `sha256-<hex>.sig` tag and
 * the image's referrers (cosign signature artifacts, Sigstore bundles). Key signatures are checked
 * with node:crypto against PEM public keys; bundles with @sigstore/verify against a trusted root,
 * offline. Registry failures (network, authorization) are thrown as they are, not turned into a
 * verdict: they say nothing about whether the image is signed.
 */
import type { CallOptions, Repository } from '../oci/content.js';
import type { KeyObject } from 'node:crypto';
import { isSha256Digest } from '../oci/digest.js';
import { loadKey, signedBy } from './keys.js';
import { findSignatures, readSmallBlob, type Candidate, type SearchTally, MAX_SIGNATURES_EXAMINED } from './signatures.js';
import { payloadProblem } from './simple-signing.js';
import type { LoadedIdentity } from './keyless.js';

export {
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIGNATURE_ARTIFACT,
  MAX_SIGNATURE_MANIFESTS,
  MAX_SIGNATURES_EXAMINED,
  SIGSTORE_BUNDLE_PREFIX,
} from './signatures.js';
export { COSIGN_SIGNATURE_TYPE } from './simple-signing.js';

export interface VerifyMaterial {
  /** PEM public keys; `name` ("secret/key") is how messages name the key. */
  keys: { name: string; pem: string }[];
  /** Keyless identities, each with the trusted root (JSON) its bundles are verified against. */
  keyless: { name: string; trustedRoot: string; issuer: string; subjectRegExp: string }[];
}

/** `by` names what verified it: `key <name>` or `keyless <subject> (<issuer>)`. */
export type VerifyOutcome = { ok: true; by: string } | { ok: false; reason: string };

/**
 * Largest simple-signing payload read. cosign's are a few hundred bytes (the image reference, the
 * digest, optional annotations); anyone who can push a signature chooses this size.
 */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/**
 * Largest Sigstore bundle read. A signature bundle is a few kB (certificate chain, log entry); an
 * attestation bundle carries its statement, which stays well under this for signature use.
 */
export const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;
/** Distinct problems spelled out in a reason; the rest are counted, so the reason stays one short line. */
export const MAX_REASON_PARTS = 4;

function decodeSignature(b64: string): Buffer | undefined {
  const compact = b64.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** The reason for several failures: identical problems merged with a count, at most MAX_REASON_PARTS shown. */
function summarize(problems: readonly string[], notExamined: number): string {
  const counts = new Map<string, number>();
  for (const p of problems) counts.set(p, (counts.get(p) ?? 0) + 1);
  const parts = [...counts].map(([p, n]) => (n > 1 ? `${p} (${n} signatures)` : p));
  const shown = parts.slice(0, MAX_REASON_PARTS);
  if (parts.length > shown.length) shown.push(`${parts.length - shown.length} other problems`);
  if (notExamined > 0) shown.push(`${notExamined} more signatures not examined (at most ${MAX_SIGNATURES_EXAMINED} are)`);
  return shown.join('; ');
}

/**
 * Whether `digest` in `repo` carries a signature that one of `material`'s keys or keyless
 * identities verifies. `repo` is where the image is read from (the mirror's source).
 */
export async function verifyImage(repo: Repository, digest: string, material: VerifyMaterial, options: { signal?: AbortSignal } = {}): Promise<VerifyOutcome> {
  if (!isSha256Digest(digest)) return { ok: false, reason: `${digest} is not a sha256 digest` };
  const call: CallOptions = options.signal ? { signal: options.signal } : {};
  const loaded = material.keys.map((k) => loadKey(k.name, k.pem));
  const keys = loaded.filter((k): k is { name: string; key: KeyObject } => k.key !== undefined);
  const keyNames = material.keys.map((k) => k.name).join(', ');
  const materialProblems = loaded.flatMap((k) => (k.problem !== undefined ? [k.problem] : []));

  let identities: LoadedIdentity[] | undefined;
  let keyless: typeof import('./keyless.js') | undefined;
  let manifestBytes: Buffer | undefined;

  const checkKeySignature = async (c: Extract<Candidate, { kind: 'key' }>): Promise<VerifyOutcome> => {
    if (material.keys.length === 0) {
      return { ok: false, reason: c.certificate ? 'keyless cosign signature without a Sigstore bundle (only bundles are verified keyless)' : 'cosign signature, and no keys to check it with' };
    }
    const sig = decodeSignature(c.signature);
    if (!sig) return { ok: false, reason: 'signature annotation is not base64' };
    const payload = await readSmallBlob(repo, c.payload, MAX_PAYLOAD_BYTES, 'signature payload', call);
    if ('problem' in payload) return { ok: false, reason: payload.problem };
    const by = keys.find((k) => signedBy(k.key, payload.bytes, sig));
    if (!by) return { ok: false, reason: `signature by none of the keys ${keyNames}` };
    const problem = payloadProblem(payload.bytes, digest);
    if (problem !== undefined) return { ok: false, reason: problem };
    return { ok: true, by: `key ${by.name}` };
  };

  const checkBundle = async (c: Extract<Candidate, { kind: 'bundle' }>): Promise<VerifyOutcome> => {
    if (material.keyless.length === 0) return { ok: false, reason: 'Sigstore bundle, and no keyless identities to check it with' };
    keyless ??= await import('./keyless.js');
    if (!identities) {
      identities = material.keyless.map((k) => keyless!.loadIdentity(k));
      for (const id of identities) if (id.problem !== undefined) materialProblems.push(id.problem);
    }
    const blob = await readSmallBlob(repo, c.bundle, MAX_BUNDLE_BYTES, 'bundle', call);
    if ('problem' in blob) return { ok: false, reason: blob.problem };
    const parsed = keyless.parseBundle(blob.bytes);
    if ('problem' in parsed) return { ok: false, reason: parsed.problem };
    // A message signature is over the manifest bytes; the registry client checks they hash to `digest`.
    if (keyless.needsArtifact(parsed.bundle)) manifestBytes ??= Buffer.from((await repo.getManifest(digest, call)).bytes);
    return keyless.verifyBundle(parsed.bundle, identities, digest, manifestBytes);
  };

  const problems: string[] = [];
  const tally: SearchTally = { notExamined: 0 };
  for await (const c of findSignatures(repo, digest, call, tally)) {
    const v = c.kind === 'key' ? await checkKeySignature(c) : c.kind === 'bundle' ? await checkBundle(c) : ({ ok: false, reason: c.problem } as const);
    if (v.ok) return v;
    problems.push(v.reason);
  }
  const materialNotes = [...new Set(materialProblems)];
  if (problems.length === 0 && tally.notExamined === 0) return { ok: false, reason: [`no signature found for ${digest}`, ...materialNotes].join('; ') };
  return { ok: false, reason: summarize([...materialNotes, ...problems], tally.notExamined) };
}
