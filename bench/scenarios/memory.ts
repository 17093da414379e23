/**
 * Daemon resident memory (VmRSS from /proc/PID/status). Two rows per moment: the daemon process alone
 * (cnm's node process; dockerd) and with its helpers (cnm has none; Docker adds its containerd and
 * every containerd-shim-runc-v2). The containers' own processes are never counted.
 */
import type { SystemName } from '../lib/systems.js';
import { OP, valueCell, type Row } from '../lib/table.js';
import type { BenchContext } from './context.js';

export async function memoryRows(ctx: BenchContext, size: string, only?: SystemName[]): Promise<Row[]> {
  const readings = new Map<SystemName, { daemonMiB: number; withHelpersMiB: number }>();
  for (const s of ctx.systems) {
    if (only && !only.includes(s.name)) continue;
    readings.set(s.name, await s.memory());
  }
  const cell = (name: SystemName, pick: 'daemonMiB' | 'withHelpersMiB') => {
    const r = readings.get(name);
    return r ? valueCell(r[pick]) : undefined;
  };
  return [
    { operation: OP.rssDaemon, size, unit: 'MiB', comparison: 'lower-is-better', cnm: cell('cnm', 'daemonMiB'), docker: cell('docker', 'daemonMiB') },
    { operation: OP.rssAll, size, unit: 'MiB', comparison: 'lower-is-better', cnm: cell('cnm', 'withHelpersMiB'), docker: cell('docker', 'withHelpersMiB') },
  ];
}
