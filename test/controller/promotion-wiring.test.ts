/**
 * What the controller itself supplies to promotion and air-gap specs, through the real command,
 * reconciler and registry and the fake API server: spec.verify reads its public key from a Secret
 * in the mirror's own namespace (a signed image is promoted, an unsigned one is VerificationFailed
 * with nothing written, a key Secret in another namespace is never read), and oci:/oci-archive:
 * repositories are InvalidSpec unless the controller was started with --allow-local-paths.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControllerCommand } from '../../src/controller/command.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { Condition, ImageMirror } from '../../src/mirror/types.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';
import { makeKey, pushSigTag, signatureLayer, simpleSigningPayload } from '../verify/cosign.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath, policyCrdPath } from '../support/fake-apiserver/sample-crd.js';

const execFileP = promisify(execFile);
const API = 'imagemirror.dev/v1alpha1';
type Stored = ImageMirror & KObject;
const cond = (m: ImageMirror | undefined, type: string): Condition | undefined => m?.status?.conditions?.find((c) => c.type === type);

describe('controller: verify keys from Secrets, local paths behind --allow-local-paths', function () {
  this.timeout(60_000);
  const trusted = makeKey('ecdsa-p256');
  let reg: TestRegistry;
  let client: RegistryClient;
  let fake: FakeApiServer;
  let dir: string;
  const digests: Record<string, string> = {};
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    const src = client.repository('ctl/src');
    for (const tag of ['signed', 'unsigned']) digests[tag] = (await pushImage(src, buildImage({ layers: [64] }), tag)).digest;
    await pushSigTag(src, digests.signed!, [signatureLayer(simpleSigningPayload(digests.signed!), trusted)]);
  });
  after(async () => {
    await client.close();
    await reg.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imc-ctl-local-'));
    fake = await startFakeApiServer({ crds: [await crdPath(), policyCrdPath()], namespaces: ['team-a', 'team-b'] });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (name: string): Stored | undefined => fake.get<Stored>(API, 'imagemirrors', 'team-a', name);
  function waitReady(name: string, status: 'True' | 'False', reason: string): Promise<Stored> {
    return fake.waitFor(
      () => {
        const m = get(name);
        const ready = cond(m, 'Ready');
        return m && ready?.status === status && ready.reason === reason && m.status?.observedGeneration === m.metadata.generation ? m : undefined;
      },
      30_000,
      `team-a/${name} Ready=${status} ${reason} (now: ${JSON.stringify(cond(get(name), 'Ready') ?? null)})`,
    );
  }

  async function start(extra: { allowLocalPaths?: boolean } = {}): Promise<void> {
    const cmd = await startControllerCommand({
      kubeConfigObject: fake.kubeconfig(),
      namespace: [],
      concurrency: 2,
      leaderElect: false,
      leaseDuration: '15s',
      renewDeadline: '10s',
      retryPeriod: '2s',
      metricsAddr: '127.0.0.1:0',
      shutdownGrace: '2s',
      log: silentLogger,
      env: {},
      ...extra,
    });
    cleanups.push(() => cmd.stop());
  }

  const secret = (namespace: string, name: string, data: Record<string, string>): KObject =>
    ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) }) as KObject;
  const verifyMirror = (name: string, tag: string, keySecret: string): KObject =>
    ({
      apiVersion: API,
      kind: 'ImageMirror',
      metadata: { name, namespace: 'team-a' },
      spec: {
        source: { repository: `${reg.host}/ctl/src`, tags: [tag] },
        targets: [{ repository: `${reg.host}/ctl/${name}` }],
        verify: { keys: [{ secretName: keySecret, key: 'cosign.pub' }] },
      },
    }) as KObject;

  it('spec.verify: the key comes from the mirror\'s namespace; signed promotes, unsigned writes nothing (VerificationFailed)', async () => {
    await fake.create(secret('team-a', 'cosign-keys', { 'cosign.pub': trusted.pem }));
    // The same name in another namespace: a mirror of team-a must never see it.
    await fake.create(secret('team-b', 'elsewhere', { 'cosign.pub': trusted.pem }));
    await fake.create(verifyMirror('signed', 'signed', 'cosign-keys'));
    await fake.create(verifyMirror('unsigned', 'unsigned', 'cosign-keys'));
    await fake.create(verifyMirror('foreign-key', 'signed', 'elsewhere'));
    await start();

    await waitReady('signed', 'True', 'Synced');
    assert.equal((await client.repository('ctl/signed').headManifest('signed'))?.digest, digests.signed);

    const refused = await waitReady('unsigned', 'False', 'VerificationFailed');
    assert.match(cond(refused, 'Ready')!.message, /unsigned.*no signature/i);
    assert.equal(await client.repository('ctl/unsigned').headManifest('unsigned'), undefined, 'nothing written');

    const foreign = await waitReady('foreign-key', 'False', 'CredentialsNotFound');
    assert.match(cond(foreign, 'Ready')!.message, /team-a\/elsewhere/);
    assert.equal(await client.repository('ctl/foreign-key').headManifest('signed'), undefined);
  });

  it('oci-archive: target: InvalidSpec naming --allow-local-paths by default; written with the flag', async () => {
    const file = join(dir, 'out.tar');
    await fake.create({
      apiVersion: API,
      kind: 'ImageMirror',
      metadata: { name: 'to-archive', namespace: 'team-a' },
      spec: { source: { repository: `${reg.host}/ctl/src`, tags: ['unsigned'] }, targets: [{ repository: `oci-archive:${file}` }] },
    } as KObject);
    await start();
    const refused = await waitReady('to-archive', 'False', 'InvalidSpec');
    assert.match(cond(refused, 'Ready')!.message, /--allow-local-paths/);
    await assert.rejects(readFile(file), { code: 'ENOENT' });
    await cleanups.pop()!();

    await start({ allowLocalPaths: true });
    // A fresh controller reconciles every mirror it lists, the refused one included.
    await waitReady('to-archive', 'True', 'Synced');
    const { stdout } = await execFileP('skopeo', ['inspect', '--raw', `oci-archive:${file}:unsigned`]);
    assert.equal(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, digests.unsigned, 'skopeo reads the tag from the archive, byte-identical');
  });
});
