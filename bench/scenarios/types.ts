/**
 * The scenario registry's contract. A scenario prepares its fixtures once, then is run N times per
 * tool (interleaved by the runner); each run returns numbers keyed by metric. A scenario that has no
 * skopeo counterpart (e.g. controller throughput, issue 4) lists only `ours` in `tools` and may
 * declare its own metrics; the table then shows "–" for skopeo and the ratio.
 */
import type { TestRegistry } from '../../test/support/registry.js';
import type { SourceRepo } from '../lib/access-log.js';

export type Tool = 'ours' | 'skopeo';

export interface MetricDef {
  key: string;
  label: string;
  /** How a median is printed, unit included. */
  format(v: number): string;
}

/** Metric key → value for one run of one tool. Missing keys print as "–". */
export type Measurement = Record<string, number>;

export interface ImageMirrorSpec {
  name: string;
  source: { repository: string; tags?: string[]; digest?: string };
  targets: Array<{ repository: string; tags?: string[] }>;
}

export interface CommandLine {
  cmd: string;
  args: string[];
}

export interface BenchContext {
  quick: boolean;
  /** Scratch directory for this bench run (YAML files, metrics files). */
  work: string;
  /** The shared source registry, started once per bench run. */
  registryA: TestRegistry;
  /** A new registry on a loopback port never used before in this bench run; the caller stops it. */
  freshRegistry(): Promise<TestRegistry>;
  /** Sizes of every blob the bench pushed, to turn uploaded digests into bytes. */
  knownSizes: Map<string, number>;
  progress(message: string): void;
  /**
   * Runs `image-mirror sync` once over `mirrors` and measures it: wall time and peak RSS of the
   * process, and the access logs of `registries` (reset first). Fails unless every mirror is Ready.
   */
  runOurs(mirrors: ImageMirrorSpec[], registries: TestRegistry[], sources: SourceRepo[], extraArgs?: string[]): Promise<Measurement>;
  /** Runs the skopeo command lines one after another as one measurement (times summed, peak RSS max). */
  runSkopeo(commands: string[][], registries: TestRegistry[], sources: SourceRepo[]): Promise<Measurement>;
  /** Runs `image-mirror sync` without measuring (setup steps). */
  syncOurs(mirrors: ImageMirrorSpec[]): Promise<void>;
  /** Runs skopeo without measuring (setup steps). */
  skopeo(args: string[]): Promise<void>;
}

export interface PreparedScenario {
  run(tool: Tool, runIndex: number): Promise<Measurement>;
  cleanup?(): Promise<void>;
}

export interface Scenario {
  /** `--scenario` value. */
  name: string;
  /** Row label in the table. */
  title: string;
  tools: readonly Tool[];
  metrics: readonly MetricDef[];
  /** One line for bench/README.md and results.json: what exactly each tool runs. */
  method: string;
  /** Runs only when named with --scenario (it takes minutes), not in the default set. */
  optional?: boolean;
  prepare(ctx: BenchContext): Promise<PreparedScenario>;
}
