import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findSecret, loadSpecFiles } from '../../src/standalone/spec-files.js';
import { validateMirror } from '../../src/mirror/validate.js';

const DOCKER_CONFIG = JSON.stringify({ auths: { 'localhost:5000': { auth: Buffer.from('u:p').toString('base64') } } });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
/** 1-based line of the nth occurrence of `needle` in `text`. */
function lineOf(text: string, needle: string, nth = 0): number {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    assert.ok(at >= 0, `${needle} #${nth} not in the text`);
  }
  return text.slice(0, at).split('\n').length;
}

const MIRROR = (name: string, ns?: string): string => `
apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata:
  name: ${name}${ns ? `\n  namespace: ${ns}` : ''}
spec:
  source: {repository: localhost:5000/dev/web, tags: ["1.4.2"], credentials: {secretName: pull}}
  targets:
    - repository: localhost:5000/prod/web
`;

describe('loadSpecFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spec-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads multi-document YAML: mirrors, secrets, and skips empty docs and unrelated kinds', async () => {
    const f = join(dir, 'all.yaml');
    const text = [
        '# leading comment only',
        MIRROR('web', 'team-a'),
        '',
        `apiVersion: v1\nkind: Secret\nmetadata: {name: pull, namespace: team-a}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: ${b64(DOCKER_CONFIG)}\n`,
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n',
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n',
        '',
        MIRROR('api'),
      ].join('\n---\n');
    await writeFile(f, text);
    const r = await loadSpecFiles([f]);
    assert.deepEqual(r.errors, []);
    // sources are the lines where the documents start; keys count documents:
    // a comment before the first `---` belongs to the first document; empty documents still count
    assert.deepEqual(r.mirrors.map((m) => m.source), [`${f}:${lineOf(text, 'apiVersion: imagemirror.dev')}`, `${f}:${lineOf(text, 'apiVersion: imagemirror.dev', 1)}`]);
    assert.deepEqual(r.mirrors.map((m) => m.key), [`${f}#0`, `${f}#6`]);
    const v = validateMirror(r.mirrors[0]!.doc);
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.mirror.metadata.name, 'web');
    assert.deepEqual(r.secrets, [
      { namespace: 'team-a', name: 'pull', type: 'kubernetes.io/dockerconfigjson', dockerConfigJson: DOCKER_CONFIG, data: { '.dockerconfigjson': b64(DOCKER_CONFIG) }, source: `${f}:${lineOf(text, 'apiVersion: v1')}` },
    ]);
  });

  it('walks directories recursively (yaml, yml, json), in sorted order, skipping dot entries and other extensions', async () => {
    await mkdir(join(dir, 'b', 'deep'), { recursive: true });
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, 'a.yml'), MIRROR('a'));
    await writeFile(join(dir, 'b', 'deep', 'c.yaml'), MIRROR('c'));
    await writeFile(
      join(dir, 'b', 'b.json'),
      JSON.stringify({ apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'b' }, spec: {} }),
    );
    await writeFile(join(dir, 'README.md'), MIRROR('readme'));
    await writeFile(join(dir, 'notes.txt'), MIRROR('notes'));
    await writeFile(join(dir, '.git', 'x.yaml'), MIRROR('git'));
    await writeFile(join(dir, '.hidden.yaml'), MIRROR('hidden'));
    const r = await loadSpecFiles([dir]);
    assert.deepEqual(r.errors, []);
    const names = r.mirrors.map((m) => (m.doc as { metadata: { name: string } }).metadata.name);
    assert.deepEqual(names, ['a', 'b', 'c']);
  });

  it('reads an explicitly named file whatever its extension, and each file once', async () => {
    const f = join(dir, 'mirror.txt');
    await writeFile(f, MIRROR('x'));
    await writeFile(join(dir, 'y.yaml'), MIRROR('y'));
    const r = await loadSpecFiles([f, dir, join(dir, 'y.yaml')]);
    assert.deepEqual(r.mirrors.map((m) => (m.doc as { metadata: { name: string } }).metadata.name), ['x', 'y']);
  });

  it('follows directory symlinks without looping', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'm.yaml'), MIRROR('m'));
    await symlink(dir, join(dir, 'sub', 'loop'));
    await symlink(join(dir, 'missing'), join(dir, 'dangling.yaml'));
    const r = await loadSpecFiles([dir]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.mirrors.length, 1);
  });

  it('a YAML syntax error is one error naming file and line; the other files still load', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `${MIRROR('ok-in-bad-file')}---\napiVersion: v1\nkind: Secret\nmetadata: {name: s\n  bad: [\n`);
    await writeFile(join(dir, 'good.yaml'), MIRROR('good'));
    const r = await loadSpecFiles([dir]);
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    assert.match(r.errors[0]!.source, /bad\.yaml:1[0-9]$/);
    assert.match(r.errors[0]!.message, /^YAML syntax error: [^\n]+$/);
    assert.deepEqual(r.mirrors.map((m) => (m.doc as { metadata: { name: string } }).metadata.name), ['good']);
  });

  it('reports duplicate keys as syntax errors (kubectl refuses them too)', async () => {
    await writeFile(join(dir, 'dup.yaml'), 'kind: ImageMirror\nkind: Secret\n');
    const r = await loadSpecFiles([dir]);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!.source, /dup\.yaml:2$/);
  });

  it('a missing path is an error entry, not an exception', async () => {
    const r = await loadSpecFiles([join(dir, 'nope'), dir]);
    assert.deepEqual(r.errors, [{ source: join(dir, 'nope'), message: 'no such file or directory' }]);
  });

  it('Secrets: stringData and data both work, stringData wins, namespace defaults, other types are kept but unusable', async () => {
    const f = join(dir, 'secrets.yaml');
    const text = [
        `apiVersion: v1\nkind: Secret\nmetadata: {name: plain}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '${DOCKER_CONFIG}'\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: both, namespace: ns}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: ${b64('{"auths":{}}')}\nstringData:\n  .dockerconfigjson: '${DOCKER_CONFIG}'\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: opaque, namespace: ns}\ndata:\n  .dockerconfigjson: ${b64(DOCKER_CONFIG)}\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: legacy, namespace: ns}\ntype: kubernetes.io/dockercfg\ndata:\n  .dockercfg: ${b64('{}')}\n`,
        // base64 wrapped over lines, as `base64` prints it
        `apiVersion: v1\nkind: Secret\nmetadata: {name: wrapped}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: >-\n    ${b64(DOCKER_CONFIG).slice(0, 20)}\n    ${b64(DOCKER_CONFIG).slice(20)}\n`,
      ].join('---\n');
    await writeFile(f, text);
    const r = await loadSpecFiles([f]);
    assert.deepEqual(r.errors, []);
    assert.equal(findSecret(r.secrets, 'default', 'plain')?.dockerConfigJson, DOCKER_CONFIG);
    assert.equal(findSecret(r.secrets, 'ns', 'both')?.dockerConfigJson, DOCKER_CONFIG);
    assert.deepEqual(findSecret(r.secrets, 'ns', 'opaque'), { namespace: 'ns', name: 'opaque', type: 'Opaque', data: { '.dockerconfigjson': b64(DOCKER_CONFIG) }, source: `${f}:${lineOf(text, 'apiVersion: v1', 2)}` });
    assert.equal(findSecret(r.secrets, 'ns', 'legacy')?.type, 'kubernetes.io/dockercfg');
    assert.equal(findSecret(r.secrets, 'ns', 'legacy')?.dockerConfigJson, undefined);
    assert.equal(findSecret(r.secrets, 'default', 'wrapped')?.dockerConfigJson, DOCKER_CONFIG);
    assert.equal(findSecret(r.secrets, 'ns', 'plain'), undefined, 'namespaces are not mixed');
    assert.equal(findSecret(r.secrets, 'default', 'nope'), undefined);
  });

  it('a broken dockerconfigjson Secret is kept without credentials and reported without its content', async () => {
    const f = join(dir, 's.yaml');
    const text = [
        'apiVersion: v1\nkind: Secret\nmetadata: {name: notb64}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: "s3cr3t!!"\n',
        'apiVersion: v1\nkind: Secret\nmetadata: {name: notjson}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: "hunter2"\n',
        'apiVersion: v1\nkind: Secret\nmetadata: {name: empty}\ntype: kubernetes.io/dockerconfigjson\n',
        'apiVersion: v1\nkind: Secret\nmetadata: {namespace: x}\ntype: kubernetes.io/dockerconfigjson\n',
      ].join('---\n');
    await writeFile(f, text);
    const r = await loadSpecFiles([f]);
    assert.deepEqual(r.secrets.map((s) => [s.name, s.dockerConfigJson]), [['notb64', undefined], ['notjson', undefined], ['empty', undefined]]);
    assert.deepEqual(r.errors.map((e) => e.source), [0, 1, 2, 3].map((i) => `${f}:${lineOf(text, 'apiVersion: v1', i)}`));
    assert.match(r.errors[0]!.message, /Secret default\/notb64: data\.\.dockerconfigjson is not valid base64/);
    assert.match(r.errors[1]!.message, /not a JSON object/);
    assert.match(r.errors[2]!.message, /no \.dockerconfigjson/);
    assert.match(r.errors[3]!.message, /without metadata\.name/);
    for (const e of r.errors) assert.ok(!e.message.includes('s3cr3t') && !e.message.includes('hunter2'), e.message);
  });

  it('reads kind: List items, and reports a Secret defined twice', async () => {
    const f = join(dir, 'list.yaml');
    await writeFile(
      f,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'from-list' }, spec: {} },
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque' },
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } },
        ],
      }) + `\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n`,
    );
    const r = await loadSpecFiles([f]);
    // The List is one line of JSON: its items all start on line 1; the second document on line 3.
    assert.deepEqual(r.mirrors.map((m) => m.source), [`${f}:1`]);
    assert.deepEqual(r.mirrors.map((m) => m.key), [`${f}#0.items[0]`]);
    assert.deepEqual(r.secrets.map((s) => s.source), [`${f}:1`, `${f}:3`]);
    assert.equal(findSecret(r.secrets, 'default', 's')?.source, `${f}:1`);
    assert.deepEqual(r.errors, [{ source: `${f}:3`, message: `Secret default/s is also defined at ${f}:1; using the first` }]);
  });

  it('sources are the lines where documents and List items start; ImageMirrorPolicy documents are returned raw', async () => {
    const f = join(dir, 'positions.yaml');
    const text = [
      '# comment lines above the first document',
      '',
      'apiVersion: v1',
      'kind: List',
      'items:',
      '  - apiVersion: imagemirror.dev/v1alpha1',
      '    kind: ImageMirror',
      '    metadata: {name: first}',
      '  -',
      '    kind: ImageMirror',
      '    metadata: {name: second}',
      '---',
      '',
      'apiVersion: imagemirror.dev/v1alpha1',
      'kind: ImageMirrorPolicy',
      'metadata: {name: p}',
      '---',
      'apiVersion: other.example.com/v1',
      'kind: ImageMirrorPolicy',
      'metadata: {name: not-ours}',
      '',
    ].join('\n');
    await writeFile(f, text);
    const r = await loadSpecFiles([f]);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.mirrors.map((m) => [m.source, m.key]), [
      [`${f}:6`, `${f}#0.items[0]`],
      [`${f}:10`, `${f}#0.items[1]`],
    ]);
    assert.deepEqual(r.policies, [{ source: `${f}:14`, doc: { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirrorPolicy', metadata: { name: 'p' } } }]);
  });

  it('keeps an ImageMirror of another imagemirror.dev version for validation to report; ignores other groups', async () => {
    await writeFile(
      join(dir, 'v.yaml'),
      'apiVersion: imagemirror.dev/v1\nkind: ImageMirror\nmetadata: {name: a}\n---\napiVersion: other.example.com/v1\nkind: ImageMirror\nmetadata: {name: b}\n---\n- just\n- a list\n---\nplain scalar\n',
    );
    const r = await loadSpecFiles([dir]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.mirrors.length, 1);
    const v = validateMirror(r.mirrors[0]!.doc);
    assert.ok(!v.ok && v.errors.some((e) => e.startsWith('apiVersion: must be imagemirror.dev/v1alpha1')));
  });
});
