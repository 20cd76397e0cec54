/**
 * Process environment for cloud SDK tests: everything the SDKs read from it, set for one test and
 * restored after, with every way out to a real cloud closed (no instance metadata, no shared
 * config files) so a misconfigured test fails instead of reaching an address off this machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLOUD_VARS = /^(AWS_|AZURE_|GOOGLE_|GCE_|GCLOUD_|CLOUDSDK_|METADATA_SERVER_|IDENTITY_|MSI_|IMDS_)/;

export interface CloudEnv {
  dir: string;
  /** Sets (or, with undefined, removes) variables on top of the closed baseline. */
  set(vars: Record<string, string | undefined>): void;
  restore(): void;
}

export function cloudEnv(): CloudEnv {
  const saved = { ...process.env };
  const dir = mkdtempSync(join(tmpdir(), 'imc-cloud-env-'));
  const baseline = (): void => {
    for (const k of Object.keys(process.env)) if (CLOUD_VARS.test(k)) delete process.env[k];
    Object.assign(process.env, {
      AWS_EC2_METADATA_DISABLED: 'true',
      // The SDK's notice that releases after January 2027 need Node 22 is for the project, not each test run.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_CONFIG_FILE: join(dir, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
      CLOUDSDK_CONFIG: join(dir, 'gcloud'),
      // gcp-metadata probes 169.254.169.254 unless told where the metadata server is; tests always tell it.
      GCE_METADATA_HOST: '127.0.0.1:9',
    });
  };
  baseline();
  return {
    dir,
    set(vars) {
      for (const [k, v] of Object.entries(vars)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
    restore() {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
