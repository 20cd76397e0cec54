/**
 * Runs one command and measures wall time and peak RSS. Peak RSS is the kernel's VmHWM for the
 * child, polled from /proc while it runs: VmHWM only grows, so the last value read before exit is
 * the peak up to then (a spike in the final poll interval could be missed; 5 ms is short next to
 * runs of a second or more).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  /** KiB; 0 when /proc could not be read (not Linux, or the process exited before the first poll). */
  peakRssKb: number;
  stdout: string;
  stderr: string;
}

const POLL_MS = 5;

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
      resolve({ exitCode, signal, wallMs, peakRssKb: peak, stdout, stderr });
    });
  });
}

/** Throws with the command's last stderr line when it did not exit 0. */
export function assertOk(what: string, r: ProcessResult): void {
  if (r.exitCode === 0) return;
  const last = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  throw new Error(`${what} exited ${r.exitCode ?? r.signal}: ${last.slice(0, 400)}`);
}
