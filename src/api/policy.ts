/**
 * The ImageMirrorPolicy API, declared once: which namespaces may read which source repositories
 * and write which target repositories. The CRD (crds/imagemirrorpolicy.yaml and its copies) and the
 * TypeScript type are derived from POLICY; validatePolicy (src/mirror/policy.ts) reads its bounds
 * and patterns from here and test/mirror/policy.test.ts checks it agrees with the CRD.
 */
import { list, obj, str, type Resource } from './schema.js';
import { GROUP, POLICY_KIND, POLICY_PLURAL, VERSION } from './vocabulary.js';

/** Bounds of the policy's lists and strings (the CRD's maxItems/maxLength). */
export const POLICY_LIMITS = {
  /** Namespaces one policy may name. */
  namespaces: 256,
  /** Globs per list (sources, targets). */
  patterns: 64,
  /** Characters per glob: the canonical repository limit. */
  patternLength: 255,
  /** Characters per policy name (DNS-1123 subdomain). */
  nameLength: 253,
  /** Characters per namespace (DNS-1123 label). */
  namespaceLength: 63,
} as const;

export const POLICY_PATTERNS = {
  dns1123Subdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  dns1123Label: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  /** Characters a canonical repository glob may hold (the registry part may carry `:port` and `[v6]`). */
  glob: '^[a-z0-9._\\-:\\[\\]/*]+$',
} as const;

const globs = (description: string) =>
  list({
    description,
    minItems: 1,
    maxItems: POLICY_LIMITS.patterns,
    listType: 'set',
    items: str({ minLength: 1, maxLength: POLICY_LIMITS.patternLength, pattern: POLICY_PATTERNS.glob }),
  });

export const POLICY: Resource = {
  group: GROUP,
  version: VERSION,
  kind: POLICY_KIND,
  plural: POLICY_PLURAL,
  singular: 'imagemirrorpolicy',
  listKind: 'ImageMirrorPolicyList',
  scope: 'Cluster',
  shortNames: ['imp', 'imgmirrorpolicy'],
  statusSubresource: false,
  comment: [
    'ImageMirrorPolicy: which namespaces may read which source repositories and write which target',
    'repositories, when one controller serves many teams. Cluster-scoped, so only cluster',
    'administrators write it. A namespace named by any policy must fit one of them; a namespace named',
    'by none is unrestricted unless the controller runs with --require-policy.',
    'Generated from src/api/policy.ts by `npm run gen:api`; edit the declaration, not this file.',
    'Globs match the canonical registry/repository (docker.io/library/nginx): `*` stays within one path',
    'segment, a `**` segment matches any depth. src/mirror/policy.ts validates the same rules (and',
    'writes back nothing) with the bounds and patterns declared here.',
  ].join('\n'),
  printerColumns: [
    { name: 'Namespaces', type: 'string', jsonPath: '.spec.namespaces' },
    { name: 'Sources', type: 'string', jsonPath: '.spec.sources' },
    { name: 'Targets', type: 'string', jsonPath: '.spec.targets' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  schema: obj({
    typeName: 'ImageMirrorPolicy',
    description: 'ImageMirrorPolicy limits which repositories the ImageMirrors of some namespaces may read and write.',
    required: ['spec'],
    properties: {
      apiVersion: str({ description: 'APIVersion defines the versioned schema of this representation of an object.', tsType: 'typeof POLICY_API_VERSION', tsRequired: true }),
      kind: str({ description: 'Kind is a string value representing the REST resource this object represents.', tsType: 'typeof POLICY_KIND', tsRequired: true }),
      metadata: obj({ opaque: true, typeName: 'PolicyMeta', tsRequired: true, properties: {} }),
      spec: obj({
        typeName: 'ImageMirrorPolicySpec',
        description: 'The namespaces this policy governs and the repositories their mirrors may use.',
        required: ['namespaces', 'sources', 'targets'],
        properties: {
          namespaces: list({
            description: 'Namespaces whose ImageMirrors must fit this policy (or another policy naming them).',
            minItems: 1,
            maxItems: POLICY_LIMITS.namespaces,
            listType: 'set',
            items: str({ minLength: 1, maxLength: POLICY_LIMITS.namespaceLength, pattern: POLICY_PATTERNS.dns1123Label }),
          }),
          sources: globs('Globs over canonical registry/repository a mirror may read, e.g. "registry.example.com/dev/**".'),
          targets: globs('Globs over canonical registry/repository a mirror may write, e.g. "registry.example.com/staging/team-a/**".'),
        },
      }),
    },
  }),
};
