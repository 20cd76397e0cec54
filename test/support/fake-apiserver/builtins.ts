import type { ResourceType } from './types.js';

const ALL = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function t(p: Partial<ResourceType> & Pick<ResourceType, 'group' | 'version' | 'plural' | 'kind'>): ResourceType {
  return {
    singular: p.kind.toLowerCase(),
    listKind: `${p.kind}List`,
    namespaced: true,
    shortNames: [],
    categories: [],
    verbs: ALL,
    statusSubresource: false,
    custom: false,
    generation: false,
    printerColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
    ...p,
  };
}

/** The built-in resources the controller and kubectl touch. */
export function builtinTypes(): ResourceType[] {
  return [
    t({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], statusSubresource: true,
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }] }),
    t({ group: '', version: 'v1', plural: 'secrets', kind: 'Secret',
      printerColumns: [{ name: 'Type', type: 'string', jsonPath: '.type' }, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }] }),
    t({ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', shortNames: ['cm'] }),
    t({ group: '', version: 'v1', plural: 'events', kind: 'Event', shortNames: ['ev'],
      printerColumns: [
        { name: 'Type', type: 'string', jsonPath: '.type' },
        { name: 'Reason', type: 'string', jsonPath: '.reason' },
        { name: 'Object', type: 'string', jsonPath: '.involvedObject.name' },
        { name: 'Message', type: 'string', jsonPath: '.message' },
      ] }),
    t({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease',
      printerColumns: [{ name: 'Holder', type: 'string', jsonPath: '.spec.holderIdentity' }, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }] }),
    t({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false,
      shortNames: ['crd', 'crds'], categories: ['api-extensions'], statusSubresource: true, generation: true,
      printerColumns: [{ name: 'Created At', type: 'date', jsonPath: '.metadata.creationTimestamp' }] }),
  ];
}

/** Field selectors a real server supports beyond metadata.name / metadata.namespace. */
export const EXTRA_FIELDS: Record<string, string[]> = {
  events: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
  secrets: ['type'],
  namespaces: ['status.phase'],
};
