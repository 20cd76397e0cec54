/**
 * Writes every file derived from the API declarations in src/api/: the CRDs (crds/, deploy/crds/
 * and the chart's files/crds/, one text each), the TypeScript types (src/api/types.gen.ts) and
 * docs/api.md. test/api/drift.test.ts calls generatedFiles() and compares.
 *
 *   npm run gen:api
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderCrd } from '../src/api/crd.js';
import { MIRROR } from '../src/api/imagemirror.js';
import { POLICY } from '../src/api/policy.js';
import { renderTypes } from '../src/api/typescript.js';
import { renderApiDocs } from './gen-api-docs.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where each CRD is shipped: the plain manifests, the kustomize base, the Helm chart. */
export const CRD_DIRS = ['crds', 'deploy/crds', 'charts/image-mirror-controller/files/crds'] as const;

const TYPE_IMPORTS = [
  "import type { API_VERSION, CloudProvider, ConditionStatus, KIND, POLICY_API_VERSION, POLICY_KIND, TargetAction } from './vocabulary.js';",
  "import type { ObjectMeta, PolicyMeta } from './meta.js';",
];

/** Repository-relative path → content, for every generated file. */
export function generatedFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const mirrorCrd = renderCrd(MIRROR);
  for (const [name, text] of [
    ['imagemirror.yaml', mirrorCrd],
    ['imagemirrorpolicy.yaml', renderCrd(POLICY)],
  ] as const) {
    for (const dir of CRD_DIRS) files.set(`${dir}/${name}`, text);
  }
  files.set('src/api/types.gen.ts', renderTypes([MIRROR, POLICY], TYPE_IMPORTS));
  files.set('docs/api.md', renderApiDocs(mirrorCrd));
  return files;
}

async function main(): Promise<void> {
  for (const [path, text] of generatedFiles()) {
    await writeFile(join(REPO_ROOT, path), text);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`gen-api: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
