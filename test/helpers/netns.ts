/**
 * Throwaway "host" network namespaces for tests that touch the kernel. Every name starts with cnmt-;
 * everything is removed after the test, also on failure, and on process exit as a last resort.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { installSignalHandlers, noteForSweep } from './teardown.js';

/** Namespaces of this process not yet deleted, each with its note for the run's sweep. */
const live = new Map<string, { forget(): void }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A kill by the test runner (SIGTERM) exits through here too (test/helpers/teardown.ts).
  installSignalHandlers();
  process.on('exit', () => {
    for (const name of live.keys()) deleteNetnsQuiet(name);
  });
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** Create cnmt-<random> (loopback up) and return its name. Pair with deleteTestNetns. */
export function createTestNetns(prefix = 'cnmt'): string {
  installExitHook();
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  const note = noteForSweep('netns', name);
  execFileSync('ip', ['netns', 'add', name]);
  live.set(name, note);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export function deleteTestNetns(name: string): void {
  deleteNetnsQuiet(name);
  live.get(name)?.forget();
  live.delete(name);
}

function deleteNetnsQuiet(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}

/** Run fn with a fresh namespace; always removed afterwards. */
export async function withTestNetns<T>(fn: (name: string, path: string) => Promise<T> | T): Promise<T> {
  const name = createTestNetns();
  try {
    return await fn(name, netnsPath(name));
  } finally {
    deleteTestNetns(name);
  }
}

/** Run a command inside a named namespace; returns stdout. Throws on non-zero exit. */
export function inNetns(name: string, cmd: string, args: string[], timeoutMs = 10_000): string {
  return execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
