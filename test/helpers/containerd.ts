/**
 * A real containerd (Debian `containerd`) for tests, kept off the machine: started inside a given
 * throwaway network namespace with its own root, state, sockets, opt dir and config under a temp dir
 * (the CRI plugin disabled), its containers in a containerd namespace cnmt-<random>. A busybox image is
 * built by the test as a docker-archive tarball (busybox-static, no registry) and imported with `ctr`.
 *
 * `ctr run --cni` (1.6) reads its CNI configuration from the fixed /etc/cni/net.d and plugins from
 * /opt/cni/bin. `ctr()` therefore runs ctr in a private mount namespace where a tmpfs covers /opt (with the
 * test's plugin directory bound at /opt/cni/bin) and an overlay on a tmpfs covers /etc (with the test's
 * net.d at /etc/cni/net.d): nothing is written to the machine's /etc or /opt, and the mounts vanish
 * with the ctr process. Cleanup kills containerd and every process mentioning the temp dir (shims,
 * containers), unmounts what is mounted below it and removes the containerd namespace's cgroups.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killQuietly, pidsMentioning, withDescendants } from '../../bench/lib/procs.js';
import { runCommand, type ProbeRun } from './probe.js';
import { noteForSweep, onKilled } from './teardown.js';

export const TEST_IMAGE = 'docker.io/library/cnmt-busybox:latest';
const APPLETS = ['sh', 'sleep', 'ping', 'ip', 'cat', 'ls', 'ifconfig', 'nc'];

export interface Containerd {
  base: string;
  socket: string;
  /** The containerd namespace of the test's containers. */
  namespace: string;
  /** ctr against this containerd, in the network namespace at `netnsPath`, with CNI dirs mounted (see above). */
  ctr(args: string[], opts?: { cni?: { binDir: string; confDir: string }; timeoutMs?: number }): Promise<ProbeRun>;
  cleanup(): Promise<void>;
}

export async function startContainerd(netnsPath: string): Promise<Containerd> {
  const base = await mkdtemp(join(tmpdir(), 'cnmt-ctd-'));
  const note = noteForSweep('dir', base);
  const socket = join(base, 'containerd.sock');
  const namespace = `cnmt-${randomBytes(4).toString('hex')}`;
  const config = join(base, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(base, 'root')}"`,
      `state = "${join(base, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${join(base, 'containerd.sock.ttrpc')}"`,
      '[debug]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(base, 'opt')}"`,
      '',
    ].join('\n'),
  );
  let log = '';
  const child: ChildProcess = spawn('nsenter', [`--net=${netnsPath}`, 'containerd', '--config', config, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));

  const ctr: Containerd['ctr'] = (args, opts = {}) => {
    // A run's FIFOs and runc state go below the temp dir too (ctr's defaults are under /run/containerd).
    const own = args[0] === 'run' ? ['run', '--fifo-dir', join(base, 'fifo'), '--runc-root', join(base, 'runc'), ...args.slice(1)] : args;
    const argv = ['-a', socket, '-n', namespace, ...own];
    if (!opts.cni) return runCommand('nsenter', [`--net=${netnsPath}`, 'ctr', ...argv], opts.timeoutMs ?? 60_000);
    const t = join(base, 'mnt');
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const script = [
      'set -e',
      `mkdir -p ${q(t)}`,
      `mount -t tmpfs cnmt-ctr ${q(t)}`,
      `mkdir -p ${q(`${t}/up/cni/net.d`)} ${q(`${t}/work`)} ${q(`${t}/opt`)}`,
      `mount -t overlay cnmt-ctr -o lowerdir=/etc,upperdir=${q(`${t}/up`)},workdir=${q(`${t}/work`)} /etc`,
      `mount --bind ${q(opts.cni.confDir)} /etc/cni/net.d`,
      'mount -t tmpfs cnmt-ctr /opt',
      'mkdir -p /opt/cni/bin',
      `mount --bind ${q(opts.cni.binDir)} /opt/cni/bin`,
      `exec ctr ${argv.map(q).join(' ')}`,
    ].join('\n');
    return runCommand('nsenter', [`--net=${netnsPath}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], opts.timeoutMs ?? 60_000);
  };

  const handle: Containerd = {
    base,
    socket,
    namespace,
    ctr,
    async cleanup() {
      killQuietly(await withDescendants([child.pid ?? -1, ...(await pidsMentioning(base))].filter((p) => p > 0)));
      await new Promise((r) => setTimeout(r, 200));
      for (const mount of mountsBelow(base)) await runCommand('umount', ['-l', mount]).catch(() => undefined);
      for (const dir of await cgroupDirs(namespace)) await rmdir(dir).catch(() => undefined);
      await rm(base, { recursive: true, force: true });
      note.forget();
      unregister();
    },
  };
  // Killed by the test runner: the same cleanup (test/helpers/teardown.ts).
  const unregister = onKilled(() => handle.cleanup());
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`containerd exited: ${log}`);
      if ((await ctr(['version']).catch(() => ({ code: -1 }))).code === 0) break;
      if (Date.now() > deadline) throw new Error(`containerd did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const tar = await buildBusyboxArchive(base);
    const imported = await ctr(['images', 'import', tar], { timeoutMs: 120_000 });
    if (imported.code !== 0) throw new Error(`image import failed: ${imported.stderr}${imported.stdout}`);
  } catch (err) {
    await handle.cleanup();
    throw err;
  }
  return handle;
}

/** A docker-archive (`docker save` layout) of one layer: busybox-static and a few applet links. */
async function buildBusyboxArchive(base: string): Promise<string> {
  const dir = join(base, 'image');
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
  const out = join(dir, 'archive');
  await mkdir(join(out, 'layer'), { recursive: true });
  const layer = join(out, 'layer', 'layer.tar');
  await mustRun('tar', ['-C', rootfs, '-cf', layer, '.']);
  const diffId = `sha256:${createHash('sha256').update(await readFile(layer)).digest('hex')}`;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const imageConfig = JSON.stringify({
    architecture: arch,
    os: 'linux',
    config: { Cmd: ['sh'], Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  });
  const configName = `${createHash('sha256').update(imageConfig).digest('hex')}.json`;
  await writeFile(join(out, configName), imageConfig);
  await writeFile(join(out, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['cnmt-busybox:latest'], Layers: ['layer/layer.tar'] }]));
  const tar = join(dir, 'image.tar');
  await mustRun('tar', ['-C', out, '-cf', tar, 'manifest.json', configName, 'layer']);
  return tar;
}

async function mustRun(cmd: string, args: string[]): Promise<void> {
  const r = await runCommand(cmd, args, 60_000);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Mount points at or below `dir` (deepest first), from this process's mount table. */
function mountsBelow(dir: string): string[] {
  const table = readFileSync('/proc/self/mounts', 'utf8');
  return table
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** The cgroup directories runc made for the containerd namespace (/<namespace>/<id>), deepest first. */
async function cgroupDirs(namespace: string): Promise<string[]> {
  const root = join('/sys/fs/cgroup', namespace);
  const { readdir } = await import('node:fs/promises');
  const children = await readdir(root, { withFileTypes: true }).catch(() => []);
  return [...children.filter((c) => c.isDirectory()).map((c) => join(root, c.name)), root];
}
