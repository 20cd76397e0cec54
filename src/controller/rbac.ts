/**
 * Every Kubernetes API verb/resource the controller code calls. The chart's RBAC rules are tested
 * against this list, so keep it exactly true whenever a call is added or removed.
 */
export const CONTROLLER_API_CALLS: Array<{ group: string; resource: string; verbs: string[]; namespaced?: boolean }> = [
  // reflector.ts via controller.ts: list + watch (per namespace, or cluster-wide when no namespaces are given).
  { group: 'imagemirror.dev', resource: 'imagemirrors', verbs: ['list', 'watch'], namespaced: true },
  // status.ts: merge patch on the status subresource.
  { group: 'imagemirror.dev', resource: 'imagemirrors/status', verbs: ['patch'], namespaced: true },
  // secrets.ts: reflector over dockerconfigjson Secrets, plus a get on a cache miss to tell "missing" from "wrong type".
  { group: '', resource: 'secrets', verbs: ['get', 'list', 'watch'], namespaced: true },
  // events.ts: create, then patch the count of a repeated event.
  { group: '', resource: 'events', verbs: ['create', 'patch'], namespaced: true },
  // controller.ts: reflector over ImageMirrorPolicies, cluster-scoped, so cluster-wide whatever namespaces are watched.
  { group: 'imagemirror.dev', resource: 'imagemirrorpolicies', verbs: ['list', 'watch'], namespaced: false },
  // leader-election.ts: in the lease namespace only.
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], namespaced: true },
];
