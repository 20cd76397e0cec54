/**
 * Runs `node bin/image-mirror.js controller ...` as a child process, the way a pod runs it, and
 * exposes what a test needs from the outside: its JSON log lines (stderr), the address its HTTP
 * server bound (logged on 'controller started'), /metrics, signals, exit, and peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'image-mirror.js');

export interface LogLine {
  level?: string;
  message?: string;
  [k: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ControllerProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Parsed JSON log lines so far (stderr); non-JSON lines appear as `{ message: line }`. */
  readonly lines: LogLine[];
  /** Raw stdout and stderr text so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first log line matching `pred`, past or future. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  /** `http://host:port` of /metrics, /healthz, /readyz (after 'controller started'). */
  url(): Promise<string>;
  /** The Lease identity it logged on start. */
  identity(): Promise<string>;
  /** GET path on its server: status and body (undefined once it is gone). */
  get(path: string): Promise<{ status: number; body: string } | undefined>;
  /** Value of an unlabelled metric, or the sum over label sets matching `labels` (undefined when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  /** Peak RSS so far in bytes (VmHWM), undefined once exited. */
  peakRss(): number | undefined;
  readonly exited: Promise<Exit>;
  exitInfo(): Exit | undefined;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<Exit>;
}

/**
 * Spawns `node bin/image-mirror.js <args>` (no implicit arguments); `entry` replaces the script, e.g.
 * a compiled main.js.
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, entry: string = BIN): ControllerProcess {
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, KUBERNETES_SERVICE_HOST: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  let out = '';
  let err = '';
  let partial = '';
  let exit: Exit | undefined;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => {
    err += c;
    partial += c;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.trim()) continue;
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        lines.push({ message: p });
      }
    }
    notify();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      notify();
      resolve(exit);
    });
  });

  function waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 20_000, what = 'log line'): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = lines.find(pred);
        if (hit) {
          finish();
          resolve(hit);
        } else if (exit) {
          finish();
          reject(new Error(`controller process exited (${exit.code ?? exit.signal}) before ${what}; stderr: ${err.slice(-800)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${err.slice(-800)}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  const started = (): Promise<LogLine> => waitForLog((l) => l.message === 'controller started', 30_000, "'controller started'");
  const url = async (): Promise<string> => `http://${String((await started()).metrics)}`;

  async function get(path: string): Promise<{ status: number; body: string } | undefined> {
    const base = await url();
    try {
      const r = await fetch(base + path);
      return { status: r.status, body: await r.text() };
    } catch {
      return undefined;
    }
  }

  return {
    pid: child.pid!,
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    waitForLog,
    url,
    identity: async () => String((await started()).identity),
    get,
    async metric(name, labels = {}) {
      const r = await get('/metrics');
      if (!r || r.status !== 200) return undefined;
      return parseMetric(r.body, name, labels);
    },
    peakRss: () => (exit ? undefined : vmHwm(child.pid!)),
    exited,
    exitInfo: () => exit,
    kill: (signal) => {
      if (!exit) child.kill(signal);
    },
    async stop(graceMs = 10_000) {
      if (exit) return exit;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
  };
}

/** `image-mirror controller --kubeconfig FILE --log-format json --metrics-addr 127.0.0.1:0 ...args`. */
export function startControllerProcess(kubeconfig: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, entry: string = BIN): ControllerProcess {
  return spawnCli(['controller', '--kubeconfig', kubeconfig, '--log-format', 'json', '--metrics-addr', '127.0.0.1:0', ...args], env, entry);
}

/** Sum of the samples of `name` whose labels include `labels`; undefined when there is none. */
export function parseMetric(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[kv[1]!] = kv[2]!;
    if (Object.entries(labels).some(([k, v]) => have[k] !== v)) continue;
    sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** VmHWM of a live process in bytes (Linux), undefined when unreadable. */
export function vmHwm(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
