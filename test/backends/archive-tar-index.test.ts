/**
 * The tar header index behind oci-archive: reads what GNU tar writes in its pax and gnu formats
 * (long names through pax `path` records and GNU `L` entries, `./` prefixes), finds each file's
 * data by offset without reading it, and refuses a damaged header or a cut-short file in one line.
 * A layout tarred up by hand (`tar -C DIR -cf FILE .`) is an archive our backend reads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, realpath, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TarFormatError, TruncatedError, indexTar } from '../../src/backends/archive/tar-index.js';
import { openRepository } from '../../src/backends/open.js';
import { RegistryPool } from '../../src/backends/registry/pool.js';
import { anonymous } from '../../src/oci/credentials.js';
import { isOciError } from '../../src/oci/errors.js';
import { buildIndex, pushIndex } from '../support/images.js';

const run = promisify(execFile);

async function index(file: string): Promise<Map<string, { offset: number; size: number }>> {
  const fh = await open(file, 'r');
  try {
    return await indexTar(fh, (await stat(file)).size);
  } finally {
    await fh.close();
  }
}

describe('oci-archive tar header index', function () {
  this.timeout(20_000);
  let dir: string;
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}.bin`;

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'tar-index-')));
    const src = join(dir, 'src');
    await mkdir(join(src, long, '..'), { recursive: true });
    await writeFile(join(src, 'small.txt'), 'hello');
    await writeFile(join(src, long), Buffer.alloc(70_000, 3));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  for (const format of ['pax', 'gnu', 'ustar'] as const) {
    // pax: the long name in a `path` record; gnu: in an `L` entry; ustar: split into prefix and name.
    it(`finds every file of a ${format}-format archive by offset, long names included`, async () => {
      const file = join(dir, `${format}.tar`);
      await run('tar', [`--format=${format}`, '-C', join(dir, 'src'), '-cf', file, '.']);
      const entries = await index(file);
      const bytes = await readFile(file);
      const small = entries.get('small.txt')!;
      assert.equal(bytes.subarray(small.offset, small.offset + small.size).toString(), 'hello');
      const big = entries.get(long)!;
      assert.equal(big.size, 70_000);
      assert.ok(bytes.subarray(big.offset, big.offset + big.size).every((b) => b === 3));
    });
  }

  it('refuses a damaged header and a file cut short, naming where', async () => {
    const file = join(dir, 'damaged.tar');
    await run('tar', ['--format=pax', '-C', join(dir, 'src'), '-cf', file, 'small.txt']);
    const bytes = await readFile(file);
    bytes[10] = bytes[10]! ^ 0xff;
    await writeFile(join(dir, 'bad-header.tar'), bytes);
    await assert.rejects(index(join(dir, 'bad-header.tar')), (e: unknown) => e instanceof TarFormatError && /checksum/.test(e.message));

    const cut = join(dir, 'cut.tar');
    await run('tar', ['--format=gnu', '-C', join(dir, 'src'), '-cf', cut, long]);
    await truncate(cut, 512 * 3 + 10_000);
    await assert.rejects(index(cut), (e: unknown) => e instanceof TruncatedError && e.entry === long && !e.message.includes('\n'));
  });

  it('a layout tarred up by hand (tar -C DIR -cf FILE .) reads as an oci-archive', async () => {
    const pool = new RegistryPool();
    const layout = await openRepository(`oci:${join(dir, 'layout')}`, anonymous, { pool });
    const idx = await pushIndex(layout, buildIndex({ layers: [900] }), 'v1');
    const file = join(dir, 'by-hand.tar');
    await run('tar', ['-C', join(dir, 'layout'), '-cf', file, '.']);
    const arc = await openRepository(`oci-archive:${file}`, anonymous, { pool });
    assert.deepEqual(await arc.listTags(), ['v1']);
    assert.deepEqual(Buffer.from((await arc.getManifest('v1')).bytes), idx.bytes);
    await arc.close?.();
    // Not an archive at all: one line saying so.
    await writeFile(join(dir, 'not.tar'), Buffer.alloc(2048, 0x41));
    const not = await openRepository(`oci-archive:${join(dir, 'not.tar')}`, anonymous, { pool });
    await assert.rejects(not.listTags(), (e: unknown) => isOciError(e) && e.code === 'PROTOCOL' && /not a readable tar archive/.test(e.message) && !e.message.includes('\n'));
    await not.close?.();
    await pool.close();
  });
});
