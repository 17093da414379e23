/**
 * `npm run bench`: the compiled cnm daemon side by side with a real dockerd on this machine (and, for the
 * connect rows, the kernel floor: the same netlink calls made in this process by cnm's own netlink code,
 * see lib/floor.ts), each driven through its own
 * API, the subjects alternating so machine drift hits all alike. Prints one table and the issue's
 * targets, writes bench/results/<date>.json and <date>.svg. Every namespace and process it starts is
 * removed at the end, on errors and on Ctrl-C. See bench/README.md for what each row measures.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseDaemonArgs } from '../src/daemon/config.js';
import { renderChart } from './lib/chart.js';
import { buildDist } from './lib/build.js';
import { Cleanup } from './lib/cleanup.js';
import { KernelFloor } from './lib/floor.js';
import { missingBenchPackages } from './lib/install.js';
import { BENCH_GROUPS, BENCH_USAGE, parseBenchArgs, type BenchGroup, type BenchOptions } from './lib/options.js';
import { checkerName } from './lib/reach.js';
import { startCnm, startDocker, type System } from './lib/systems.js';
import { evaluateTargets, renderTable, renderTargets, type Row } from './lib/table.js';
import { connectRows } from './scenarios/connect.js';
import type { BenchContext } from './scenarios/context.js';
import { firstConnectRows } from './scenarios/first-connect.js';
import { memoryRows } from './scenarios/memory.js';
import { networkRows } from './scenarios/networks.js';
import { restartRows } from './scenarios/restart.js';
import { throughputRows } from './scenarios/throughput.js';

const benchStart = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - benchStart) / 1000).toFixed(0).padStart(4)} s] ${line}`);

function cnmKernelLabel(options: BenchOptions): string {
  if (options.cnmKernel) return options.cnmKernel;
  const defaults = parseDaemonArgs([]);
  return defaults === 'help' ? 'daemon default' : `${defaults.kernel} (daemon default)`;
}

async function startSystems(options: BenchOptions, cleanup: Cleanup, skipped: string[]): Promise<System[]> {
  const systems: System[] = [];
  const problems = missingBenchPackages();
  for (const why of problems.values()) log(why);
  log('building cnm (npm run build: tsc into dist/) — the bench measures the compiled daemon users run');
  const entry = await buildDist();
  log(`starting cnm: node ${entry.join(' ')} daemon (kernel: ${cnmKernelLabel(options)})`);
  const cnm = await startCnm(options.cnmKernel, entry);
  cleanup.add('cnm daemon', () => cnm.stop());
  systems.push(cnm);
  const dockerProblem = !options.docker ? '--no-docker given' : (problems.get('docker.io') ?? problems.get('busybox-static'));
  if (dockerProblem) {
    skipped.push(`all Docker rows: ${dockerProblem}`);
    return systems;
  }
  log('starting dockerd in its own namespace and importing the busybox image');
  try {
    const docker = await startDocker();
    cleanup.add('dockerd', () => docker.stop());
    systems.push(docker);
  } catch (err) {
    const why = `Docker could not start: ${(err as Error).message.split('\n')[0]!.slice(0, 300)}`;
    log(why);
    skipped.push(`all Docker rows: ${why}`);
  }
  return systems;
}

async function machineDescription(systems: System[], loadAtStart: number): Promise<Record<string, unknown>> {
  const docker = systems.find((s) => s.name === 'docker');
  let dockerVersion: string | undefined;
  try {
    dockerVersion = docker ? (await docker.client.ok('GET', '/version')).json().Version : undefined;
  } catch {
    dockerVersion = undefined;
  }
  return {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    docker: dockerVersion,
    // Other work on the machine skews every row; the 1-minute load average before and after says how much
    // (a run started while the kernel still tears down an earlier run's namespaces is slower all through).
    loadAverage1mAtStart: Number(loadAtStart.toFixed(2)),
    loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
  };
}

async function main(): Promise<void> {
  const parsed = parseBenchArgs(process.argv.slice(2), process.env);
  if (parsed === 'help') {
    process.stdout.write(BENCH_USAGE);
    return;
  }
  const options = parsed;
  const loadAtStart = loadavg()[0]!;
  if (process.getuid?.() !== 0) throw new Error('the bench needs root: it creates network namespaces and runs daemons');
  const cleanup = new Cleanup(log);
  cleanup.exitOnSignals();
  const skipped: string[] = [];
  const rows: Row[] = [];
  try {
    const systems = await startSystems(options, cleanup, skipped);
    const floor = await KernelFloor.create();
    cleanup.add('kernel floor namespaces', () => floor.destroy());
    const ctx: BenchContext = { systems, options, floor, log, skipped };
    const largest = options.sizes[options.sizes.length - 1] ?? 1;

    const want = (group: BenchGroup) => options.only.has(group);
    const filled = want('connect') || want('memory') || want('restart');

    if (want('memory')) log('memory, idle');
    const idleMemory = want('memory') ? await memoryRows(ctx, 'idle') : [];
    if (want('network')) {
      log(`network create / rm (${options.reps} reps)`);
      rows.push(...(await networkRows(ctx)));
    }
    if (want('first-connect')) {
      log(`connect to a new network, and of a new sandbox to its second network (${options.reps} reps)`);
      rows.push(...(await firstConnectRows(ctx)));
    }
    if (want('throughput')) {
      log(`sandbox create+rm throughput (${options.throughputOps} ops × ${options.throughputRounds} rounds per client count)`);
      rows.push(...(await throughputRows(ctx)));
    }
    if (filled) {
      log(`connect / disconnect at ${options.sizes.join(', ')} endpoints (${options.reps} reps)`);
      const { rows: connect, population } = await connectRows(ctx);
      if (want('connect')) rows.push(...connect);
      if (want('memory')) {
        log(`memory at ${largest} endpoints`);
        const fullMemory = await memoryRows(
          ctx,
          String(largest),
          systems.filter((s) => population.fillers.get(s.name)?.length === largest).map((s) => s.name),
        );
        rows.push(idleMemory[0]!, fullMemory[0]!, idleMemory[1]!, fullMemory[1]!);
      }
      if (want('restart') && options.restartReps > 0) {
        log(`daemon restart with ${largest} endpoints (${options.restartReps} per system; reachability by ${checkerName()})`);
        // A daemon that does not come back (dockerd timing out on containerd with 1,000 containers on a loaded
        // machine) loses the restart rows, not the whole run.
        try {
          rows.push(...(await restartRows(ctx, population, largest)));
        } catch (err) {
          const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
          log(`restart rows failed: ${reason}`);
          skipped.push(`daemon restart rows: ${reason}`);
        }
      }
    }
    if (options.only.size < BENCH_GROUPS.length) skipped.push(`rows outside --only ${[...options.only].join(',')}`);

    const machine = await machineDescription(systems, loadAtStart);
    const subtitle =
      `${machine.cpus} × ${machine.cpu}, kernel ${machine.kernel}, node ${machine.node}, Docker ${machine.docker ?? 'not run'}, ` +
      `cnm kernel ${cnmKernelLabel(options)}, ${options.reps} reps${options.quick ? ' (--quick)' : ''}, ` +
      `load average ${String(machine.loadAverage1mAtStart)} at the start, ${String(machine.loadAverage1m)} at the end`;
    const targets = evaluateTargets(rows);
    console.log(`\ncnm vs Docker — ${subtitle}\n`);
    console.log(renderTable(rows));
    console.log('\nTargets (reported, not asserted):');
    console.log(renderTargets(targets));
    if (skipped.length > 0) console.log(`\nSkipped:\n${skipped.map((s) => `  - ${s}`).join('\n')}`);

    await mkdir(options.outDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const json = join(options.outDir, `${stamp}.json`);
    const svg = join(options.outDir, `${stamp}.svg`);
    const report = { machine, cnmKernel: cnmKernelLabel(options), reachability: checkerName(), options, rows, targets, skipped };
    await writeFile(json, JSON.stringify(report, null, 2));
    await writeFile(svg, renderChart(rows, subtitle));
    console.log(`\nrows written to ${json}\nchart written to ${svg}`);
  } finally {
    log('cleaning up');
    await cleanup.run();
    log('done');
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
