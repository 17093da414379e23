/** Namespace files shared by every real KernelOps: recognising a pin and removing what a pin leaves. */
import { mkdir, open, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { KernelError } from '../errors.js';
import { pathIdentity, ThreadNamespace } from './netns.js';

/** nsfs superblock magic (linux/magic.h): what a pinned namespace file or /proc/PID/ns/* reports. */
const NSFS_MAGIC = 0x6e736673;

/** True when `file` (an absolute path) is a live network namespace: a pin or /proc/PID/ns/net. */
export async function isNetnsFile(file: string): Promise<boolean> {
  const fs = await statfs(file).catch(() => undefined);
  if (fs?.type !== NSFS_MAGIC) return false;
  // /proc/PID/ns/* are all nsfs; only the net one is a network namespace.
  return !/^\/proc\/[^/]+\/ns\//.test(file) || basename(file) === 'net';
}

/** The empty file a bind mount needs as its target. */
export async function createPinPlaceholder(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await (await open(file, 'a')).close();
}

/** Remove only the empty placeholder a pin leaves behind, never anything else found at the path. */
export async function removePinPlaceholder(file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (info?.isFile() && info.size === 0) await rm(file, { force: true });
}

/** Unmounts stacked on one path before we give up (a path can carry several pins). */
export const MAX_STACKED_PINS = 8;

/**
 * KernelOps.adoptNetns for the real kernels: pin the network namespace open at `source` at `pin` (see
 * ThreadNamespace.pinNetworkNamespace), refusing the daemon's own (`hostNetns` when a test moves it).
 */
export async function adoptNetnsAt(thread: ThreadNamespace, source: string, pin: string, hostNetns?: string): Promise<string> {
  const file = resolve(pin);
  if (await isNetnsFile(file)) throw new KernelError(`adoptNetns ${file}: already a namespace`, 'EEXIST');
  await createPinPlaceholder(file);
  try {
    const own = hostNetns === undefined ? [] : [pathIdentity(hostNetns)].filter((id): id is string => id !== undefined);
    return thread.pinNetworkNamespace(source, file, own);
  } catch (err) {
    await removePinPlaceholder(file);
    throw err;
  }
}

/** KernelOps.netnsIdentity for the real kernels (see ThreadNamespace.identityAt). */
export async function netnsIdentityAt(thread: ThreadNamespace, path: string): Promise<string | undefined> {
  const file = resolve(path);
  return (await isNetnsFile(file)) ? thread.identityAt(file) : undefined;
}
