import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRun, type RunHandle } from '../../src/standalone/run.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

/** Polls a condition the file watcher will make true; fails with `what` after timeoutMs. */
async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('image-mirror run --specs DIR', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let root: string;
  let specs: string;
  let run: RunHandle | undefined;
  let v1: string;
  let v2: string;

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    v1 = (await pushImage(client.repository('app/web'), buildImage(), '1.0.0')).digest;
    v2 = (await pushImage(client.repository('app/web'), buildImage(), '2.0.0')).digest;
    root = await mkdtemp(join(tmpdir(), 'run-mode-'));
    specs = join(root, 'specs');
    await mkdir(specs);
  });
  after(async () => {
    await run?.stop(5000);
    await client.close();
    await reg.stop();
    await rm(root, { recursive: true, force: true });
  });

  const doc = (name: string, tag: string, target: string) => `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${name}}
spec:
  source: {repository: ${reg.host}/app/web, tags: ["${tag}"]}
  targets: [{repository: ${reg.host}/${target}, tags: [current]}]
`;

  it('acts on added, edited and removed files without a restart, keeps status beside DIR and serves /metrics and /status', async () => {
    await writeFile(join(specs, 'a.yaml'), doc('a', '1.0.0', 'mirror/a'));
    run = await startRun({ specsDir: specs, metricsAddr: '127.0.0.1:0', debounceMs: 50 });
    assert.equal(run.statusDir, join(root, '.image-mirror', 'status'));
    const target = client.repository('mirror/a');
    await until(async () => (await target.headManifest('current'))?.digest === v1, 'mirror a synced');
    const statusFile = join(run.statusDir, 'default_a.json');
    const st = await until(async () => {
      const s = JSON.parse(await readFile(statusFile, 'utf8').catch(() => '{}')) as { status?: { conditions?: Array<{ type: string; status: string }> } };
      return s.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True') ? s : undefined;
    }, 'status file Ready=True');
    assert.ok(st);

    // Edit: the same mirror now points at 2.0.0 — acted on by the watcher, no restart.
    await writeFile(join(specs, 'a.yaml'), doc('a', '2.0.0', 'mirror/a'));
    await until(async () => (await target.headManifest('current'))?.digest === v2, 'edit acted on');

    // Add: a new file is picked up.
    await writeFile(join(specs, 'b.yaml'), doc('b', '1.0.0', 'mirror/b'));
    await until(async () => (await client.repository('mirror/b').headManifest('current'))?.digest === v1, 'added file acted on');
    // The tag lands before the status and gauges are updated: wait for those too.
    await until(() => (Object.values(run!.statuses()).filter((s) => s.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 2 ? true : undefined), 'both Ready');

    // The gauge follows the stored status within the same turn of the loop: wait for it too.
    const metrics = await until(async () => {
      const text = await (await fetch(`http://${run!.address}/metrics`)).text();
      return /imagemirror_mirrors\{ready="True"\} 2/.test(text) ? text : undefined;
    }, 'Ready gauge at 2');
    assert.match(metrics, /imagemirror_target_syncs_total\{result="copied"\} 3/);
    assert.match(metrics, /imagemirror_blobs_total\{action="mount"\} [1-9]/);
    assert.match(metrics, /imagemirror_mirrors\{ready="True"\} 2/);
    const status = (await (await fetch(`http://${run.address}/status`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(status).sort(), ['default/a', 'default/b']);

    // Remove: forgotten, its status file deleted; target images stay (no pruning).
    await rm(join(specs, 'b.yaml'));
    await until(() => (Object.keys(run!.statuses()).length === 1 ? true : undefined), 'removed file forgotten');
    await until(async () => ((await readFile(join(run!.statusDir, 'default_b.json')).catch(() => undefined)) === undefined ? true : undefined), 'status file removed');
    assert.equal((await client.repository('mirror/b').headManifest('current'))?.digest, v1);
  });

  it('an invalid document is reported Stalled with its reason and does not stop the others', async () => {
    await writeFile(join(specs, 'bad.yaml'), `apiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: bad}\nspec:\n  source: {repository: ${reg.host}/app/web, tags: ["1.0.0"], digest: "sha256:${'a'.repeat(64)}"}\n  targets: [{repository: ${reg.host}/mirror/bad}]\n`);
    await run!.reload();
    const st = await until(() => {
      const s = run!.statuses()['default/bad'];
      return s?.status.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True') ? s : undefined;
    }, 'bad mirror stalled');
    const ready = st.status.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.reason, 'InvalidSpec');
    assert.match(ready!.message, /exactly one of/);
    assert.ok(run!.statuses()['default/a']?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  });
});
