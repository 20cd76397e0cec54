/**
 * Sigstore bundles (keyless): a short-lived Fulcio certificate naming the signer's OIDC identity,
 * logged in Rekor, verified offline with @sigstore/verify against a trusted root given by the user.
 * Loaded only when an image has a bundle to check and a mirror has keyless identities (the sigstore
 * libraries take a noticeable part of a CLI start-up).
 *
 * A bundle counts for the image when, in this order: it verifies against the trusted root (chain,
 * SCT, transparency log, signature), its certificate's issuer is the identity's `issuer` and its
 * subject matches `subjectRegExp` (RE2, unanchored, as everywhere in the spec), and what it signed
 * is the image: a message signature over the manifest bytes, or a DSSE in-toto statement with a
 * subject whose sha256 is the image digest.
 */
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { HashAlgorithm, TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial, type Signer } from '@sigstore/verify';
import { RE2JS } from 're2js';
import { printable } from './simple-signing.js';

/** Longest `subjectRegExp` accepted; checked before RE2 compiles it. */
export const SUBJECT_PATTERN_MAX_LENGTH = 1024;

/** The DSSE payload type of in-toto statements. */
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface KeylessIdentity {
  name: string;
  issuer: string;
  subjectRegExp: string;
  trustedRoot: string;
}

/** One keyless identity ready to check bundles, or why it cannot be used. */
export type LoadedIdentity =
  | { name: string; issuer: string; subject: RE2JS; subjectRegExp: string; verifier: Verifier; problem?: undefined }
  | { name: string; problem: string };

/** A message fit for a one-line reason: the first line, bounded. */
function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return printable(msg.split('\n')[0] ?? '', 160);
}

export function loadIdentity(id: KeylessIdentity): LoadedIdentity {
  const { name } = id;
  if (id.subjectRegExp.length > SUBJECT_PATTERN_MAX_LENGTH) return { name, problem: `keyless ${name}: subjectRegExp longer than ${SUBJECT_PATTERN_MAX_LENGTH} characters` };
  let subject: RE2JS;
  try {
    subject = RE2JS.compile(id.subjectRegExp);
  } catch (e) {
    return { name, problem: `keyless ${name}: subjectRegExp is not a valid RE2 regular expression: ${oneLine(e)}` };
  }
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(JSON.parse(id.trustedRoot));
  } catch (e) {
    return { name, problem: `trusted root ${name} is not a Sigstore trusted root: ${oneLine(e)}` };
  }
  let verifier: Verifier;
  try {
    // A log the root does not name cannot be required: a private deployment may have no CT log.
    verifier = new Verifier(toTrustMaterial(root), {
      tlogThreshold: root.tlogs.length > 0 ? 1 : 0,
      ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0,
      timestampThreshold: 1,
    });
  } catch (e) {
    return { name, problem: `trusted root ${name} is not usable: ${oneLine(e)}` };
  }
  return { name, issuer: id.issuer, subject, subjectRegExp: id.subjectRegExp, verifier };
}

export type ParsedBundle = { bundle: Bundle } | { problem: string };

export function parseBundle(bytes: Uint8Array): ParsedBundle {
  try {
    return { bundle: bundleFromJSON(JSON.parse(Buffer.from(bytes).toString('utf8'))) };
  } catch (e) {
    return { problem: `bundle is not a valid Sigstore bundle: ${oneLine(e)}` };
  }
}

/** Whether the bundle needs the artifact's bytes (a message signature is over them). */
export function needsArtifact(bundle: Bundle): boolean {
  return bundle.content.$case === 'messageSignature';
}

/** undefined when the bundle signed the image `digest`, else why not. */
function bindingProblem(bundle: Bundle, digest: string): string | undefined {
  const hex = digest.slice('sha256:'.length);
  if (bundle.content.$case === 'messageSignature') {
    const md = bundle.content.messageSignature.messageDigest;
    if (md.algorithm !== HashAlgorithm.SHA2_256) return 'bundle signed a digest other than sha256';
    const named = `sha256:${Buffer.from(md.digest).toString('hex')}`;
    return named === digest ? undefined : `bundle names ${named} not ${digest}`;
  }
  const env = bundle.content.dsseEnvelope;
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `bundle's payload is ${printable(env.payloadType)}, not an in-toto statement`;
  let statement: unknown;
  try {
    statement = JSON.parse(Buffer.from(env.payload).toString('utf8'));
  } catch {
    return "bundle's in-toto statement is not JSON";
  }
  const subjects = (statement as { subject?: unknown }).subject;
  if (!Array.isArray(subjects) || subjects.length === 0) return "bundle's in-toto statement has no subject";
  const named: string[] = [];
  for (const s of subjects) {
    const sha = (s as { digest?: { sha256?: unknown } } | null)?.digest?.sha256;
    if (sha === hex) return undefined;
    if (typeof sha === 'string') named.push(`sha256:${printable(sha)}`);
  }
  return named.length > 0 ? `bundle names ${named[0]}${named.length > 1 ? ` (and ${named.length - 1} more)` : ''} not ${digest}` : "bundle's in-toto statement names no sha256 subject";
}

function identityOf(signer: Signer): { subject: string | undefined; issuer: string | undefined } {
  return { subject: signer.identity?.subjectAlternativeName, issuer: signer.identity?.extensions?.issuer };
}

export type BundleVerdict = { ok: true; by: string } | { ok: false; reason: string };

/**
 * Checks `bundle` against each usable identity; the first that accepts it wins. `artifact` is the
 * image manifest's bytes (needed for message signatures, see needsArtifact).
 */
export function verifyBundle(bundle: Bundle, identities: readonly LoadedIdentity[], digest: string, artifact: Buffer | undefined): BundleVerdict {
  const reasons: string[] = [];
  const mismatched: Array<{ subject: string | undefined; issuer: string | undefined; want: string }> = [];
  for (const id of identities) {
    if (id.problem !== undefined) continue;
    let signer: Signer;
    try {
      signer = id.verifier.verify(toSignedEntity(bundle, artifact));
    } catch (e) {
      reasons.push(`bundle not verified with trusted root ${id.name}: ${oneLine(e)}`);
      continue;
    }
    const who = identityOf(signer);
    if (who.issuer !== id.issuer || who.subject === undefined || !id.subject.matcher(who.subject).find()) {
      mismatched.push({ ...who, want: `issuer ${id.issuer}, subject ${id.subjectRegExp}` });
      continue;
    }
    const binding = bindingProblem(bundle, digest);
    if (binding !== undefined) {
      reasons.push(binding);
      continue;
    }
    return { ok: true, by: `keyless ${who.subject} (${who.issuer})` };
  }
  if (mismatched.length > 0) {
    const m = mismatched[0]!;
    const got = `identity ${printable(m.subject ?? '(none)')} issued by ${printable(m.issuer ?? '(none)')}`;
    reasons.push(mismatched.length === 1 ? `${got} does not match ${m.want}` : `${got} matches none of the ${mismatched.length} keyless identities`);
  }
  return { ok: false, reason: reasons.length > 0 ? reasons.join('; ') : 'no usable keyless identity' };
}
