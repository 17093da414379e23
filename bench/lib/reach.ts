/**
 * Reachability, as the restart rows define it: an endpoint is reachable when its address answers an ARP
 * probe sent on the network's bridge in the daemon's host namespace, i.e. the sandbox namespace, both
 * veth ends, the bridge port and the address are all in place. One small script probes every endpoint
 * at once (lib/arp-probe.py explains why ARP probes and not ping: the machine-wide neighbour table
 * overflows at 1,000 endpoints pinged from one place).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execWithInput, sleep } from './exec.js';

const PROBE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'arp-probe.py');
const PROBE_TIMEOUT_MS = 300;

export interface EndpointAddress {
  ip: string;
  /** Probes go unicast when the MAC is known, so they are not flooded to every bridge port. */
  mac?: string;
}

export function checkerName(): string {
  return `one ARP probe per endpoint on the bridge, ${PROBE_TIMEOUT_MS} ms timeout (bench/lib/arp-probe.py)`;
}

/** The addresses among `endpoints` that answered a probe sent on `bridge` inside `netnsPath`. */
export async function reachableFrom(netnsPath: string, bridge: string, endpoints: EndpointAddress[]): Promise<Set<string>> {
  if (endpoints.length === 0) return new Set();
  const targets = endpoints.map((e) => (e.mac ? `${e.ip}=${e.mac}` : e.ip));
  const r = await execWithInput('nsenter', [`--net=${netnsPath}`, 'python3', PROBE_SCRIPT, bridge, String(PROBE_TIMEOUT_MS), ...targets]);
  if (r.code !== 0) throw new Error(`arp-probe.py failed: ${r.stderr.trim().slice(-300)}`);
  return new Set(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
}

export interface ReachOutcome {
  /** ms from `startedAt` until every expected endpoint answered; undefined when that never happened. */
  allMs?: number;
  /** Distinct endpoints that answered at least once. */
  reached: number;
  /** ms from `startedAt` until the last of them first answered. */
  lastMs?: number;
}

/**
 * Poll until `expected` endpoints are listed and every listed address has answered once. The list is
 * re-read each round because a restarted Docker may hand out addresses afresh. Gives up at `timeoutMs`,
 * or earlier when no new endpoint has answered for `stallMs` (a daemon that does not bring some
 * endpoints back at all would otherwise hold the bench until the timeout).
 */
export async function waitAllReachable(args: {
  netnsPath: string;
  bridge: string;
  listEndpoints: () => Promise<EndpointAddress[]>;
  expected: number;
  startedAt: number;
  timeoutMs: number;
  stallMs: number;
}): Promise<ReachOutcome> {
  const confirmed = new Set<string>();
  let lastMs: number | undefined;
  const elapsed = () => performance.now() - args.startedAt;
  while (elapsed() < args.timeoutMs && (lastMs === undefined || elapsed() - lastMs < args.stallMs)) {
    let endpoints: EndpointAddress[] = [];
    try {
      endpoints = await args.listEndpoints();
    } catch {
      /* daemon still coming up */
    }
    const pending = endpoints.filter((e) => !confirmed.has(e.ip));
    // The bridge itself may not be back yet (a restarted dockerd recreates it): try again.
    const answered = await reachableFrom(args.netnsPath, args.bridge, pending).catch(() => new Set<string>());
    for (const ip of answered) confirmed.add(ip);
    if (answered.size > 0) lastMs = elapsed();
    if (endpoints.length >= args.expected && endpoints.every((e) => confirmed.has(e.ip))) {
      return { allMs: elapsed(), reached: confirmed.size, lastMs };
    }
    await sleep(20);
  }
  return { reached: confirmed.size, lastMs };
}

export interface PingCount {
  transmitted: number;
  received: number;
  /** Probes without a reply, not counting the last one (it may still be in flight when ping stops). */
  lost: number;
}

export interface PingMonitor {
  stop(): Promise<PingCount>;
}

/** A continuous ping (every `intervalMs`) from inside one namespace to one address, until stopped. */
export function startPing(netnsPath: string, ip: string, intervalMs: number): PingMonitor {
  const child = spawn('nsenter', [`--net=${netnsPath}`, 'ping', '-n', '-i', String(intervalMs / 1000), '-W', '1', ip], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return {
    async stop() {
      child.kill('SIGINT');
      await closed;
      return parsePingOutput(out);
    },
  };
}

/** Counts from iputils ping's per-reply lines and its summary line. */
export function parsePingOutput(text: string): PingCount {
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(text);
  if (!summary) return { transmitted: 0, received: 0, lost: NaN };
  const transmitted = Number(summary[1]);
  const replied = new Set<number>();
  for (const m of text.matchAll(/bytes from [^:]+: icmp_seq=(\d+)/g)) replied.add(Number(m[1]));
  let lost = 0;
  for (let seq = 1; seq < transmitted; seq++) if (!replied.has(seq)) lost++;
  return { transmitted, received: Number(summary[2]), lost };
}
