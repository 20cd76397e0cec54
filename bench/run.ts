/**
 * `npm run bench`: the comparison scenarios, ours and skopeo side by side on the same local registries,
 * runs interleaved, medians in one markdown table (stdout) and bench/results.json.
 *
 *   node --import tsx bench/run.ts [--quick] [--scenario NAME]... [--runs N] [--out FILE] [--tsx]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { createContext } from './lib/context.js';
import { median, ratio, renderTable } from './lib/stats.js';
import { SCENARIOS } from './scenarios/index.js';
import type { CommandLine, Measurement, Scenario, Tool } from './scenarios/types.js';

const execFileP = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: node --import tsx bench/run.ts [options]
  --quick            small sizes (KiB/MiB instead of 20/128 MiB layers), for smoke runs
  --scenario NAME    run only this scenario (repeatable): ${SCENARIOS.map((s) => s.name).join(', ')}
                     (${SCENARIOS.filter((s) => s.optional).map((s) => s.name).join(', ')} only when named: it takes minutes)
  --runs N           runs per tool and scenario (default 3; medians are reported)
  --out FILE         results JSON (default bench/results.json)
  --tsx              run image-mirror from the TypeScript sources through tsx instead of compiling
                     it first (faster to start the bench, slower for every run of ours)
  -h, --help`;

interface Options {
  quick: boolean;
  scenarios: Scenario[];
  runs: number;
  out: string;
  tsx: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', multiple: true },
      runs: { type: 'string' },
      out: { type: 'string' },
      tsx: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const names = values.scenario ?? [];
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new UsageError(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs must be a positive integer, got ${values.runs}`);
  return {
    quick: values.quick ?? false,
    scenarios: names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS.filter((s) => !s.optional),
    runs,
    out: values.out ?? join(ROOT, 'bench', 'results.json'),
    tsx: values.tsx ?? false,
  };
}

class UsageError extends Error {}

const progress = (m: string) => process.stderr.write(`bench: ${m}\n`);

/**
 * Ours as users run it: the production bundle `npm run build` writes (what the container image
 * ships), so tsx's start-up transpiling is not billed to every run. The build goes to bench/.build,
 * inside the project so the one external import (client-node) resolves node_modules.
 */
async function oursCommand(tsx: boolean): Promise<{ cmd: CommandLine; runtime: string }> {
  const bin = join(ROOT, 'bin', 'image-mirror.js');
  if (tsx) return { cmd: { cmd: process.execPath, args: [bin] }, runtime: 'tsx (TypeScript sources)' };
  const out = join(ROOT, 'bench', '.build');
  progress('bundling image-mirror (scripts/build.mjs) into bench/.build');
  try {
    await execFileP(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), out], { cwd: ROOT });
  } catch (e) {
    throw new Error(`building image-mirror failed: ${String((e as { stderr?: string }).stderr ?? e).split('\n')[0]}`);
  }
  return { cmd: { cmd: process.execPath, args: [join(out, 'main.js')] }, runtime: 'node, production bundle (npm run build)' };
}

async function toolVersion(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args);
    return stdout.trim().split('\n')[0] ?? '';
  } catch {
    return 'unknown';
  }
}

interface ScenarioResult {
  name: string;
  title: string;
  method: string;
  runs: Record<Tool, Measurement[]>;
  medians: Record<Tool, Measurement>;
}

function medians(runs: Measurement[]): Measurement {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const out: Measurement = {};
  for (const k of keys) out[k] = median(runs.map((r) => r[k]).filter((v): v is number => v !== undefined));
  return out;
}

async function runScenario(s: Scenario, o: Options, ctx: ReturnType<typeof createContext>): Promise<ScenarioResult> {
  progress(`${s.name}: preparing`);
  const prepared = await s.prepare(ctx);
  const runs: Record<Tool, Measurement[]> = { ours: [], skopeo: [] };
  try {
    for (let i = 0; i < o.runs; i++) {
      // Alternate which tool goes first, so neither always gets the warmer page cache.
      const order = i % 2 === 0 ? [...s.tools] : [...s.tools].reverse();
      for (const tool of order) {
        const m = await prepared.run(tool, i);
        runs[tool].push(m);
        progress(`${s.name}: run ${i + 1}/${o.runs} ${tool}: ${m.wall_s !== undefined ? m.wall_s.toFixed(2) + ' s, ' : ''}${m.requests ?? '?'} requests`);
      }
    }
  } finally {
    await prepared.cleanup?.();
  }
  return { name: s.name, title: s.title, method: s.method, runs, medians: { ours: medians(runs.ours), skopeo: medians(runs.skopeo) } };
}

function renderResults(scenarios: readonly Scenario[], results: readonly ScenarioResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const s = scenarios.find((x) => x.name === r.name)!;
    const hasSkopeo = s.tools.includes('skopeo');
    s.metrics.forEach((m, i) => {
      const ours = r.medians.ours[m.key];
      const sk = hasSkopeo ? r.medians.skopeo[m.key] : undefined;
      rows.push([
        i === 0 ? r.title : '',
        m.label,
        ours === undefined ? '–' : m.format(ours),
        sk === undefined ? '–' : m.format(sk),
        ours === undefined ? '–' : ratio(ours, sk),
      ]);
    });
  }
  return renderTable(['scenario', 'metric', 'ours', 'skopeo', 'ratio'], rows, [false, false, true, true, true]);
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const ours = await oursCommand(o.tsx);
  const skopeoVersion = await toolVersion('skopeo', ['--version']);
  const registryVersion = await toolVersion('docker-registry', ['--version']);
  // Other work on the machine skews wall times; the table states the load it started under.
  const loadAtStart = loadavg()[0]!.toFixed(2);
  const work = await mkdtemp(join(tmpdir(), 'imc-bench-'));
  let registryA: TestRegistry | undefined;
  const started = Date.now();
  try {
    registryA = await startRegistry();
    const ctx = createContext({ quick: o.quick, work, registryA, ours: ours.cmd, skopeo: 'skopeo', progress });
    const results: ScenarioResult[] = [];
    for (const s of o.scenarios) results.push(await runScenario(s, o, ctx));

    const cpu = cpus();
    const env = {
      date: new Date().toISOString(),
      cpus: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'}`,
      loadAverageAtStart: Number(loadAtStart),
      node: process.version,
      ours: ours.runtime,
      skopeo: skopeoVersion,
      registry: registryVersion,
      runsPerTool: o.runs,
      quick: o.quick,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    const table = renderResults(o.scenarios, results);
    process.stdout.write(
      `image-mirror vs ${skopeoVersion} — medians of ${o.runs} run${o.runs > 1 ? 's' : ''} each, interleaved${o.quick ? ' (--quick sizes)' : ''}\n` +
        `registries: ${registryVersion} on loopback; ${env.cpus} (load ${loadAtStart} at start); ${env.node}; ours: ${env.ours}\n` +
        `ratio = ours / skopeo (lower is better for all of these metrics); requests and blobs are counted from the registries' access logs\n\n` +
        table +
        '\n',
    );
    await writeFile(o.out, JSON.stringify({ environment: env, scenarios: results, table }, null, 2) + '\n');
    progress(`wrote ${relative(process.cwd(), o.out) || o.out} in ${env.seconds} s`);
    return 0;
  } finally {
    await registryA?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
