// Shared shapes of the fake API server. Objects are plain JSON, as on the wire.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [k: string]: unknown;
}

/** A stored or transmitted object: apiVersion/kind/metadata plus anything else. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [k: string]: unknown;
}

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

/** One served resource (a row of an APIResourceList) and what the server needs to store it. */
export interface ResourceType {
  group: string; // '' for core
  version: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  statusSubresource: boolean;
  /** Custom resources: generation tracking, rv required on update, no strategic merge. */
  custom: boolean;
  /** Tracks metadata.generation (CRDs and custom resources). */
  generation: boolean;
  printerColumns: PrinterColumn[];
  /** Validates and defaults a custom resource; returns causes when invalid. */
  validate?: (obj: KObject) => StatusCause[];
  /** Which CRD registered it (for removal when the CRD goes). */
  crdName?: string;
}

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export function apiVersionOf(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}
