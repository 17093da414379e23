/**
 * A real cnm daemon for integration tests: its own throwaway "host" namespace (cnmt-*), its own temp
 * root / exec root / socket, started with `nsenter --net` (so its namespace pins live in the machine's
 * mount namespace and survive a daemon crash, as they would on a real host). cleanup() kills it and
 * removes every namespace, pin and directory it had, also after failures.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestNetns, deleteTestNetns, netnsPath } from './netns.js';
import { noteForSweep, onKilled } from './teardown.js';

const execFileAsync = promisify(execFile);
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TSX_LOADER = `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`;
const CLI_ENTRY = join(REPO_ROOT, 'src/cli/main.ts');

/**
 * How node runs the CLI and the daemon: the TypeScript sources through tsx, or — when scripts/test.sh has
 * just compiled this very checkout (its type check emits into a directory of the run and sets
 * CNM_TEST_CLI_ENTRY) — the compiled entry point, which starts on a quarter of the CPU (no tsx, no
 * transpile; the suite spawns the CLI and daemons hundreds of times on two cores).
 */
export function cliEntry(env: NodeJS.ProcessEnv = process.env): string[] {
  const compiled = env['CNM_TEST_CLI_ENTRY'];
  return compiled ? [compiled] : ['--import', TSX_LOADER, CLI_ENTRY];
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json<T = any>(): T;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestDaemon {
  hostNs: string;
  hostNsPath: string;
  root: string;
  execRoot: string;
  socket: string;
  pid(): number;
  api(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  cli(args: string[], opts?: { timeoutMs?: number }): Promise<CliResult>;
  /** Run a command inside the daemon's host namespace. */
  inHost(cmd: string, args: string[]): Promise<CliResult>;
  /** Run a command inside a sandbox via `cnm exec`. */
  exec(sandbox: string, cmd: string[]): Promise<CliResult>;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface TestDaemonOptions {
  /** How node runs the CLI (default: cliEntry()); the bench passes the built dist. */
  nodeEntry?: string[];
  /** Run in this existing namespace (e.g. a test dockerd's) instead of a new cnmt-* one; left in place on cleanup. */
  hostNs?: string;
}

export async function startTestDaemon(extraArgs: string[] = [], options: TestDaemonOptions = {}): Promise<TestDaemon> {
  const nodeEntry = options.nodeEntry ?? cliEntry();
  const hostNs = options.hostNs ?? createTestNetns();
  const hostNsPath = netnsPath(hostNs);
  const base = await mkdtemp(join(tmpdir(), 'cnmt-d-'));
  const note = noteForSweep('dir', base);
  const root = join(base, 'root');
  const execRoot = join(base, 'run');
  const socket = join(base, 'cnm.sock');
  let child: ChildProcess | undefined;
  let output = '';

  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000) =>
    new Promise<CliResult>((resolveRun) => {
      const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('close', (code) => {
        clearTimeout(timer);
        resolveRun({ code: code ?? -1, stdout, stderr });
      });
    });

  const api = (method: string, path: string, body?: unknown) =>
    new Promise<ApiResponse>((resolveApi, reject) => {
      const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const req = request(
        // agent: false — a fresh connection per request: a pooled keep-alive socket can be closed by the
        // server's idle timeout just as a slow test reuses it (EPIPE / ECONNRESET on a loaded machine).
        { socketPath: socket, method, path, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () =>
            resolveApi({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) }),
          );
        },
      );
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });

  const daemon: TestDaemon = {
    hostNs,
    hostNsPath,
    root,
    execRoot,
    socket,
    pid: () => child?.pid ?? -1,
    api,
    cli: (args, opts) => run('node', [...cliEntry(), ...args], { CNM_HOST: `unix://${socket}` }, opts?.timeoutMs),
    inHost: (cmd, args) => run('nsenter', [`--net=${hostNsPath}`, cmd, ...args]),
    exec: (sandbox, cmd) => daemon.cli(['exec', sandbox, '--', ...cmd]),
    logs: () => output,
    async start() {
      output = '';
      child = spawn(
        'nsenter',
        [
          `--net=${hostNsPath}`,
          'node',
          ...nodeEntry,
          'daemon',
          '--root',
          root,
          '--exec-root',
          execRoot,
          '--socket',
          socket,
          '--log-level',
          'debug',
          ...extraArgs,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${output}`);
        try {
          if ((await api('GET', '/_ping')).status === 200) return;
        } catch {
          /* not listening yet */
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`daemon did not come up:\n${output}`);
    },
    async stop(signal = 'SIGTERM') {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
      const done = new Promise<number | null>((r) => c.once('close', (code) => r(code)));
      c.kill(signal);
      return done;
    },
    async cleanup() {
      await daemon.stop('SIGKILL').catch(() => undefined);
      // Namespace pins live in the machine's mount namespace: unpin every one the daemon made.
      const nsDir = join(execRoot, 'netns');
      for (const entry of await readdir(nsDir).catch(() => [] as string[])) {
        await execFileAsync('umount', ['-l', join(nsDir, entry)]).catch(() => undefined);
      }
      // The namespace directory itself may be a (shared) bind mount onto itself, as /run/netns is.
      await execFileAsync('umount', ['-l', nsDir]).catch(() => undefined);
      if (options.hostNs === undefined) deleteTestNetns(hostNs);
      await rm(base, { recursive: true, force: true });
      note.forget();
      unregister();
    },
  };
  // Killed by the test runner: the same cleanup (test/helpers/teardown.ts).
  const unregister = onKilled(() => daemon.cleanup());
  try {
    await daemon.start();
  } catch (err) {
    await daemon.cleanup();
    throw err;
  }
  return daemon;
}
