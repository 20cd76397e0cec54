/** Object metadata as this project reads it (the schema leaves metadata to the API server). */
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

/** An ImageMirrorPolicy is cluster-scoped and read by its name alone. */
export interface PolicyMeta {
  name: string;
}
