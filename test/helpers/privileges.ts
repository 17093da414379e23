/**
 * Why a test that needs the real kernel or a real client cannot run here — or false when it can. The
 * one place tests decide to skip for want of privileges or programs. Every reason starts with
 * "real kernel:" or "real client:"; scripts/test.sh fails a root run that skipped any of them (see
 * test/helpers/skip-reporter.mjs).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Capability numbers (linux/capability.h) real-kernel tests need. */
export const CAP_NET_ADMIN = 12;
export const CAP_SYS_ADMIN = 21;
const CAP_NAMES: Record<number, string> = { [CAP_NET_ADMIN]: 'CAP_NET_ADMIN', [CAP_SYS_ADMIN]: 'CAP_SYS_ADMIN' };

/** The effective capability set of this process (CapEff in /proc/self/status); 0 when unreadable. */
export function effectiveCapabilities(status = readProcStatus()): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex ? BigInt(`0x${hex}`) : 0n;
}

function readProcStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

/**
 * Tests on the real kernel make namespaces (`ip netns add` mounts under /run/netns: root and
 * CAP_SYS_ADMIN) and program them (CAP_NET_ADMIN).
 */
export function realKernelSkip(uid = process.getuid?.(), caps = effectiveCapabilities()): string | false {
  if (uid !== 0) return `real kernel: needs root (uid ${uid ?? 'unknown'})`;
  const missing = [CAP_NET_ADMIN, CAP_SYS_ADMIN].filter((c) => (caps & (1n << BigInt(c))) === 0n).map((c) => CAP_NAMES[c]);
  return missing.length > 0 ? `real kernel: root without ${missing.join(', ')}` : false;
}

/** The path of an executable on PATH, like `command -v`. */
export function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, program);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** A real client program (the docker CLI, ...) that must be on PATH; scripts/setup.sh test installs it. */
export function realClientSkip(program: string): string | false {
  return onPath(program) ? false : `real client: no ${program} on PATH (bash scripts/setup.sh test installs it)`;
}
