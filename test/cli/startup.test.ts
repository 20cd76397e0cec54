/**
 * bin/image-mirror.js in a checkout: the bundle npm's `prepare` writes (`scripts/build.mjs
 * --checkout`) runs only while every input it was built from is unchanged; otherwise the sources run
 * through tsx, so a test or a developer never gets a stale bundle.
 *
 * Everything works on a copy of the checkout (bin/, src/, scripts/build.mjs, package.json, and
 * node_modules linked but undici, copied). The bundle is marked after building (one stderr line), which is how the two
 * end-to-end cases tell which code ran; the other cases ask bin/current-bundle.js (what the bin
 * asks) and put each change back exactly, mtimes included, so one build serves them all.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MARK = 'startup-test: the bundle ran';
const DEP = join('node_modules', 'undici', 'lib', 'dispatcher', 'client-h1.js');
const TOUCHED = [join('src', 'version.ts'), join('src', 'oci'), 'package.json', DEP];

type IsCurrent = (root: string) => boolean;

describe('bin in a checkout: the prepared bundle only while current', function () {
  this.timeout(60_000);
  let tmp: string;
  let dir: string;
  let isCurrent: IsCurrent;

  /** `node bin/image-mirror.js --version` in the copy: which code ran, and the commit it printed. */
  async function version(): Promise<{ bundle: boolean; commit: string }> {
    const r = await exec(process.execPath, [join(dir, 'bin', 'image-mirror.js'), '--version'], {
      cwd: dir,
      // The copy is no git checkout: nothing above it may answer `git rev-parse`.
      env: { ...process.env, GIT_CEILING_DIRECTORIES: tmp },
    });
    const commit = /\(commit (\S+), node/.exec(r.stdout)?.[1];
    assert.ok(commit, r.stdout);
    return { bundle: r.stderr.includes(MARK), commit };
  }

  /** Builds as `prepare` does (or as prepack does, `checkout: false`) and marks the bundle. */
  async function build(checkout = true, npmCommand = 'ci'): Promise<void> {
    await exec(process.execPath, [join('scripts', 'build.mjs'), ...(checkout ? ['--checkout'] : []), 'dist'], { cwd: dir, env: { ...process.env, npm_command: npmCommand } });
    const main = join(dir, 'dist', 'main.js');
    const js = await readFile(main, 'utf8');
    if (js.includes(MARK)) return;
    // After the hashbang: a statement ahead of the bundle's own (imports are hoisted either way).
    const nl = js.indexOf('\n') + 1;
    await writeFile(main, `${js.slice(0, nl)}process.stderr.write(${JSON.stringify(MARK + '\n')});\n${js.slice(nl)}`);
  }

  /**
   * Applies `change` to the copy, returns whether the bundle counted as current meanwhile, then puts
   * back the content and mtimes of `paths` (files and directories; a path that did not exist is removed).
   */
  async function currentAfter(paths: string[], change: () => Promise<void>): Promise<boolean> {
    const saved = await Promise.all(
      paths.map(async (p) => {
        const file = join(dir, p);
        const s = await stat(file).catch(() => undefined);
        return { file, s, text: s?.isFile() ? await readFile(file) : undefined };
      }),
    );
    await change();
    const current = isCurrent(dir);
    for (const { file, text } of saved) if (text !== undefined) await writeFile(file, text);
    for (const { file, s } of saved) if (!s) await unlink(file);
    for (const { file, s } of saved) if (s) await utimes(file, s.atime, s.mtime);
    return current;
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'imc-startup-'));
    dir = join(tmp, 'checkout');
    await mkdir(join(dir, 'scripts'), { recursive: true });
    for (const p of ['bin', 'src', 'package.json', join('scripts', 'build.mjs')]) await cp(join(ROOT, p), join(dir, p), { recursive: true });
    // Dependencies linked, except undici: copied, so that a case may change one of its files.
    await mkdir(join(dir, 'node_modules'));
    for (const name of await readdir(join(ROOT, 'node_modules'))) {
      if (name === 'undici') await cp(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), { recursive: true });
      else await symlink(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name));
    }
    // Whole-second mtimes on what the cases change and put back: exactly restorable (a Date is ms).
    for (const [i, p] of TOUCHED.entries()) await utimes(join(dir, p), 1_700_000_000 + i, 1_700_000_000 + i);
    isCurrent = ((await import(pathToFileURL(join(ROOT, 'bin', 'current-bundle.js')).href)) as { checkoutBundleIsCurrent: IsCurrent }).checkoutBundleIsCurrent;
    await build();
  });
  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs the bundle while every input is as built, reading the version live like the sources', async () => {
    assert.equal(isCurrent(dir), true);
    assert.deepEqual(await version(), { bundle: true, commit: 'unknown' });
  });

  it('a source edited in place, even to the same size and back to its old mtime, is caught', async () => {
    const file = join('src', 'version.ts');
    const edit = async (mtime?: Date): Promise<void> => {
      const path = join(dir, file);
      // Same length: size alone cannot tell.
      await writeFile(path, (await readFile(path, 'utf8')).replace("UNKNOWN_COMMIT = 'unknown'", "UNKNOWN_COMMIT = 'UNKNOWN'"));
      if (mtime) await utimes(path, mtime, mtime);
    };
    assert.equal(await currentAfter([file], () => edit()), false);
    // As `cp -p` or an archive would leave it: older than the bundle, which "newer than" would miss.
    assert.equal(await currentAfter([file], () => edit(new Date(Date.now() - 3_600_000))), false);
    assert.equal(isCurrent(dir), true, 'putting the file back exactly is the same input');
  });

  it('a file added under src/, a changed package.json or a changed bundled dependency make it stale', async () => {
    const added = join('src', 'oci', 'added-after-build.ts');
    assert.equal(await currentAfter([added, dirname(added)], () => writeFile(join(dir, added), 'export const x = 1;\n')), false);
    assert.equal(
      await currentAfter(['package.json'], async () => {
        const p = join(dir, 'package.json');
        await writeFile(p, (await readFile(p, 'utf8')).replace('"version"', '"x": 1,\n  "version"'));
      }),
      false,
    );
    const info = JSON.parse(await readFile(join(dir, 'dist', 'build-info.json'), 'utf8')) as { inputs: [string, number, number][] };
    assert.ok(info.inputs.some(([p]) => p === DEP.split(sep).join('/')), 'the bundled dependencies are inputs');
    assert.equal(await currentAfter([DEP], () => appendFile(join(dir, DEP), '\n')), false);
    assert.equal(isCurrent(dir), true);
  });

  it('with the bundle stale, the edited sources run', async () => {
    assert.equal(
      await currentAfter([join('src', 'version.ts')], async () => {
        const path = join(dir, 'src', 'version.ts');
        await writeFile(path, (await readFile(path, 'utf8')).replace("UNKNOWN_COMMIT = 'unknown'", "UNKNOWN_COMMIT = 'edited!'"));
        assert.deepEqual(await version(), { bundle: false, commit: 'edited!' });
      }),
      false,
    );
  });

  it('the packaged bundle (version written in) is not used in a checkout, and prepare leaves it alone when npm packs', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.prepare ?? '', /node scripts\/build\.mjs --checkout dist/);
    await build(false);
    assert.equal(isCurrent(dir), false);
    const packaged = await readFile(join(dir, 'dist', 'main.js'), 'utf8');
    // npm runs prepare after prepack when packing or publishing.
    await build(true, 'pack');
    assert.equal(await readFile(join(dir, 'dist', 'main.js'), 'utf8'), packaged);
    await assert.rejects(stat(join(dir, 'dist', 'build-info.json')), { code: 'ENOENT' });
  });
});
