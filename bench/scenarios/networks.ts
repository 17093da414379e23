/** network create / network rm: an empty bridge network, default IPAM, through each system's API. */
import { timeMs } from '../lib/stats.js';
import { latencyCell, OP, type Row } from '../lib/table.js';
import { rotated, type BenchContext } from './context.js';

/**
 * Networks alive at once: Docker's default address pools hold 31 networks (16 /16s from 172.16.0.0/12,
 * 16 /20s from 192.168.0.0/16, one taken by the default bridge), and cnm has the same pools.
 */
const BATCH = 25;

export async function networkRows(ctx: BenchContext): Promise<Row[]> {
  const { systems, options } = ctx;
  const created = new Map(systems.map((s) => [s.name, [] as number[]]));
  const removed = new Map(systems.map((s) => [s.name, [] as number[]]));
  for (let start = 0; start < options.reps; start += BATCH) {
    const end = Math.min(options.reps, start + BATCH);
    const ids = new Map(systems.map((s) => [s.name, [] as string[]]));
    for (let i = start; i < end; i++) {
      for (const s of rotated(systems, i)) {
        const body = { Name: `bench-n${i}` };
        created.get(s.name)!.push(await timeMs(async () => ids.get(s.name)!.push((await s.client.ok('POST', '/networks/create', body)).json().Id)));
      }
    }
    for (let i = start; i < end; i++) {
      for (const s of rotated(systems, i)) {
        removed.get(s.name)!.push(await timeMs(() => s.client.ok('DELETE', `/networks/${ids.get(s.name)![i - start]}`)));
      }
    }
  }
  const row = (operation: string, samples: Map<string, number[]>): Row => ({
    operation,
    size: '-',
    unit: 'ms',
    comparison: 'lower-is-better',
    cnm: latencyCell(samples.get('cnm') ?? []),
    docker: latencyCell(samples.get('docker') ?? []),
  });
  return [row(OP.networkCreate, created), row(OP.networkRm, removed)];
}
