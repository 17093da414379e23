/**
 * connect / disconnect of a running sandbox (Docker: a running container) to a network that already
 * holds 1, 100, 1,000 … endpoints, next to the kernel floor doing the same kernel work with the tools.
 * The network is filled up between sizes (fill time is not measured); the filled network is handed on
 * to the memory and restart scenarios.
 */
import { forEachParallel } from '../lib/exec.js';
import { timeMs } from '../lib/stats.js';
import type { System, SystemName } from '../lib/systems.js';
import { latencyCell, OP, type Row } from '../lib/table.js';
import { rotated, type BenchContext } from './context.js';

/** The big network and the sandboxes / containers on it, per system. */
export interface Population {
  network: Map<SystemName, string>;
  fillers: Map<SystemName, string[]>;
}

interface Subject {
  name: SystemName | 'floor';
  connect(): Promise<unknown>;
  disconnect(): Promise<unknown>;
}

/** The big network's bridge, named so the restart rows can probe endpoints on it. */
export const BENCH_BRIDGE = 'cnmbconn0';

/** Parallel clients used to fill (not measured): enough to keep each daemon busy. */
const FILL_PARALLEL: Record<SystemName, number> = { cnm: 4, docker: 8 };

export function maxEndpoints(ctx: BenchContext, name: SystemName): number {
  return name === 'docker' ? ctx.options.dockerMaxEndpoints : Infinity;
}

async function fill(ctx: BenchContext, s: System, network: string, fillers: string[], target: number): Promise<void> {
  if (fillers.length >= target) return;
  const start = performance.now();
  const from = fillers.length;
  await forEachParallel(target - from, FILL_PARALLEL[s.name], async (i) => {
    fillers.push(await s.createWorkload(`bench-f${from + i}`, network, { survivesRestart: true }));
  });
  ctx.log(`  ${s.name}: ${target} endpoints on the network (filled in ${((performance.now() - start) / 1000).toFixed(1)} s)`);
}

export async function connectRows(ctx: BenchContext): Promise<{ rows: Row[]; population: Population }> {
  const { systems, options, floor } = ctx;
  const largest = options.sizes[options.sizes.length - 1] ?? 1;
  // A /20 holds 4,093 endpoints besides the gateway; go wider only when asked for more.
  const subnet = largest + 8 > 4093 ? '10.123.0.0/16' : '10.123.0.0/20';
  const population: Population = { network: new Map(), fillers: new Map() };
  const workloads = new Map<SystemName, string>();
  for (const s of systems) {
    const id = (await s.client.ok('POST', '/networks/create', {
      Name: 'bench-conn',
      IPAM: { Config: [{ Subnet: subnet }] },
      Options: { 'com.docker.network.bridge.name': BENCH_BRIDGE },
    })).json().Id;
    population.network.set(s.name, id);
    population.fillers.set(s.name, []);
    // The measured sandbox runs on the default bridge network and is connected to bench-conn and back.
    workloads.set(s.name, await s.createWorkload('bench-w0', 'bridge'));
  }

  const connectRowsBySize: Row[] = [];
  const disconnectRowsBySize: Row[] = [];
  for (const size of options.sizes) {
    const active = systems.filter((s) => size <= maxEndpoints(ctx, s.name));
    for (const s of systems.filter((x) => !active.includes(x))) {
      ctx.skipped.push(`${s.name} connect/disconnect @${size}: above --docker-max-endpoints ${maxEndpoints(ctx, s.name)}`);
    }
    for (const s of active) await fill(ctx, s, population.network.get(s.name)!, population.fillers.get(s.name)!, size);
    await floor.fillTo(size);

    const subjects: Subject[] = [
      ...active.map((s) => {
        const path = `/networks/${population.network.get(s.name)}`;
        const body = { Container: workloads.get(s.name) };
        return {
          name: s.name,
          connect: () => s.client.ok('POST', `${path}/connect`, body),
          disconnect: () => s.client.ok('POST', `${path}/disconnect`, body),
        };
      }),
      { name: 'floor', connect: () => floor.connect(), disconnect: () => floor.disconnect() },
    ];
    const connects = new Map(subjects.map((s) => [s.name, [] as number[]]));
    const disconnects = new Map(subjects.map((s) => [s.name, [] as number[]]));
    for (let i = 0; i < options.reps; i++) {
      for (const subject of rotated(subjects, i)) {
        connects.get(subject.name)!.push(await timeMs(subject.connect));
        disconnects.get(subject.name)!.push(await timeMs(subject.disconnect));
      }
    }
    for (const [operation, samples, into] of [
      [OP.connect, connects, connectRowsBySize],
      [OP.disconnect, disconnects, disconnectRowsBySize],
    ] as const) {
      into.push({
        operation,
        size: String(size),
        unit: 'ms',
        comparison: 'lower-is-better',
        cnm: latencyCell(samples.get('cnm') ?? []),
        docker: latencyCell(samples.get('docker') ?? []),
        floor: latencyCell(samples.get('floor') ?? []),
      });
    }
    ctx.log(`  connect/disconnect @${size} done`);
  }
  for (const s of systems) await s.removeWorkload(workloads.get(s.name)!);
  return { rows: [...connectRowsBySize, ...disconnectRowsBySize], population };
}
