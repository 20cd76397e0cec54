/**
 * The scene every cloud provider test mirrors in: an open source registry holding one image, a
 * target docker-registry (htpasswd) that only the cloud front may reach, and the real copy engine
 * writing through the front with nothing but the cloud provider as credentials. skopeo, logged in
 * to the target registry itself, is the independent reader that checks the image arrived.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { CopyEngine, type CopyImageResult } from '../../../src/copy/engine.js';
import type { CredentialProvider } from '../../../src/oci/credentials.js';
import { RegistryClient } from '../../../src/oci/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../images.js';
import { startRegistry, type TestRegistry } from '../registry.js';

const execFileP = promisify(execFile);

export interface MirrorScene {
  source: TestRegistry;
  /** The registry behind the cloud front. */
  target: TestRegistry;
  /** In `source` as `app:v1`: four layers, so a copy makes a dozen requests to the target. */
  image: BuiltImage;
  stop(): Promise<void>;
}

export async function startMirrorScene(): Promise<MirrorScene> {
  const [source, target] = await Promise.all([startRegistry({ auth: 'none' }), startRegistry({ auth: 'htpasswd' })]);
  const client = new RegistryClient(source.host);
  const image = await pushImage(client.repository('app'), buildImage({ layers: [1024, 2048, 3072, 4096] }), 'v1');
  await client.close();
  return {
    source,
    target,
    image,
    async stop() {
      await Promise.all([source.stop(), target.stop()]);
    },
  };
}

export interface MirrorOptions {
  /** The target registry name: the cloud front's host. */
  registry: string;
  credentials: CredentialProvider;
  repository: string;
  tag: string;
  /** HTTPS front on loopback (the client speaks plain HTTP to loopback unless told otherwise). */
  insecure?: boolean;
  /** One request at a time to the target, so a test can move the clock between two of them. */
  sequential?: boolean;
}

/** Copies `app:v1` from the scene's source to the front with the real copy engine and registry client. */
export async function mirrorThroughFront(scene: MirrorScene, o: MirrorOptions): Promise<CopyImageResult> {
  const source = new RegistryClient(scene.source.host);
  const target = new RegistryClient(o.registry, { credentials: o.credentials, insecure: o.insecure });
  const engine = new CopyEngine(o.sequential ? { blobConcurrency: 1, manifestConcurrency: 1 } : {});
  try {
    return await engine.copyImage({
      source: source.repository('app'),
      reference: 'v1',
      targets: [{ repository: target.repository(o.repository), tags: [o.tag] }],
      referrers: false,
      overwrite: true,
    });
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

/** Digest of the manifest skopeo reads from the target registry itself (htpasswd login, no cloud front). */
export async function skopeoDigest(target: TestRegistry, ref: string): Promise<string> {
  const [user, pass] = Object.entries(target.users)[0]!;
  const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `${user}:${pass}`, `docker://${target.host}/${ref}`], {
    encoding: 'buffer',
    maxBuffer: 8 << 20,
  });
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}
