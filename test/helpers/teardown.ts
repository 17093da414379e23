/**
 * Teardown that also happens when a test file is killed.
 *
 * `node --test` ends a file that runs past --test-timeout with SIGTERM (and waits for it to exit). A
 * process that does not handle SIGTERM dies at once: no `after` hook, no `finally`, no 'exit' listener
 * runs, and its daemons, servers, namespaces and mounts stay behind. The helpers register what they
 * start here; on SIGTERM, SIGINT or SIGHUP this kills every process below this one (the whole tree, not
 * just direct children: `ip netns exec` / `nsenter` start the real process), runs the registered
 * teardowns (newest first, bounded in time), then exits with 128 + the signal's number, which runs the
 * 'exit' listeners (namespaces: test/helpers/netns.ts).
 *
 * A file killed with SIGKILL can do none of this: scripts/test.sh gives each run a token
 * (CNM_TEST_RUN, inherited by everything the tests spawn) and a directory (CNM_TEST_RUN_DIR) where the
 * helpers note the namespaces and directories they create; scripts/sweep-test-run.sh removes what is
 * left of that run, and only of that run, when it ends.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { killQuietly, withDescendants } from '../../bench/lib/procs.js';

type Teardown = () => unknown;

interface TeardownState {
  installed: boolean;
  dying: boolean;
  next: number;
  teardowns: Map<number, Teardown>;
}

const STATE_KEY = Symbol.for('cnm.test.teardown');
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** Teardowns together get this long after a kill; then the process exits anyway. */
const TEARDOWN_BUDGET_MS = 20_000;

/** One state per process, kept on `process` (the helpers' modules may be loaded more than once). */
function state(): TeardownState {
  const holder = process as unknown as Record<symbol, TeardownState | undefined>;
  holder[STATE_KEY] ??= { installed: false, dying: false, next: 0, teardowns: new Map() };
  return holder[STATE_KEY];
}

/** Register fn to run if the process is killed before it is unregistered; returns the unregister function. */
export function onKilled(fn: Teardown): () => void {
  installSignalHandlers();
  const s = state();
  const id = s.next++;
  s.teardowns.set(id, fn);
  return () => void s.teardowns.delete(id);
}

/**
 * Only in a test file's process (node --test sets NODE_TEST_CONTEXT there): a bench or script that uses
 * the helpers keeps its own signal handling (bench/lib/cleanup.ts).
 */
export function installSignalHandlers(): void {
  const s = state();
  if (s.installed || process.env['NODE_TEST_CONTEXT'] === undefined) return;
  s.installed = true;
  for (const signal of SIGNALS) process.on(signal, () => void tearDownAndExit(signal));
}

async function tearDownAndExit(signal: (typeof SIGNALS)[number]): Promise<void> {
  const s = state();
  if (s.dying) return;
  s.dying = true;
  const code = 128 + (constants.signals[signal] ?? 15);
  setTimeout(() => process.exit(code), TEARDOWN_BUDGET_MS + 5_000);
  await killDescendants(process.pid);
  const teardowns = [...s.teardowns.values()].reverse();
  s.teardowns.clear();
  const all = (async () => {
    for (const fn of teardowns) await Promise.resolve().then(fn).catch(() => undefined);
  })();
  await Promise.race([all, new Promise((r) => setTimeout(r, TEARDOWN_BUDGET_MS))]);
  await killDescendants(process.pid); // anything a teardown started and left
  process.exit(code);
}

/** SIGKILL the whole tree below root, again until nothing new appears (a dying parent may have forked). */
export async function killDescendants(root: number): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = (await withDescendants([root])).filter((pid) => pid !== root);
    if (pids.length === 0) return;
    killQuietly(pids);
  }
}

/**
 * Note a namespace or a directory of this test run for scripts/sweep-test-run.sh (when the run has a
 * CNM_TEST_RUN_DIR); forget() it once it is removed.
 */
export function noteForSweep(kind: 'netns' | 'dir', value: string): { forget(): void } {
  const dir = process.env['CNM_TEST_RUN_DIR'];
  if (!dir) return { forget: () => undefined };
  const file = join(dir, kind, value.replace(/\//g, '%'));
  try {
    mkdirSync(join(dir, kind), { recursive: true });
    writeFileSync(file, value);
  } catch {
    return { forget: () => undefined }; // the run directory is gone: the run is over
  }
  return { forget: () => rmSync(file, { force: true }) };
}
