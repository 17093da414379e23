/**
 * A real dockerd (Debian's docker.io) inside a throwaway network namespace with its own data root,
 * exec root and socket, so the machine's network and any system Docker are untouched. A busybox image
 * is made locally by importing a busybox-static rootfs through the API (no registry is reachable).
 * dockerd starts its own containerd; both and every shim carry the temp dir in their command line,
 * which is how they are counted for RSS and found again on cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, rmdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestNetns, deleteTestNetns, netnsPath } from '../../test/helpers/netns.js';
import { noteForSweep, onKilled } from '../../test/helpers/teardown.js';
import { execOk, execWithInput, sleep } from './exec.js';
import { SocketClient } from './http.js';
import { killQuietly, pidsMentioning, withDescendants } from './procs.js';

export const BENCH_IMAGE = 'cnm-bench-busybox';
const BUSYBOX_APPLETS = ['sh', 'sleep', 'ping', 'ip', 'cat', 'ls', 'nc', 'wget', 'httpd', 'nslookup'];

export interface RestartTiming {
  /** From SIGTERM to the old process having exited. */
  stoppedMs: number;
  /** From SIGTERM until the new daemon answers /_ping. */
  apiUpMs: number;
}

export interface Dockerd {
  client: SocketClient;
  socket: string;
  hostNetnsPath: string;
  pid(): number;
  /** dockerd plus its containerd and every containerd-shim it runs (not the containers' own processes). */
  helperPids(): Promise<number[]>;
  /** SIGTERM, wait for exit (dockerd stops its containers first), start again, wait for the API. */
  restart(): Promise<RestartTiming>;
  stop(): Promise<void>;
}

/** Why Docker rows cannot run here, or undefined when they can (the installer runs separately). */
export async function dockerAvailable(): Promise<string | undefined> {
  if (!existsSync('/usr/sbin/dockerd') && !existsSync('/usr/bin/dockerd')) return 'dockerd is not installed (apt-get install docker.io)';
  if (!existsSync('/bin/busybox')) return 'busybox is not installed (apt-get install busybox-static)';
  return undefined;
}

/** `extraArgs`: more dockerd flags (tests pass `--bridge none --iptables=false`). */
export async function startDockerd(extraArgs: string[] = []): Promise<Dockerd> {
  const ns = createTestNetns('cnmt-dk');
  const base = await mkdtemp(join(tmpdir(), 'cnmt-dk-'));
  const note = noteForSweep('dir', base);
  const socket = join(base, 'docker.sock');
  const client = new SocketClient(socket);
  const containerIds = new Set<string>();
  let child: ChildProcess | undefined;
  let log = '';

  const launch = async (deadlineMs: number): Promise<void> => {
    log = '';
    const proc = spawn(
      'nsenter',
      [
        `--net=${netnsPath(ns)}`,
        'dockerd',
        '--data-root', join(base, 'data'),
        '--exec-root', join(base, 'exec'),
        '--pidfile', join(base, 'docker.pid'),
        '-H', `unix://${socket}`,
        '--log-level', 'error',
        ...extraArgs,
      ],
      // Its own process group: a Ctrl-C on the terminal reaches only the bench, which then stops
      // dockerd in order (containers first) instead of racing it.
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    child = proc;
    proc.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`dockerd exited: ${log}`);
      try {
        if ((await client.call('GET', '/_ping')).status === 200) return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`dockerd did not start: ${log}`);
      await sleep(20);
    }
  };

  const terminate = async (signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return true;
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), timeoutMs);
      proc.once('close', () => r(true));
    });
    proc.kill(signal);
    const done = await exited;
    clearTimeout(timer);
    return done;
  };

  const dockerd: Dockerd = {
    client,
    socket,
    hostNetnsPath: netnsPath(ns),
    pid: () => child?.pid ?? -1,
    async helperPids() {
      return [dockerd.pid(), ...(await pidsMentioning(base)).filter((p) => p !== dockerd.pid())];
    },
    async restart() {
      const t0 = performance.now();
      if (!(await terminate('SIGTERM', 300_000))) throw new Error('dockerd did not stop within 300 s');
      const stoppedMs = performance.now() - t0;
      // With many restart-policy containers dockerd answers only after restoring them: minutes.
      await launch(900_000);
      return { stoppedMs, apiUpMs: performance.now() - t0 };
    },
    async stop() {
      // Remember the containers so their cgroups can be removed if a shim had to be killed.
      try {
        const list = (await client.ok('GET', '/containers/json?all=1', undefined, 15_000)).json<{ Id: string }[]>();
        for (const c of list) containerIds.add(c.Id);
      } catch {
        /* daemon already gone */
      }
      client.close();
      // Without live-restore, dockerd stops every container on SIGTERM, then its containerd.
      if (!(await terminate('SIGTERM', 120_000))) await terminate('SIGKILL', 10_000);
      // Whatever is left (containerd, shims and the containers under them) is killed outright.
      const leftovers = await withDescendants(await pidsMentioning(base));
      killQuietly(leftovers);
      if (leftovers.length > 0) await sleep(500);
      await removeContainerCgroups(containerIds);
      // Unmount whatever dockerd/containerd left under the temp dir, deepest first.
      const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((m): m is string => Boolean(m && m.startsWith(base)))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) await execWithInput('umount', ['-l', m]).catch(() => undefined);
      deleteTestNetns(ns);
      await rm(base, { recursive: true, force: true });
      note.forget();
      unregister();
    },
  };
  // A test file killed by the runner stops it too (test/helpers/teardown.ts; nothing in the bench).
  const unregister = onKilled(() => dockerd.stop());

  try {
    await launch(120_000);
    await importBusybox(base, client);
  } catch (err) {
    await dockerd.stop().catch(() => undefined);
    throw err;
  }
  return dockerd;
}

/** runc's cgroupfs directories (<controller>/docker/<id>) stay behind only when a shim was killed. */
async function removeContainerCgroups(ids: Set<string>): Promise<void> {
  if (ids.size === 0 || !existsSync('/sys/fs/cgroup')) return;
  const roots = (await readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((c) => join('/sys/fs/cgroup', c, 'docker'));
  for (const root of roots) {
    for (const id of ids) await rmdir(join(root, id)).catch(() => undefined);
  }
}

async function importBusybox(base: string, client: SocketClient): Promise<void> {
  const rootfs = join(base, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const cmd of BUSYBOX_APPLETS) await symlink('busybox', join(rootfs, 'bin', cmd));
  const tar = join(base, 'rootfs.tar');
  await execOk('tar', ['-C', rootfs, '-cf', tar, '.']);
  const r = await client.send('POST', `/images/create?fromSrc=-&repo=${BENCH_IMAGE}&tag=latest`, await readFile(tar), 'application/x-tar');
  if (r.status !== 200 || r.body.includes('"error')) throw new Error(`image import failed: ${r.status} ${r.body.slice(0, 300)}`);
}
