/** Spawning commands for the bench: stdin input, captured output, the exit code instead of a throw. */
import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function execWithInput(cmd: string, args: string[], input = '', timeoutMs = 120_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    // A command that exits before reading its input (e.g. nsenter into a namespace that is gone) must
    // fail this call through its exit code, not crash the bench with an EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Like execWithInput, but throws with the command's stderr unless it exits 0. */
export async function execOk(cmd: string, args: string[], input = '', timeoutMs?: number): Promise<string> {
  const r = await execWithInput(cmd, args, input, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  return r.stdout;
}

/** Run `worker(i)` for i in [0, count) with at most `parallel` in flight; rethrows the first failure. */
export async function forEachParallel(count: number, parallel: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(parallel, count)) }, async () => {
    while (next < count) await worker(next++);
  });
  await Promise.all(lanes);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
