/** network create / network rm: an empty bridge network, default IPAM, through each system's API. */
import { timeMs } from '../lib/stats.js';
import { latencyCell, OP, type Row } from '../lib/table.js';
import { rotated, type BenchContext } from './context.js';

export async function networkRows(ctx: BenchContext): Promise<Row[]> {
  const { systems, options } = ctx;
  const created = new Map(systems.map((s) => [s.name, [] as number[]]));
  const removed = new Map(systems.map((s) => [s.name, [] as number[]]));
  const ids = new Map(systems.map((s) => [s.name, [] as string[]]));
  for (let i = 0; i < options.reps; i++) {
    for (const s of rotated(systems, i)) {
      created.get(s.name)!.push(
        await timeMs(async () => ids.get(s.name)!.push((await s.client.ok('POST', '/networks/create', { Name: `bench-n${i}` })).json().Id)),
      );
    }
  }
  for (let i = 0; i < options.reps; i++) {
    for (const s of rotated(systems, i)) {
      removed.get(s.name)!.push(await timeMs(() => s.client.ok('DELETE', `/networks/${ids.get(s.name)![i]}`)));
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
