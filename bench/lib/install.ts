/**
 * What the bench needs from Debian, read from the one manifest (scripts/programs.tsv): `npm run bench`
 * runs `scripts/setup.sh bench` first, which installs every row marked `bench`; here the bench only
 * checks what is still missing, so a Docker row that cannot run is reported and cnm's rows still run.
 * busybox must be the static build: the bench copies it into the containers' image.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

const MANIFEST = resolve(import.meta.dirname, '../../scripts/programs.tsv');

interface BenchNeed {
  program: string;
  pkg: string;
  staticBuild: boolean;
}

function benchNeeds(): BenchNeed[] {
  return readFileSync(MANIFEST, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split('\t'))
    .filter(([program, , uses]) => program && !program.includes('.so') && (uses ?? '').split(',').includes('bench'))
    .map(([program, pkg, , check]) => ({ program: program!, pkg: pkg!, staticBuild: check === 'static' }));
}

function onPath(program: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.map((d) => join(d, program)).find((p) => existsSync(p));
}

/** True when the ELF file has no program interpreter (PT_INTERP): statically linked. */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return false; // ELF64 only
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

/** The bench's packages still missing, each with why (keyed by Debian package). */
export function missingBenchPackages(): Map<string, string> {
  const problems = new Map<string, string>();
  for (const need of benchNeeds()) {
    const path = onPath(need.program);
    if (!path) problems.set(need.pkg, `${need.program} is not installed (bash scripts/setup.sh bench, as root, installs ${need.pkg})`);
    else if (need.staticBuild && !isStaticElf(path)) problems.set(need.pkg, `${path} is not a static build (apt-get install ${need.pkg})`);
  }
  return problems;
}
