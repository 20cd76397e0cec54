/**
 * Runs one command and measures wall time, CPU time and peak RSS. Peak RSS is the kernel's VmHWM for
 * the child, polled from /proc while it runs: VmHWM only grows, so the last value read before exit is
 * the peak up to then (a spike in the final poll interval could be missed; 5 ms is short next to
 * runs of a second or more). CPU time is the child's utime + stime as the kernel adds them to this
 * process's cutime + cstime when it is reaped (so its whole life, exit included, and any children
 * it waited for); the bench reaps no other process while one runs.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  /** KiB; 0 when /proc could not be read (not Linux, or the process exited before the first poll). */
  peakRssKb: number;
  /** User + system CPU seconds of the child; NaN when /proc could not be read. */
  cpuS: number;
  stdout: string;
  stderr: string;
}

const POLL_MS = 5;

/** Clock ticks per second, the unit of /proc/<pid>/stat times (USER_HZ: 100 on every Linux build). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a running process in seconds (fields 14 and 15 of stat); NaN when unreadable. */
export function processCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / CLK_TCK : NaN;
}

/** cutime + cstime of this process: the CPU of every child reaped so far (fields 16 and 17). */
function reapedChildrenCpuSeconds(): number {
  const f = statFields('self');
  return f ? (Number(f[13]) + Number(f[14])) / CLK_TCK : NaN;
}

/** The pid of the one process whose command line contains `fragment` (e.g. a registry's config path). */
export function pidByCommandLine(fragment: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(fragment)) return Number(name);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child after this long (ms). */
  timeoutMs?: number;
}

export function runMeasured(cmd: string, args: string[], o: RunOptions = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const cpuBefore = reapedChildrenCpuSeconds();
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const poll = () => {
      if (child.pid === undefined) return;
      const v = vmHwmKb(child.pid);
      if (v !== undefined && v > peak) peak = v;
    };
    const timer = setInterval(poll, POLL_MS);
    const killer = o.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), o.timeoutMs) : undefined;
    child.once('error', (e) => {
      clearInterval(timer);
      if (killer) clearTimeout(killer);
      reject(new Error(`could not start ${cmd}: ${e.message}`));
    });
    child.once('close', (exitCode, signal) => {
      const wallMs = performance.now() - started;
      clearInterval(timer);
      if (killer) clearTimeout(killer);
      resolve({ exitCode, signal, wallMs, peakRssKb: peak, cpuS: reapedChildrenCpuSeconds() - cpuBefore, stdout, stderr });
    });
  });
}

/** Throws with the command's last stderr line when it did not exit 0. */
export function assertOk(what: string, r: ProcessResult): void {
  if (r.exitCode === 0) return;
  const last = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  throw new Error(`${what} exited ${r.exitCode ?? r.signal}: ${last.slice(0, 400)}`);
}
