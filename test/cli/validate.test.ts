/**
 * `image-mirror validate`: every registry-free check, problems as `file:line: message`, exit 0/1
 * (2 for bad usage); and `--credentials-fallback` in sync, for Secrets that live elsewhere
 * (SealedSecrets, ExternalSecrets).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { RegistryClient } from '../../src/oci/registry.js';
import { runSync } from '../../src/standalone/sync.js';
import { DUPLICATE_TARGETS_SHOWN, runValidate, staticTargetReferences, validateSpecs } from '../../src/standalone/validate-command.js';
import { mustValidateMirror } from '../../src/mirror/validate.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const BIN = join(process.cwd(), 'bin', 'image-mirror.js');

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

const mirror = (name: string, spec: string, namespace = 'team-a') =>
  `---\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec}`;
const policy = (name: string, spec: string) => `---\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirrorPolicy\nmetadata: {name: ${name}}\nspec:\n${spec}`;
const GOOD = '  source: {repository: src.example/app, tags: ["1.0"]}\n  targets: [{repository: dst.example/app, credentials: {secretName: sealed-push}}]\n';

describe('image-mirror validate', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'validate-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function files(named: Record<string, string>): Promise<string> {
    const d = await mkdtemp(join(dir, 'case-'));
    for (const [f, text] of Object.entries(named)) await writeFile(join(d, f), text);
    return d;
  }

  it('valid files, whose named Secret is not in them: exit 0 and a summary (CLI)', async () => {
    const d = await files({ 'a.yaml': mirror('a', GOOD), 'p.yaml': policy('p', '  namespaces: [team-a]\n  sources: ["src.example/**"]\n  targets: ["dst.example/**"]\n') });
    const r = await cli(['validate', '-f', d]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, 'valid: 1 ImageMirror, 1 ImageMirrorPolicy\n');
  });

  it('each registry-free check is reported at file:line: syntax, schema, CEL rule, RE2, semver, reference, policy, names and target tags twice', async () => {
    const d = await files({
      '1-schema.yaml': mirror('no-targets', '  source: {repository: src.example/a, tags: ["1"]}\n'),
      '2-cel.yaml': `# two selectors: a CEL rule of the CRD\n${mirror('two', '  source: {repository: src.example/a, tags: ["1"], semver: ">=1"}\n  targets: [{repository: dst.example/two}]\n')}`,
      '3-re2.yaml': mirror('re2', '  source: {repository: src.example/a, tagPattern: "(a)\\\\1"}\n  targets: [{repository: dst.example/re2}]\n'),
      '4-semver.yaml': mirror('semver', '  source: {repository: src.example/a, semver: "not a range!"}\n  targets: [{repository: dst.example/semver}]\n'),
      '5-ref.yaml': mirror('ref', '  source: {repository: "src.example/Dev/WEB::x", tags: ["1"]}\n  targets: [{repository: dst.example/ref}]\n'),
      '6-dup-name-a.yaml': mirror('twice', GOOD),
      '6-dup-name-b.yaml': `\n\n${mirror('twice', GOOD)}`,
      '7-target-a.yaml': mirror('writer-a', '  source: {repository: src.example/x, tags: ["1.0", "2.0"]}\n  targets: [{repository: dst.example/shared}]\n'),
      '7-target-b.yaml': `# promotes 3.1 to 1.0\n${mirror('writer-b', '  source: {repository: src.example/y, tags: ["3.1"]}\n  targets: [{repository: "dst.example/shared", tags: ["1.0"]}]\n')}`,
      '8-policy.yaml': policy('bad', '  namespaces: [team-p]\n  sources: []\n  targets: ["**"]\n'),
      '9-misfit.yaml': policy('narrow', '  namespaces: [team-m]\n  sources: ["src.example/allowed/**"]\n  targets: ["dst.example/**"]\n') + mirror('misfit', '  source: {repository: src.example/other, tags: ["1"]}\n  targets: [{repository: dst.example/m}]\n', 'team-m'),
      'x-syntax.yaml': 'apiVersion: v1\nkind: ImageMirror\nmetadata: {name: [\n',
    });
    const r = await validateSpecs([d]);
    const at = (file: string, line: number, re: RegExp) => {
      const source = `${join(d, file)}:${line}`;
      assert.ok(r.problems.some((p) => p.source === source && re.test(p.message)), `no ${re} at ${source} in\n${r.problems.map((p) => `${p.source}: ${p.message}`).join('\n')}`);
    };
    at('1-schema.yaml', 2, /no-targets: .*targets/);
    at('2-cel.yaml', 3, /two: .*(one of|exactly one|only one)/i);
    at('3-re2.yaml', 2, /re2: .*tagPattern/);
    at('4-semver.yaml', 2, /semver: .*semver/);
    at('5-ref.yaml', 2, /ref: .*source\.repository/);
    at('6-dup-name-a.yaml', 2, new RegExp(`^ImageMirror team-a/twice is defined more than once: at ${join(d, '6-dup-name-a.yaml')}:2 and ${join(d, '6-dup-name-b.yaml')}:4`));
    at('7-target-a.yaml', 2, new RegExp(`ImageMirror team-a/writer-a and ImageMirror team-a/writer-b \\(${join(d, '7-target-b.yaml')}:3\\) both write dst\\.example/shared:1\\.0;`));
    at('8-policy.yaml', 2, /ImageMirrorPolicy bad: /);
    at('9-misfit.yaml', 10, /team-m\/misfit: namespace team-m fits no ImageMirrorPolicy that names it: source src\.example\/other matches none of ImageMirrorPolicy narrow/);
    at('x-syntax.yaml', 4, /YAML syntax error/);
    assert.equal(r.problems.filter((p) => /both write/.test(p.message)).length, 1, 'one line per pair of mirrors');
  });

  it('two mirrors sharing many target tags are one line naming the first few', async () => {
    const tags = Array.from({ length: DUPLICATE_TARGETS_SHOWN + 2 }, (_, i) => `"v${i}"`).join(', ');
    const d = await files({ 'a.yaml': mirror('a', `  source: {repository: src.example/a, tags: [${tags}]}\n  targets: [{repository: dst.example/s}]\n`) + mirror('b', `  source: {repository: src.example/b, tags: [${tags}]}\n  targets: [{repository: dst.example/s}]\n`) });
    const r = await validateSpecs([d]);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0]!.message, / and 2 more; /);
  });

  it('tags known only from a registry (tagPattern, semver) are not guessed at', () => {
    const m = mustValidateMirror({ apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'p', namespace: 'a' }, spec: { source: { repository: 'docker.io/nginx', tagPattern: '^1' }, targets: [{ repository: 'dst.example/n' }] } });
    assert.deepEqual(staticTargetReferences(m), []);
    const d = mustValidateMirror({ apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'd', namespace: 'a' }, spec: { source: { repository: 'nginx', tags: ['1.27'] }, targets: [{ repository: 'DST.example/n' }, { repository: 'dst.example/m', tags: ['stable'] }] } });
    assert.deepEqual(staticTargetReferences(d), ['dst.example/n:1.27', 'dst.example/m:stable']);
  });

  it('--require-policy refuses a namespace no policy names', async () => {
    const d = await files({ 'a.yaml': mirror('a', GOOD) });
    assert.equal((await validateSpecs([d])).problems.length, 0);
    const r = await validateSpecs([d], { requirePolicy: true });
    assert.match(r.problems[0]?.message ?? '', /namespace team-a is named by no ImageMirrorPolicy/);
  });

  it('reads standard input (-f -) and exits 1 with the problems on stdout (CLI); a missing path is exit 2', async () => {
    const r = await cli(['validate', '-f', '-'], mirror('s', '  source: {repository: src.example/a, tags: ["1"]}\n'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^<stdin>:2: ImageMirror team-a\/s: .*targets.*\ninvalid: 1 problem in 1 ImageMirror, 0 ImageMirrorPolicies\n$/);
    const missing = await cli(['validate', '-f', join(dir, 'absent')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `image-mirror: ${join(dir, 'absent')}: no such file or directory\n`);
  });

  it('runValidate reads the given stdin stream', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const r = await runValidate({ files: ['-'], stdin: Readable.from([Buffer.from(mirror('ok', GOOD))]), stdout: out });
    assert.equal(r.exitCode, 0);
    assert.equal(text, 'valid: 1 ImageMirror, 0 ImageMirrorPolicies\n');
  });
});

describe('sync --credentials-fallback', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let dir: string;
  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    const client = new RegistryClient(reg.host, { credentials: { get: async () => ({ kind: 'basic', username: 'alice', password: reg.users.alice! }) } });
    await pushImage(client.repository('s/src'), buildImage({ layers: [512] }), 'v1');
    await client.close();
    dir = await mkdtemp(join(tmpdir(), 'cred-fallback-'));
    await mkdir(join(dir, 'specs'));
    await writeFile(join(dir, 'specs', 'm.yaml'), mirror('sealed', `  source: {repository: ${reg.host}/s/src, tags: [v1], credentials: {secretName: sealed-pull}}\n  targets: [{repository: ${reg.host}/s/dst, credentials: {secretName: sealed-push}}]\n`));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`alice:${reg.users.alice}`).toString('base64') } } }));
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const sync = (fallback: boolean) => runSync({ files: [join(dir, 'specs')], dockerConfig: join(dir, 'config.json'), credentialsFallback: fallback, stdout: new PassThrough(), stderr: new PassThrough() });

  it('without it, a Secret missing from the files fails the mirror and names the flag', async () => {
    const r = await sync(false);
    assert.equal(r.exitCode, 1);
    assert.match(r.mirrors[0]!.message, /secret team-a\/sealed-(pull|push) not found in the spec files \(with --credentials-fallback, --docker-config is used instead\)/);
  });

  it('with it, the --docker-config credentials are used and the image is copied', async () => {
    const r = await sync(true);
    assert.equal(r.exitCode, 0, r.mirrors[0]?.message);
    assert.deepEqual(r.mirrors[0]!.targets.map((t) => t.action), ['Copied']);
  });
});
