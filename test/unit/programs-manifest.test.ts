/**
 * scripts/programs.tsv is the one list of external programs cnm runs: every program spawned from src/,
 * test/ or bench/ has a row, every row is used, each row's `for` matches where it is used, setup.sh
 * installs from it, and the README names every package.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { listSourceFiles, programsOfArgv, scanPrograms, shellCommands } from '../helpers/program-scan.js';

const REPO = resolve(import.meta.dirname, '../..');
const USES = ['daemon', 'test', 'bench'] as const;
type Use = (typeof USES)[number];
const DIR_OF: Record<Use, string> = { daemon: 'src/', test: 'test/', bench: 'bench/' };
/** Not Debian programs: Node.js itself and cnm's own CLI. */
const OWN = new Set(['node', 'cnm']);

interface Row {
  program: string;
  pkg: string;
  for: Use[];
  check: string;
}

function manifest(text = readFileSync(join(REPO, 'scripts/programs.tsv'), 'utf8')): Row[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((line) => {
      const [program, pkg, uses, check, note] = line.split('\t');
      assert.ok(program && pkg && uses && check && note, `a row has five tab-separated columns: ${line}`);
      const list = uses.split(',') as Use[];
      for (const u of list) assert.ok(USES.includes(u), `unknown use ${u} in: ${line}`);
      assert.ok(['-', 'static'].includes(check), `unknown check ${check} in: ${line}`);
      return { program, pkg, for: list, check };
    });
}

function scanRepo() {
  return scanPrograms(REPO, listSourceFiles(REPO, ['src', 'test', 'bench']).map((path) => ({ path })));
}

describe('program manifest (scripts/programs.tsv)', () => {
  const rows = manifest();
  const byName = new Map(rows.map((r) => [r.program, r]));
  const scan = scanRepo();
  const used = new Map([...scan.programs].filter(([p]) => !OWN.has(p)));
  for (const [lib, sites] of scan.libraries) used.set(lib, sites);

  it('the scan resolves every child_process call it meets', () => {
    assert.deepEqual(scan.unresolved, []);
  });

  it('has a row for every program the sources run', () => {
    const missing = [...used].filter(([p]) => !byName.has(p)).map(([p, sites]) => `${p} (run at ${[...sites].slice(0, 3).join(', ')})`);
    assert.deepEqual(missing, [], 'add these to scripts/programs.tsv with their Debian package');
  });

  it('has no row that nothing uses', () => {
    assert.deepEqual(rows.filter((r) => !used.has(r.program)).map((r) => r.program), []);
  });

  it("each row's `for` says exactly where the program is used (src/ daemon, test/ test, bench/ bench)", () => {
    const wrong: string[] = [];
    for (const r of rows) {
      const sites = [...(used.get(r.program) ?? [])];
      for (const u of USES) {
        const usedThere = sites.some((s) => s.startsWith(DIR_OF[u]));
        if (usedThere !== r.for.includes(u)) wrong.push(`${r.program}: ${usedThere ? 'used' : 'not used'} in ${DIR_OF[u]} but for=${r.for.join(',')}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('the README names every package setup installs', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    assert.deepEqual([...new Set(rows.map((r) => r.pkg))].filter((p) => !readme.includes(`\`${p}\``)), []);
  });
});

describe('program scan', () => {
  const scan = (text: string) => scanPrograms('/r', [{ path: '/r/x.ts', text }]);
  const programs = (text: string) => [...scan(text).programs.keys()].sort();

  it('finds commands through wrappers, constants, ternaries, nsenter, ip netns exec and cnm exec', () => {
    const text = `
      import { execFile, spawn as sp } from 'node:child_process';
      import { promisify } from 'node:util';
      const run = promisify(execFile);
      const TOOL = 'tool-a';
      function inNs(ns: string, cmd: string, args: string[]) { return run('ip', ['netns', 'exec', ns, cmd, ...args]); }
      class K { private readonly command: string; constructor(o: { bin?: string }) { this.command = o.bin ?? 'tool-b'; }
        go() { return sp(this.command, []); } }
      const helper = { exec: (sb: string, cmd: string[]) => sp('node', ['cli.js', 'exec', sb, '--', ...cmd]) };
      inNs('n', TOOL, []);
      helper.exec('sb', ['tool-c', '-x']);
      sp(process.execPath, ['-e', '1']);
      sp(flag ? 'tool-d' : 'tool-e', ['--net=/x', 'tool-f']);
      sp('nsenter', ['--net=/x', '-t', '1', 'tool-g']);
    `;
    assert.deepEqual(programs(text), ['ip', 'nsenter', 'tool-a', 'tool-b', 'tool-c', 'tool-d', 'tool-e', 'tool-g']);
  });

  it('parses sh -c scripts: lists, pipes, substitutions, keywords, assignments, redirections, builtins', () => {
    assert.deepEqual(
      shellCommands('set -e; X=1 a1 -q | a2 && for i in $(seq 3); do a3 "$(a4)"; done; exec 3<>/dev/tcp/h/1 && cat <&3; if [ -n "$1" ]; then a5 >/dev/null 2>&1; fi')
        .map((c) => c[0]),
      ['a1', 'a2', 'seq', 'a4', 'a3', 'cat', 'a5'],
    );
    assert.deepEqual(programsOf(['timeout', '2', 'bash', '-c', 'getent hosts x | awk "{print $1}"']), ['awk', 'bash', 'getent', 'timeout']);
    assert.deepEqual(programsOf(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$1" /etc/x; exec "$@"']), ['mount', 'sh', 'unshare']);
  });

  it('reports a child_process call whose command it cannot resolve', () => {
    const r = scan(`import { spawn } from 'node:child_process';\nspawn(pickOne(), []);`);
    assert.equal(r.unresolved.length, 1);
    assert.match(r.unresolved[0]!, /^x\.ts:2: spawn\(pickOne\(\)/);
  });

  it('ignores regex and database exec calls that share the name', () => {
    assert.deepEqual(programs(`const m = /a/.exec('b'); db.exec('CREATE TABLE t (x)');`), []);
  });
});

function programsOf(argv: string[]): string[] {
  return programsOfArgv(argv).sort();
}

describe('scripts/setup.sh', () => {
  it('picks the package of each missing program for the use asked, and the static busybox over a dynamic one', () => {
    const bin = mkdtempSync(join(tmpdir(), 'cnmt-setup-'));
    try {
      for (const r of manifest()) {
        if (r.program.includes('.so') || ['dig', 'ping', 'busybox', 'dnsperf'].includes(r.program)) continue;
        symlinkSync('/bin/true', join(bin, r.program));
      }
      // a dynamically linked "busybox", as Debian's `busybox` package installs
      symlinkSync('/bin/true', join(bin, 'busybox'));
      const dry = (use: string) =>
        execFileSync('bash', [join(REPO, 'scripts/setup.sh'), use, '--dry-run'], { env: { ...process.env, CNM_SETUP_PATH: bin }, encoding: 'utf8' })
          .split('\n')
          .filter(Boolean)
          .sort();
      assert.deepEqual(dry('daemon'), []);
      assert.deepEqual(dry('test'), ['bind9-dnsutils', 'busybox-static', 'iputils-ping']);
      assert.deepEqual(dry('bench'), ['busybox-static', 'dnsperf', 'iputils-ping', 'bind9-dnsutils'].sort());
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('the dry run changes nothing and prints nothing on a machine that has everything for daemon and test', () => {
    const out = execFileSync('bash', [join(REPO, 'scripts/setup.sh'), 'test', '--dry-run'], { encoding: 'utf8' });
    assert.equal(out, '', `missing here: ${out}`);
  });
});
