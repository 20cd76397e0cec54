// Generated from the declarations in src/api/ by `npm run gen:api`; do not edit by hand.
// test/api/drift.test.ts fails when this file is stale.
import type { API_VERSION, CloudProvider, ConditionStatus, KIND, POLICY_API_VERSION, POLICY_KIND, TargetAction } from './vocabulary.js';
import type { ObjectMeta, PolicyMeta } from './meta.js';

/** ImageMirror keeps the tags of one source repository mirrored into one or more target repositories. */
export interface ImageMirror {
  /** APIVersion defines the versioned schema of this representation of an object. */
  apiVersion: typeof API_VERSION;
  /** Kind is a string value representing the REST resource this object represents. */
  kind: typeof KIND;
  metadata: ObjectMeta;
  /** What to mirror, from where to where, and how often. */
  spec: ImageMirrorSpec;
  /** Observed state, written by the controller. */
  status?: ImageMirrorStatus;
}

/** What to mirror, from where to where, and how often. */
export interface ImageMirrorSpec {
  /** The repository to mirror from and which of its images to select. Exactly one of tags, tagPattern, semver, digest. */
  source: SourceSpec;
  /** Where to mirror to. Each target tag is made to point at the same manifest digest as its source tag. */
  targets: TargetSpec[];
  /** Also copy signatures, SBOMs and attestations that refer to each image. */
  referrers?: boolean;
  /** Move a target tag that points at a different image. When false such a tag is reported as TagConflict and left alone. */
  overwrite?: boolean;
  /** Resync period, a Go-style duration (10m, 1h30m, 90s). A value below 10s or above 720h (30 days) is clamped to that bound. */
  interval?: string;
  /** Stop reconciling this mirror. Its conditions are left as they were; status.observedGeneration still records each generation seen. */
  suspend?: boolean;
  /** Promote only signed images. Each selected image must carry a signature made by one of keys or one of keyless; an image that does not verify is written nowhere and the mirror is Ready=False, VerificationFailed (retried, since a signature may appear later). */
  verify?: VerifySpec;
}

/** The repository to mirror from and which of its images to select. Exactly one of tags, tagPattern, semver, digest. */
export interface SourceSpec {
  /** Source repository, host[:port]/path without tag or digest (e.g. registry.example.com:8221/dev/web). Docker Hub defaults apply (nginx = docker.io/library/nginx). oci:PATH (an OCI image layout directory) and oci-archive:PATH (the same as a tar file) only where local paths are allowed (sync and run; the controller with --allow-local-paths). */
  repository: string;
  /** Mirror exactly these tags. A missing tag is reported (SourceNotFound), not skipped. */
  tags?: string[];
  /** Mirror every tag matching this RE2 regular expression. Unanchored, so write ^...$ to match whole tags. Very large counted repetitions (such as {1000}) are refused. */
  tagPattern?: string;
  /** Mirror every tag that is a semantic version in this npm-style range (">=1.4.0 <2.0.0", "^1 || ^2"). A comma reads as AND; a leading v on tags is accepted; pre-releases match only when the range names one. At most 16 || alternatives and 32 comparators. */
  semver?: string;
  /** Mirror the single image with this manifest digest (sha256:...). Every target then needs tags. */
  digest?: string;
  /** With tagPattern or semver, keep only the N highest tags (by semver when every selected tag is a version, else lexically). Selects; never deletes. */
  latest?: number;
  /** Pull credentials, exactly one of secretName (a kubernetes.io/dockerconfigjson Secret in the same namespace) or provider (the cloud identity the controller or CLI runs as, with no Secret). */
  credentials?: CredentialsRef;
  /** Skip TLS verification, and use plain HTTP if the host speaks no TLS. A loopback host may use plain HTTP without it. */
  insecure?: boolean;
  /** Copy only these platforms (os/arch or os/arch/variant, e.g. linux/amd64, linux/arm64/v8) of a multi-platform image, under a new index holding exactly them; its digest differs from the source's (status rows show both) and signatures of the source index are not copied onto it. Without platforms an index is copied byte for byte. */
  platforms?: string[];
  /** Leave out tags matching any of these RE2 regular expressions (unanchored), after every selector and before latest. */
  exclude?: string[];
}

/** A kubernetes.io/dockerconfigjson Secret in the mirror's own namespace. */
export interface SecretRef {
  /** Name of the Secret. */
  secretName: string;
}

/** The cloud identity this process runs as (the controller pod's service account, or the host of `sync`/`run`): no Secret to create or rotate. */
export interface CloudRef {
  /** Registry credentials from the cloud identity of the controller pod (EKS IRSA or Pod Identity for ECR, GKE Workload Identity for Artifact Registry, Entra Workload ID for ACR), renewed before they expire; sync and run use the identity of the host. The controller accepts a provider only when started with --cloud-credentials naming it, since every namespace would push with its identity (otherwise: Stalled, Forbidden). No credential to be had from the provider is reported as CredentialsNotFound, a credential the registry refuses as AuthFailed; both are retried. */
  provider: CloudProvider;
}

/** `credentials`: exactly one of secretName or provider (the CRD's CEL rule and validateMirror say so). */
export type CredentialsRef = SecretRef | CloudRef;

export interface TargetSpec {
  /** Target repository, host[:port]/path without tag or digest. Each repository appears once. oci:PATH and oci-archive:PATH only where local paths are allowed (sync and run; the controller with --allow-local-paths). */
  repository: string;
  /** Tag names to write instead of the source tag name (promotion, e.g. stable). Only with a single-image source. */
  tags?: string[];
  /** Push credentials, exactly one of secretName (a kubernetes.io/dockerconfigjson Secret in the same namespace) or provider (the cloud identity the controller or CLI runs as, with no Secret). */
  credentials?: CredentialsRef;
  /** Skip TLS verification, and use plain HTTP if the host speaks no TLS. A loopback host may use plain HTTP without it. */
  insecure?: boolean;
  /** Delete target tags this mirror wrote earlier that no longer match its selection (default false). A tag the mirror did not write is never touched; status.owned records the tags it wrote. */
  prune?: boolean;
}

/** Promote only signed images. Each selected image must carry a signature made by one of keys or one of keyless; an image that does not verify is written nowhere and the mirror is Ready=False, VerificationFailed (retried, since a signature may appear later). */
export interface VerifySpec {
  /** Cosign public keys; a signature by any one of them is enough. */
  keys?: VerifyKeyRef[];
  /** Sigstore bundles attached as referrers, verified offline against a trusted root for one signer identity; any one identity is enough. */
  keyless?: VerifyKeylessRef[];
}

export interface VerifyKeyRef {
  /** A Secret in the mirror's namespace (in sync and run, a Secret document in the spec files). */
  secretName: string;
  /** The key of the Secret's data holding a PEM public key (ECDSA P-256, RSA or Ed25519). */
  key: string;
}

export interface VerifyKeylessRef {
  /** A Secret in the mirror's namespace holding the Sigstore trusted root (JSON). */
  trustedRootSecretName: string;
  /** The key of the Secret's data holding the trusted root. */
  key?: string;
  /** The OIDC issuer the signing certificate must name, an https URL (e.g. https://token.actions.githubusercontent.com). */
  issuer: string;
  /** RE2 regular expression (unanchored) the certificate's subject (the signer identity) must match. */
  subjectRegExp: string;
}

/** Observed state, written by the controller. */
export interface ImageMirrorStatus {
  /** The metadata.generation this status describes. */
  observedGeneration?: number;
  /** Ready, Reconciling and Stalled (kstatus-compatible). */
  conditions?: Condition[];
  /** Source tag (or digest) to manifest digest, as last synced. */
  sourceDigests?: Record<string, string>;
  /** One row per target tag, capped at 100; targetsOmitted counts the rest. */
  targets?: TargetStatus[];
  /** Target tag rows left out of targets by the cap. */
  targetsOmitted?: number;
  /** Short summary for the Targets column, e.g. "3/3 in sync". */
  summary?: string;
  /** When the last successful sync finished. */
  lastSyncTime?: string;
  /** The value of the imagemirror.dev/requested-at annotation (else reconcile.fluxcd.io/requestedAt) that the last reconcile saw. Changing either annotation reconciles the mirror at once, even while it backs off after failures; this field then shows the request was handled. */
  lastHandledRequestedAt?: string;
  /** Cumulative blob bytes for this resource. */
  bytes?: BytesStatus;
  /** Target tags this mirror wrote, one entry per target repository, with the manifest digest it wrote to each; what prune may delete. A tag pushed over since (it points at another digest now) is no longer this mirror's: prune forgets it instead of deleting it, with one NotPruned row saying so. Not capped like targets. */
  owned?: OwnedTags[];
}

/** A metav1.Condition. */
export interface Condition {
  /** Type of condition in CamelCase. */
  type: string;
  /** True, False or Unknown. */
  status: ConditionStatus;
  /** The metadata.generation the condition was set from. */
  observedGeneration?: number;
  /** When the status last changed. */
  lastTransitionTime: string;
  /** Programmatic identifier of the last transition, CamelCase. */
  reason: string;
  /** Human-readable details; may be empty. */
  message: string;
}

export interface TargetStatus {
  /** Target reference, registry/repository:tag. */
  reference: string;
  /** Manifest digest the target tag points at (or would, for a failed row). */
  digest: string;
  /** What the last sync did for this tag. */
  action: TargetAction;
  /** When this row was last synced. */
  lastSyncTime: string;
  /** Why a Conflict, Failed or NotPruned row is what it is. */
  message?: string;
  /** The source's manifest digest, when the digest written differs from it (a platform-filtered index). */
  sourceDigest?: string;
}

/** Cumulative blob bytes for this resource. */
export interface BytesStatus {
  /** Blob bytes uploaded to targets. */
  copied: number;
  /** Blob bytes targets needed but did not receive over the wire (mounted, already present, or retagged). */
  saved: number;
}

export interface OwnedTags {
  /** Target repository, as in spec.targets[].repository. */
  repository: string;
  /** Tags this mirror wrote there. */
  tags: string[];
  /** The manifest digest written to each tag, parallel to tags (same length, same order); "" where unknown. Absent in statuses written before digests were recorded: a tag is then pruned only when a Copied, Retagged or UpToDate row of the same status gives its digest. */
  digests?: string[];
}

/** ImageMirrorPolicy limits which repositories the ImageMirrors of some namespaces may read and write. */
export interface ImageMirrorPolicy {
  /** APIVersion defines the versioned schema of this representation of an object. */
  apiVersion: typeof POLICY_API_VERSION;
  /** Kind is a string value representing the REST resource this object represents. */
  kind: typeof POLICY_KIND;
  metadata: PolicyMeta;
  /** The namespaces this policy governs and the repositories their mirrors may use. */
  spec: ImageMirrorPolicySpec;
}

/** The namespaces this policy governs and the repositories their mirrors may use. */
export interface ImageMirrorPolicySpec {
  /** Namespaces whose ImageMirrors must fit this policy (or another policy naming them). */
  namespaces: string[];
  /** Globs over canonical registry/repository a mirror may read, e.g. "registry.example.com/dev/**". */
  sources: string[];
  /** Globs over canonical registry/repository a mirror may write, e.g. "registry.example.com/staging/team-a/**". */
  targets: string[];
}
