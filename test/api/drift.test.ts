/**
 * Every file generated from the API declarations (src/api/) is what `npm run gen:api` writes
 * today: the CRDs in all three places, src/api/types.gen.ts and docs/api.md. A declaration edited
 * without regenerating fails here, naming the stale file.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CRD_DIRS, generatedFiles, REPO_ROOT } from '../../scripts/gen-api.js';

describe('generated API files are up to date (npm run gen:api)', () => {
  const files = generatedFiles();
  it('covers both CRDs in every place they ship, the types and the API reference', () => {
    const expected = [
      ...CRD_DIRS.flatMap((d) => [`${d}/imagemirror.yaml`, `${d}/imagemirrorpolicy.yaml`]),
      'src/api/types.gen.ts',
      'docs/api.md',
    ];
    assert.deepEqual([...files.keys()].sort(), expected.sort());
  });
  for (const [path, text] of files) {
    it(`${path} is current`, async () => {
      const onDisk = await readFile(join(REPO_ROOT, path), 'utf8');
      assert.ok(onDisk === text, `${path} is stale: run npm run gen:api`);
    });
  }
});
