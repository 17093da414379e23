/**
 * `npm run bench`: cnm side by side with a real dockerd on this machine, each driven through its own
 * API, the systems alternating so machine drift hits both. Prints a table and writes
 * bench/results/<date>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { dockerAvailable } from './lib/dockerd.js';
import { summarize, timeMs, type Summary } from './lib/stats.js';
import { startCnm, startDocker, type System } from './lib/systems.js';

interface Row {
  operation: string;
  size: string;
  cnm?: Summary;
  docker?: Summary;
}

const REPS = Number(process.env.CNM_BENCH_REPS ?? 30);

async function alternate(systems: System[], reps: number, step: (s: System, i: number) => Promise<number>): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(systems.map((s) => [s.name, []]));
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? systems : [...systems].reverse();
    for (const s of order) samples.get(s.name)!.push(await step(s, i));
  }
  return samples;
}

function rowOf(operation: string, size: string, samples: Map<string, number[]>): Row {
  const cnm = samples.get('cnm');
  const docker = samples.get('docker');
  return { operation, size, cnm: cnm && summarize(cnm), docker: docker && summarize(docker) };
}

async function networkCreateRemove(systems: System[]): Promise<Row[]> {
  const ids = new Map<string, string[]>(systems.map((s) => [s.name, []]));
  const created = await alternate(systems, REPS, (s, i) =>
    timeMs(async () => ids.get(s.name)!.push((await s.client.ok('POST', '/networks/create', { Name: `bench-n${i}` })).json().Id)),
  );
  const removed = await alternate(systems, REPS, (s, i) => timeMs(() => s.client.ok('DELETE', `/networks/${ids.get(s.name)![i]}`)));
  return [rowOf('network create', '-', created), rowOf('network rm', '-', removed)];
}

async function connectDisconnect(systems: System[]): Promise<Row[]> {
  const workloads = new Map<string, string>();
  const nets = new Map<string, string>();
  for (const s of systems) {
    nets.set(s.name, (await s.client.ok('POST', '/networks/create', { Name: 'bench-conn' })).json().Id);
    workloads.set(s.name, await s.createWorkload('bench-w0', 'bridge'));
  }
  const connects: Map<string, number[]> = new Map(systems.map((s) => [s.name, []]));
  const disconnects: Map<string, number[]> = new Map(systems.map((s) => [s.name, []]));
  for (let i = 0; i < REPS; i++) {
    const order = i % 2 === 0 ? systems : [...systems].reverse();
    for (const s of order) {
      const body = { Container: workloads.get(s.name) };
      connects.get(s.name)!.push(await timeMs(() => s.client.ok('POST', `/networks/${nets.get(s.name)}/connect`, body)));
      disconnects.get(s.name)!.push(await timeMs(() => s.client.ok('POST', `/networks/${nets.get(s.name)}/disconnect`, body)));
    }
  }
  for (const s of systems) {
    await s.removeWorkload(workloads.get(s.name)!);
    await s.client.ok('DELETE', `/networks/${nets.get(s.name)}`);
  }
  return [rowOf('connect (running)', '1', connects), rowOf('disconnect (running)', '1', disconnects)];
}

function fmt(n: number | undefined): string {
  return n === undefined || Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1);
}

function printTable(rows: Row[]): string {
  const header = ['operation', 'size', 'cnm p50', 'cnm p99', 'docker p50', 'docker p99', 'docker/cnm (p50)'];
  const lines = rows.map((r) => [
    r.operation,
    r.size,
    fmt(r.cnm?.p50),
    fmt(r.cnm?.p99),
    fmt(r.docker?.p50),
    fmt(r.docker?.p99),
    r.cnm && r.docker ? `${(r.docker.p50 / r.cnm.p50).toFixed(1)}×` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cols: string[]) => '| ' + cols.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [render(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.map(render)].join('\n');
}

async function main(): Promise<void> {
  const systems: System[] = [];
  const why = await dockerAvailable();
  try {
    systems.push(await startCnm());
    if (why) console.log(`Docker rows skipped: ${why}`);
    else {
      try {
        systems.push(await startDocker());
      } catch (err) {
        console.log(`Docker rows skipped: dockerd could not start: ${(err as Error).message.slice(0, 300)}`);
      }
    }
    const rows = [...(await networkCreateRemove(systems)), ...(await connectDisconnect(systems))];
    const table = printTable(rows);
    console.log(`\ncnm vs Docker, latency in ms over the API (${REPS} reps each, alternating)\n`);
    console.log(table);
    const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version };
    await mkdir(join('bench', 'results'), { recursive: true });
    const file = join('bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify({ machine, reps: REPS, rows }, null, 2));
    console.log(`\nrows written to ${file}`);
  } finally {
    for (const s of systems.reverse()) await s.stop().catch((err) => console.error(`stopping ${s.name}: ${err}`));
  }
}

await main();
