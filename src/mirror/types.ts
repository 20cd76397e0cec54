/**
 * The ImageMirror API as the rest of the code imports it: the types, vocabulary and defaults are
 * declared in src/api/ (the one declaration the CRD, validation and docs come from) and re-exported
 * here; what is not part of the API object itself (the on-demand request annotations, the queue
 * key) lives here.
 */
export {
  API_VERSION,
  ConditionType,
  DEFAULT_TRUSTED_ROOT_KEY,
  DEFAULTS,
  GROUP,
  KIND,
  OWNED_TAGS_CAP,
  PLURAL,
  Reason,
  STALLED_REASONS,
  TARGET_ROWS_CAP,
  VERSION,
  intervalOf,
  overwriteEnabled,
  pruneEnabled,
  referrersEnabled,
  suspended,
  trustedRootKey,
} from '../api/index.js';
export type {
  BytesStatus,
  CloudProvider,
  CloudRef,
  Condition,
  ConditionStatus,
  CredentialsRef,
  ImageMirror,
  ImageMirrorSpec,
  ImageMirrorStatus,
  ObjectMeta,
  OwnedTags,
  SecretRef,
  SourceSpec,
  TargetSpec,
  TargetStatus,
  VerifyKeylessRef,
  VerifyKeyRef,
  VerifySpec,
} from '../api/index.js';
import type { CloudRef, CredentialsRef } from '../api/index.js';

export function isCloudRef(ref: CredentialsRef | undefined): ref is CloudRef {
  return ref !== undefined && 'provider' in ref;
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

/** `namespace/name`, the key used by queues, logs and file stores. */
export function mirrorKey(m: { metadata: { name: string; namespace?: string } }): string {
  return `${m.metadata.namespace ?? 'default'}/${m.metadata.name}`;
}
