/**
 * Connects that nothing was warmed up for, each rep on new objects (set-up and tear-down not timed):
 * - first endpoint of a new network: a network is created, then a running sandbox (on another
 *   user-defined network) is connected to it; the bridge comes up with its first port. The floor
 *   connects its sandbox to a bridge made for that rep.
 * - a sandbox already on another network: a sandbox (Docker: a container) is created on one
 *   user-defined network, then connected to a second one (its second interface, eth1). The floor
 *   connects its sandbox to its shared bridge.
 * cnm (and the floor, which uses cnm's kernel code) destroys removed links in the background, holding
 * the kernel's rtnl lock through RCU grace periods; after each tear-down the bench waits until that is
 * done (untimed), so one subject's deferred deletions are not billed to the next one's connect.
 */
import { TOMBSTONE_GROUP } from '../../src/kernel/types.js';
import { execOk, sleep } from '../lib/exec.js';
import { timeMs } from '../lib/stats.js';
import type { System } from '../lib/systems.js';
import { latencyCell, OP, type Row } from '../lib/table.js';
import { rotated, type BenchContext } from './context.js';

interface Subject {
  name: string;
  prepare(rep: number): Promise<void>;
  connect(): Promise<unknown>;
  teardown(): Promise<void>;
}

/** Subnets clear of Docker's default pools (and of the connect rows' 10.123.0.0/20). */
const HOME_SUBNET = '10.124.0.0/24';
const SECOND_SUBNET = '10.124.1.0/24';
const NEW_SUBNET = '10.124.2.0/24';

export async function firstConnectRows(ctx: BenchContext): Promise<Row[]> {
  const { systems, floor } = ctx;
  const homes = new Map<string, string>();
  const seconds = new Map<string, string>();
  const resident = new Map<string, string>();
  const residentOnSecond = new Map<string, string>();
  for (const s of systems) {
    homes.set(s.name, await createNetwork(s, 'bench-home', HOME_SUBNET));
    seconds.set(s.name, await createNetwork(s, 'bench-second', SECOND_SUBNET));
    // The sandbox connected to each new network, running on bench-home throughout.
    resident.set(s.name, await s.createWorkload('bench-r0', 'bench-home'));
    // bench-second is not new: it already holds one endpoint.
    residentOnSecond.set(s.name, await s.createWorkload('bench-r1', 'bench-second'));
  }

  const newNetwork: Subject[] = systems.map((s) => {
    let network = '';
    const sandbox = resident.get(s.name)!;
    return {
      name: s.name,
      async prepare(rep) {
        network = await createNetwork(s, `bench-new${rep}`, NEW_SUBNET);
      },
      connect: () => s.client.ok('POST', `/networks/${network}/connect`, { Container: sandbox }),
      async teardown() {
        await s.client.ok('POST', `/networks/${network}/disconnect`, { Container: sandbox });
        await s.client.ok('DELETE', `/networks/${network}`);
        await retiredLinksGone(s.hostNetnsPath);
      },
    };
  });
  newNetwork.push({
    name: 'floor',
    prepare: () => floor.prepareFresh(),
    connect: () => floor.connectFresh(),
    teardown: async () => {
      await floor.teardownFresh();
      await floor.settle();
    },
  });

  const secondInterface: Subject[] = systems.map((s) => {
    let sandbox = '';
    return {
      name: s.name,
      async prepare(rep) {
        sandbox = await s.createWorkload(`bench-s${rep}`, 'bench-home');
      },
      connect: () => s.client.ok('POST', `/networks/${seconds.get(s.name)}/connect`, { Container: sandbox }),
      async teardown() {
        await s.removeWorkload(sandbox);
        await retiredLinksGone(s.hostNetnsPath);
      },
    };
  });
  secondInterface.push({
    name: 'floor',
    prepare: async () => undefined,
    connect: () => floor.connect(),
    teardown: async () => {
      await floor.disconnect();
      await floor.settle();
    },
  });

  const rows = [
    await measure(ctx, OP.connectNewNetwork, 'first endpoint', newNetwork),
    await measure(ctx, OP.connectSecond, 'its eth1', secondInterface),
  ];
  for (const s of systems) {
    await s.removeWorkload(resident.get(s.name)!);
    await s.removeWorkload(residentOnSecond.get(s.name)!);
    await s.client.ok('DELETE', `/networks/${homes.get(s.name)}`);
    await s.client.ok('DELETE', `/networks/${seconds.get(s.name)}`);
  }
  return rows;
}

/** Wait (at most 2 s) until the namespace holds no link cnm retired but has not destroyed yet. */
async function retiredLinksGone(netnsPath: string): Promise<void> {
  const deadline = performance.now() + 2000;
  while (performance.now() < deadline) {
    const out = await execOk('nsenter', [`--net=${netnsPath}`, 'ip', '-o', 'link', 'show', 'group', String(TOMBSTONE_GROUP)]);
    if (out.trim() === '') return;
    await sleep(5);
  }
}

async function createNetwork(s: System, name: string, subnet: string): Promise<string> {
  return (await s.client.ok('POST', '/networks/create', { Name: name, IPAM: { Config: [{ Subnet: subnet }] } })).json().Id;
}

async function measure(ctx: BenchContext, operation: string, size: string, subjects: Subject[]): Promise<Row> {
  const samples = new Map(subjects.map((s) => [s.name, [] as number[]]));
  for (let i = 0; i < ctx.options.reps; i++) {
    for (const subject of rotated(subjects, i)) {
      await subject.prepare(i);
      samples.get(subject.name)!.push(await timeMs(subject.connect));
      await subject.teardown();
    }
  }
  ctx.log(`  ${operation} done`);
  return {
    operation,
    size,
    unit: 'ms',
    comparison: 'lower-is-better',
    cnm: latencyCell(samples.get('cnm') ?? []),
    docker: latencyCell(samples.get('docker') ?? []),
    floor: latencyCell(samples.get('floor') ?? []),
  };
}
