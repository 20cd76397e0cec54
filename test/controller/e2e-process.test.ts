/**
 * Issue 4 end to end with real `image-mirror controller` processes (bin/image-mirror.js) against the
 * fake API server and real registries: leader election across two replicas and kill -9 failover,
 * SIGTERM during a large copy, and the CLI's argument and connection errors.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/registry.js';
import type { Condition, ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { projectCrdPath } from '../support/fake-apiserver/sample-crd.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { blobOf, buildImage, pushImage, type BuiltImage } from '../support/images.js';
import { kubeconfigYaml } from '../support/kubeconfig.js';
import { spawnCli, startControllerProcess, type ControllerProcess } from '../support/controller-process.js';

const API = 'imagemirror.dev/v1alpha1';
type Stored = ImageMirror & KObject & { metadata: { generation: number } };
interface Lease extends KObject {
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; leaseTransitions?: number };
}

/** Polls an async probe until it returns a value. */
async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ready = (m: ImageMirror | undefined): Condition | undefined => m?.status?.conditions?.find((c) => c.type === 'Ready');

describe('controller processes end to end (bin/image-mirror.js controller)', function () {
  this.timeout(120_000);
  let A: TestRegistry;
  let B: TestRegistry;
  let small: BuiltImage;
  let fake: FakeApiServer;
  let dir: string;
  let kubeconfig: string;
  const procs: ControllerProcess[] = [];

  before(async () => {
    [A, B] = await Promise.all([startRegistry(), startRegistry()]);
    const client = new RegistryClient(A.host);
    small = await pushImage(client.repository('src/small'), buildImage({ layers: [2048] }), '1.0');
    await client.close();
  });
  after(async () => Promise.all([A, B].map((r) => r?.stop())));

  beforeEach(async () => {
    const crd = projectCrdPath();
    assert.ok(crd, 'crds/imagemirror.yaml not found');
    fake = await startFakeApiServer({ crds: [crd], namespaces: ['team-a'] });
    dir = await mkdtemp(join(tmpdir(), 'imc-e2e-'));
    kubeconfig = join(dir, 'kubeconfig');
    // What kubectl writes for a plain-HTTP server (no insecure-skip-tls-verify): the controller must accept it.
    await fake.writeKubeconfig(kubeconfig);
  });
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop(5000)));
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function start(args: string[]): ControllerProcess {
    const p = startControllerProcess(kubeconfig, args);
    procs.push(p);
    return p;
  }

  const get = (name: string): Stored | undefined => fake.get<Stored>(API, 'imagemirrors', 'team-a', name);
  const lease = (): Lease | undefined => fake.get<Lease>('coordination.k8s.io/v1', 'leases', 'default', 'image-mirror-controller');
  const waitSynced = (name: string, timeoutMs = 20_000): Promise<Stored> =>
    fake.waitFor(
      () => {
        const m = get(name);
        return ready(m)?.status === 'True' && m?.status?.observedGeneration === m?.metadata.generation ? m : undefined;
      },
      timeoutMs,
      `${name} Ready=True (now ${JSON.stringify(ready(get(name)) ?? null)})`,
    );
  const createMirror = (name: string, spec: ImageMirrorSpec): Promise<KObject> =>
    fake.create({ apiVersion: API, kind: 'ImageMirror', metadata: { name, namespace: 'team-a' }, spec });

  const LEADER_ARGS = ['--leader-elect', '--leader-elect-namespace', 'default', '--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '500ms'];

  it('two replicas: only the Lease holder reconciles; after kill -9 the other takes over within the lease duration and reconciles', async () => {
    const p1 = start(LEADER_ARGS);
    const p2 = start(LEADER_ARGS);
    const ids = await Promise.all([p1.identity(), p2.identity()]);
    assert.notEqual(ids[0], ids[1]);
    const leaderOf = async (): Promise<[ControllerProcess, ControllerProcess] | undefined> => {
      const [l1, l2] = await Promise.all([p1.metric('imagemirror_leader'), p2.metric('imagemirror_leader')]);
      if (l1 === 1 && l2 === 0) return [p1, p2];
      if (l2 === 1 && l1 === 0) return [p2, p1];
      return undefined;
    };
    const [leader, follower] = await eventually(leaderOf, 15_000, 'exactly one leader');
    assert.equal(lease()?.spec.holderIdentity, await leader.identity());
    const transitions = lease()?.spec.leaseTransitions ?? 0;

    await createMirror('one', { source: { repository: `${A.host}/src/small`, tags: ['1.0'] }, targets: [{ repository: `${B.host}/e2e5/one/app` }] });
    await waitSynced('one');
    await eventually(async () => ((await leader.metric('imagemirror_reconcile_total', { result: 'success' })) ?? 0) >= 1 || undefined, 5000, 'leader reconcile counted');
    assert.equal((await follower.metric('imagemirror_reconcile_total')) ?? 0, 0, 'the follower reconciled');
    assert.equal(await follower.metric('imagemirror_leader'), 0);
    // Both are ready (caches synced), leader or not.
    assert.equal((await follower.get('/readyz'))?.status, 200);

    const killedAt = Date.now();
    leader.kill('SIGKILL');
    await leader.exited;
    await eventually(async () => ((await follower.metric('imagemirror_leader')) === 1 ? true : undefined), 10_000, 'the follower to lead');
    const takeover = Date.now() - killedAt;
    // lease 3 s, counted from when the follower last saw the record change (≤ one retry before the
    // kill), noticed at its next retry (500 ms, jitter 1.2); plus process scheduling slack.
    assert.ok(takeover <= 3000 + 4 * 500, `takeover took ${takeover} ms`);
    assert.equal(lease()?.spec.holderIdentity, await follower.identity());
    assert.ok((lease()?.spec.leaseTransitions ?? 0) > transitions);

    await createMirror('two', { source: { repository: `${A.host}/src/small`, tags: ['1.0'] }, targets: [{ repository: `${B.host}/e2e5/two/app` }] });
    const two = await waitSynced('two');
    assert.equal(two.status?.targets?.[0]?.digest, small.digest);
    await eventually(async () => ((await follower.metric('imagemirror_reconcile_total', { result: 'success' })) ?? 0) >= 1 || undefined, 5000, 'new leader reconcile counted');
  });

  it('SIGTERM during a large copy: exit 0 within the grace period, no partial tag, Lease released', async function () {
    this.timeout(180_000);
    // 3 × 64 MiB layers, source on A, target on B (another registry: every byte must be uploaded).
    const layers = [0, 1, 2].map(() => blobOf(randomBytes(64 * 1024 * 1024)));
    const client = new RegistryClient(A.host);
    const big = await pushImage(client.repository('src/big'), buildImage({ layerBlobs: layers }), '1.0');
    await client.close();
    layers.length = 0; // let the test process drop 192 MiB

    const p = start([...LEADER_ARGS, '--shutdown-grace', '30s', '--log-level', 'debug']);
    await eventually(async () => ((await p.metric('imagemirror_leader')) === 1 ? true : undefined), 15_000, 'leadership');
    const identity = await p.identity();
    await B.resetLog();
    await createMirror('big', { source: { repository: `${A.host}/src/big`, tags: ['1.0'] }, targets: [{ repository: `${B.host}/e2e6/big` }] });
    // The copy has started once the target saw its first upload session.
    await eventually(
      async () => ((await B.accessLog()).some((e) => e.method === 'POST' && e.path.startsWith('/v2/e2e6/big/blobs/uploads/')) ? true : undefined),
      60_000,
      'first blob upload on the target',
    );
    const termAt = Date.now();
    p.kill('SIGTERM');
    const exit = await Promise.race([p.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 35_000))]);
    assert.notEqual(exit, 'late', 'did not exit within the 30 s grace period');
    assert.deepEqual(exit, { code: 0, signal: null }, p.stderr().slice(-1000));
    assert.ok(Date.now() - termAt < 31_000);
    assert.ok(p.lines.some((l) => l.message === 'shutting down'));

    // The tag is absent, or points at complete content.
    const head = await fetch(`${B.url}/v2/e2e6/big/manifests/1.0`, { method: 'HEAD', headers: { accept: big.mediaType } });
    assert.ok(head.status === 200 || head.status === 404, `HEAD tag: ${head.status}`);
    const shutdownAt = p.lines.findIndex((l) => l.message === 'shutting down');
    const syncedAt = p.lines.findIndex((l) => l.mirror === 'team-a/big' && String(l.message).startsWith('synced'));
    if (head.status === 200) {
      // SIGTERM landed mid-copy: the copy finished inside the grace period, after shutdown began.
      assert.ok(syncedAt > shutdownAt, `synced line ${syncedAt}, shutting down line ${shutdownAt}`);
      assert.equal(head.headers.get('docker-content-digest'), big.digest);
      for (const b of big.blobs) {
        const r = await fetch(`${B.url}/v2/e2e6/big/blobs/${b.descriptor.digest}`, { method: 'HEAD' });
        assert.equal(r.status, 200, `blob ${b.descriptor.digest} missing behind a present tag`);
        assert.equal(Number(r.headers.get('content-length')), b.descriptor.size);
      }
    }

    // Released as client-go's ReleaseOnCancel does: holder emptied, duration 1 s.
    const l = lease();
    assert.ok(l, 'no Lease');
    assert.notEqual(l.spec.holderIdentity, identity, 'the Lease still names the stopped process');
    assert.ok(!l.spec.holderIdentity || l.spec.leaseDurationSeconds === 1, JSON.stringify(l.spec));
  });

  describe('CLI errors', () => {
    async function run(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
      const p = spawnCli(args);
      const exit = await p.exited;
      return { code: exit.code, stderr: p.stderr(), stdout: p.stdout() };
    }
    const oneLine = (s: string): void => {
      assert.equal(s.trimEnd().split('\n').length, 1, `more than one line: ${s}`);
      assert.doesNotMatch(s, /^\s+at /m, 'stack trace');
    };

    it('a bad --lease-duration is a usage error: exit 2, one line naming the flag', async () => {
      const r = await run(['controller', '--kubeconfig', kubeconfig, '--lease-duration', '3 seconds', '--metrics-addr', '127.0.0.1:0']);
      assert.equal(r.code, 2);
      oneLine(r.stderr);
      assert.match(r.stderr, /--lease-duration.*"3 seconds"/);
      const r2 = await run(['controller', '--kubeconfig', kubeconfig, '--retry-period', '0s', '--metrics-addr', '127.0.0.1:0']);
      assert.equal(r2.code, 2);
      oneLine(r2.stderr);
      assert.match(r2.stderr, /--retry-period/);
    });

    it('an unreachable API server or a missing kubeconfig: one line, non-zero exit, no stack trace', async () => {
      const port = await freePort();
      const unreachable = join(dir, 'unreachable');
      await writeFile(unreachable, kubeconfigYaml({ server: `http://127.0.0.1:${port}` }));
      const r = await run(['controller', '--kubeconfig', unreachable, '--metrics-addr', '127.0.0.1:0']);
      assert.notEqual(r.code, 0);
      assert.notEqual(r.code, null);
      oneLine(r.stderr);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));

      const missing = await run(['controller', '--kubeconfig', join(dir, 'nope'), '--metrics-addr', '127.0.0.1:0']);
      assert.notEqual(missing.code, 0);
      oneLine(missing.stderr);
      assert.match(missing.stderr, /nope/);
    });
  });
});
