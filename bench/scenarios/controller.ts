/**
 * Controller throughput and footprint: N ImageMirrors reconciled by one `image-mirror controller`
 * child process against the fake API server; ours only (skopeo has no controller).
 *
 * Every mirror copies one small image from registry A to its own new repository on a fresh
 * registry B, so every reconcile is a first copy. What the controller did is read from the outside:
 * both registries' access logs (requests per mirror, source reads per window), the fake API
 * server's stored statuses (all Ready), /proc (peak RSS), and its /metrics (reconciles, and the sum
 * of reconcile durations for the mean number in flight).
 *
 * Budgets asserted on every run (the bench fails, printing the figures, when one is exceeded):
 * - target: at most TARGET_REQUESTS_PER_MIRROR requests to B per new mirror;
 * - source: at most one tags/list per source repository per sharing window (LISTING_TTL_MS) and
 *   one manifest HEAD per reference per window, whatever the number of mirrors.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../../test/support/fake-apiserver.js';
import { projectCrdPath } from '../../test/support/fake-apiserver/sample-crd.js';
import { ROOT, parseMetric, startControllerProcess, vmHwm, type ControllerProcess } from '../../test/support/controller-process.js';
import type { AccessLogEntry } from '../../test/support/registry.js';
import { LISTING_TTL_MS } from '../../src/mirror/shared-reads.js';
import { parseRequest } from '../lib/access-log.js';
import { pushFresh } from './shapes.js';
import { PEAK_RSS, REQUESTS, WALL } from './metrics.js';
import type { BenchContext, MetricDef, PreparedScenario, Scenario } from './types.js';

/**
 * Requests to the target registry per new mirror of a small image (config + 2 layers, mount source
 * known): tag HEAD, manifest HEAD, a mount per blob (its 201 answers whether the blob is there), PUT.
 */
export const TARGET_REQUESTS_PER_MIRROR = 6;
/**
 * The first copy of a blob has no mount source: a blob HEAD, the upload's POST and its PUT stand
 * where a later mirror makes one mount. The budget allows these for every upload committed.
 */
export const REQUESTS_PER_UPLOAD = 3;
const SOURCE_REPO = 'ctl/app';
const SOURCE_TAG = '1';
/** A run that has not made every mirror Ready by then failed (10,000 mirrors at a few per second). */
const RUN_TIMEOUT_MS = 15 * 60_000;
/** --concurrency values of the scaling rows. */
export const CONCURRENCY_STEPS = [4, 16, 64] as const;

/** USER_HZ: Linux reports process CPU times in 1/100 s on every architecture we run on. */
const CLOCK_TICKS_PER_S = 100;
const int = (v: number): string => String(Math.round(v));
const KiB = 1024;

const RECONCILES_PER_S: MetricDef = { key: 'reconciles_per_s', label: 'mirrors Ready per second', format: (v) => `${v.toFixed(1)} /s` };
const IN_FLIGHT: MetricDef = { key: 'mean_in_flight', label: 'mean reconciles in flight (Σ durations ÷ wall)', format: (v) => v.toFixed(1) };
const RECONCILE_MS: MetricDef = { key: 'mean_reconcile_ms', label: 'mean reconcile duration', format: (v) => `${v.toFixed(0)} ms` };
const RECONCILES: MetricDef = { key: 'reconciles', label: 'reconciles (controller metric)', format: int };
const TARGET_PER_MIRROR: MetricDef = {
  key: 'target_requests_per_mirror',
  label: `target requests per mirror (budget ≤ ${TARGET_REQUESTS_PER_MIRROR})`,
  format: (v) => v.toFixed(2),
};
const SOURCE_LISTS: MetricDef = { key: 'source_tag_lists', label: 'source tags/list requests (1 repository)', format: int };
const SOURCE_LIST_BUDGET: MetricDef = { key: 'source_tag_list_budget', label: `  allowed: 1 per ${LISTING_TTL_MS / 1000} s window`, format: int };
const SOURCE_HEADS: MetricDef = { key: 'source_manifest_heads', label: 'source manifest HEADs (1 tag)', format: int };
const CPU_PER_MIRROR: MetricDef = { key: 'cpu_ms_per_mirror', label: 'controller CPU per mirror', format: (v) => `${v.toFixed(1)} ms` };
const REGISTRY_CPU: MetricDef = { key: 'registry_cpu_ms_per_mirror', label: 'target registry CPU per mirror', format: (v) => `${v.toFixed(1)} ms` };
const API_CPU: MetricDef = { key: 'api_cpu_ms_per_mirror', label: 'fake API server (bench process) CPU per mirror', format: (v) => `${v.toFixed(1)} ms` };
const SOURCE_REQUESTS: MetricDef = { key: 'source_requests', label: 'source requests in all', format: int };

export interface ControllerRun {
  mirrors: number;
  wallMs: number;
  reconciles: number;
  /** Σ imagemirror_sync_duration_seconds (s) and its count. */
  reconcileSeconds: number;
  reconcileCount: number;
  targetRequests: number;
  /** Blob uploads committed on the target (PUT …/blobs/uploads/…?digest= answered 201). */
  targetUploads: number;
  /** Target requests by `METHOD kind` (e.g. `HEAD manifest`). */
  targetByKind: Record<string, number>;
  sourceRequests: number;
  sourceTagLists: number;
  sourceHeads: number;
  sourceBlobGets: number;
  peakRssKb: number;
  /** CPU seconds (user + system) the controller used until every mirror was Ready. */
  cpuSeconds: number;
  /** CPU seconds of the target registry (B) and of the bench process (the fake API server) meanwhile. */
  targetRegistryCpuSeconds: number;
  apiServerCpuSeconds: number;
}

export interface RunHooks {
  /** Called once the controller was spawned (to watch it: heap snapshots, /metrics). */
  onStart?(p: ControllerProcess): void;
}

export interface ControllerBench {
  /** Creates `mirrors` ImageMirrors in a new namespace, runs a controller with `args` until all are Ready. */
  run(mirrors: number, args: string[], label: string, o?: RunHooks): Promise<ControllerRun>;
  stop(): Promise<void>;
}

/** The fake API server and the source image, shared by every run of the controller scenarios. */
export async function startControllerBench(ctx: BenchContext, o: { entry?: string } = {}): Promise<ControllerBench> {
  const crd = projectCrdPath();
  if (!crd) throw new Error('crds/imagemirror.yaml not found');
  ctx.progress('controller: starting the fake API server and pushing the source image');
  const fake: FakeApiServer = await startFakeApiServer({ crds: [crd] });
  const kubeconfig = join(ctx.work, 'controller-kubeconfig');
  await fake.writeKubeconfig(kubeconfig);
  await pushFresh(ctx, SOURCE_REPO, { layers: 2, layerSize: 2048 }, SOURCE_TAG);
  // The bench compiles ours into bench/.build first unless --tsx; use what it built.
  const built = join(ROOT, 'bench', '.build', 'main.js');
  const entry = o.entry ?? (existsSync(built) ? built : undefined);
  let seq = 0;

  async function run(n: number, args: string[], label: string, hooks: RunHooks = {}): Promise<ControllerRun> {
    const ns = `ctl-${++seq}`;
    await fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const A = ctx.registryA;
    const B = await ctx.freshRegistry();
    try {
      for (let k = 0; k < n; k++) {
        await fake.create({
          apiVersion: 'imagemirror.dev/v1alpha1',
          kind: 'ImageMirror',
          metadata: { name: `m-${k}`, namespace: ns },
          spec: { source: { repository: `${A.host}/${SOURCE_REPO}`, tags: [SOURCE_TAG] }, targets: [{ repository: `${B.host}/m-${k}/app` }] },
        } as KObject);
      }
      await Promise.all([A.resetLog(), B.resetLog()]);
      ctx.progress(`controller: ${label}: ${n} ImageMirrors, controller ${args.join(' ') || '(default flags)'}`);
      const registryPid = pidOf(B.dir);
      const registryCpuBefore = registryPid === undefined ? 0 : cpuSecondsOf(registryPid);
      const benchCpuBefore = process.cpuUsage();
      const started = performance.now();
      const p = startControllerProcess(kubeconfig, ['--namespace', ns, '--log-level', 'info', ...args], {}, entry);
      hooks.onStart?.(p);
      let peak = 0;
      let seen = fake.requests.length;
      let patches = 0;
      try {
        // Re-checked on every API request and store change: count status PATCHes as they happen.
        await fake.waitFor(
          () => {
            for (; seen < fake.requests.length; seen++) {
              const r = fake.requests[seen]!;
              if (r.verb === 'patch' && r.subresource === 'status' && r.namespace === ns) patches++;
            }
            peak = Math.max(peak, vmHwm(p.pid) ?? 0);
            if (p.exitInfo()) throw new Error(`controller exited: ${p.stderr().slice(-500)}`);
            if (patches < n) return undefined;
            return allReady(fake, ns) ? true : undefined;
          },
          RUN_TIMEOUT_MS,
          `${n} mirrors Ready`,
        );
        const wallMs = performance.now() - started;
        peak = Math.max(peak, vmHwm(p.pid) ?? 0);
        const cpuSeconds = cpuSecondsOf(p.pid);
        const targetRegistryCpuSeconds = registryPid === undefined ? 0 : cpuSecondsOf(registryPid) - registryCpuBefore;
        const benchCpu = process.cpuUsage(benchCpuBefore);
        const apiServerCpuSeconds = (benchCpu.user + benchCpu.system) / 1e6;
        // The reconcile counter moves just after the status write.
        let exposition = '';
        for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
          exposition = (await p.get('/metrics'))?.body ?? '';
          if ((parseMetric(exposition, 'imagemirror_reconcile_total') ?? 0) >= n) break;
        }
        const [aLog, bLog] = await Promise.all([A.accessLog(), B.accessLog()]);
        const src = aLog.map((e) => ({ e, p: parseRequest(e.path) })).filter((x) => x.p.repo === SOURCE_REPO || x.p.kind === 'other');
        return {
          mirrors: n,
          wallMs,
          reconciles: parseMetric(exposition, 'imagemirror_reconcile_total') ?? 0,
          reconcileSeconds: parseMetric(exposition, 'imagemirror_sync_duration_seconds_sum') ?? 0,
          reconcileCount: parseMetric(exposition, 'imagemirror_sync_duration_seconds_count') ?? 0,
          targetRequests: bLog.length,
          targetUploads: bLog.filter((e) => e.method === 'PUT' && e.status === 201 && parseRequest(e.path).kind === 'upload').length,
          targetByKind: byKind(bLog),
          sourceRequests: src.length,
          sourceTagLists: src.filter((x) => x.e.method === 'GET' && x.p.kind === 'tags').length,
          sourceHeads: src.filter((x) => x.e.method === 'HEAD' && x.p.kind === 'manifest' && x.p.reference === SOURCE_TAG).length,
          sourceBlobGets: src.filter((x) => x.e.method === 'GET' && x.p.kind === 'blob').length,
          peakRssKb: peak / KiB,
          cpuSeconds,
          targetRegistryCpuSeconds,
          apiServerCpuSeconds,
        };
      } finally {
        await p.stop(10_000);
        // The next run starts from an empty API server: 10,000 stored mirrors would slow its lists.
        for (const m of fake.list<KObject>('imagemirror.dev/v1alpha1', 'imagemirrors', ns)) fake.deleteObject('imagemirror.dev/v1alpha1', 'imagemirrors', ns, m.metadata!.name!);
      }
    } finally {
      await B.stop();
    }
  }

  return {
    run,
    async stop() {
      await fake.stop();
    },
  };
}

/** The docker-registry serving from dir (its config lives there), found in /proc. */
function pidOf(dir: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.startsWith('docker-registry') && cmd.includes(dir)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** utime + stime of a live process from /proc/PID/stat, in seconds (0 when unreadable). */
function cpuSecondsOf(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}

function allReady(fake: FakeApiServer, ns: string): boolean {
  return fake
    .list<KObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>('imagemirror.dev/v1alpha1', 'imagemirrors', ns)
    .every((m) => m.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
}

function byKind(log: readonly AccessLogEntry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of log) {
    const p = parseRequest(e.path);
    const kind = p.kind === 'upload' && p.query.has('mount') ? `mount${e.status === 201 ? '' : ` (${e.status})`}` : p.kind === 'blob' || p.kind === 'manifest' ? `${p.kind}${e.status === 404 ? ' (404)' : ''}` : p.kind;
    const k = `${e.method} ${kind}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Target requests allowed for a run: the per-mirror budget, and first copies' uploads. */
export function targetBudget(r: Pick<ControllerRun, 'mirrors' | 'targetUploads'>): number {
  return TARGET_REQUESTS_PER_MIRROR * r.mirrors + REQUESTS_PER_UPLOAD * r.targetUploads;
}

/** At most one source read per sharing window: the read span is inside the wall time. */
export function sourceReadBudget(wallMs: number): number {
  return Math.floor(wallMs / LISTING_TTL_MS) + 1;
}

/** One line of figures, then an error when a budget is exceeded. */
export function checkBudgets(r: ControllerRun, label: string, progress: (m: string) => void): void {
  const per = (v: number): string => (v / r.mirrors).toFixed(2);
  const kinds = Object.entries(r.targetByKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${per(v)}`)
    .join(', ');
  const budget = sourceReadBudget(r.wallMs);
  progress(
    `controller: ${label}: ${r.mirrors} mirrors Ready in ${(r.wallMs / 1000).toFixed(2)} s; target ${r.targetRequests} requests, ${per(r.targetRequests)} per mirror ` +
      `(allowed ${targetBudget(r)}: ${TARGET_REQUESTS_PER_MIRROR} per mirror + ${REQUESTS_PER_UPLOAD} per upload, ${r.targetUploads} uploads; ${kinds}); ` +
      `source ${r.sourceRequests} requests: ${r.sourceTagLists} tags/list, ${r.sourceHeads} manifest HEADs of :${SOURCE_TAG}, ${r.sourceBlobGets} blob GETs ` +
      `(allowed ${budget} tags/list and ${budget} HEADs: 1 per ${LISTING_TTL_MS / 1000} s window); peak RSS ${(r.peakRssKb / 1024).toFixed(0)} MiB; ` +
      `CPU per mirror: controller ${((1000 * r.cpuSeconds) / r.mirrors).toFixed(1)} ms, target registry ${((1000 * r.targetRegistryCpuSeconds) / r.mirrors).toFixed(1)} ms, ` +
      `fake API server and bench ${((1000 * r.apiServerCpuSeconds) / r.mirrors).toFixed(1)} ms; load average ${loadavg()[0]!.toFixed(1)}`,
  );
  const over: string[] = [];
  if (r.targetRequests > targetBudget(r)) over.push(`target ${r.targetRequests} requests > ${targetBudget(r)}`);
  if (r.sourceTagLists > budget) over.push(`source tags/list ${r.sourceTagLists} > ${budget}`);
  if (r.sourceHeads > budget) over.push(`source manifest HEADs ${r.sourceHeads} > ${budget}`);
  if (over.length > 0) throw new Error(`controller ${label}: request budget exceeded: ${over.join('; ')}`);
}

function measurement(r: ControllerRun): Record<string, number> {
  return {
    wall_s: r.wallMs / 1000,
    reconciles_per_s: r.mirrors / (r.wallMs / 1000),
    mean_in_flight: r.reconcileSeconds / (r.wallMs / 1000),
    mean_reconcile_ms: r.reconcileCount > 0 ? (1000 * r.reconcileSeconds) / r.reconcileCount : 0,
    reconciles: r.reconciles,
    target_requests_per_mirror: r.targetRequests / r.mirrors,
    source_tag_lists: r.sourceTagLists,
    source_tag_list_budget: sourceReadBudget(r.wallMs),
    source_manifest_heads: r.sourceHeads,
    source_requests: r.sourceRequests,
    requests: r.targetRequests + r.sourceRequests,
    peak_rss_kb: r.peakRssKb,
    cpu_ms_per_mirror: (1000 * r.cpuSeconds) / r.mirrors,
    registry_cpu_ms_per_mirror: (1000 * r.targetRegistryCpuSeconds) / r.mirrors,
    api_cpu_ms_per_mirror: (1000 * r.apiServerCpuSeconds) / r.mirrors,
  };
}

function scenario(s: Omit<Scenario, 'tools' | 'prepare'>, run: (bench: ControllerBench, ctx: BenchContext, i: number) => Promise<Record<string, number>>): Scenario {
  return {
    ...s,
    tools: ['ours'],
    async prepare(ctx): Promise<PreparedScenario> {
      const bench = await startControllerBench(ctx);
      return {
        run: (_tool, i) => run(bench, ctx, i),
        cleanup: () => bench.stop(),
      };
    },
  };
}

const METHOD_COMMON =
  'One small image (config + 2 layers of 2 KiB) at A/ctl/app:1; N ImageMirrors, each copying it to its own repo on a fresh ' +
  'registry B, created in the fake API server, then one `image-mirror controller` child process (the compiled bundle, or ' +
  'the tsx sources with --tsx) watching that namespace. wall time: spawn → every mirror Ready=True in the API server; ' +
  'mirrors Ready per second: N ÷ wall time; mean in flight: Σ imagemirror_sync_duration_seconds ÷ wall time (Little\'s law; ' +
  'the status write is not in it); requests: the access logs of A (source repository) and B; peak RSS: the child\'s VmHWM. ' +
  `Asserted per run: ≤ ${TARGET_REQUESTS_PER_MIRROR} target requests per mirror (+ ${REQUESTS_PER_UPLOAD} per blob upload: first copies); source tags/list and manifest HEADs ≤ 1 per ` +
  `${LISTING_TTL_MS / 1000} s window each (floor(wall ÷ window) + 1).`;

export const controllerThroughput: Scenario = scenario(
  {
    name: 'controller',
    title: '1,000 ImageMirrors through the controller (default flags)',
    metrics: [WALL, RECONCILES_PER_S, IN_FLIGHT, RECONCILE_MS, RECONCILES, TARGET_PER_MIRROR, SOURCE_LISTS, SOURCE_LIST_BUDGET, SOURCE_HEADS, SOURCE_REQUESTS, REQUESTS, CPU_PER_MIRROR, REGISTRY_CPU, API_CPU, PEAK_RSS],
    method: `${METHOD_COMMON} N = 1,000 (100 with --quick); the controller runs with its default flags.`,
  },
  async (bench, ctx) => {
    const r = await bench.run(ctx.quick ? 100 : 1000, [], 'default flags');
    checkBudgets(r, 'default flags', ctx.progress);
    return measurement(r);
  },
);

const perStep = (c: number): MetricDef[] => [
  { key: `reconciles_per_s_c${c}`, label: `--concurrency ${c}: mirrors Ready per second`, format: (v) => `${v.toFixed(1)} /s` },
  { key: `mean_in_flight_c${c}`, label: `--concurrency ${c}: mean reconciles in flight`, format: (v) => v.toFixed(1) },
  { key: `peak_rss_kb_c${c}`, label: `--concurrency ${c}: peak RSS`, format: (v) => `${(v / 1024).toFixed(0)} MiB` },
];

export const controllerConcurrency: Scenario = scenario(
  {
    name: 'controller-concurrency',
    title: '1,000 ImageMirrors by --concurrency',
    metrics: CONCURRENCY_STEPS.flatMap(perStep),
    method: `${METHOD_COMMON} N = 1,000 (100 with --quick), once per --concurrency value (${CONCURRENCY_STEPS.join(', ')}), other flags default.`,
  },
  async (bench, ctx) => {
    const out: Record<string, number> = {};
    for (const c of CONCURRENCY_STEPS) {
      const r = await bench.run(ctx.quick ? 100 : 1000, ['--concurrency', String(c)], `--concurrency ${c}`);
      checkBudgets(r, `--concurrency ${c}`, ctx.progress);
      const m = measurement(r);
      out[`reconciles_per_s_c${c}`] = m.reconciles_per_s!;
      out[`mean_in_flight_c${c}`] = m.mean_in_flight!;
      out[`peak_rss_kb_c${c}`] = m.peak_rss_kb!;
    }
    return out;
  },
);

const SLOPE: MetricDef = { key: 'rss_kib_per_mirror', label: 'peak RSS slope (1,000 → 10,000)', format: (v) => `${v.toFixed(1)} KiB/mirror` };
const RSS_SMALL: MetricDef = { key: 'peak_rss_kb_small', label: 'peak RSS at 1,000', format: (v) => `${(v / 1024).toFixed(0)} MiB` };

export const controllerTenThousand: Scenario = {
  ...scenario(
    {
      name: 'controller-10k',
      title: '10,000 ImageMirrors through the controller (default flags)',
      metrics: [WALL, RECONCILES_PER_S, IN_FLIGHT, TARGET_PER_MIRROR, SOURCE_LISTS, SOURCE_LIST_BUDGET, SOURCE_HEADS, PEAK_RSS, RSS_SMALL, SLOPE],
      method:
        `${METHOD_COMMON} N = 10,000 (1,000 with --quick), default flags; then N ÷ 10 in the same bench run for the slope: ` +
        '(peak RSS at N − peak RSS at N ÷ 10) ÷ (0.9 N). Not in the default set (minutes): --scenario controller-10k.',
    },
    async (bench, ctx) => {
      const big = ctx.quick ? 1000 : 10_000;
      const r = await bench.run(big, [], `${big} mirrors`);
      checkBudgets(r, `${big} mirrors`, ctx.progress);
      const small = await bench.run(big / 10, [], `${big / 10} mirrors`);
      checkBudgets(small, `${big / 10} mirrors`, ctx.progress);
      return {
        ...measurement(r),
        peak_rss_kb_small: small.peakRssKb,
        rss_kib_per_mirror: (r.peakRssKb - small.peakRssKb) / (0.9 * big),
      };
    },
  ),
  optional: true,
};
