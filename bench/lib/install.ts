/**
 * The bench's own Debian packages: docker.io (the comparison), busybox-static (the containers' only
 * binary, imported as an image because no registry is reachable) and python3 (the ARP reachability
 * probe).
 * Installed with apt-get when missing; a failure is reported, never fatal, so cnm's rows still run.
 */
import { existsSync } from 'node:fs';
import { execWithInput } from './exec.js';

interface Need {
  pkg: string;
  forDocker: boolean;
  present: () => boolean;
}

const NEEDS: Need[] = [
  { pkg: 'docker.io', forDocker: true, present: () => existsSync('/usr/sbin/dockerd') || existsSync('/usr/bin/dockerd') },
  { pkg: 'busybox-static', forDocker: true, present: () => existsSync('/bin/busybox') && isStaticBusybox() },
  { pkg: 'python3-minimal', forDocker: false, present: () => existsSync('/usr/bin/python3') },
];

function isStaticBusybox(): boolean {
  // Debian's dynamic `busybox` package also installs /bin/busybox; the image needs the static one.
  return existsSync('/usr/share/doc/busybox-static') || !existsSync('/usr/share/doc/busybox');
}

/** Installs what is missing; returns one line per package that is still missing afterwards. */
export async function ensureBenchPackages(log: (line: string) => void, withDocker: boolean): Promise<Map<string, string>> {
  const missing = NEEDS.filter((n) => (withDocker || !n.forDocker) && !n.present()).map((n) => n.pkg);
  const problems = new Map<string, string>();
  if (missing.length === 0) return problems;
  if (process.getuid?.() !== 0) {
    for (const pkg of missing) problems.set(pkg, `${pkg} is not installed (run the bench as root to install it)`);
    return problems;
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = ['env', 'DEBIAN_FRONTEND=noninteractive'];
  const update = await execWithInput(env[0]!, [...env.slice(1), 'apt-get', 'update', '-qq'], '', 300_000);
  const install = await execWithInput(
    env[0]!,
    [...env.slice(1), 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing],
    '',
    900_000,
  );
  for (const need of NEEDS.filter((n) => missing.includes(n.pkg) && !n.present())) {
    const why = install.code !== 0 ? install.stderr : update.stderr;
    problems.set(need.pkg, `apt-get install ${need.pkg} failed: ${why.trim().split('\n').slice(-2).join(' ').slice(0, 300)}`);
  }
  return problems;
}
