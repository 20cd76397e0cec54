import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { REPO_ROOT } from '../support/helm-render/render.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'preflight.mjs');
const TOOLS = ['docker-registry', 'skopeo', 'htpasswd', 'openssl', 'lua5.1', 'go', 'kubectl', 'promtool'];

/** Runs the preflight with the given environment; never rejects. */
function preflight(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT], { env, cwd: REPO_ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

function which(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // next
    }
  }
  throw new Error(`${command} is not on PATH`);
}

describe('ship: npm test preflight (scripts/preflight.mjs)', function () {
  this.timeout(30_000);
  let empty: string;
  before(async () => {
    empty = await mkdtemp(join(tmpdir(), 'imc-preflight-'));
  });
  after(async () => {
    await rm(empty, { recursive: true, force: true });
  });

  it('with none of the tools: one line naming each and the apt-get command, exit 1, no stack trace', async () => {
    const { code, stdout, stderr } = await preflight({ PATH: empty, IMAGE_MIRROR_GOPATH: empty });
    assert.equal(code, 1);
    assert.equal(stdout, '');
    const lines = stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, stderr);
    const [line] = lines as [string];
    assert.doesNotMatch(line, /\bat .*:\d+:\d+|Error:/, 'a stack trace');
    assert.match(line, new RegExp(`^missing: ${TOOLS.map((t) => t.replace('.', '\\.')).join(', ')}, Go sources github\\.com/Masterminds/sprig gopkg\\.in/yaml\\.v2 gopkg\\.in/yaml\\.v3 in `));
    assert.match(
      line,
      / — install with: (sudo )?apt-get install -y docker-registry skopeo apache2-utils openssl lua5\.1 golang-go kubernetes-client prometheus golang-github-masterminds-sprig-dev golang-gopkg-yaml\.v2-dev golang-gopkg-yaml\.v3-dev$/,
    );
  });

  it('names only what is missing: every tool but skopeo present, the Go sources found', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'imc-preflight-bin-'));
    try {
      for (const t of TOOLS.filter((t) => t !== 'skopeo')) await symlink(which(t), join(bin, t));
      const { code, stderr } = await preflight({ PATH: bin });
      assert.equal(code, 1);
      assert.match(stderr, /^missing: skopeo — install with: (sudo )?apt-get install -y skopeo\n$/);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('with this machine\'s PATH: exit 0 and silent', async () => {
    const { code, stdout, stderr } = await preflight(process.env);
    assert.deepEqual({ code, stdout, stderr }, { code: 0, stdout: '', stderr: '' });
  });

  it('npm test runs it first, and .ci/run installs every package it can ask for, then runs npm test', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.test!, /^node scripts\/preflight\.mjs && /);
    const { stderr } = await preflight({ PATH: empty, IMAGE_MIRROR_GOPATH: empty });
    const asked = /apt-get install -y (.+)$/.exec(stderr.trim())?.[1]?.split(' ') ?? [];
    assert.ok(asked.length >= 11, stderr);
    const ci = (await readFile(join(REPO_ROOT, '.ci', 'run'), 'utf8')).replace(/\\\n/g, ' ');
    const installed = new Set([...ci.matchAll(/apt-get install -y -q ([^\n]+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/)));
    for (const p of asked) assert.ok(installed.has(p), `.ci/run does not install ${p}`);
    assert.match(ci, /^npm test\b/m);
  });
});
