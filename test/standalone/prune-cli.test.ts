/**
 * Prune from the command line: `sync` needs --status-dir (refused without it), and with it, and in
 * `run` mode, the second invocation prunes what the first wrote and the spec no longer selects.
 * The target registry is the real docker-registry (no tag deletion: prune deletes by digest).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const exec = promisify(execFile);
const BIN = join(process.cwd(), 'bin', 'image-mirror.js');
const ENV = { ...process.env, DOCKER_CONFIG: '/nonexistent' };

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { env: ENV });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

interface JsonOut {
  mirrors: Array<{ name: string; ready: boolean; message: string; targets: Array<{ reference: string; action: string; message?: string; source?: unknown }> }>;
}

describe('prune from the command line (sync --status-dir, run)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let dir: string;

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    for (const t of ['a', 'b', 'c']) await pushImage(client.repository('dev/app'), buildImage({ layers: [128] }), t);
    dir = await mkdtemp(join(tmpdir(), 'prune-cli-'));
  });
  after(async () => {
    await client.close();
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const doc = (name: string, tags: string[], target: string) => `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${name}, namespace: team-a}
spec:
  source: {repository: ${reg.host}/dev/app, tags: [${tags.map((t) => JSON.stringify(t)).join(', ')}]}
  targets: [{repository: ${reg.host}/${target}, prune: true}]
`;
  const tagsOf = async (repo: string): Promise<string[]> => (await client.repository(repo).listTags()).sort();
  /** What status.owned records with each tag: the digest written there. */
  const digestsOf = async (repo: string, tags: string[]): Promise<string[]> => Promise.all(tags.map(async (t) => (await client.repository(repo).headManifest(t))?.digest ?? `(no tag ${t})`));

  it('sync refuses prune without --status-dir: one line, exit 2, nothing written', async () => {
    const file = join(dir, 'no-status.yaml');
    await writeFile(file, doc('nostatus', ['a'], 'refused/app'));
    const r = await cli(['sync', '-f', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `image-mirror: team-a/nostatus (${file}:1): targets[0].prune needs --status-dir DIR, where sync keeps the record of the tags it wrote (prune deletes only those)\n`);
    assert.deepEqual(await tagsOf('refused/app'), []);
  });

  it('sync --status-dir: the second invocation prunes what the first wrote and the spec dropped; its dry run lists it first; a foreign tag survives', async () => {
    const file = join(dir, 'sync.yaml');
    const statusDir = join(dir, 'sync-status');
    await writeFile(file, doc('web', ['a', 'b'], 'synced/app'));
    const first = await cli(['sync', '-f', file, '--status-dir', statusDir]);
    assert.equal(first.code, 0, first.stderr);
    await pushImage(client.repository('synced/app'), buildImage({ layers: [64] }), 'foreign');
    const stored = JSON.parse(await readFile(join(statusDir, 'team-a_web.json'), 'utf8')) as { status: { owned?: unknown } };
    assert.deepEqual(stored.status.owned, [{ repository: `${reg.host}/synced/app`, tags: ['a', 'b'], digests: await digestsOf('synced/app', ['a', 'b']) }]);

    await writeFile(file, doc('web', ['b', 'c'], 'synced/app'));
    const dry = await cli(['sync', '-f', file, '--status-dir', statusDir, '--dry-run', '-o', 'json']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = (JSON.parse(dry.stdout) as JsonOut).mirrors[0]!.targets.map((t) => [t.reference.split(':').pop(), t.action]);
    assert.deepEqual(planned, [['b', 'UpToDate'], ['c', 'WouldCopy'], ['a', 'WouldPrune']]);
    assert.deepEqual(await tagsOf('synced/app'), ['a', 'b', 'foreign'], 'the dry run deleted nothing');

    const second = await cli(['sync', '-f', file, '--status-dir', statusDir]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`^team-a/web\\s+${reg.host}/synced/app:a\\s+Pruned\\s+sha256:`, 'm'));
    assert.deepEqual(await tagsOf('synced/app'), ['b', 'c', 'foreign']);
    const after = JSON.parse(await readFile(join(statusDir, 'team-a_web.json'), 'utf8')) as { status: { owned?: unknown } };
    assert.deepEqual(after.status.owned, [{ repository: `${reg.host}/synced/app`, tags: ['b', 'c'], digests: await digestsOf('synced/app', ['b', 'c']) }]);
  });

  it('run: a restarted run prunes what the previous one wrote (its status file is read back)', async () => {
    const specs = join(dir, 'run-specs');
    const statusDir = join(dir, 'run-status');
    await mkdir(specs);
    const statusFile = join(statusDir, 'team-a_svc.json');
    await writeFile(join(specs, 'svc.yaml'), doc('svc', ['a'], 'ran/app'));
    await runUntil(specs, statusDir, statusFile, (s) => s.owned?.[0]?.tags.includes('a') === true);
    assert.deepEqual(await tagsOf('ran/app'), ['a']);

    await writeFile(join(specs, 'svc.yaml'), doc('svc', ['c'], 'ran/app'));
    const st = await runUntil(specs, statusDir, statusFile, (s) => s.targets?.some((t) => t.action === 'Pruned') === true);
    assert.deepEqual(await tagsOf('ran/app'), ['c']);
    assert.deepEqual(st.owned, [{ repository: `${reg.host}/ran/app`, tags: ['c'], digests: await digestsOf('ran/app', ['c']) }]);
  });
});

interface StoredStatus {
  owned?: Array<{ repository: string; tags: string[]; digests?: string[] }>;
  targets?: Array<{ reference: string; action: string }>;
  conditions?: Array<{ type: string; status: string }>;
}

/** Starts `image-mirror run`, waits until its status file satisfies `done` (Ready=True), stops it. */
async function runUntil(specs: string, statusDir: string, statusFile: string, done: (s: StoredStatus) => boolean): Promise<StoredStatus> {
  const child = spawn(process.execPath, [BIN, 'run', '--specs', specs, '--status-dir', statusDir, '--metrics-addr', '127.0.0.1:0'], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await readFile(statusFile, 'utf8').then((t) => (JSON.parse(t) as { status: StoredStatus }).status, () => undefined);
      if (s && s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && done(s)) return s;
      if (child.exitCode !== null) throw new Error(`run exited early: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`run did not get there: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}
