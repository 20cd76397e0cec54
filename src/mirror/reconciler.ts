/**
 * The reconcile contract every front end (controller, `run`, `sync`) drives: key → result.
 * Front ends resolve credentials their own way (Secrets in the mirror's namespace, or YAML files and
 * docker config) and store the returned status their own way.
 */
import type { CredentialProvider } from '../oci/credentials.js';
import type { TargetReport } from '../copy/report.js';
import type { CloudProvider, ImageMirror, ImageMirrorStatus, SecretRef } from './types.js';
import type { ImageMirrorPolicy } from './policy.js';

/** The copy engine's per target tag result: importers of this module keep finding it here. */
export type { TargetReport } from '../copy/report.js';

/** Thrown by a credentials resolver when a Secret is missing or of the wrong type (status reason CredentialsNotFound). */
export { CredentialsNotFoundError } from '../oci/credentials.js';

export interface ReconcileContext {
  /**
   * Credentials for one side of a mirror: the Secret named by `ref` in `namespace` (never another
   * namespace), falling back to whatever the front end allows (docker config in file modes). The
   * provider should have an `identity` naming the Secret and its version, so its registry client
   * is kept while the Secret is unchanged. Throws CredentialsNotFoundError.
   *
   * `credentials.provider` never comes here: the reconciler resolves it with the cloud identity of
   * this process, one renewing provider per (provider, registry) for its whole life, so a token
   * renewed during one reconcile serves the next.
   */
  credentials(namespace: string, ref: SecretRef | undefined): Promise<CredentialProvider>;
  /**
   * Which `credentials.provider` values a mirror may use. Unset: every one (file modes, where the
   * identity is the operator's own). The controller passes what its --cloud-credentials flag
   * names, none by default: a provider lends the controller's own cloud identity to whichever
   * namespace names it. A mirror naming another is Stalled, reason Forbidden.
   */
  cloudProviders?: readonly CloudProvider[];
  /** What the Forbidden message tells the user to do for a refused provider (the controller names its flag). */
  allowCloudProviderHint?: (provider: CloudProvider) => string;
  /** Aborted on shutdown: stop starting new work; in-flight manifest pushes finish or are not made. */
  signal?: AbortSignal;
  /**
   * Read the source afresh rather than take a tags/list or HEAD another mirror's reconcile got a
   * moment ago: set for a reconcile a push or a "reconcile now" asked for, which must see the push.
   */
  fresh?: boolean;
  /** Plan only: report what would happen, write nothing. */
  dryRun?: boolean;
  now?: () => Date;
  /** Blob bytes streamed so far in this reconcile (for progress on a terminal). */
  onProgress?: (bytes: number) => void;
  /**
   * Every ImageMirrorPolicy in force. Checked before credentials or any request: a mirror outside
   * them is Stalled, reason Forbidden, and nothing is read or written.
   */
  policies?: readonly ImageMirrorPolicy[];
  /** Deny namespaces no policy names (otherwise they are unrestricted). */
  requirePolicy?: boolean;
  /**
   * Admit `oci:PATH` and `oci-archive:PATH` repositories: the file modes (sync, run, bundle) pass
   * true; unset, a mirror naming a path is InvalidSpec, since it would read and write this
   * process's file system on behalf of whoever wrote the mirror.
   */
  localPaths?: boolean;
  /**
   * One value of a Secret in `namespace` (any type): the keys and trusted roots `spec.verify`
   * names. Throws CredentialsNotFoundError naming secret and key when absent, never the value.
   * Unset: a mirror with `spec.verify` cannot be verified here, and writes nothing.
   */
  secretValue?(namespace: string, secretName: string, key: string): Promise<string>;
}

export type ReconcileOutcome =
  /** In sync: requeue after spec.interval. */
  | 'synced'
  /** Failed in a way a retry may fix: requeue with per-key backoff. */
  | 'retry'
  /** Retrying cannot help until the spec (or a policy) changes (InvalidSpec, TagConflict, Forbidden). */
  | 'stalled'
  /** spec.suspend: nothing done, status left as it was. */
  | 'suspended';

export interface ReconcileResult {
  outcome: ReconcileOutcome;
  /** The complete new status (conditions keep lastTransitionTime when their status is unchanged). */
  status: ImageMirrorStatus;
  /** For outcome 'synced': spec.interval in ms (the front end adds jitter). */
  requeueAfterMs?: number;
  /** One-line reason for logs, events and CLI output when not synced. */
  reason: string;
  message: string;
  targets: TargetReport[];
}

export interface Reconciler {
  reconcile(mirror: ImageMirror, ctx: ReconcileContext): Promise<ReconcileResult>;
}
