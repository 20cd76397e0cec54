import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import fc from 'fast-check';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { MAX_STATUS_FILE_NAME, readStatusFile, statusFileName, statusFilePath, writeStatusFile } from '../../src/standalone/status-files.js';

describe('status file names', () => {
  const dir = resolve('/var/lib/image-mirror/status');

  it('a well-formed namespace/name key keeps its readable name', () => {
    assert.equal(statusFileName('default/a'), 'default_a.json');
    assert.equal(statusFileName('team-a/web.v2'), 'team-a_web.v2.json');
    assert.equal(statusFilePath(dir, 'team-a/web'), join(dir, 'team-a_web.json'));
  });

  it('hostile keys land directly inside the directory, under distinct names', () => {
    const keys = [
      'default/x/../../../victim',
      '../../etc/passwd',
      'default/..',
      '../x',
      '/abs/path/spec.yaml#0',
      'default/a\0b',
      'specs/team-a/x.yaml#3',
      'specs/team-a/x.yaml#3.items[1]',
      '.',
      '..',
      '',
      'default_a',
    ];
    const names = new Set<string>();
    for (const k of keys) {
      const p = statusFilePath(dir, k);
      assert.equal(dirname(p), dir, k);
      const name = p.slice(dir.length + 1);
      assert.match(name, /^_[A-Za-z0-9._-]*-[0-9a-f]{32}\.json$/, k);
      names.add(name);
    }
    assert.equal(names.size, keys.length);
    // The readable part keeps the end of the key (the file and document), for a person listing the directory.
    assert.match(statusFileName('specs/team-a/x.yaml#3'), /^_specs_team-a_x.yaml_3-/);
  });

  it(`MAX_STATUS_FILE_NAME (${MAX_STATUS_FILE_NAME}): the longest valid namespace/name is hashed rather than refused by the file system`, () => {
    const key = `${'n'.repeat(63)}/${Array(4).fill('a'.repeat(62)).join('.')}`;
    assert.ok(`${key}.json`.length > MAX_STATUS_FILE_NAME);
    const name = statusFileName(key);
    assert.ok(name.length <= MAX_STATUS_FILE_NAME, name);
    assert.match(name, /^_/);
    assert.equal(statusFileName('n/a'), 'n_a.json');
  });

  it('property: any key maps to one plain file name inside the directory, and different keys to different names', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 }), (a, b) => {
        for (const k of [a, b]) {
          const p = statusFilePath(dir, k);
          assert.equal(dirname(p), dir);
          const name = p.slice(dir.length + 1);
          assert.ok(name.length <= MAX_STATUS_FILE_NAME && !name.includes('/') && name !== '.' && name !== '..', name);
        }
        if (a !== b) assert.notEqual(statusFileName(a), statusFileName(b));
      }),
      { numRuns: 500 },
    );
  });
});

describe('status.owned read back from a status file', () => {
  let dir: string;
  const D1 = `sha256:${'1'.repeat(64)}`;
  const D2 = `sha256:${'2'.repeat(64)}`;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'status-files-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function roundTrip(owned: unknown): Promise<unknown> {
    await writeFile(statusFilePath(dir, 'team-a/web'), JSON.stringify({ key: 'team-a/web', source: 'x.yaml', status: { owned } }));
    return (await readStatusFile(dir, 'team-a/web'))?.owned;
  }

  it('keeps what it wrote: tags with their digests', async () => {
    const owned = [{ repository: 'r.example/a', tags: ['1.0', '1.1'], digests: [D1, D2] }];
    await writeStatusFile(dir, { key: 'team-a/web', source: 'x.yaml', status: { owned } });
    assert.deepEqual((await readStatusFile(dir, 'team-a/web'))?.owned, owned);
  });

  it('keeps an entry of the earlier shape (tags only) as it is, for the reconcile to date from the rows', async () => {
    assert.deepEqual(await roundTrip([{ repository: 'r.example/a', tags: ['1.0', 7, '1.1'] }]), [{ repository: 'r.example/a', tags: ['1.0', '1.1'] }]);
  });

  it('drops an entry whose digests are not parallel to its tags, and a pair whose tag or digest is not a string', async () => {
    assert.deepEqual(
      await roundTrip([
        { repository: 'r.example/short', tags: ['1.0', '1.1'], digests: [D1] },
        { repository: 'r.example/notlist', tags: ['1.0'], digests: D1 },
        { repository: 'r.example/pairs', tags: ['1.0', null, '1.2'], digests: [D1, D2, 5] },
        { repository: 'r.example/ok', tags: ['2.0'], digests: [D2] },
        { tags: ['x'], digests: [D1] },
      ]),
      [
        { repository: 'r.example/pairs', tags: ['1.0'], digests: [D1] },
        { repository: 'r.example/ok', tags: ['2.0'], digests: [D2] },
      ],
    );
  });
});
