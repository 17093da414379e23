/**
 * Overlay throughput and latency between sandboxes on two hosts, against the bare underlay between the
 * same two hosts, in one run (issue 12's benchmark; README: overlay data plane).
 *
 *   node --import tsx bench/overlay-throughput.ts [--seconds 5] [--rounds 3] [--pings 500]
 *
 * The hosts are namespaces on an underlay bridge (test/helpers/overlay-lab.ts: MTU 1500, veths), each
 * with the overlay's bridge + VXLAN device (learning off, MTU 1450) and one sandbox, once with the device's
 * transmit checksum offload off (cnm's option against the known kernel stall) and once on; the peers are programmed by cnm's reconcile (planPeers). Rounds alternate underlay and
 * overlay so machine drift hits both alike; each row reports the median of the rounds.
 * - TCP: iperf3, one stream, `-t seconds`, the receiver's rate; server in the far host / sandbox.
 * - UDP latency: ping (`-i 0.002`), round trip p50 / p99.
 * Everything is cnmt-* namespaces and cnm* links, removed at the end, also on failure.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { reconcilePeers } from '../src/drivers/overlay/peer-apply.js';
import { overlayMtu } from '../src/drivers/overlay/mtu.js';
import { OverlayLab, UNDERLAY_MTU, vxlanOf } from '../test/helpers/overlay-lab.js';
import { execOk } from './lib/exec.js';
import { median, percentile } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    pings: { type: 'string', default: '500' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const PINGS = Number(values.pings);
const VNI = 4242;
/** The same overlay with the VXLAN device's transmit checksum offload left on (the kernel's default). */
const VNI_OFFLOAD = 4243;

interface Path {
  name: string;
  /** Namespace files of the client and the server, and the server's address. */
  client: string;
  server: string;
  serverIp: string;
}

/** iperf3 server in `path` for one test; the client's JSON gives the receiver's rate. */
async function iperf(path: Path): Promise<number> {
  const server = spawn('nsenter', [`--net=${path.server}`, 'iperf3', '-s', '-1', '-B', path.serverIp], { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverErr = '';
  server.stderr.on('data', (d: Buffer) => (serverErr += d.toString()));
  try {
    let out = '';
    // The server needs a moment to listen: retry the client's connection for up to 2 s.
    for (let attempt = 0; ; attempt++) {
      try {
        out = await execOk('nsenter', [`--net=${path.client}`, 'iperf3', '-J', '-c', path.serverIp, '-t', String(SECONDS)]);
        break;
      } catch (err) {
        if (attempt >= 40) throw new Error(`iperf3 ${path.name}: ${(err as Error).message} ${serverErr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const bps = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    return bps / 1e9;
  } finally {
    server.kill();
  }
}

async function pingRtts(path: Path): Promise<number[]> {
  const out = await execOk('nsenter', [`--net=${path.client}`, 'ping', '-n', '-c', String(PINGS), '-i', '0.002', '-W', '1', path.serverIp]);
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length < PINGS * 0.99) throw new Error(`ping ${path.name}: ${rtts.length} of ${PINGS} answered`);
  return rtts.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const lab = new OverlayLab();
  try {
    await lab.start(2);
    const [h1, h2] = lab.hosts as [(typeof lab.hosts)[0], (typeof lab.hosts)[0]];
    const mtu = overlayMtu(UNDERLAY_MTU, 4);
    for (const host of lab.hosts) await lab.addNetwork(host, VNI, mtu, false);
    for (const host of lab.hosts) await lab.addNetwork(host, VNI_OFFLOAD, mtu, true);
    const a = await lab.addEndpoint('ta', h1, VNI, '10.210.0.2', '02:42:0a:d2:00:02', mtu);
    const b = await lab.addEndpoint('tb', h2, VNI, '10.210.0.3', '02:42:0a:d2:00:03', mtu);
    const c = await lab.addEndpoint('tc', h1, VNI_OFFLOAD, '10.211.0.2', '02:42:0a:d3:00:02', mtu);
    const d = await lab.addEndpoint('td', h2, VNI_OFFLOAD, '10.211.0.3', '02:42:0a:d3:00:03', mtu);
    for (const host of lab.hosts) {
      for (const vni of [VNI, VNI_OFFLOAD]) {
        await reconcilePeers(host.kernel, null, { ifname: vxlanOf(vni), peers: lab.peersOf(vni), localVtep: host.vtep });
      }
    }
    for (const e of [a, b, c, d]) await execOk('nsenter', [`--net=${e.path}`, 'ip', 'link', 'set', 'lo', 'up']);
    for (const h of lab.hosts) await execOk('nsenter', [`--net=${h.path}`, 'ip', 'link', 'set', 'lo', 'up']);
    const paths: Path[] = [
      { name: 'underlay (host to host, veth + bridge, MTU 1500)', client: h1.path, server: h2.path, serverIp: h2.vtep },
      { name: `overlay, tx checksum offload off (sandbox to sandbox, MTU ${mtu})`, client: a.path, server: b.path, serverIp: b.ip },
      { name: `overlay, tx checksum offload on (sandbox to sandbox, MTU ${mtu})`, client: c.path, server: d.path, serverIp: d.ip },
    ];
    const gbps = new Map(paths.map((p) => [p.name, [] as number[]]));
    const rtts = new Map(paths.map((p) => [p.name, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of [...paths.slice(round % paths.length), ...paths.slice(0, round % paths.length)]) {
        gbps.get(p.name)!.push(await iperf(p));
        rtts.get(p.name)!.push(...(await pingRtts(p)));
      }
      console.error(`round ${round + 1}/${ROUNDS} done`);
    }
    const rows = paths.map((p) => {
      const sorted = rtts.get(p.name)!.sort((x, y) => x - y);
      return { path: p.name, tcpGbps: median(gbps.get(p.name)!), rounds: gbps.get(p.name)!, rttP50Ms: percentile(sorted, 50), rttP99Ms: percentile(sorted, 99) };
    });
    const [under, ...overlays] = rows as [(typeof rows)[0], ...(typeof rows)];
    console.log(`| path | TCP Gbit/s (median of ${ROUNDS} × ${SECONDS} s) | RTT p50 ms | RTT p99 ms |`);
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.path} | ${r.tcpGbps.toFixed(2)} | ${r.rttP50Ms.toFixed(3)} | ${r.rttP99Ms.toFixed(3)} |`);
    for (const over of overlays) {
      console.log(`${over.path} ÷ underlay: throughput ${(over.tcpGbps / under.tcpGbps).toFixed(2)}×, RTT p50 ${(over.rttP50Ms / under.rttP50Ms).toFixed(2)}×`);
    }
    await mkdir(values.out!, { recursive: true });
    const file = join(values.out!, `overlay-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    await writeFile(file, JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, pings: PINGS, rows }, null, 2));
    console.log(`written to ${file}`);
  } finally {
    lab.close();
  }
}

await main();
