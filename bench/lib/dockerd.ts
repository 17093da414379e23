/**
 * A real dockerd (Debian's docker.io) inside a throwaway network namespace with its own data root,
 * exec root and socket, so the machine's network and any system Docker are untouched. A busybox image
 * is made locally with `docker import` (no registry is reachable).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestNetns, deleteTestNetns, netnsPath } from '../../test/helpers/netns.js';
import { SocketClient } from './http.js';

const run = promisify(execFile);
export const BENCH_IMAGE = 'cnm-bench-busybox';

export interface Dockerd {
  client: SocketClient;
  socket: string;
  pid(): number;
  /** Start a long-running container on `network`; returns its ID. */
  runContainer(name: string, network: string): Promise<string>;
  stop(): Promise<void>;
}

export async function dockerAvailable(): Promise<string | undefined> {
  if (!existsSync('/usr/sbin/dockerd') && !existsSync('/usr/bin/dockerd')) return 'dockerd is not installed (apt-get install docker.io)';
  if (!existsSync('/bin/busybox')) return 'busybox is not installed (apt-get install busybox-static)';
  return undefined;
}

export async function startDockerd(): Promise<Dockerd> {
  const ns = createTestNetns('cnmt-dk');
  const base = await mkdtemp(join(tmpdir(), 'cnmt-dk-'));
  const socket = join(base, 'docker.sock');
  const child: ChildProcess = spawn(
    'nsenter',
    [
      `--net=${netnsPath(ns)}`,
      'dockerd',
      '--data-root', join(base, 'data'),
      '--exec-root', join(base, 'exec'),
      '--pidfile', join(base, 'docker.pid'),
      '-H', `unix://${socket}`,
      '--log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const client = new SocketClient(socket);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dockerd exited: ${log}`);
    try {
      if ((await client.call('GET', '/_ping')).status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`dockerd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await importBusybox(base, socket);
  const dockerEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(base, 'cfg') };

  return {
    client,
    socket,
    pid: () => Number.parseInt(readPid(join(base, 'docker.pid')), 10),
    async runContainer(name, network) {
      const { stdout } = await run('docker', ['run', '-d', '--name', name, '--network', network, BENCH_IMAGE, '/bin/sleep', '86400'], {
        env: dockerEnv,
      });
      return stdout.trim();
    },
    async stop() {
      client.close();
      await run('docker', ['rm', '-f', ...(await listContainers(dockerEnv))], { env: dockerEnv }).catch(() => undefined);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r)).catch(() => undefined);
      // Unmount whatever dockerd/containerd left under the temp dirs, deepest first.
      const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((m): m is string => Boolean(m && m.startsWith(base)))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
      deleteTestNetns(ns);
      await rm(base, { recursive: true, force: true });
    },
  };
}

function readPid(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '-1';
  }
}

async function listContainers(env: NodeJS.ProcessEnv): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', '-aq'], { env }).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean);
}

async function importBusybox(base: string, socket: string): Promise<void> {
  const rootfs = join(base, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const cmd of ['sh', 'sleep', 'ping', 'ip', 'cat', 'ls', 'nc', 'wget', 'httpd', 'nslookup']) {
    await symlink('busybox', join(rootfs, 'bin', cmd));
  }
  const tar = join(base, 'rootfs.tar');
  await run('tar', ['-C', rootfs, '-cf', tar, '.']);
  await run('docker', ['import', tar, BENCH_IMAGE], { env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(base, 'cfg') } });
}
