/**
 * Sandbox churn: N clients each loop "create a sandbox on one network, remove it" until the run's
 * operations are done; the row is completed operations per second (median over rounds). For Docker
 * one operation is container create + start + rm -f, the container on one user network.
 */
import { forEachParallel } from '../lib/exec.js';
import { median, summarize, timeMs } from '../lib/stats.js';
import type { System } from '../lib/systems.js';
import { OP, valueCell, type Cell, type Row } from '../lib/table.js';
import { rotated, type BenchContext } from './context.js';

interface Run {
  opsPerSecond: number;
  latenciesMs: number[];
}

async function churn(system: System, network: string, ops: number, clients: number, tag: string): Promise<Run> {
  const latenciesMs: number[] = [];
  const start = performance.now();
  await forEachParallel(ops, clients, async (i) => {
    latenciesMs.push(
      await timeMs(async () => {
        const id = await system.createWorkload(`bench-${tag}-${i}`, network);
        await system.removeWorkload(id);
      }),
    );
  });
  return { opsPerSecond: ops / ((performance.now() - start) / 1000), latenciesMs };
}

function cellOf(runs: Run[]): Cell | undefined {
  if (runs.length === 0) return undefined;
  const all = summarize(runs.flatMap((r) => r.latenciesMs));
  return valueCell(median(runs.map((r) => r.opsPerSecond)), {
    rounds: runs.map((r) => r.opsPerSecond),
    opLatencyP50Ms: all.p50,
    opLatencyP99Ms: all.p99,
  });
}

export async function throughputRows(ctx: BenchContext): Promise<Row[]> {
  const { systems, options } = ctx;
  const networks = new Map<string, string>();
  for (const s of systems) networks.set(s.name, (await s.client.ok('POST', '/networks/create', { Name: 'bench-tp' })).json().Id);
  const rows: Row[] = [];
  for (const clients of options.concurrency) {
    const runs = new Map(systems.map((s) => [s.name, [] as Run[]]));
    for (let round = 0; round < options.throughputRounds; round++) {
      for (const s of rotated(systems, round + clients)) {
        const run = await churn(s, networks.get(s.name)!, options.throughputOps, clients, `t${clients}-${round}`);
        ctx.log(`  ${s.name}: ${clients} client(s), round ${round + 1}: ${run.opsPerSecond.toFixed(1)} ops/s`);
        runs.get(s.name)!.push(run);
      }
    }
    rows.push({
      operation: OP.churn,
      size: `${clients} client${clients === 1 ? '' : 's'}`,
      unit: 'ops/s',
      comparison: 'higher-is-better',
      cnm: cellOf(runs.get('cnm') ?? []),
      docker: cellOf(runs.get('docker') ?? []),
    });
  }
  for (const s of systems) await removeWhenReleased(ctx, s, networks.get(s.name)!);
  return rows;
}

/**
 * dockerd answers `rm -f` of a container before its endpoint is released, and under concurrent removals
 * it sometimes never releases it (the network stays "in use": 403 "has active endpoints", a known moby
 * bug users clear with `docker network disconnect -f`). Retry for a few seconds, then force-disconnect
 * whatever the network still lists, as a user would, and say so.
 */
async function removeWhenReleased(ctx: BenchContext, s: System, networkId: string): Promise<void> {
  const path = `/networks/${networkId}`;
  const deadline = Date.now() + 30_000;
  let forced = false;
  for (let attempt = 0; ; attempt++) {
    const r = await s.client.call('DELETE', path);
    if (r.status >= 200 && r.status < 300) return;
    if (r.status !== 403 || !r.body.includes('active endpoints')) throw new Error(`${s.name}: DELETE ${path} → ${r.status}: ${r.body}`);
    if (Date.now() > deadline) {
      // Not worth failing the run for: the network goes with the daemon's data at cleanup.
      ctx.log(`  ${s.name}: bench-tp still has active endpoints after 30 s; left for cleanup`);
      return;
    }
    if (attempt >= 10 && !forced) {
      forced = true;
      const stale = Object.keys((await s.client.ok('GET', path)).json().Containers ?? {});
      ctx.log(`  ${s.name}: ${stale.length} endpoint(s) left on bench-tp after the churn; disconnecting them with force`);
      for (const container of stale) await s.client.call('POST', `${path}/disconnect`, { Container: container, Force: true });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
