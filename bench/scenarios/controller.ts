/**
 * Issue 4's controller throughput: 1,000 ImageMirrors reconciled by one `image-mirror controller`
 * process (--concurrency 8) against the fake API server; ours only (skopeo has no controller).
 *
 * Reconcile windows are observed from the outside, without instrumenting the controller: a
 * reconcile's first registry request is its source `tags/list` (seen by a timing proxy in front of
 * registry A), its last act the status PATCH (seen by the fake API server). In flight at time t =
 * windows started − windows ended. Each observed window lies inside the real reconcile, so the
 * figure is a lower bound of the true overlap, and close to it: the gaps are a few local calls.
 */
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../../test/support/fake-apiserver.js';
import { projectCrdPath } from '../../test/support/fake-apiserver/sample-crd.js';
import { ROOT, startControllerProcess, vmHwm } from '../../test/support/controller-process.js';
import { pushFresh } from './shapes.js';
import { PEAK_RSS, REQUESTS, WALL } from './metrics.js';
import type { MetricDef, Scenario } from './types.js';

const CONCURRENCY = 8;
const int = (v: number): string => String(Math.round(v));

const RECONCILES_PER_S: MetricDef = { key: 'reconciles_per_s', label: 'reconciles per second', format: (v) => `${v.toFixed(1)} /s` };
const MAX_IN_FLIGHT: MetricDef = { key: 'max_in_flight', label: `max reconciles in flight (≤ ${CONCURRENCY})`, format: int };
const RECONCILES: MetricDef = { key: 'reconciles', label: 'reconciles (controller metric)', format: int };

interface TimingProxy {
  host: string;
  /** performance.now() of each source tags/list request. */
  tagLists: number[];
  requests: number;
  stop(): Promise<void>;
}

/** Forwards to `upstream` unchanged, timing source tags/list requests. */
async function startTimingProxy(upstream: string): Promise<TimingProxy> {
  const [host, port] = upstream.split(':') as [string, string];
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const p: TimingProxy = { host: '', tagLists: [], requests: 0, stop: async () => {} };
  const server: Server = createServer((req, res) => {
    p.requests++;
    if (req.method === 'GET' && /\/tags\/list(\?|$)/.test(req.url ?? '')) p.tagLists.push(performance.now());
    const up = httpRequest({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    });
  return p;
}

function maxOverlap(starts: number[], ends: number[]): number {
  const ev = [...starts.map((t) => [t, 1] as const), ...ends.map((t) => [t, -1] as const)].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

export const controllerThroughput: Scenario = {
  name: 'controller',
  title: '1,000 ImageMirrors through the controller',
  tools: ['ours'],
  metrics: [WALL, RECONCILES_PER_S, MAX_IN_FLIGHT, RECONCILES, REQUESTS, PEAK_RSS],
  method:
    'One small image (2 layers, 4 KiB) at A/ctl/app:1; 1,000 ImageMirrors (100 with --quick), each copying it to its own ' +
    'repo on a fresh registry B, created in the fake API server, then one `image-mirror controller --concurrency 8` ' +
    'child process (compiled, or tsx sources with --tsx) watching that namespace. wall time: spawn → every mirror ' +
    'Ready=True; reconciles/s: mirrors / (first source tags/list → last status PATCH); in flight: observed ' +
    'tags/list→status PATCH windows (a lower bound); peak RSS: the child\'s VmHWM; requests: source + target registry.',
  async prepare(ctx) {
    const n = ctx.quick ? 100 : 1000;
    const crd = projectCrdPath();
    if (!crd) throw new Error('crds/imagemirror.yaml not found');
    ctx.progress('controller: starting the fake API server and pushing the source image');
    const fake: FakeApiServer = await startFakeApiServer({ crds: [crd] });
    const kubeconfig = join(ctx.work, 'controller-kubeconfig');
    await fake.writeKubeconfig(kubeconfig);
    await pushFresh(ctx, 'ctl/app', { layers: 2, layerSize: 2048 });
    const proxy = await startTimingProxy(ctx.registryA.host);
    // The bench compiles ours into bench/.build first unless --tsx; use what it built.
    const built = join(ROOT, 'bench', '.build', 'main.js');
    const entry = existsSync(built) ? built : undefined;

    return {
      async run(_tool, i) {
        const ns = `ctl-${i}`;
        await fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
        const B = await ctx.freshRegistry();
        try {
          for (let k = 0; k < n; k++) {
            await fake.create({
              apiVersion: 'imagemirror.dev/v1alpha1',
              kind: 'ImageMirror',
              metadata: { name: `m-${k}`, namespace: ns },
              spec: { source: { repository: `${proxy.host}/ctl/app`, tags: ['1'] }, targets: [{ repository: `${B.host}/m-${k}/app` }] },
            } as KObject);
          }
          proxy.tagLists.length = 0;
          const requestsBefore = proxy.requests;
          await B.resetLog();
          const patchEnds: number[] = [];
          let seen = fake.requests.length;
          ctx.progress(`controller: run ${i + 1}: ${n} ImageMirrors, --concurrency ${CONCURRENCY}`);
          const started = performance.now();
          const p = startControllerProcess(kubeconfig, ['--namespace', ns, '--concurrency', String(CONCURRENCY), '--log-level', 'info'], {}, entry);
          let peak = 0;
          try {
            // Called on every API request and store change: note status PATCH answers as they happen.
            await fake.waitFor(
              () => {
                const now = performance.now();
                for (; seen < fake.requests.length; seen++) {
                  const r = fake.requests[seen]!;
                  if (r.verb === 'patch' && r.subresource === 'status' && r.namespace === ns) patchEnds.push(now);
                }
                peak = Math.max(peak, vmHwm(p.pid) ?? 0);
                if (p.exitInfo()) throw new Error(`controller exited: ${p.stderr().slice(-500)}`);
                return patchEnds.length >= n ? true : undefined;
              },
              120_000,
              `${n} status writes`,
            );
            const wallMs = performance.now() - started;
            const notReady = fake
              .list<KObject & { status?: { conditions?: Array<{ type: string; status: string; message: string }> } }>('imagemirror.dev/v1alpha1', 'imagemirrors', ns)
              .filter((m) => m.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True');
            if (notReady.length > 0) {
              const c = notReady[0]!.status?.conditions?.find((x) => x.type === 'Ready');
              throw new Error(`${notReady.length} mirrors not Ready, e.g. ${notReady[0]!.metadata?.name}: ${c?.message ?? 'no status'}`);
            }
            peak = Math.max(peak, vmHwm(p.pid) ?? 0);
            // The counter moves just after the status write.
            let reconciles = 0;
            for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
              reconciles = (await p.metric('imagemirror_reconcile_total')) ?? 0;
              if (reconciles >= n) break;
            }
            const windowMs = Math.max(1, patchEnds[patchEnds.length - 1]! - Math.min(...proxy.tagLists));
            return {
              wall_s: wallMs / 1000,
              reconciles_per_s: n / (windowMs / 1000),
              max_in_flight: maxOverlap(proxy.tagLists, patchEnds),
              reconciles,
              requests: proxy.requests - requestsBefore + (await B.accessLog()).length,
              peak_rss_kb: peak / 1024,
            };
          } finally {
            await p.stop(10_000);
          }
        } finally {
          await B.stop();
        }
      },
      async cleanup() {
        await proxy.stop();
        await fake.stop();
      },
    };
  },
};
