/**
 * The ImageMirror API (group imagemirror.dev, version v1alpha1), as TypeScript types, with the
 * condition vocabulary beside it. crds/imagemirror.yaml and src/mirror/validate.ts agree with these.
 */
import type { TargetAction } from '../copy/actions.js';
import type { CloudProvider } from '../auth/provider.js';

export type { CloudProvider } from '../auth/provider.js';

export const GROUP = 'imagemirror.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ImageMirror';
export const PLURAL = 'imagemirrors';

/** A kubernetes.io/dockerconfigjson Secret in the mirror's own namespace. */
export interface SecretRef {
  secretName: string;
}

/**
 * The cloud identity this process runs as (the controller pod's service account, or the host of
 * `sync`/`run`): no Secret to create or rotate.
 */
export interface CloudRef {
  provider: CloudProvider;
}

/** `credentials`: exactly one of secretName or provider (the CRD's CEL rule and validateMirror say so). */
export type CredentialsRef = SecretRef | CloudRef;

export function isCloudRef(ref: CredentialsRef | undefined): ref is CloudRef {
  return ref !== undefined && 'provider' in ref;
}

export interface SourceSpec {
  /** host[:port]/path, no tag or digest. */
  repository: string;
  tags?: string[];
  /** RE2, unanchored. */
  tagPattern?: string;
  /** npm-style range; a comma is read as AND. */
  semver?: string;
  digest?: string;
  /** With tagPattern/semver: keep only the N highest. */
  latest?: number;
  credentials?: CredentialsRef;
  insecure?: boolean;
  /** `os/arch[/variant]`: copy only these children of an index, under a new index holding exactly them. */
  platforms?: string[];
  /** RE2, unanchored: tags matching any are dropped after every selector, before `latest`. */
  exclude?: string[];
}

export interface TargetSpec {
  repository: string;
  /** Replaces the source tag names; only with a single-image source. */
  tags?: string[];
  credentials?: CredentialsRef;
  insecure?: boolean;
  /** Delete target tags this mirror wrote that left the selection (default false). */
  prune?: boolean;
}

/** A PEM public key (ECDSA P-256, RSA, Ed25519) in `data[key]` of a Secret in the mirror's namespace. */
export interface VerifyKeyRef {
  secretName: string;
  key: string;
}

/** Sigstore bundles checked against a trusted root in `data[key]` of a Secret, for one signer identity. */
export interface VerifyKeylessRef {
  trustedRootSecretName: string;
  /** Default DEFAULT_TRUSTED_ROOT_KEY. */
  key?: string;
  /** The OIDC issuer of the signing certificate, an https URL. */
  issuer: string;
  /** RE2, unanchored, matched against the certificate's subject (identity). */
  subjectRegExp: string;
}

/** The verification gate: an image no listed key or identity signed is written nowhere. */
export interface VerifySpec {
  keys?: VerifyKeyRef[];
  keyless?: VerifyKeylessRef[];
}

export const DEFAULT_TRUSTED_ROOT_KEY = 'trusted_root.json';

export interface ImageMirrorSpec {
  source: SourceSpec;
  targets: TargetSpec[];
  referrers?: boolean;
  overwrite?: boolean;
  /** Go-style duration (`10m`, `1h30m`). */
  interval?: string;
  suspend?: boolean;
  verify?: VerifySpec;
}

export const DEFAULTS = { referrers: true, overwrite: true, interval: '10m', suspend: false } as const;

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export const ConditionType = { Ready: 'Ready', Reconciling: 'Reconciling', Stalled: 'Stalled' } as const;

export const Reason = {
  Synced: 'Synced',
  InvalidSpec: 'InvalidSpec',
  CredentialsNotFound: 'CredentialsNotFound',
  AuthFailed: 'AuthFailed',
  SourceNotFound: 'SourceNotFound',
  TagConflict: 'TagConflict',
  RegistryError: 'RegistryError',
  Suspended: 'Suspended',
  Progressing: 'Progressing',
  Retrying: 'Retrying',
  /** Another mirror already writes this target tag (one tag, one owner). */
  TargetClaimed: 'TargetClaimed',
  /** Outside every ImageMirrorPolicy that names the namespace (or none does under --require-policy). */
  Forbidden: 'Forbidden',
  /** An image did not verify: Ready=False, not Stalled (retried: a signature may appear later). */
  VerificationFailed: 'VerificationFailed',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Reasons after which retrying cannot help until the spec changes (Stalled=True). */
export const STALLED_REASONS: ReadonlySet<string> = new Set([Reason.InvalidSpec, Reason.TagConflict, Reason.Forbidden]);

export interface TargetStatus {
  reference: string;
  digest: string;
  action: TargetAction;
  lastSyncTime: string;
  message?: string;
  /** The source's digest, when the digest written differs from it (a platform-filtered index). */
  sourceDigest?: string;
}

/** Target tags this mirror wrote into one repository: prune's ownership record. */
export interface OwnedTags {
  repository: string;
  tags: string[];
}

export interface ImageMirrorStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** Source tag (or digest) → manifest digest. */
  sourceDigests?: Record<string, string>;
  /** One row per target tag, capped at TARGET_ROWS_CAP. */
  targets?: TargetStatus[];
  /** Rows left out of `targets` by the cap. */
  targetsOmitted?: number;
  /** e.g. `3/3 in sync`, for the Targets printer column. */
  summary?: string;
  lastSyncTime?: string;
  bytes?: { copied: number; saved: number };
  /** The value of the requested-at annotation the last reconcile saw (an on-demand request handled). */
  lastHandledRequestedAt?: string;
  /** One entry per target repository; not capped like `targets` (prune must see every tag). */
  owned?: OwnedTags[];
}

/** Set (to any new value, e.g. `$(date +%s)`) to have the mirror reconciled now, whatever it waits on. */
export const REQUESTED_AT_ANNOTATION = 'imagemirror.dev/requested-at';
/** Flux's annotation for the same, so `flux reconcile`-style tooling works unchanged. */
export const FLUX_REQUESTED_AT_ANNOTATION = 'reconcile.fluxcd.io/requestedAt';
/** Longest requested-at value copied into status (the CRD's maxLength); the rest is cut off. */
export const MAX_REQUESTED_AT_LENGTH = 256;

/**
 * The on-demand request a mirror carries: our annotation, else Flux's. Either changing triggers a
 * reconcile; this is the value recorded as status.lastHandledRequestedAt.
 */
export function requestedAt(m: { metadata: { annotations?: Record<string, string> } }): string | undefined {
  const a = m.metadata.annotations;
  const v = a?.[REQUESTED_AT_ANNOTATION] ?? a?.[FLUX_REQUESTED_AT_ANNOTATION];
  return typeof v === 'string' ? v.slice(0, MAX_REQUESTED_AT_LENGTH) : undefined;
}

/** Whether an update changed either requested-at annotation. */
export function requestedAtChanged(m: { metadata: { annotations?: Record<string, string> } }, old: { metadata: { annotations?: Record<string, string> } }): boolean {
  const a = m.metadata.annotations ?? {};
  const b = old.metadata.annotations ?? {};
  return a[REQUESTED_AT_ANNOTATION] !== b[REQUESTED_AT_ANNOTATION] || a[FLUX_REQUESTED_AT_ANNOTATION] !== b[FLUX_REQUESTED_AT_ANNOTATION];
}

export const TARGET_ROWS_CAP = 100;

/**
 * Most tags status.owned records per target repository (the CRD's maxItems). The status must fit
 * the API server's request limit (about 1.5 MiB): 10,000 tags of typical length take a few hundred
 * KiB, and a mirror selecting more than that from one repository should be split anyway.
 */
export const OWNED_TAGS_CAP = 10_000;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

export interface ImageMirror {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: ImageMirrorSpec;
  status?: ImageMirrorStatus;
}

/** `namespace/name`, the key used by queues, logs and file stores. */
export function mirrorKey(m: { metadata: { name: string; namespace?: string } }): string {
  return `${m.metadata.namespace ?? 'default'}/${m.metadata.name}`;
}
