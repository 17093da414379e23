/**
 * A test file killed by the runner leaves nothing behind. `node --test` ends a file past --test-timeout
 * with SIGTERM; test/helpers/teardown.ts then kills the file's process tree and runs the helpers'
 * cleanups (daemon, namespaces, pins, temp dirs). A file killed with SIGKILL gets no chance: the run's
 * sweep (scripts/sweep-test-run.sh) removes what carries the run's token, and nothing of another run.
 *
 * Each case runs a child test file under a real `node --test` runner. The child starts a real daemon
 * (its own cnmt-* namespace, temp dir, a sandbox whose namespace pin is a mount below the temp dir), a
 * namespace of its own with a process in it, writes down what it made, and then hangs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/daemon.js';
import { realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip();
const TSX_LOADER = `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`;

interface Made {
  filePid: number;
  daemonPid: number;
  serverPid: number;
  netns: string[];
  dirs: string[];
  pin: string;
}

const CHILD = `
import { it } from 'node:test';
import { writeFileSync, renameSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { startTestDaemon } from '${REPO_ROOT}/test/helpers/daemon.ts';
import { createTestNetns } from '${REPO_ROOT}/test/helpers/netns.ts';

it('makes things and hangs', { timeout: 600_000 }, async () => {
  const d = await startTestDaemon();
  const created = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'pinned' });
  if (created.status !== 201) throw new Error(created.body);
  const ns = createTestNetns();
  const server = spawn('nsenter', ['--net=/run/netns/' + ns, 'sleep', '600'], { stdio: 'ignore' });
  await new Promise((r) => server.once('spawn', r));
  const made = {
    filePid: process.pid, daemonPid: d.pid(), serverPid: server.pid,
    netns: [d.hostNs, ns], dirs: [d.root.replace(/\\/root$/, '')], pin: created.json().NetnsPath,
  };
  writeFileSync(process.env.CNMT_MADE + '.tmp', JSON.stringify(made));
  renameSync(process.env.CNMT_MADE + '.tmp', process.env.CNMT_MADE);
  await new Promise((r) => setTimeout(r, 600_000));
});
`;

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const mounted = (path: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);

/** What of `made` is still there, one line per thing. */
function leftovers(made: Made): string[] {
  const left: string[] = [];
  for (const [what, pid] of [['daemon', made.daemonPid], ['server', made.serverPid]] as const) if (alive(pid)) left.push(`${what} ${pid} runs`);
  for (const ns of made.netns) if (existsSync(`/run/netns/${ns}`)) left.push(`namespace ${ns}`);
  for (const dir of made.dirs) if (existsSync(dir)) left.push(`dir ${dir}`);
  if (mounted(made.pin)) left.push(`pin ${made.pin} mounted`);
  return left;
}

describe('a test file killed by the runner leaves nothing behind', { skip }, () => {
  const work = mkdtempSync(join(tmpdir(), 'cnmt-killed-'));
  const runners: ChildProcess[] = [];
  after(() => {
    for (const r of runners) if (r.exitCode === null) r.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  /** Runs a child test file under `node --test`; resolves what it made once it wrote it down. */
  const runChild = (name: string, source: string, runnerArgs: string[], env: NodeJS.ProcessEnv = {}) => {
    const file = join(work, `${name}.test.ts`);
    writeFileSync(file, source);
    const madeFile = join(work, `${name}.made.json`);
    const signals = join(work, `${name}.signals`);
    const childEnv: NodeJS.ProcessEnv = { ...process.env, CNMT_MADE: madeFile, CNMT_SIGNALS: signals, ...env };
    delete childEnv['NODE_TEST_CONTEXT']; // a runner of its own, not a subtest of this one
    const runner = spawn(process.execPath, ['--import', TSX_LOADER, '--test', '--test-reporter=tap', ...runnerArgs, file], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runners.push(runner);
    let output = '';
    runner.stdout!.on('data', (d) => (output += d));
    runner.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<void>((r) => runner.once('close', () => r()));
    const made = (async () => {
      while (!existsSync(madeFile)) {
        if (runner.exitCode !== null) throw new Error(`the child file ended before it had made everything:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return JSON.parse(readFileSync(madeFile, 'utf8')) as Made;
    })();
    return { made, exited, output: () => output, signals: () => (existsSync(signals) ? readFileSync(signals, 'utf8').trim().split('\n') : []) };
  };

  it('the runner ends a file past --test-timeout with SIGTERM, which the helpers handle', { timeout: 60_000 }, async () => {
    const child = runChild(
      'timeout',
      `import { it } from 'node:test';
       import { appendFileSync, writeFileSync } from 'node:fs';
       import '${REPO_ROOT}/test/helpers/netns.ts';
       import { installSignalHandlers } from '${REPO_ROOT}/test/helpers/teardown.ts';
       installSignalHandlers();
       for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.prependListener(s, () => appendFileSync(process.env.CNMT_SIGNALS, s + '\\n'));
       writeFileSync(process.env.CNMT_MADE, '{}');
       it('hangs', { timeout: 600_000 }, () => new Promise((r) => setTimeout(r, 600_000)));`,
      // Long enough for the file to load on a loaded machine (the handlers are installed as it loads).
      ['--test-timeout=20000'],
    );
    await child.made;
    await child.exited;
    assert.deepEqual(child.signals(), ['SIGTERM'], child.output());
  });

  it('killed with SIGTERM (the runner\'s kill): no daemon, server, namespace, pin or temp dir is left', { timeout: 180_000 }, async () => {
    const child = runChild('sigterm', CHILD, ['--test-timeout=600000']);
    const made = await child.made;
    // Control: everything is there while the file runs.
    assert.deepEqual(leftovers(made).length, 2 + made.netns.length + made.dirs.length + 1, JSON.stringify(made));
    process.kill(made.filePid, 'SIGTERM');
    await child.exited;
    assert.deepEqual(leftovers(made), [], child.output());
  });

  it('killed with SIGKILL: the run\'s sweep removes what it left, and leaves another run\'s process alone', { timeout: 180_000 }, async () => {
    const token = `cnmrun-${randomBytes(6).toString('hex')}`;
    const runDir = mkdtempSync(join(tmpdir(), 'cnm-test-run.'));
    const other = spawn('sleep', ['600'], { env: { ...process.env, CNM_TEST_RUN: `cnmrun-${randomBytes(6).toString('hex')}` }, stdio: 'ignore' });
    try {
      const child = runChild('sigkill', CHILD, ['--test-timeout=600000'], { CNM_TEST_RUN: token, CNM_TEST_RUN_DIR: runDir });
      const made = await child.made;
      process.kill(made.filePid, 'SIGKILL');
      await child.exited;
      // Nothing ran in the killed file: everything is still there.
      assert.equal(leftovers(made).length, 2 + made.netns.length + made.dirs.length + 1, JSON.stringify(leftovers(made)));
      const env = { ...process.env };
      delete env['CNM_TEST_RUN'];
      delete env['CNM_TEST_RUN_DIR'];
      const sweep = spawnSync('bash', [join(REPO_ROOT, 'scripts/sweep-test-run.sh'), runDir, token], { env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(sweep.status, 0, sweep.stderr);
      assert.deepEqual(leftovers(made), [], sweep.stdout + sweep.stderr);
      assert.equal(existsSync(runDir), false, 'the run dir is removed');
      assert.ok(alive(other.pid!), "another run's process was killed");
    } finally {
      other.kill('SIGKILL');
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
