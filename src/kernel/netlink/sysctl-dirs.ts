/**
 * Sysctls are written below /proc/sys directories opened once per namespace and kept open. The path
 * walk from /proc/sys compares each of net, ipv6 and conf with one same-named dentry per network
 * namespace on the machine (proc_sys_compare): with 1,000 sandboxes (and 1,000 containers beside them)
 * every sysctl write cost a millisecond or more, almost all of it in that walk.
 *
 * An open /proc/sys directory does not keep its namespace alive: once the namespace is gone, lookups
 * below it fail with ENOENT. Directories are keyed by the namespace's inode number, which is unique
 * while the namespace lives; when a dead namespace's number is reused, the stale directory answers
 * ENOENT and the caller forgets it and opens a fresh one.
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { KernelError } from '../../errors.js';
import type { ThreadNamespace } from './libc.js';

/** More namespaces than this with open directories: start over (a few stale ones are never told apart). */
const MAX_NAMESPACES = 4096;

/**
 * A sysctl key as a directory to open once and a file below it: `net.ipv6.conf.eth0.disable_ipv6` →
 * /proc/sys/net/ipv6/conf + eth0/disable_ipv6.
 */
export function sysctlDirFile(key: string): { dir: string; file: string } {
  const parts = key.split('.');
  if (parts.length < 2 || parts.some((p) => p === '' || p.includes('/'))) {
    throw new KernelError(`invalid sysctl name ${JSON.stringify(key)}`, 'EINVAL');
  }
  const depth = Math.min(3, parts.length - 1);
  return { dir: `/proc/sys/${parts.slice(0, depth).join('/')}`, file: parts.slice(depth).join('/') };
}

export class SysctlDirectories {
  private readonly byNamespace = new Map<number, Map<string, number>>();

  constructor(private readonly thread: ThreadNamespace) {}

  /** The file for `key` inside the namespace open at `nsFd`, as a path usable from any namespace's thread. */
  file(nsFd: number, key: string, what: string): string {
    const { dir, file } = sysctlDirFile(key);
    const ino = fstatSync(nsFd).ino;
    let dirs = this.byNamespace.get(ino);
    if (!dirs) {
      if (this.byNamespace.size >= MAX_NAMESPACES) this.close();
      dirs = new Map();
      this.byNamespace.set(ino, dirs);
    }
    let fd = dirs.get(dir);
    if (fd === undefined) {
      fd = this.thread.withNetns(nsFd, what, () => openDirectory(dir, what));
      dirs.set(dir, fd);
    }
    return `/proc/self/fd/${fd}/${file}`;
  }

  /** Drop what is open for the namespace open at `nsFd` (a lookup below it failed). */
  forget(nsFd: number): void {
    this.forgetInode(fstatSync(nsFd).ino);
  }

  /** Drop what is open for the namespace pinned at `path` (about to be deleted); quiet when it is not one. */
  forgetPinned(path: string): void {
    const ino = statSync(path, { throwIfNoEntry: false })?.ino;
    if (ino !== undefined) this.forgetInode(ino);
  }

  close(): void {
    for (const ino of [...this.byNamespace.keys()]) this.forgetInode(ino);
  }

  private forgetInode(ino: number): void {
    const dirs = this.byNamespace.get(ino);
    this.byNamespace.delete(ino);
    dirs?.forEach((fd) => closeSync(fd));
  }
}

function openDirectory(dir: string, what: string): number {
  try {
    return openSync(dir, 'r');
  } catch (err) {
    throw new KernelError(`${what}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code, { cause: err });
  }
}
