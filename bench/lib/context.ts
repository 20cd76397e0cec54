/** The BenchContext the scenarios run against: registries, the two tools, and measurement. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startRegistry, type TestRegistry } from '../../test/support/registry.js';
import { countTraffic, type LoggedRequest, type SourceRepo } from './access-log.js';
import { assertOk, runMeasured, type ProcessResult } from './measure.js';
import type { BenchContext, CommandLine, ImageMirrorSpec, Measurement } from '../scenarios/types.js';

const TIMEOUT_MS = 10 * 60 * 1000;

export function mirrorsYaml(mirrors: readonly ImageMirrorSpec[], namespace = 'bench'): string {
  return mirrors
    .map((m) =>
      stringify({
        apiVersion: 'imagemirror.dev/v1alpha1',
        kind: 'ImageMirror',
        metadata: { name: m.name, namespace },
        spec: { source: m.source, targets: m.targets },
      }),
    )
    .join('---\n');
}

interface SyncJson {
  mirrors: Array<{ name: string; ready: boolean; reason?: string; message?: string }>;
}

/** One line naming the mirrors that did not end Ready, from `sync -o json` output. */
function notReady(stdout: string): string | undefined {
  let parsed: SyncJson;
  try {
    parsed = JSON.parse(stdout) as SyncJson;
  } catch {
    return `output is not JSON: ${stdout.slice(0, 200)}`;
  }
  const bad = parsed.mirrors.filter((m) => !m.ready);
  if (bad.length === 0 && parsed.mirrors.length > 0) return undefined;
  if (parsed.mirrors.length === 0) return 'no mirrors in output';
  return bad.map((m) => `${m.name}: ${m.reason ?? ''} ${m.message ?? ''}`.trim()).join('; ');
}

export interface ContextOptions {
  quick: boolean;
  work: string;
  registryA: TestRegistry;
  ours: CommandLine;
  skopeo: string;
  progress(message: string): void;
}

export function createContext(o: ContextOptions): BenchContext {
  const usedHosts = new Set<string>([o.registryA.host]);
  const knownSizes = new Map<string, number>();
  let fileSeq = 0;

  async function writeMirrors(mirrors: ImageMirrorSpec[]): Promise<string> {
    const file = join(o.work, `mirrors-${++fileSeq}.yaml`);
    await writeFile(file, mirrorsYaml(mirrors));
    return file;
  }

  async function sizeOf(registries: TestRegistry[], registry: string, repo: string, digest: string): Promise<number> {
    const known = knownSizes.get(digest);
    if (known !== undefined) return known;
    // A blob the bench did not push (a tool rewrote something): ask the registry that received it.
    const reg = registries.find((r) => r.host === registry);
    const r = await fetch(`${reg!.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    const n = Number(r.headers.get('content-length') ?? 0);
    knownSizes.set(digest, n);
    return n;
  }

  async function measure(commands: CommandLine[], registries: TestRegistry[], sources: SourceRepo[], check: (r: ProcessResult) => void): Promise<Measurement> {
    for (const r of registries) await r.resetLog();
    let wallMs = 0;
    let cpuS = 0;
    let peak = 0;
    for (const c of commands) {
      const r = await runMeasured(c.cmd, c.args, { timeoutMs: TIMEOUT_MS });
      check(r);
      wallMs += r.wallMs;
      cpuS += r.cpuS;
      peak = Math.max(peak, r.peakRssKb);
    }
    const entries: LoggedRequest[] = [];
    for (const reg of registries) for (const e of await reg.accessLog()) entries.push({ ...e, registry: reg.host });
    const t = countTraffic(entries, sources);
    let bytes = 0;
    for (const e of entries) {
      // Re-derive repo and digest per upload entry for the size lookup.
      const m = /^\/v2\/(.+?)\/blobs\/uploads\/.*[?&]digest=([^&]+)/.exec(e.path);
      if (e.method === 'PUT' && e.status === 201 && m) bytes += await sizeOf(registries, e.registry, m[1]!, decodeURIComponent(m[2]!));
    }
    for (const r of registries) await r.resetLog();
    return {
      wall_s: wallMs / 1000,
      cpu_s: cpuS,
      requests: t.requests,
      blob_uploads: t.blobUploads,
      blob_mounts: t.blobMounts,
      bytes_uploaded: bytes,
      source_blob_gets: t.sourceBlobGets,
      peak_rss_kb: peak,
    };
  }

  const oursArgs = (file: string, extra: string[] = []) => [...o.ours.args, 'sync', '-f', file, '-o', 'json', ...extra];
  const checkOurs = (r: ProcessResult) => {
    if (r.exitCode !== 0 && r.exitCode !== 1) assertOk('image-mirror sync', r);
    const why = notReady(r.stdout);
    if (why) throw new Error(`image-mirror sync did not finish in sync: ${why}${r.stderr ? ` (stderr: ${r.stderr.trim().split('\n').pop()})` : ''}`);
  };

  return {
    quick: o.quick,
    work: o.work,
    registryA: o.registryA,
    knownSizes,
    progress: o.progress,
    async freshRegistry() {
      for (;;) {
        const r = await startRegistry();
        if (!usedHosts.has(r.host)) {
          usedHosts.add(r.host);
          return r;
        }
        await r.stop();
      }
    },
    async runOurs(mirrors, registries, sources, extraArgs) {
      const file = await writeMirrors(mirrors);
      return measure([{ cmd: o.ours.cmd, args: oursArgs(file, extraArgs) }], registries, sources, checkOurs);
    },
    async runSkopeo(commands, registries, sources) {
      return measure(commands.map((args) => ({ cmd: o.skopeo, args })), registries, sources, (r) => assertOk('skopeo', r));
    },
    async syncOurs(mirrors) {
      const file = await writeMirrors(mirrors);
      checkOurs(await runMeasured(o.ours.cmd, oursArgs(file), { timeoutMs: TIMEOUT_MS }));
    },
    async skopeo(args) {
      assertOk('skopeo', await runMeasured(o.skopeo, args, { timeoutMs: TIMEOUT_MS }));
    },
  };
}
