/**
 * Start-up of the CLI as a developer or a CI job runs it from a checkout: `node bin/image-mirror.js`
 * after `npm ci` (whose `prepare` builds the checkout bundle the bin runs while it is current).
 * Measured to the first request a command sends, which is what a user waits for, and for `--help`.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { mirrorsYaml } from '../lib/context.js';
import { runMeasured } from '../lib/measure.js';
import { PEAK_RSS } from './metrics.js';
import type { Measurement, MetricDef, Scenario } from './types.js';

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'image-mirror.js');
const seconds = (v: number): string => `${v.toFixed(3)} s`;
/** Runs of ours measured again when a source changed meanwhile (a checkout others are editing). */
const MAX_ATTEMPTS = 5;

const FIRST_REQUEST: MetricDef = { key: 'first_request_s', label: 'to the first request (goal ≤ 0.3 s)', format: seconds };
const HELP: MetricDef = { key: 'help_s', label: '--help', format: seconds };
const BUNDLE: MetricDef = { key: 'bundle', label: 'ran the checkout bundle (1 = yes)', format: (v) => String(v) };

/** A registry that answers every request 404 NAME_UNKNOWN, and notes when the first one arrived. */
async function stubRegistry(): Promise<{ host: string; first(): number | undefined; reset(): void; close(): Promise<void> }> {
  let first: number | undefined;
  const server: Server = createServer((req, res) => {
    first ??= performance.now();
    req.resume();
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    first: () => first,
    reset: () => (first = undefined),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export const startupFromCheckout: Scenario = {
  name: 'startup',
  title: 'CLI start-up (from a checkout)',
  tools: ['ours', 'skopeo'],
  metrics: [FIRST_REQUEST, HELP, PEAK_RSS, BUNDLE],
  method:
    'From spawning the process to the first request at a loopback registry that answers 404 (ours: ' +
    '`node bin/image-mirror.js sync -f FILE` in the checkout, after building the checkout bundle as ' +
    "`npm ci`'s prepare does; skopeo: `skopeo inspect docker://…`), and the wall time of `--help`.",
  async prepare(ctx) {
    const { checkoutBundleIsCurrent } = (await import(pathToFileURL(join(ROOT, 'bin', 'current-bundle.js')).href)) as { checkoutBundleIsCurrent(root: string): boolean };
    /** What `npm ci` leaves: the checkout bundle, rebuilt when a source changed since. */
    const ensureBundle = async (): Promise<void> => {
      if (checkoutBundleIsCurrent(ROOT)) return;
      ctx.progress('startup: building the checkout bundle (npm run prepare)');
      await execFileP(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--checkout', 'dist'], { cwd: ROOT });
    };
    const registry = await stubRegistry();
    const file = join(ctx.work, 'startup.yaml');
    await writeFile(file, mirrorsYaml([{ name: 'startup', source: { repository: `${registry.host}/app`, tags: ['1'] }, targets: [{ repository: `${registry.host}/copy` }] }]));
    /** `--help`, then a command to its first request. */
    const measure = async (cmd: string, help: string[], command: string[]): Promise<Measurement> => {
      const h = await runMeasured(cmd, help);
      if (h.exitCode !== 0) throw new Error(`${cmd} --help exited ${h.exitCode}: ${h.stderr.trim().split('\n').pop()}`);
      registry.reset();
      const spawned = performance.now();
      const r = await runMeasured(cmd, command);
      const first = registry.first();
      if (first === undefined) throw new Error(`${cmd} sent no request: ${r.stderr.trim().split('\n').pop()}`);
      return { first_request_s: (first - spawned) / 1000, help_s: h.wallMs / 1000, peak_rss_kb: r.peakRssKb, wall_s: r.wallMs / 1000, cpu_s: r.cpuS };
    };
    return {
      async run(tool) {
        if (tool === 'skopeo') return measure('skopeo', ['--help'], ['inspect', '--tls-verify=false', `docker://${registry.host}/app:1`]);
        // A source edited while ours ran makes the bin fall back to the sources part-way: measure
        // again (a few times) until the bundle was current before and after.
        for (let attempt = 1; ; attempt++) {
          await ensureBundle();
          const m = await measure(process.execPath, [BIN, '--help'], [BIN, 'sync', '-f', file, '-o', 'json']);
          const bundle = checkoutBundleIsCurrent(ROOT) ? 1 : 0;
          if (bundle || attempt === MAX_ATTEMPTS) return { ...m, bundle };
        }
      },
      cleanup: () => registry.close(),
    };
  },
};
