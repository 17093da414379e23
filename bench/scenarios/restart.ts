/**
 * Daemon restart with the big network full: SIGTERM the daemon, start it again, and time until its API
 * lists every endpoint again and each endpoint's address answers an ARP probe sent on the bridge in the
 * daemon's host namespace (see lib/reach.ts). Meanwhile one sandbox pings another every 10 ms; the
 * probes without a reply are the "ping loss" row. Docker's containers carry restart policy "always"
 * (without it they would stay down); Docker runs without live-restore, its default, so its containers
 * stop with the daemon.
 */
import { existsSync } from 'node:fs';
import { sleep } from '../lib/exec.js';
import { startPing, waitAllReachable, type EndpointAddress, type PingCount } from '../lib/reach.js';
import { median } from '../lib/stats.js';
import type { System, SystemName } from '../lib/systems.js';
import { latencyCell, OP, valueCell, type Cell, type Row } from '../lib/table.js';
import { BENCH_BRIDGE, type Population } from './connect.js';
import { rotated, type BenchContext } from './context.js';

const PING_INTERVAL_MS = 10;
/** Give up on a restart when no further endpoint has come back for this long. */
const STALL_MS = 60_000;

interface NetworkEndpoint {
  IPv4Address?: string;
  MacAddress?: string;
}

async function endpointsOf(s: System, network: string): Promise<EndpointAddress[]> {
  // Bounded: a restarting dockerd can hold the request while it restores containers.
  const containers: Record<string, NetworkEndpoint> = (await s.client.ok('GET', `/networks/${network}`, undefined, 30_000)).json().Containers ?? {};
  return Object.values(containers)
    .map((c) => ({ ip: (c.IPv4Address ?? '').split('/')[0]!, mac: c.MacAddress || undefined }))
    .filter((e) => e.ip);
}

async function ipOf(s: System, network: string, id: string): Promise<string> {
  const containers: Record<string, { IPv4Address?: string }> = (await s.client.ok('GET', `/networks/${network}`)).json().Containers ?? {};
  const ip = (containers[id]?.IPv4Address ?? '').split('/')[0];
  if (!ip) throw new Error(`${s.name}: ${id} has no address on the bench network`);
  return ip;
}

interface Sample {
  /** Until every endpoint answered; NaN when some never came back. */
  reachableS: number;
  reached: number;
  lastReachedS: number;
  stoppedMs: number;
  apiUpMs: number;
  ping?: PingCount;
}

/**
 * The first two endpoints that are up now: after a restart Docker leaves some containers down for good
 * (see the "endpoints back" row), and a ping from or to one of them would measure nothing.
 */
async function pingPair(s: System, network: string, fillers: string[]): Promise<{ netns: string; ip: string } | undefined> {
  const live: Array<{ netns: string; ip: string }> = [];
  for (const id of fillers) {
    const netns = await s.workloadNetns(id).catch(() => undefined);
    const ip = await ipOf(s, network, id).catch(() => undefined);
    if (netns && ip && existsSync(netns)) live.push({ netns, ip });
    if (live.length === 2) return { netns: live[0]!.netns, ip: live[1]!.ip };
  }
  return undefined;
}

async function restartOnce(ctx: BenchContext, s: System, network: string, fillers: string[]): Promise<Sample> {
  const pair = await pingPair(s, network, fillers);
  const ping = pair ? startPing(pair.netns, pair.ip, PING_INTERVAL_MS) : undefined;
  await sleep(300);
  const startedAt = performance.now();
  const timing = await s.restart();
  const outcome = await waitAllReachable({
    netnsPath: s.hostNetnsPath,
    bridge: BENCH_BRIDGE,
    listEndpoints: () => endpointsOf(s, network),
    expected: fillers.length,
    startedAt,
    timeoutMs: ctx.options.restartTimeoutS * 1000,
    stallMs: STALL_MS,
  });
  await sleep(300);
  const counts = await ping?.stop();
  const sample: Sample = {
    reachableS: (outcome.allMs ?? NaN) / 1000,
    reached: outcome.reached,
    lastReachedS: (outcome.lastMs ?? NaN) / 1000,
    stoppedMs: timing.stoppedMs,
    apiUpMs: timing.apiUpMs,
    ping: counts,
  };
  const all =
    outcome.allMs !== undefined
      ? `all ${fillers.length} reachable at ${(outcome.allMs / 1000).toFixed(2)} s`
      : `only ${outcome.reached} of ${fillers.length} ever reachable (the last at ${sample.lastReachedS.toFixed(2)} s; gave up)`;
  ctx.log(
    `  ${s.name}: stopped in ${(timing.stoppedMs / 1000).toFixed(2)} s, API up at ${(timing.apiUpMs / 1000).toFixed(2)} s, ${all}` +
      (counts ? `; ping ${counts.transmitted} sent, ${counts.lost} lost` : ''),
  );
  if (outcome.allMs === undefined) {
    ctx.skipped.push(`${s.name} restart: only ${outcome.reached} of ${fillers.length} endpoints came back (counted as not reached)`);
  }
  return sample;
}

export async function restartRows(ctx: BenchContext, population: Population, size: number): Promise<Row[]> {
  const eligible = ctx.systems.filter((s) => (population.fillers.get(s.name)?.length ?? 0) === size);
  for (const s of ctx.systems.filter((x) => !eligible.includes(x))) ctx.skipped.push(`${s.name} restart @${size}: network was not filled to ${size}`);
  const samples = new Map<SystemName, Sample[]>(eligible.map((s) => [s.name, []]));
  for (let rep = 0; rep < ctx.options.restartReps; rep++) {
    for (const s of rotated(eligible, rep)) {
      samples.get(s.name)!.push(await restartOnce(ctx, s, population.network.get(s.name)!, population.fillers.get(s.name)!));
    }
  }
  const restartCell = (name: SystemName): Cell | undefined => {
    const list = samples.get(name);
    return list && list.length
      ? latencyCell(
          // Never reaching every endpoint ranks behind any time.
          list.map((x) => (Number.isNaN(x.reachableS) ? Infinity : x.reachableS)),
          {
            stoppedMs: list.map((x) => x.stoppedMs),
            apiUpMs: list.map((x) => x.apiUpMs),
            reached: list.map((x) => x.reached),
            lastReachedS: list.map((x) => x.lastReachedS),
          },
        )
      : undefined;
  };
  const backCell = (name: SystemName): Cell | undefined => {
    const list = samples.get(name) ?? [];
    return list.length ? valueCell(Math.min(...list.map((x) => x.reached)), { reached: list.map((x) => x.reached) }) : undefined;
  };
  const lossCell = (name: SystemName): Cell | undefined => {
    const pings = (samples.get(name) ?? []).map((x) => x.ping).filter((p): p is PingCount => p !== undefined);
    return pings.length ? valueCell(median(pings.map((p) => p.lost)), { pings }) : undefined;
  };
  return [
    { operation: OP.restart, size: String(size), unit: 's', comparison: 'lower-is-better', cnm: restartCell('cnm'), docker: restartCell('docker') },
    {
      operation: OP.restartBack,
      size: `of ${size}, fewest`,
      unit: 'endpoints',
      comparison: 'none',
      cnm: backCell('cnm'),
      docker: backCell('docker'),
    },
    {
      operation: OP.restartLoss,
      size: `${size}, 1 per ${PING_INTERVAL_MS} ms`,
      unit: 'lost pkts',
      comparison: 'none',
      cnm: lossCell('cnm'),
      docker: lossCell('docker'),
    },
  ];
}
