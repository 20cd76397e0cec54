import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/helm-render/render.js';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'docs', 'argocd-health.lua');

/** A Lua 5.1 table constructor for a JSON value (nulls dropped, as Argo CD's decoder does). */
function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    assert.ok(/^[\x20-\x7e]*$/.test(v), 'test fixture strings must be printable ASCII');
    return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }
  if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== null && x !== undefined)
    .map(([k, x]) => `[${toLua(k)}] = ${toLua(x)}`)
    .join(', ')}}`;
}

let dir: string;
let n = 0;
async function health(obj: unknown, script = SCRIPT): Promise<{ status: string; message: string }> {
  const harness = join(dir, `h${++n}.lua`);
  await writeFile(harness, `obj = ${toLua(obj)}\nlocal check = assert(loadfile(${toLua(script)}))\nlocal hs = check()\nio.write(hs.status, "\\t", hs.message or "")\n`);
  const { stdout } = await run('lua5.1', [harness]);
  const [status, message] = stdout.split('\t');
  return { status: status!, message: message ?? '' };
}

const cond = (type: string, status: string, reason: string, message = '') => ({ type, status, reason, message, lastTransitionTime: '2026-01-01T00:00:00Z' });
function mirror(conditions?: unknown[], opts: { generation?: number; observed?: number; suspend?: boolean } = {}): unknown {
  const { generation = 2, observed = 2, suspend } = opts;
  return {
    apiVersion: 'imagemirror.dev/v1alpha1',
    kind: 'ImageMirror',
    metadata: { name: 'web', namespace: 'team-a', generation },
    spec: { source: { repository: 'r.example.com/a', tags: ['1'] }, targets: [{ repository: 'r.example.com/b' }], ...(suspend === undefined ? {} : { suspend }) },
    ...(conditions ? { status: { observedGeneration: observed, conditions } } : {}),
  };
}

describe('ship: Argo CD health check (Lua 5.1)', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'argocd-health-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, unknown, string, RegExp?]> = [
    ['Ready=True', mirror([cond('Ready', 'True', 'Synced', '1 image, 3 target tags in sync')]), 'Healthy', /Synced: 1 image/],
    ['Reconciling=True (new generation in progress)', mirror([cond('Ready', 'True', 'Synced'), cond('Reconciling', 'True', 'Progressing', 'syncing')]), 'Progressing', /syncing/],
    ['Stalled=True (InvalidSpec)', mirror([cond('Ready', 'False', 'InvalidSpec', 'bad tagPattern'), cond('Stalled', 'True', 'InvalidSpec', 'bad tagPattern')]), 'Degraded', /InvalidSpec: bad tagPattern/],
    ['Stalled=True (TagConflict)', mirror([cond('Ready', 'False', 'TagConflict', 'stable points elsewhere'), cond('Stalled', 'True', 'TagConflict', 'stable points elsewhere')]), 'Degraded'],
    ['Ready=False AuthFailed while retrying (needs a human)', mirror([cond('Ready', 'False', 'AuthFailed', '401 from r.example.com'), cond('Reconciling', 'True', 'Retrying', 'retrying')]), 'Degraded', /AuthFailed/],
    ['Ready=False CredentialsNotFound', mirror([cond('Ready', 'False', 'CredentialsNotFound', 'secret prod-push not found')]), 'Degraded'],
    ['Ready=False SourceNotFound', mirror([cond('Ready', 'False', 'SourceNotFound', 'tag 1 not found')]), 'Degraded'],
    ['Ready=False RegistryError, retrying (transient)', mirror([cond('Ready', 'False', 'RegistryError', '503'), cond('Reconciling', 'True', 'Retrying', 'retrying: 503')]), 'Progressing', /retrying: 503/],
    ['Ready=False RegistryError without Stalled or Reconciling', mirror([cond('Ready', 'False', 'RegistryError', '503')]), 'Progressing', /RegistryError: 503/],
    ['Ready=Unknown', mirror([cond('Ready', 'Unknown', 'Progressing', 'starting')]), 'Progressing'],
    ['suspended (conditions left as they were)', mirror([cond('Ready', 'False', 'AuthFailed', 'x')], { suspend: true }), 'Suspended', /suspend/],
    ['suspended, never reconciled', mirror(undefined, { suspend: true }), 'Suspended'],
    ['never reconciled (no status)', mirror(), 'Progressing', /Waiting/],
    ['status without conditions', { ...(mirror() as object), status: { observedGeneration: 1 } }, 'Progressing'],
    ['generation > observedGeneration, even if Ready=True', mirror([cond('Ready', 'True', 'Synced')], { generation: 3, observed: 2 }), 'Progressing', /generation 3/],
    ['generation > observedGeneration even with a stale Stalled', mirror([cond('Stalled', 'True', 'InvalidSpec')], { generation: 3, observed: 2 }), 'Progressing'],
    ['suspend: false is not suspended', mirror([cond('Ready', 'True', 'Synced')], { suspend: false }), 'Healthy'],
  ];
  for (const [what, obj, status, message] of cases) {
    it(`${what} -> ${status}`, async () => {
      const hs = await health(obj);
      assert.equal(hs.status, status, `message: ${hs.message}`);
      if (message) assert.match(hs.message, message);
    });
  }

  it('examples/gitops/argocd/argocd-cm.yaml carries docs/argocd-health.lua verbatim under the right key', async () => {
    const cm = parse(await readFile(join(REPO_ROOT, 'examples', 'gitops', 'argocd', 'argocd-cm.yaml'), 'utf8')) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    assert.equal(cm.kind, 'ConfigMap');
    assert.equal(cm.metadata.name, 'argocd-cm');
    assert.equal(cm.data['resource.customizations.health.imagemirror.dev_ImageMirror'], await readFile(SCRIPT, 'utf8'));
  });

  it('docs/gitops.md states the same rule the script implements', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'gitops.md'), 'utf8');
    for (const reason of ['CredentialsNotFound', 'AuthFailed', 'SourceNotFound', 'RegistryError', 'Stalled=True', 'observedGeneration']) {
      assert.ok(doc.includes(reason), `docs/gitops.md does not mention ${reason}`);
    }
    const script = await readFile(SCRIPT, 'utf8');
    const needsHuman = /local needsHuman = \{([^}]*)\}/.exec(script)?.[1] ?? '';
    const listed = [...needsHuman.matchAll(/(\w+) = true/g)].map((m) => m[1]).sort();
    assert.deepEqual(listed, ['AuthFailed', 'CredentialsNotFound', 'InvalidSpec', 'SourceNotFound', 'TagConflict']);
  });
});
