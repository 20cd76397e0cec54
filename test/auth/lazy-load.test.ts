/**
 * Each cloud SDK is loaded only when a mirror uses that provider. Every case runs in a fresh
 * child process that records each module it resolves (an ESM loader hook) and lists its CommonJS
 * module cache, so a package loaded either way shows up.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cloudEnv, type CloudEnv } from '../support/cloud/env.js';
import { startFakeMetadata, type FakeMetadata } from '../support/cloud/gcp.js';
import { TokenLedger } from '../support/cloud/tokens.js';

const execFileP = promisify(execFile);

const SDKS = {
  aws: /\/node_modules\/@aws-sdk\//,
  gcp: /\/node_modules\/google-auth-library\//,
  azure: /\/node_modules\/@azure\//,
} as const;
type Kind = keyof typeof SDKS;

describe('auth: cloud SDKs load only for the provider a mirror uses', function () {
  this.timeout(30000);
  let metadata: FakeMetadata;
  let env: CloudEnv;
  let dir: string;
  before(async () => {
    metadata = await startFakeMetadata({ ledger: new TokenLedger() });
    dir = await mkdtemp(join(tmpdir(), 'imc-lazy-'));
  });
  after(async () => {
    await metadata?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    env = cloudEnv();
    env.set({ GCE_METADATA_HOST: metadata.host, GOOGLE_CLOUD_PROJECT: 'imc-test-project', AWS_REGION: 'eu-west-1' });
  });
  afterEach(() => env.restore());

  /** Runs the child for `kind`; returns every module path or URL it loaded, and what it printed. */
  async function loaded(kind: Kind, registry: string, get = false): Promise<{ modules: string[]; out: { identity?: string; credential?: string } }> {
    const log = join(dir, `${kind}.log`);
    const { stdout } = await execFileP(
      process.execPath,
      ['--import', 'tsx', '--import', './test/support/cloud/record-loads.mjs', 'test/support/cloud/use-provider.ts', kind, registry, ...(get ? ['--get'] : [])],
      { env: { ...process.env, IMC_LOAD_LOG: log }, maxBuffer: 16 << 20 },
    );
    const out = JSON.parse(stdout) as { identity?: string; credential?: string; cjs: string[] };
    const esm = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return { modules: [...esm, ...out.cjs], out };
  }

  const has = (modules: string[], k: keyof typeof SDKS): boolean => modules.some((m) => SDKS[k].test(m));

  it('gcp (used for a token) loads google-auth-library and no other SDK; aws and azure load only their own', async () => {
    const [gcp, aws, azure] = await Promise.all([
      loaded('gcp', 'europe-docker.pkg.dev', true),
      loaded('aws', '123456789012.dkr.ecr.eu-west-1.amazonaws.com'),
      loaded('azure', 'myregistry.azurecr.io'),
    ]);
    // The recorder works: the entry point itself shows up.
    assert.ok(gcp.modules.some((m) => m.endsWith('/src/auth/index.ts')), 'the load log saw the entry point');

    assert.equal(gcp.out.credential, 'basic', 'the gcp child got a token from the metadata server');
    assert.deepEqual([has(gcp.modules, 'aws'), has(gcp.modules, 'gcp'), has(gcp.modules, 'azure')], [false, true, false]);

    assert.equal(aws.out.identity, 'aws:123456789012.dkr.ecr.eu-west-1.amazonaws.com:123456789012/default-chain');
    assert.deepEqual([has(aws.modules, 'aws'), has(aws.modules, 'gcp'), has(aws.modules, 'azure')], [true, false, false]);

    assert.equal(azure.out.identity, 'azure:myregistry.azurecr.io:managed-identity');
    assert.deepEqual([has(azure.modules, 'aws'), has(azure.modules, 'gcp'), has(azure.modules, 'azure')], [false, false, true]);
  });
});
