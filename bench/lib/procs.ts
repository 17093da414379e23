/**
 * Reading processes from /proc: resident memory (VmRSS) for the RSS rows, and finding a daemon's helper
 * processes (containerd, shims) by a path in their command line so they can be counted and, on cleanup,
 * killed together with everything they started.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

/** VmRSS of one process in KiB, or undefined when it is gone. */
export async function rssKiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of VmRSS over processes, in MiB (processes that vanished count 0). */
export async function totalRssMiB(pids: number[]): Promise<number> {
  let kib = 0;
  for (const pid of pids) kib += (await rssKiB(pid)) ?? 0;
  return kib / 1024;
}

export async function listProcesses(): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // The command name in parentheses may itself contain spaces or parentheses: parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      out.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/** PIDs whose command line mentions `needle`. */
export async function pidsMentioning(needle: string): Promise<number[]> {
  return (await listProcesses()).filter((p) => p.cmdline.includes(needle)).map((p) => p.pid);
}

/** The given processes and all their descendants. */
export async function withDescendants(roots: number[]): Promise<number[]> {
  const procs = await listProcesses();
  const found = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return [...found];
}

export function killQuietly(pids: number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}
