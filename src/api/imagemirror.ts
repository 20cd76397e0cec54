/**
 * The ImageMirror API (group imagemirror.dev, version v1alpha1), declared once. The CRD
 * (crds/imagemirror.yaml and its copies), the TypeScript types (src/api/types.gen.ts), the
 * file-mode validation (validateMirror) and docs/api.md are derived from MIRROR; `npm run gen:api`
 * writes the generated files and test/api/drift.test.ts fails when one is stale.
 *
 * Every string and list of the spec has a bound (LIMITS, the CRD's maxLength/maxItems), checked
 * before anything parses or compiles the value: the API server can then prove its CEL rules cheap
 * (an unbounded list or string makes the estimated cost exceed the limit and the CRD is refused),
 * and no spec costs the controller more than a few milliseconds to validate. Lengths count
 * characters (code points), as the API server does.
 */
import { get, isObj, quoteValue as q, type Obj } from './fields.js';
import { bool, int, list, map, obj, str, type ObjectNode, type Resource, type StringNode } from './schema.js';
import {
  CLOUD_PROVIDERS,
  CONDITION_STATUSES,
  DEFAULT_TRUSTED_ROOT_KEY,
  GROUP,
  KIND,
  OWNED_TAGS_CAP,
  PLURAL,
  TARGET_ROWS_CAP,
  TargetAction,
  VERSION,
} from './vocabulary.js';

/** Patterns of the CRD, and the validator's (the CRD test checks they are the same strings). */
export const PATTERNS = {
  /** DNS-1123 subdomain: object names, Secret names. */
  dns1123Subdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  /** DNS-1123 label: namespaces. */
  dns1123Label: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  tag: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$',
  sha256Digest: '^sha256:[a-f0-9]{64}$',
  /**
   * The distribution name grammar with an optional registry host (which needs a ".", a port or
   * `localhost`, as parseRepository reads it). A static approximation for the CRD: parseRepository
   * has the last word (uppercase-only hosts, IPv6 forms, the 255 limit on the canonical name).
   */
  repository:
    '^(?:(?:localhost(?::[0-9]+)?|(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+(?::[0-9]+)?|(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?::[0-9]+)|\\[[a-fA-F0-9:]+\\](?::[0-9]+)?)/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$',
  /** A Go-style duration, as src/mirror/duration.ts parses it (DURATION_PATTERN there). */
  interval: '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$',
  /** `os/arch[/variant]` as the OCI image index names platforms (linux/amd64, linux/arm64/v8). */
  platform: '^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$',
  /** A key of a Secret's data. */
  secretKey: '^[-._a-zA-Z0-9]+$',
  /** An OIDC issuer: an https URL without query or fragment. */
  issuer: '^https://[^\\s/?#]+(/[^\\s?#]*)?$',
  /** `oci:PATH` or `oci-archive:PATH`; a path holds no `:` (skopeo's `oci:PATH:TAG` ends it there). */
  localPath: '^oci(-archive)?:[^:]+$',
} as const;

/**
 * Bounds on every string and list of the spec. The RE2, semver and duration bounds are those of
 * src/mirror/select.ts and duration.ts, which enforce them where they compile (test/mirror/limits
 * checks they are equal).
 */
export const LIMITS = {
  /** spec.targets */
  targets: 100,
  /** spec.source.tags and spec.targets[].tags */
  tagsPerList: 100,
  /** one tag: the distribution spec's limit (PATTERNS.tag says the same) */
  tagLength: 128,
  /** a repository name, the distribution spec's limit */
  repositoryLength: 255,
  /** an RE2 tagPattern (TAG_PATTERN_MAX_LENGTH) */
  tagPatternLength: 256,
  /** a semver range (SEMVER_MAX_LENGTH) */
  semverLength: 256,
  /** `sha256:` and 64 hex digits */
  digestLength: 71,
  /** a DNS-1123 subdomain */
  secretNameLength: 253,
  /** a Go-style duration (MAX_DURATION_LENGTH) */
  intervalLength: 64,
  /** spec.source.platforms: more than any index in use holds */
  platforms: 32,
  /** one `os/arch/variant` */
  platformLength: 64,
  /** spec.source.exclude: each pattern is matched against every listed tag */
  excludePatterns: 32,
  excludePatternLength: 256,
  /** spec.verify.keys and spec.verify.keyless: each is tried against every signature found */
  verifyKeys: 16,
  verifyKeyless: 16,
  /** a key of a Secret's data, as the API server bounds it */
  secretKeyLength: 253,
  /** an OIDC issuer URL */
  issuerLength: 1024,
  subjectRegExpLength: 256,
} as const;

export const SELECTORS = ['tags', 'tagPattern', 'semver', 'digest'] as const;

/** The repository rule: a CEL rule with a message in words, not a 300-character `pattern` in errors. */
const REPOSITORY_RULE = {
  rule: `self.matches(r'${PATTERNS.localPath}') || self.matches(r'${PATTERNS.repository}')`,
  message:
    'must be a repository, [host[:port]/]path: lower-case path components joined by /, each of letters and digits with . _ __ or - between them, and no :tag or @digest (e.g. registry.example.com:8221/team/app), or oci:PATH',
  messageExpression:
    "self + ' is not a repository: write [host[:port]/]path in lower case, with no :tag or @digest (e.g. registry.example.com:8221/team/app), or oci:PATH where local paths are allowed'",
};

const repository = (description: string): StringNode =>
  str({ description, minLength: 1, maxLength: LIMITS.repositoryLength, what: 'repository', rules: [REPOSITORY_RULE] });

const tagList = (description: string) =>
  list({
    description,
    minItems: 1,
    maxItems: LIMITS.tagsPerList,
    listType: 'set',
    items: str({
      maxLength: LIMITS.tagLength,
      pattern: PATTERNS.tag,
      lengthIsPattern: true,
      notStringHint: ' (quote numeric tags: "1.0")',
      invalid: (t) => `invalid tag ${q(t)}: up to ${LIMITS.tagLength} letters, digits, "_", "." and "-", not starting with "." or "-"`,
    }),
    messages: {
      notList: 'must be a list of tags',
      empty: 'must list at least one tag (or leave the field out)',
      tooMany: (n, max) => `too many tags: ${n}, at most ${max} allowed (use tagPattern or semver, or split the mirror)`,
      duplicate: (t) => `duplicate tag ${q(t)}`,
    },
  });

const secretName = (description: string): StringNode =>
  str({
    description,
    maxLength: LIMITS.secretNameLength,
    pattern: PATTERNS.dns1123Subdomain,
    what: 'Secret name',
    invalid: (v) => `invalid Secret name ${q(v)}: lowercase letters, digits, "-" and ".", at most ${LIMITS.secretNameLength} characters`,
  });

const secretKey = (description: string, dflt?: string): StringNode =>
  str({
    description,
    ...(dflt !== undefined ? { default: dflt } : {}),
    maxLength: LIMITS.secretKeyLength,
    pattern: PATTERNS.secretKey,
    what: 'Secret key',
    invalid: (v) => `invalid Secret key ${q(v)}: letters, digits, "-", "_" and ".", at most ${LIMITS.secretKeyLength} characters`,
  });

const PROVIDERS_TEXT = CLOUD_PROVIDERS.join(', ');

const credentials = (description: string): ObjectNode =>
  obj({
    description,
    typeName: 'CredentialsRef',
    notMapping: `must be a mapping {secretName: ...} or {provider: ${CLOUD_PROVIDERS.join('|')}}`,
    rules: [{ rule: 'has(self.secretName) != has(self.provider)', message: 'set exactly one of secretName or provider' }],
    variants: {
      typeName: 'CredentialsRef',
      description: '`credentials`: exactly one of secretName or provider (the CRD\'s CEL rule and validateMirror say so).',
      shapes: [
        { typeName: 'SecretRef', description: "A kubernetes.io/dockerconfigjson Secret in the mirror's own namespace.", properties: ['secretName'] },
        {
          typeName: 'CloudRef',
          description: 'The cloud identity this process runs as (the controller pod\'s service account, or the host of `sync`/`run`): no Secret to create or rotate.',
          properties: ['provider'],
        },
      ],
    },
    checks: [
      {
        after: '',
        run(raw, r, path) {
          const hasName = get(raw, 'secretName') !== undefined;
          const hasProvider = get(raw, 'provider') !== undefined;
          if (hasName && hasProvider) {
            r.err(
              path,
              'set exactly one of secretName or provider, not both (secretName: a kubernetes.io/dockerconfigjson Secret in this namespace; provider: the cloud identity the controller or CLI runs as)',
            );
            return false;
          }
          if (!hasName && !hasProvider) {
            r.err(`${path}.secretName`, `required, or provider (${PROVIDERS_TEXT}) instead: exactly one of the two`);
            return false;
          }
          return true;
        },
      },
    ],
    properties: {
      secretName: secretName('Name of the Secret.'),
      provider: str({
        description:
          'Registry credentials from the cloud identity of the controller pod (EKS IRSA or Pod Identity for ECR, GKE Workload Identity for Artifact Registry, Entra Workload ID for ACR), renewed before they expire; sync and run use the identity of the host. The controller accepts a provider only when started with --cloud-credentials naming it, since every namespace would push with its identity (otherwise: Stalled, Forbidden). No credential to be had from the provider is reported as CredentialsNotFound, a credential the registry refuses as AuthFailed; both are retried.',
        enum: CLOUD_PROVIDERS,
        tsType: 'CloudProvider',
      }),
    },
  });

const insecure = () =>
  bool({ description: 'Skip TLS verification, and use plain HTTP if the host speaks no TLS. A loopback host may use plain HTTP without it.' });

/** The raw spec.source of the document being validated, when it is a mapping. */
function rawSourceOf(root: Obj): Obj | undefined {
  const spec = get(root, 'spec');
  const source = isObj(spec) ? get(spec, 'source') : undefined;
  return isObj(source) ? source : undefined;
}

const source = obj({
  typeName: 'SourceSpec',
  description: 'The repository to mirror from and which of its images to select. Exactly one of tags, tagPattern, semver, digest.',
  required: ['repository'],
  rules: [
    { rule: '[has(self.tags), has(self.tagPattern), has(self.semver), has(self.digest)].filter(x, x).size() == 1', message: 'exactly one of tags, tagPattern, semver, digest must be set' },
    { rule: '!has(self.latest) || has(self.tagPattern) || has(self.semver)', message: 'latest is only allowed with tagPattern or semver' },
  ],
  checks: [
    {
      after: 'repository',
      run(raw, r, path) {
        const found = SELECTORS.filter((k) => get(raw, k) !== undefined);
        if (found.length !== 1) r.err(path, `exactly one of tags, tagPattern, semver, digest must be set (found ${found.length === 0 ? 'none' : found.join(', ')})`);
      },
    },
    {
      after: 'latest',
      run(raw, r, path, read) {
        if (read.latest === undefined || get(raw, 'tagPattern') !== undefined || get(raw, 'semver') !== undefined) return;
        r.err(`${path}.latest`, 'only allowed with tagPattern or semver (it keeps the N highest matching tags)');
        delete read.latest;
      },
    },
  ],
  properties: {
    repository: repository(
      'Source repository, host[:port]/path without tag or digest (e.g. registry.example.com:8221/dev/web). Docker Hub defaults apply (nginx = docker.io/library/nginx). oci:PATH (an OCI image layout directory) and oci-archive:PATH (the same as a tar file) only where local paths are allowed (sync and run; the controller with --allow-local-paths).',
    ),
    tags: tagList('Mirror exactly these tags. A missing tag is reported (SourceNotFound), not skipped.'),
    tagPattern: str({
      description: 'Mirror every tag matching this RE2 regular expression. Unanchored, so write ^...$ to match whole tags. Very large counted repetitions (such as {1000}) are refused.',
      minLength: 1,
      maxLength: LIMITS.tagPatternLength,
      what: 'tagPattern',
    }),
    semver: str({
      description:
        'Mirror every tag that is a semantic version in this npm-style range (">=1.4.0 <2.0.0", "^1 || ^2"). A comma reads as AND; a leading v on tags is accepted; pre-releases match only when the range names one. At most 16 || alternatives and 32 comparators.',
      minLength: 1,
      maxLength: LIMITS.semverLength,
      what: 'semver range',
    }),
    digest: str({
      description: 'Mirror the single image with this manifest digest (sha256:...). Every target then needs tags.',
      maxLength: LIMITS.digestLength,
      pattern: PATTERNS.sha256Digest,
      what: 'digest',
      invalid: (v) => `invalid digest ${q(v)}: must be "sha256:" followed by 64 lowercase hex digits`,
    }),
    latest: int({
      description: 'With tagPattern or semver, keep only the N highest tags (by semver when every selected tag is a version, else lexically). Selects; never deletes.',
      format: 'int32',
      minimum: 1,
    }),
    credentials: credentials(
      'Pull credentials, exactly one of secretName (a kubernetes.io/dockerconfigjson Secret in the same namespace) or provider (the cloud identity the controller or CLI runs as, with no Secret).',
    ),
    insecure: insecure(),
    platforms: list({
      description:
        "Copy only these platforms (os/arch or os/arch/variant, e.g. linux/amd64, linux/arm64/v8) of a multi-platform image, under a new index holding exactly them; its digest differs from the source's (status rows show both) and signatures of the source index are not copied onto it. Without platforms an index is copied byte for byte.",
      minItems: 1,
      maxItems: LIMITS.platforms,
      listType: 'set',
      items: str({
        maxLength: LIMITS.platformLength,
        pattern: PATTERNS.platform,
        lengthIsPattern: true,
        invalid: (v) => `invalid platform ${q(v)}: write os/arch or os/arch/variant in lower case (linux/amd64, linux/arm64/v8), at most ${LIMITS.platformLength} characters`,
      }),
      messages: {
        notList: 'must be a list of platforms',
        empty: 'must list at least one of platforms (or leave the field out)',
        tooMany: (n, max) => `too many platforms: ${n}, at most ${max} allowed`,
      },
    }),
    exclude: list({
      description: 'Leave out tags matching any of these RE2 regular expressions (unanchored), after every selector and before latest.',
      minItems: 1,
      maxItems: LIMITS.excludePatterns,
      listType: 'set',
      items: str({ minLength: 1, maxLength: LIMITS.excludePatternLength, what: 'exclude pattern' }),
      messages: {
        notList: 'must be a list of exclude patterns',
        empty: 'must list at least one of exclude patterns (or leave the field out)',
        tooMany: (n, max) => `too many exclude patterns: ${n}, at most ${max} allowed (join alternatives with |)`,
      },
    }),
  },
});

const target = obj({
  typeName: 'TargetSpec',
  required: ['repository'],
  notMapping: 'must be a mapping {repository: ...}',
  checks: [
    {
      after: 'tags',
      // Judged from the raw source so a bad tag there does not add a misleading error here.
      run(raw, r, path, _read, root) {
        const src = rawSourceOf(root);
        const rawTags = src ? get(src, 'tags') : undefined;
        const digestSource = src ? get(src, 'digest') !== undefined : false;
        const single = digestSource || (Array.isArray(rawTags) && rawTags.length === 1);
        const hasTags = get(raw, 'tags') !== undefined;
        if (hasTags && !single) r.err(`${path}.tags`, 'only allowed when the source is a single image (digest, or tags with exactly one entry)');
        if (!hasTags && digestSource) r.err(`${path}.tags`, 'required when the source is a digest (a digest has no tag name to reuse)');
      },
    },
  ],
  properties: {
    repository: repository(
      'Target repository, host[:port]/path without tag or digest. Each repository appears once. oci:PATH and oci-archive:PATH only where local paths are allowed (sync and run; the controller with --allow-local-paths).',
    ),
    tags: tagList('Tag names to write instead of the source tag name (promotion, e.g. stable). Only with a single-image source.'),
    credentials: credentials(
      'Push credentials, exactly one of secretName (a kubernetes.io/dockerconfigjson Secret in the same namespace) or provider (the cloud identity the controller or CLI runs as, with no Secret).',
    ),
    insecure: insecure(),
    prune: bool({
      description:
        'Delete target tags this mirror wrote earlier that no longer match its selection (default false). A tag the mirror did not write is never touched; status.owned records the tags it wrote.',
    }),
  },
});

const verify = obj({
  typeName: 'VerifySpec',
  description:
    'Promote only signed images. Each selected image must carry a signature made by one of keys or one of keyless; an image that does not verify is written nowhere and the mirror is Ready=False, VerificationFailed (retried, since a signature may appear later).',
  notMapping: 'must be a mapping {keys: [...], keyless: [...]}',
  rules: [{ rule: 'has(self.keys) || has(self.keyless)', message: 'list keys or keyless (or both)' }],
  checks: [
    {
      after: '',
      run(raw, r, path) {
        if (get(raw, 'keys') !== undefined || get(raw, 'keyless') !== undefined) return true;
        r.err(path, 'list keys or keyless (or both): a gate with nothing to verify against would refuse every image');
        return false;
      },
    },
  ],
  properties: {
    keys: list({
      description: 'Cosign public keys; a signature by any one of them is enough.',
      minItems: 1,
      maxItems: LIMITS.verifyKeys,
      messages: { notList: 'must be a list of keys', empty: 'must list at least one of keys (or leave the field out)', tooMany: (n, max) => `too many keys: ${n}, at most ${max} allowed` },
      items: obj({
        typeName: 'VerifyKeyRef',
        description: undefined,
        required: ['secretName', 'key'],
        properties: {
          secretName: secretName("A Secret in the mirror's namespace (in sync and run, a Secret document in the spec files)."),
          key: secretKey("The key of the Secret's data holding a PEM public key (ECDSA P-256, RSA or Ed25519)."),
        },
      }),
    }),
    keyless: list({
      description: 'Sigstore bundles attached as referrers, verified offline against a trusted root for one signer identity; any one identity is enough.',
      minItems: 1,
      maxItems: LIMITS.verifyKeyless,
      messages: {
        notList: 'must be a list of keyless identities',
        empty: 'must list at least one of keyless identities (or leave the field out)',
        tooMany: (n, max) => `too many keyless identities: ${n}, at most ${max} allowed`,
      },
      items: obj({
        typeName: 'VerifyKeylessRef',
        required: ['trustedRootSecretName', 'issuer', 'subjectRegExp'],
        properties: {
          trustedRootSecretName: secretName("A Secret in the mirror's namespace holding the Sigstore trusted root (JSON)."),
          key: secretKey("The key of the Secret's data holding the trusted root.", DEFAULT_TRUSTED_ROOT_KEY),
          issuer: str({
            description: 'The OIDC issuer the signing certificate must name, an https URL (e.g. https://token.actions.githubusercontent.com).',
            maxLength: LIMITS.issuerLength,
            pattern: PATTERNS.issuer,
            what: 'issuer',
            accept: (v) => URL.canParse(v),
            invalid: (v) => `invalid issuer ${q(v)}: an https URL without query or fragment (e.g. https://token.actions.githubusercontent.com)`,
          }),
          subjectRegExp: str({
            description: "RE2 regular expression (unanchored) the certificate's subject (the signer identity) must match.",
            minLength: 1,
            maxLength: LIMITS.subjectRegExpLength,
            what: 'subjectRegExp',
          }),
        },
      }),
    }),
  },
});

const spec = obj({
  typeName: 'ImageMirrorSpec',
  description: 'What to mirror, from where to where, and how often.',
  required: ['source', 'targets'],
  // The interval is parsed after the flags, as the validator always has.
  readOrder: ['source', 'targets', 'referrers', 'overwrite', 'suspend', 'verify', 'interval'],
  rules: [
    {
      rule: 'has(self.source.digest) || (has(self.source.tags) && size(self.source.tags) == 1) || self.targets.all(t, !has(t.tags))',
      message: 'targets[].tags are only allowed when the source is a single image (digest, or tags with exactly one entry)',
    },
    { rule: '!has(self.source.digest) || self.targets.all(t, has(t.tags))', message: 'a digest source needs tags on every target (a digest has no tag name to reuse)' },
    { rule: 'self.targets.all(t, t.repository != self.source.repository || has(t.tags))', message: 'a target in the source repository needs its own tags (a retag)' },
  ],
  properties: {
    source,
    targets: list({
      description: 'Where to mirror to. Each target tag is made to point at the same manifest digest as its source tag.',
      minItems: 1,
      maxItems: LIMITS.targets,
      listType: 'map',
      listMapKeys: ['repository'],
      items: target,
      messages: {
        required: 'required: list at least one target repository',
        empty: 'must list at least one target repository',
        tooMany: (n, max) => `at most ${max} targets per ImageMirror, got ${n} (split it into several mirrors)`,
      },
    }),
    referrers: bool({ description: 'Also copy signatures, SBOMs and attestations that refer to each image.', default: true }),
    overwrite: bool({ description: 'Move a target tag that points at a different image. When false such a tag is reported as TagConflict and left alone.', default: true }),
    interval: str({
      description: 'Resync period, a Go-style duration (10m, 1h30m, 90s). A value below 10s or above 720h (30 days) is clamped to that bound.',
      default: '10m',
      maxLength: LIMITS.intervalLength,
      // Checked by parsing (src/mirror/interval.ts), which words the error.
      pattern: PATTERNS.interval,
      what: 'interval',
      rules: [{ rule: "duration(self) > duration('0s')", message: 'interval must be greater than zero' }],
    }),
    suspend: bool({
      description: 'Stop reconciling this mirror. Its conditions are left as they were; status.observedGeneration still records each generation seen.',
      default: false,
    }),
    verify,
  },
});

const dateTime = (description: string) => str({ description, format: 'date-time', maxLength: 64 });

const condition = obj({
  typeName: 'Condition',
  description: 'A metav1.Condition.',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: str({
      description: 'Type of condition in CamelCase.',
      maxLength: 316,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: str({ description: 'True, False or Unknown.', enum: CONDITION_STATUSES, tsType: 'ConditionStatus' }),
    observedGeneration: int({ description: 'The metadata.generation the condition was set from.', format: 'int64', minimum: 0 }),
    lastTransitionTime: dateTime('When the status last changed.'),
    reason: str({
      description: 'Programmatic identifier of the last transition, CamelCase.',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: str({ description: 'Human-readable details; may be empty.', maxLength: 32768 }),
  },
});

/**
 * Longest digest status.owned records: "sha256:" and 64 hex digits is 71, sha512 is 135; 256 is
 * the bound every other digest in the status has.
 */
const OWNED_DIGEST_MAX_LENGTH = 256;

const status = obj({
  typeName: 'ImageMirrorStatus',
  description: 'Observed state, written by the controller.',
  properties: {
    observedGeneration: int({ description: 'The metadata.generation this status describes.', format: 'int64', minimum: 0 }),
    conditions: list({
      description: 'Ready, Reconciling and Stalled (kstatus-compatible).',
      maxItems: 16,
      listType: 'map',
      listMapKeys: ['type'],
      items: condition,
    }),
    sourceDigests: map({ description: 'Source tag (or digest) to manifest digest, as last synced.', values: str({ maxLength: 256 }) }),
    targets: list({
      description: `One row per target tag, capped at ${TARGET_ROWS_CAP}; targetsOmitted counts the rest.`,
      maxItems: TARGET_ROWS_CAP,
      items: obj({
        typeName: 'TargetStatus',
        required: ['reference', 'digest', 'action', 'lastSyncTime'],
        properties: {
          reference: str({ description: 'Target reference, registry/repository:tag.', maxLength: 512 }),
          digest: str({ description: 'Manifest digest the target tag points at (or would, for a failed row).', maxLength: 256 }),
          action: str({ description: 'What the last sync did for this tag.', enum: Object.values(TargetAction), tsType: 'TargetAction' }),
          lastSyncTime: dateTime('When this row was last synced.'),
          message: str({ description: 'Why a Conflict, Failed or NotPruned row is what it is.', maxLength: 32768 }),
          sourceDigest: str({ description: "The source's manifest digest, when the digest written differs from it (a platform-filtered index).", maxLength: 256 }),
        },
      }),
    }),
    targetsOmitted: int({ description: 'Target tag rows left out of targets by the cap.', format: 'int32', minimum: 0 }),
    summary: str({ description: 'Short summary for the Targets column, e.g. "3/3 in sync".', maxLength: 256 }),
    lastSyncTime: dateTime('When the last successful sync finished.'),
    lastHandledRequestedAt: str({
      description:
        'The value of the imagemirror.dev/requested-at annotation (else reconcile.fluxcd.io/requestedAt) that the last reconcile saw. Changing either annotation reconciles the mirror at once, even while it backs off after failures; this field then shows the request was handled.',
      maxLength: 256,
    }),
    bytes: obj({
      typeName: 'BytesStatus',
      description: 'Cumulative blob bytes for this resource.',
      required: ['copied', 'saved'],
      properties: {
        copied: int({ description: 'Blob bytes uploaded to targets.', format: 'int64', minimum: 0 }),
        saved: int({ description: 'Blob bytes targets needed but did not receive over the wire (mounted, already present, or retagged).', format: 'int64', minimum: 0 }),
      },
    }),
    owned: list({
      description:
        'Target tags this mirror wrote, one entry per target repository, with the manifest digest it wrote to each; what prune may delete. A tag pushed over since (it points at another digest now) is no longer this mirror\'s: prune forgets it instead of deleting it, with one NotPruned row saying so. Not capped like targets.',
      maxItems: LIMITS.targets,
      items: obj({
        typeName: 'OwnedTags',
        required: ['repository', 'tags'],
        properties: {
          repository: str({ description: 'Target repository, as in spec.targets[].repository.', maxLength: LIMITS.repositoryLength }),
          tags: list({ description: 'Tags this mirror wrote there.', maxItems: OWNED_TAGS_CAP, items: str({ maxLength: LIMITS.tagLength }) }),
          digests: list({
            description:
              'The manifest digest written to each tag, parallel to tags (same length, same order); "" where unknown. Absent in statuses written before digests were recorded: a tag is then pruned only when a Copied, Retagged or UpToDate row of the same status gives its digest.',
            maxItems: OWNED_TAGS_CAP,
            items: str({ maxLength: OWNED_DIGEST_MAX_LENGTH }),
          }),
        },
      }),
    }),
  },
});

export const MIRROR: Resource = {
  group: GROUP,
  version: VERSION,
  kind: KIND,
  plural: PLURAL,
  singular: 'imagemirror',
  listKind: 'ImageMirrorList',
  scope: 'Namespaced',
  shortNames: ['im', 'imgmirror'],
  categories: ['imagemirror'],
  statusSubresource: true,
  comment: [
    'ImageMirror: keeps container images mirrored between OCI registries.',
    'Generated from src/api/imagemirror.ts by `npm run gen:api`; edit the declaration, not this file.',
    "Short names: `im` (quick to type) and `imgmirror` (unambiguous next to other operators' `im`).",
    'What CEL cannot check statically (RE2 compilation, semver range syntax, repositories equal only',
    'after normalization such as `nginx` = `docker.io/library/nginx`, local paths on a controller',
    'started without --allow-local-paths) the controller reports as InvalidSpec.',
    'Every string and list has a bound (maxLength/maxItems): the API server can then prove the CEL',
    'rules cheap, and no spec can make the controller spend more than a few milliseconds parsing it.',
    "Not in category `all`: `kubectl get all` is for workloads, where mirrors are noise and `kubectl",
    "delete all` reaching them a surprise. kubectl expands a category before a resource name, so the",
    'category named like the kind keeps `kubectl get imagemirror NAME` working.',
  ].join('\n'),
  printerColumns: [
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', comment: 'Without -o wide: the reason is what to act on when Ready is not True.' },
    { name: 'Source', type: 'string', jsonPath: '.spec.source.repository' },
    { name: 'Targets', type: 'string', jsonPath: '.status.summary' },
    { name: 'Last Sync', type: 'date', jsonPath: '.status.lastSyncTime' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    { name: 'Suspended', type: 'boolean', priority: 1, jsonPath: '.spec.suspend' },
    { name: 'Message', type: 'string', priority: 1, jsonPath: '.status.conditions[?(@.type=="Ready")].message' },
  ],
  schema: obj({
    typeName: 'ImageMirror',
    description: 'ImageMirror keeps the tags of one source repository mirrored into one or more target repositories.',
    required: ['spec'],
    properties: {
      apiVersion: str({ description: 'APIVersion defines the versioned schema of this representation of an object.', tsType: 'typeof API_VERSION', tsRequired: true }),
      kind: str({ description: 'Kind is a string value representing the REST resource this object represents.', tsType: 'typeof KIND', tsRequired: true }),
      metadata: obj({ opaque: true, typeName: 'ObjectMeta', tsRequired: true, properties: {} }),
      spec,
      status,
    },
  }),
};
