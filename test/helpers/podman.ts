/**
 * Podman 4 (Debian `podman` 4.3) with its CNI backend for tests, kept off the machine: every podman call
 * runs in a given throwaway network namespace (the cnm daemon's: runtime and daemon share the host
 * namespace) with a containers.conf (CONTAINERS_CONF) that selects `network_backend = "cni"` with the
 * test's CNI plugin and configuration directories, and its own root, runroot (storage driver vfs), tmp
 * dir and event log under a temp dir; containers go into cgroups under a cgroup parent cnmt-pm-<random>.
 * The image is `podman import` of a tar of busybox-static and a few applet links.
 *
 * What podman still puts in fixed places, each removed by cleanup() when it outlives its container:
 * the container's network namespace, a bind mount /run/netns/netns-<uuid> (podman's name, not ours), and
 * libcni's cached result /var/lib/cni/results/<network>-<container id>-<ifname> (removed by the
 * runtime's DEL); the cgroup directories. The import runs in a private mount namespace with a tmpfs over
 * /var/lib, so containers/image's blob-info cache (/var/lib/containers/cache) never reaches the machine.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killQuietly, pidsMentioning, withDescendants } from '../../bench/lib/procs.js';
import { runCommand, type ProbeRun } from './probe.js';

export const PODMAN_IMAGE = 'localhost/cnmt-busybox:latest';
const APPLETS = ['sh', 'sleep', 'ping', 'ip', 'cat'];

export interface Podman {
  base: string;
  /** Containers' cgroups go below this (absolute, cgroupfs). */
  cgroupParent: string;
  /** podman with this instance's global options, in the namespace. */
  podman(args: string[], timeoutMs?: number): Promise<ProbeRun>;
  /** Fixed-path leftovers to remove at cleanup should the container's DEL never come (see above). */
  track(path: string): void;
  cleanup(): Promise<void>;
}

/** `cni.pluginDirs`: more directories of CNI plugins after `binDir` (plugins chained after cnm). */
export async function startPodman(netnsPath: string, cni: { binDir: string; confDir: string; pluginDirs?: string[] }): Promise<Podman> {
  const base = await mkdtemp(join(tmpdir(), 'cnmt-podman-'));
  const cgroupParent = `/cnmt-pm-${randomBytes(4).toString('hex')}`;
  const conf = join(base, 'containers.conf');
  await mkdir(join(base, 'tmp'), { recursive: true });
  await writeFile(
    conf,
    [
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = [${[cni.binDir, ...(cni.pluginDirs ?? [])].map((dir) => `"${dir}"`).join(', ')}]`,
      `network_config_dir = "${cni.confDir}"`,
      '[engine]',
      // No systemd here: cgroupfs and a file for events.
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${join(base, 'events.log')}"`,
      `tmp_dir = "${join(base, 'tmp')}"`,
      'runtime = "runc"',
      '',
    ].join('\n'),
  );
  const globals = ['--root', join(base, 'root'), '--runroot', join(base, 'runroot'), '--storage-driver', 'vfs'];
  const env = { CONTAINERS_CONF: conf, TMPDIR: join(base, 'tmp') };
  const tracked: string[] = [];
  const podman: Podman['podman'] = (args, timeoutMs = 120_000) => runCommand('nsenter', [`--net=${netnsPath}`, 'podman', ...globals, ...args], timeoutMs, env);

  const handle: Podman = {
    base,
    cgroupParent,
    podman,
    track: (path) => tracked.push(path),
    async cleanup() {
      await podman(['rm', '--force', '--time', '0', '--all'], 60_000).catch(() => undefined);
      killQuietly(await withDescendants(await pidsMentioning(base)));
      await new Promise((r) => setTimeout(r, 200));
      for (const path of tracked) {
        if (isMountPoint(path)) await runCommand('umount', ['-l', path]).catch(() => undefined);
        await rm(path, { force: true });
      }
      for (const mount of mountsBelow(base)) await runCommand('umount', ['-l', mount]).catch(() => undefined);
      for (const dir of await cgroupDirs(cgroupParent)) await rmdir(dir).catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    },
  };
  try {
    const tar = await buildRootfsTar(base);
    // containers/image writes its blob-info cache to /var/lib/containers/cache for root: a tmpfs takes it.
    const script = 'mount -t tmpfs cnmt-podman /var/lib && exec podman "$@"';
    const importArgs = [...globals, 'import', '--change', 'CMD ["sh"]', tar, PODMAN_IMAGE];
    const imported = await runCommand('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...importArgs], 120_000, env);
    if (imported.code !== 0) throw new Error(`podman import failed: ${imported.stderr}${imported.stdout}`);
  } catch (err) {
    await handle.cleanup();
    throw err;
  }
  return handle;
}

/** A plain rootfs tarball (what `podman import` takes): busybox-static and a few applet links. */
async function buildRootfsTar(base: string): Promise<string> {
  const rootfs = join(base, 'image', 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
  const tar = join(base, 'image', 'rootfs.tar');
  const r = await runCommand('tar', ['-C', rootfs, '-cf', tar, '.'], 60_000);
  if (r.code !== 0) throw new Error(`tar: ${r.stderr}`);
  return tar;
}

function mountTable(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter(Boolean);
}

function isMountPoint(path: string): boolean {
  return mountTable().includes(path);
}

/** Mount points at or below `dir` (deepest first). */
function mountsBelow(dir: string): string[] {
  return mountTable()
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Every cgroup directory at or below `parent` in every hierarchy (v1 controllers, v2), deepest first. */
async function cgroupDirs(parent: string): Promise<string[]> {
  const roots = ['/sys/fs/cgroup', ...(await readdir('/sys/fs/cgroup', { withFileTypes: true }).catch(() => []))
    .filter((e) => e.isDirectory())
    .map((e) => join('/sys/fs/cgroup', e.name))];
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    if (!existsSync(dir)) return;
    out.push(dir);
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  for (const root of roots) await walk(join(root, parent));
  return out.sort((a, b) => b.length - a.length);
}
