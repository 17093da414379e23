/**
 * `npm run bench:dns`: the embedded DNS of cnm and of Docker, side by side in one run, measured with
 * dnsperf from inside a sandbox / container against 127.0.0.11 (each system's own resolver address):
 * a local name, an alias shared by 10 sandboxes, and a name nobody has (forwarded to an upstream that
 * answers NXDOMAIN: a FakeUpstream listening in each system's throwaway host namespace, reached the same
 * way by both — Docker through the container's --dns, cnm through the sandbox's).
 *
 * Two dnsperf runs per row: a saturating one (queries per second, average latency, lost queries) and a
 * fixed-rate one with per-query output for the p99 latency at a load both can sustain.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildDist } from './lib/build.js';
import { dockerAvailable } from './lib/dockerd.js';
import { percentile } from './lib/stats.js';
import { startCnm, startDocker, type System } from './lib/systems.js';

const execFileAsync = promisify(execFile);
const SECONDS = Number(process.env.CNM_BENCH_DNS_SECONDS ?? 10);
const FIXED_QPS = Number(process.env.CNM_BENCH_DNS_QPS ?? 10_000);
const ALIAS_MEMBERS = 10;
const SUBNET = { cnm: '10.250.0', docker: '10.251.0' } as const;

export interface DnsRow {
  query: string;
  system: 'cnm' | 'docker';
  qps: number;
  avgMs: number;
  lost: number;
  sent: number;
  p99Ms: number;
}

interface Prepared {
  system: System;
  /** Network namespace file of the client sandbox / container. */
  clientNetns: string;
  cleanup(): Promise<void>;
}

const QUERIES: Array<{ label: string; name: string }> = [
  { label: 'local name', name: 'web' },
  { label: `alias, ${ALIAS_MEMBERS} addresses`, name: 'pool' },
  { label: 'NXDOMAIN (forwarded)', name: 'nosuchname.example' },
];

/** Serve NXDOMAIN on <address>:53 inside the system's host namespace, from a process of its own. */
async function upstreamIn(hostNetns: string, address: string): Promise<{ close(): void }> {
  const child = spawn('nsenter', [`--net=${hostNetns}`, process.execPath, '--import', 'tsx', join('bench', 'dns-upstream.ts'), address], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
  });
  return { close: () => child.kill('SIGTERM') };
}

async function prepareCnm(): Promise<Prepared> {
  const system = await startCnm(undefined, await buildDist());
  const c = system.client;
  const net = SUBNET.cnm;
  await c.ok('POST', '/networks/create', { Name: 'dnsb', IPAM: { Config: [{ Subnet: `${net}.0/24`, Gateway: `${net}.1` }] } });
  const up = await upstreamIn(`/proc/${system.daemonPid()}/ns/net`, `${net}.1`);
  const sandbox = (name: string, aliases: string[] = []) =>
    c.ok('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: 'dnsb', Aliases: aliases }], Dns: [`${net}.1`] });
  await sandbox('web');
  for (let i = 0; i < ALIAS_MEMBERS; i++) await sandbox(`pool${i}`, ['pool']);
  const client = (await sandbox('client')).json();
  const inspect = (await c.ok('GET', `/cnm/v1/sandboxes/${client.Id}`)).json();
  return { system, clientNetns: inspect.NetnsPath, cleanup: async () => { up.close(); await system.stop(); } };
}

async function prepareDocker(): Promise<Prepared> {
  const system = await startDocker();
  const c = system.client;
  const net = SUBNET.docker;
  await c.ok('POST', '/networks/create', { Name: 'dnsb', IPAM: { Config: [{ Subnet: `${net}.0/24`, Gateway: `${net}.1` }] } });
  const up = await upstreamIn(`/proc/${system.daemonPid()}/ns/net`, `${net}.1`);
  const container = async (name: string, aliases: string[] = []) => {
    await c.ok('POST', `/containers/create?name=${name}`, {
      Image: 'cnm-bench-busybox', Cmd: ['/bin/sleep', '86400'],
      HostConfig: { NetworkMode: 'dnsb', Dns: [`${net}.1`] },
      NetworkingConfig: { EndpointsConfig: { dnsb: { Aliases: aliases } } },
    });
    await c.ok('POST', `/containers/${name}/start`);
    return (await c.ok('GET', `/containers/${name}/json`)).json().State.Pid as number;
  };
  await container('web');
  for (let i = 0; i < ALIAS_MEMBERS; i++) await container(`pool${i}`, ['pool']);
  const pid = await container('client');
  return { system, clientNetns: `/proc/${pid}/ns/net`, cleanup: async () => { up.close(); await system.stop(); } };
}

async function dnsperf(netns: string, file: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('nsenter', [`--net=${netns}`, 'dnsperf', '-s', '127.0.0.11', '-d', file, ...args], {
    maxBuffer: 512 * 1024 * 1024,
  });
  return stdout;
}

function field(out: string, label: string): number {
  const m = new RegExp(`${label}:\\s+([0-9.]+)`).exec(out);
  return m ? Number(m[1]) : Number.NaN;
}

async function measure(p: Prepared, file: string, query: string): Promise<DnsRow> {
  const saturated = await dnsperf(p.clientNetns, file, ['-l', String(SECONDS), '-q', '200', '-t', '2']);
  // Verbose lines end in the query's latency in seconds: "> NOERROR web A 0.000123".
  const fixed = await dnsperf(p.clientNetns, file, ['-l', String(Math.min(SECONDS, 5)), '-Q', String(FIXED_QPS), '-t', '2', '-v']);
  const latencies = fixed
    .split('\n')
    .filter((l) => l.startsWith('> '))
    .map((l) => Number(l.trim().split(/\s+/).at(-1)) * 1000)
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  return {
    query, system: p.system.name, qps: field(saturated, 'Queries per second'),
    avgMs: field(saturated, 'Average Latency \\(s\\)') * 1000, lost: field(saturated, 'Queries lost'),
    sent: field(saturated, 'Queries sent'), p99Ms: latencies.length > 0 ? percentile(latencies, 99) : Number.NaN,
  };
}

export async function runDnsBench(): Promise<DnsRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'cnmt-dnsperf-'));
  const prepared: Prepared[] = [];
  try {
    prepared.push(await prepareCnm());
    const whyNot = await dockerAvailable();
    if (whyNot) console.log(`Docker rows skipped: ${whyNot}`);
    else prepared.push(await prepareDocker());
    const rows: DnsRow[] = [];
    for (const [i, q] of QUERIES.entries()) {
      const file = join(dir, `q${i}.txt`);
      await writeFile(file, `${q.name} A\n`);
      // Alternate which system goes first so machine drift hits both.
      const order = i % 2 === 0 ? prepared : [...prepared].reverse();
      for (const p of order) rows.push(await measure(p, file, q.label));
    }
    return rows;
  } finally {
    for (const p of prepared) await p.cleanup().catch((err: unknown) => console.error(err));
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatDnsRows(rows: DnsRow[]): string {
  const lines = ['| query | system | QPS | avg ms | p99 ms @ fixed rate | lost / sent | cnm QPS / Docker QPS |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const other = rows.find((o) => o.query === r.query && o.system !== r.system);
    const ratio = r.system === 'cnm' && other ? `${(r.qps / other.qps).toFixed(2)}×` : '';
    lines.push(`| ${r.query} | ${r.system} | ${Math.round(r.qps)} | ${r.avgMs.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${r.lost} / ${r.sent} | ${ratio} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runDnsBench();
  console.log(`dnsperf ${SECONDS}s saturating runs; p99 from a ${FIXED_QPS} QPS run\n`);
  console.log(formatDnsRows(rows));
  await writeFile(join('bench', 'results', `dns-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`), JSON.stringify(rows, null, 2));
}
