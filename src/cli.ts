/**
 * The `image-mirror` CLI's commands: `sync` (once, for CI), `run` (a loop over local YAML files) and
 * `controller` (Kubernetes). Bad usage exits 2 with one line; nothing prints a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { createLogger, type LogFormat, type LogLevel } from './log.js';
import { describeError } from './oci/errors.js';
import { parseDuration } from './mirror/duration.js';
import { runSync, UsageError } from './standalone/sync.js';
import { startRun } from './standalone/run.js';
import { runValidate } from './standalone/validate-command.js';
import { runBundle } from './standalone/bundle.js';
import type { ControllerCommandOptions } from './controller/command.js';
import { versionLine } from './version.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/**
 * `run`'s default listen address: loopback only, since its /status shows every mirror's details.
 * The controller keeps `:8080` (Prometheus scrapes it across the cluster; it serves no /status).
 */
export const RUN_METRICS_ADDR = '127.0.0.1:8080';
const positiveInt = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

const positiveNumber = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
};
const nonNegativeInt = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number of at least 0, got ${JSON.stringify(v)}`);
  return n;
};

/** Validates a Go-style duration at parse time, so a bad one is a usage error (exit 2). */
const durationArg = (name: string) => (v: string): string => {
  try {
    parseDuration(v);
  } catch (e) {
    throw new UsageError(`${name}: ${describeError(e)}`);
  }
  return v;
};

/** Transfer limits shared by every command: blob transfers at once, connections per registry. */
function transferOptions(cmd: Command): Command {
  return cmd
    .option('--blob-concurrency <n>', 'blob transfers at once', positiveInt('--blob-concurrency'), 4)
    .option('--registry-connections <n>', 'HTTP connections per registry', positiveInt('--registry-connections'), 8)
    .option('--registry-qps <n>', 'requests per second to each registry host (all repositories and credentials); default: no limit', positiveNumber('--registry-qps'))
    .option('--registry-quota-floor <n>', 'stop pulls (manifest GETs) from a registry reporting this many or fewer left in its rate-limit window (Docker Hub ratelimit-remaining); 0: off', nonNegativeInt('--registry-quota-floor'), 0)
    .option('--certs-dir <dir>', 'TLS material per registry, <dir>/<host[:port]>/{*.crt CAs, client.cert, client.key} (default: /etc/containers/certs.d, then /etc/docker/certs.d)');
}

/** The push-notification receiver of the long-running commands (run, controller). */
function webhookOptions(cmd: Command): Command {
  return cmd
    .option('--webhook-addr <addr>', 'serve registry push notifications at POST /hooks/<format> on this address (its own listener; default: off)')
    .option('--webhook-token-file <file>', 'file holding the shared secret notification senders must present (re-read on every request, so rotation needs no restart)');
}

/** Multi-team settings shared by every command. */
function tenancyOptions(cmd: Command): Command {
  return cmd
    .option('--require-policy', 'refuse mirrors in namespaces that no ImageMirrorPolicy names (default: such namespaces are unrestricted)')
    .option('--reconcile-timeout <d>', 'longest one mirror\'s reconcile may take before it is aborted and retried', durationArg('--reconcile-timeout'), '30m');
}

function logOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--log-level <level>', 'error|warn|info|debug').choices(['error', 'warn', 'info', 'debug']).default('info'))
    .addOption(new Option('--log-format <format>', 'json|text').choices(['json', 'text']).default('text'));
}

export function buildCli(): Command {
  const program = new Command('image-mirror')
    .description('Keep container images mirrored between OCI registries, moving as few bytes as the registries allow')
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ outputError: (s, write) => write(s.split('\n')[0] + '\n') })
    .option('-V, --version', 'print the version, the commit it was built from and the Node version')
    .on('option:version', () => {
      process.stdout.write(versionLine() + '\n');
      throw new CommanderError(0, 'image-mirror.version', '');
    });

  program
    .command('version')
    .description('print the version, the commit it was built from and the Node version')
    .action(() => {
      process.stdout.write(versionLine() + '\n');
    });

  logOptions(tenancyOptions(transferOptions(
    program
      .command('sync')
      .description('reconcile the ImageMirrors in FILE|DIR once; exit 0 when all are in sync, 1 when any failed')
      .requiredOption('-f, --filename <path>', 'YAML file or directory, or - for standard input (repeatable)', collect, [])
      .option('--dry-run', 'print the plan without writing')
      .addOption(new Option('-o, --output <format>', 'text|json').choices(['text', 'json']).default('text'))
      .option('--docker-config <path>', 'docker config.json with registry credentials')
      .option('--credentials-fallback', 'a credentials.secretName missing from the files (a SealedSecret, an ExternalSecret) uses --docker-config instead of failing')
      .option('--metrics-file <path>', 'write the Prometheus exposition here when done')
      .option('--status-dir <dir>', 'read and write each mirror\'s status here, as run does (needed by targets[].prune)')
      .option('--concurrency <n>', 'mirrors reconciled at once', positiveInt('--concurrency'), 2),
  ))).action(async (opts: { filename: string[]; dryRun?: boolean; statusDir?: string; output: 'text' | 'json'; dockerConfig?: string; credentialsFallback?: boolean; metricsFile?: string; concurrency: number; blobConcurrency: number; registryConnections: number; registryQps?: number; registryQuotaFloor: number; certsDir?: string; requirePolicy?: boolean; reconcileTimeout: string; logLevel: LogLevel; logFormat: LogFormat }) => {
    const log = createLogger({ level: opts.logLevel === 'info' ? 'warn' : opts.logLevel, format: opts.logFormat });
    const r = await runSync({
      files: opts.filename,
      dryRun: opts.dryRun,
      output: opts.output,
      dockerConfig: opts.dockerConfig,
      credentialsFallback: opts.credentialsFallback === true,
      metricsFile: opts.metricsFile,
      statusDir: opts.statusDir,
      concurrency: opts.concurrency,
      blobConcurrency: opts.blobConcurrency,
      registryConnections: opts.registryConnections,
      certsDir: opts.certsDir,
      rateLimit: rateLimitOf(opts),
      requirePolicy: opts.requirePolicy === true,
      reconcileTimeoutMs: parseDuration(opts.reconcileTimeout),
      stdout: process.stdout,
      stderr: process.stderr,
      log,
    });
    process.exitCode = r.exitCode;
  });

  logOptions(
    program
      .command('bundle')
      .description('write the source images of the ImageMirrors in FILE|DIR into one OCI archive to carry across an air gap; with --since or --have, only what the far side lacks')
      .requiredOption('-f, --filename <path>', 'YAML file or directory (repeatable)', collect, [])
      .requiredOption('--to <file>', 'the archive to write (replaced whole); its lock is written beside it as <file>.lock.json')
      .option('--since <file>', 'an earlier bundle the far side has imported: leave out the blobs it carried')
      .option('--have <lock.json>', 'a bundle lock listing what the far side holds: leave those blobs out')
      .option('--docker-config <path>', 'docker config.json with registry credentials')
      .option('--credentials-fallback', 'a credentials.secretName missing from the files uses --docker-config instead of failing')
      .option('--blob-concurrency <n>', 'blob transfers at once', positiveInt('--blob-concurrency'), 4)
      .option('--registry-connections <n>', 'HTTP connections per registry', positiveInt('--registry-connections'), 8)
      .option('--certs-dir <dir>', 'TLS material per registry, <dir>/<host[:port]>/{*.crt CAs, client.cert, client.key}'),
  ).action(async (opts: { filename: string[]; to: string; since?: string; have?: string; dockerConfig?: string; credentialsFallback?: boolean; blobConcurrency: number; registryConnections: number; certsDir?: string; logLevel: LogLevel; logFormat: LogFormat }) => {
    const r = await runBundle({
      files: opts.filename,
      to: opts.to,
      since: opts.since,
      have: opts.have,
      dockerConfig: opts.dockerConfig,
      credentialsFallback: opts.credentialsFallback === true,
      blobConcurrency: opts.blobConcurrency,
      registryConnections: opts.registryConnections,
      certsDir: opts.certsDir,
      stdout: process.stdout,
      stderr: process.stderr,
      log: createLogger({ level: opts.logLevel === 'info' ? 'warn' : opts.logLevel, format: opts.logFormat }),
    });
    process.exitCode = r.exitCode;
  });

  program
    .command('validate')
    .description('check the ImageMirrors and ImageMirrorPolicies in FILE|DIR|- without any registry or Secret (schema, rules, patterns, references, policies, names and target tags defined twice); exit 0 when valid, 1 when not')
    .requiredOption('-f, --filename <path>', 'YAML file or directory, or - for standard input (repeatable)', collect, [])
    .option('--require-policy', 'also refuse mirrors in namespaces that no ImageMirrorPolicy names, as sync, run and controller would with this flag')
    .action(async (opts: { filename: string[]; requirePolicy?: boolean }) => {
      const r = await runValidate({ files: opts.filename, requirePolicy: opts.requirePolicy === true, stdout: process.stdout });
      process.exitCode = r.exitCode;
    });

  logOptions(webhookOptions(tenancyOptions(transferOptions(
    program
      .command('run')
      .description('reconcile the ImageMirrors in DIR continuously, re-reading the files when they change')
      .requiredOption('--specs <dir>', 'directory of ImageMirror and Secret YAML')
      .option('--status-dir <dir>', 'where status JSON files are written (default: .image-mirror/status beside DIR)')
      .option(
        '--metrics-addr <addr>',
        'serve /metrics, /healthz, /readyz, /status here; loopback by default because /status shows every mirror\'s spec, status and file paths (use :8080 to listen on all interfaces)',
        RUN_METRICS_ADDR,
      )
      .option('--concurrency <n>', 'mirrors reconciled at once', positiveInt('--concurrency'), 4)
      .option('--docker-config <path>', 'docker config.json with registry credentials')
      .option('--credentials-fallback', 'a credentials.secretName missing from the files (a SealedSecret, an ExternalSecret) uses --docker-config instead of failing'),
  )))).action(async (opts: { specs: string; statusDir?: string; metricsAddr: string; concurrency: number; dockerConfig?: string; credentialsFallback?: boolean; blobConcurrency: number; registryConnections: number; registryQps?: number; registryQuotaFloor: number; certsDir?: string; requirePolicy?: boolean; reconcileTimeout: string; webhookAddr?: string; webhookTokenFile?: string; logLevel: LogLevel; logFormat: LogFormat }) => {
    const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
    const handle = await startRun({
      specsDir: opts.specs,
      statusDir: opts.statusDir,
      metricsAddr: opts.metricsAddr,
      concurrency: opts.concurrency,
      dockerConfig: opts.dockerConfig,
      credentialsFallback: opts.credentialsFallback === true,
      blobConcurrency: opts.blobConcurrency,
      registryConnections: opts.registryConnections,
      certsDir: opts.certsDir,
      rateLimit: rateLimitOf(opts),
      requirePolicy: opts.requirePolicy === true,
      reconcileTimeoutMs: parseDuration(opts.reconcileTimeout),
      webhookAddr: opts.webhookAddr,
      webhookTokenFile: opts.webhookTokenFile,
      log,
    });
    log.info('running', { specs: opts.specs, statusDir: handle.statusDir, address: handle.address, ...(handle.webhookAddress ? { webhook: handle.webhookAddress } : {}) });
    await untilSignal();
    log.info('shutting down');
    await handle.stop();
  });

  logOptions(webhookOptions(tenancyOptions(transferOptions(
    program
      .command('controller')
      .description('run the Kubernetes controller (in-cluster, or --kubeconfig)')
      .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then $KUBECONFIG, ~/.kube/config)')
      .option('--namespace <ns>', 'watch only this namespace (repeatable; default all)', collect, [])
      .option('--selector <labels>', 'only ImageMirrors matching this label selector (sharding)')
      .option('--concurrency <n>', 'mirrors reconciled at once', positiveInt('--concurrency'), 4)
      .option('--leader-elect [bool]', 'hold a Lease so only one replica reconciles (default: on in-cluster)', parseBool)
      .option('--leader-elect-namespace <ns>', 'namespace of the Lease (default: the pod namespace)')
      .option('--lease-duration <d>', 'leader lease duration', durationArg('--lease-duration'), '15s')
      .option('--renew-deadline <d>', 'leader renew deadline', durationArg('--renew-deadline'), '10s')
      .option('--retry-period <d>', 'leader retry period', durationArg('--retry-period'), '2s')
      .option('--metrics-addr <addr>', 'serve /metrics, /healthz, /readyz here', ':8080')
      .option('--shutdown-grace <d>', 'how long in-flight copies may finish on SIGTERM', durationArg('--shutdown-grace'), '60s')
      .option('--cloud-credentials <providers>', "cloud providers (aws, gcp, azure; comma-separated, repeatable) whose identity, the pod's own, mirrors may use through credentials.provider (default: none)", collect, [])
      .option('--allow-local-paths', 'admit oci:PATH and oci-archive:PATH repositories, read and written on the controller\'s own file system (default: refused as InvalidSpec)'),
  )))).action(async (opts: ControllerCliOptions) => {
    const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
    // Loaded only here: client-node costs ~0.4 s and ~70 MiB at import, which sync and run never need.
    const { startControllerCommand } = await import('./controller/command.js');
    const handle = await startControllerCommand({ ...opts, log });
    await untilSignal();
    log.info('shutting down');
    await handle.stop();
  });

  return program;
}

/** The controller flags as commander parses them (type-only import: no client-node at runtime). */
export type ControllerCliOptions = Omit<ControllerCommandOptions, 'log' | 'kubeConfigObject' | 'env'> & { logLevel: LogLevel; logFormat: LogFormat };

/** One budget object per process: every registry client shares it. */
function rateLimitOf(o: { registryQps?: number; registryQuotaFloor?: number }): { qps?: number; floor?: number } | undefined {
  const r: { qps?: number; floor?: number } = {};
  if (o.registryQps !== undefined) r.qps = o.registryQps;
  if (o.registryQuotaFloor) r.floor = o.registryQuotaFloor;
  return Object.keys(r).length > 0 ? r : undefined;
}

function parseBool(v: string | boolean | undefined): boolean {
  if (v === undefined || v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new UsageError(`expected true or false, got ${JSON.stringify(v)}`);
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGTERM', done);
      process.off('SIGINT', done);
      resolve();
    };
    process.on('SIGTERM', done);
    process.on('SIGINT', done);
  });
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      process.stderr.write(`image-mirror: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`image-mirror: ${describeError(e)}\n`);
    return 1;
  }
}

