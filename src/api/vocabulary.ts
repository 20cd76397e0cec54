/**
 * The names the API speaks in: group and kinds, the values status rows and conditions take, and
 * the cloud providers a credentials reference may name. One vocabulary for status, CLI, JSON and
 * metrics; the modules that act on these values import them from here.
 */

export const GROUP = 'imagemirror.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The same string, typed as its literal (an ImageMirrorPolicy's apiVersion field has that type). */
export const POLICY_API_VERSION = `${GROUP}/${VERSION}` as const;
export const KIND = 'ImageMirror';
export const PLURAL = 'imagemirrors';
export const POLICY_KIND = 'ImageMirrorPolicy';
export const POLICY_PLURAL = 'imagemirrorpolicies';

/** What a sync did for one target tag (status.targets[].action). */
export const TargetAction = {
  UpToDate: 'UpToDate',
  Retagged: 'Retagged',
  Copied: 'Copied',
  Conflict: 'Conflict',
  Failed: 'Failed',
  /** A target tag prune deleted (in a dry run: would delete). */
  Pruned: 'Pruned',
  /** Left the selection but could not be deleted; the row's message says why. */
  NotPruned: 'NotPruned',
} as const;
export type TargetAction = (typeof TargetAction)[keyof typeof TargetAction];

export type ConditionStatus = 'True' | 'False' | 'Unknown';
export const CONDITION_STATUSES: readonly ConditionStatus[] = ['True', 'False', 'Unknown'];

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

export type CloudProvider = 'aws' | 'gcp' | 'azure';
export const CLOUD_PROVIDERS: readonly CloudProvider[] = ['aws', 'gcp', 'azure'];

export function isCloudProvider(v: unknown): v is CloudProvider {
  return typeof v === 'string' && (CLOUD_PROVIDERS as readonly string[]).includes(v);
}

/** status.targets holds at most this many rows; status.targetsOmitted counts the rest. */
export const TARGET_ROWS_CAP = 100;

/**
 * Most tags status.owned records per target repository (the CRD's maxItems), and across all of a
 * mirror's target repositories together (the reconcile stops recording there). The status must fit
 * the API server's request limit (about 1.5 MiB): a recorded tag with its digest takes about 85
 * bytes, so 5,000 take about 420 KiB, leaving room for rows and conditions. A tag written past the
 * cap is not recorded and so never pruned; a mirror selecting more should be split.
 */
export const OWNED_TAGS_CAP = 5_000;

/** The Secret data key a keyless entry reads its trusted root from when it names none. */
export const DEFAULT_TRUSTED_ROOT_KEY = 'trusted_root.json';
