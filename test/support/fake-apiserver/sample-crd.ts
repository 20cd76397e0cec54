// A stand-in ImageMirror CRD for the fake server's own tests, used until crds/imagemirror.yaml exists.
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SAMPLE_CRD_YAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: imagemirrors.imagemirror.dev
spec:
  group: imagemirror.dev
  scope: Namespaced
  names:
    kind: ImageMirror
    listKind: ImageMirrorList
    plural: imagemirrors
    singular: imagemirror
    shortNames: [im]
    categories: [all]
  versions:
    - name: v1alpha1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - name: Ready
          type: string
          jsonPath: .status.conditions[?(@.type=="Ready")].status
        - name: Source
          type: string
          jsonPath: .spec.source.repository
        - name: Targets
          type: string
          jsonPath: .status.summary
        - name: Last Sync
          type: date
          jsonPath: .status.lastSyncTime
        - name: Message
          type: string
          priority: 1
          jsonPath: .status.conditions[?(@.type=="Ready")].message
        - name: Age
          type: date
          jsonPath: .metadata.creationTimestamp
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [source, targets]
              properties:
                source:
                  type: object
                  required: [repository]
                  properties:
                    repository: {type: string, minLength: 1}
                    tags: {type: array, items: {type: string}}
                    tagPattern: {type: string}
                    semver: {type: string}
                    digest: {type: string}
                    latest: {type: integer, minimum: 1}
                    insecure: {type: boolean}
                    credentials:
                      type: object
                      properties:
                        secretName: {type: string}
                targets:
                  type: array
                  minItems: 1
                  items:
                    type: object
                    required: [repository]
                    properties:
                      repository: {type: string}
                      tags: {type: array, items: {type: string}}
                      insecure: {type: boolean}
                      credentials:
                        type: object
                        properties:
                          secretName: {type: string}
                referrers: {type: boolean, default: true}
                overwrite: {type: boolean, default: true}
                interval: {type: string, default: 10m}
                suspend: {type: boolean, default: false}
            status:
              type: object
              properties:
                observedGeneration: {type: integer, format: int64}
                summary: {type: string}
                lastSyncTime: {type: string, format: date-time}
                sourceDigests:
                  type: object
                  additionalProperties: {type: string}
                conditions:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [type]
                  items:
                    type: object
                    required: [type, status, reason, message, lastTransitionTime]
                    properties:
                      type: {type: string}
                      status: {type: string, enum: ["True", "False", "Unknown"]}
                      observedGeneration: {type: integer, format: int64, minimum: 0}
                      lastTransitionTime: {type: string, format: date-time}
                      reason: {type: string}
                      message: {type: string}
`;

/** crds/imagemirror.yaml when another helper has written it, else undefined. */
export function projectCrdPath(): string | undefined {
  const p = fileURLToPath(new URL('../../../crds/imagemirror.yaml', import.meta.url));
  return existsSync(p) ? p : undefined;
}

/** The project's CRD file, or the sample written to a temp file when the project has none. */
export async function crdPath(): Promise<string> {
  const p = projectCrdPath();
  if (p) return p;
  const f = join(await mkdtemp(join(tmpdir(), 'crd-')), 'imagemirror.yaml');
  await writeFile(f, SAMPLE_CRD_YAML);
  return f;
}

/** crds/imagemirrorpolicy.yaml (cluster-scoped ImageMirrorPolicy). */
export function policyCrdPath(): string {
  return fileURLToPath(new URL('../../../crds/imagemirrorpolicy.yaml', import.meta.url));
}
