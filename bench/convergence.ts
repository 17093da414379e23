/**
 * Overlay convergence (issue 12's benchmark): the time from a sandbox's creation on one host until the
 * other hosts have programmed its endpoint: FDB entry + neighbour entry on their VXLAN device, and its
 * name in their embedded DNS.
 *
 *   node --import tsx bench/convergence.ts [--reps 30] [--agents 10,100,1000] [--connections 10]
 *
 * - Real hosts: three compiled cnm daemons, one per host namespace behind an underlay bridge, each with
 *   --cluster-store on a real 3-member etcd (Debian's etcd-server, in a throwaway namespace). Hosts 2 and
 *   3 hold a sandbox on the overlay (so their VXLAN device exists). Per rep, host 1 creates a sandbox on
 *   it (`POST /cnm/v1/sandboxes`, t0 before the request); this process polls hosts 2 and 3's devices
 *   through in-process netlink (about every 0.2 ms) until the new MAC is in the FDB and its address in
 *   the neighbour table, and, at the same time, the embedded DNS of hosts 2 and 3's sandboxes (a UDP
 *   query to 127.0.0.11 from a socket in each sandbox's namespace, about every 1 ms) until it answers the
 *   new sandbox's name with its address; then the sandbox is removed and the withdrawal is timed the
 *   same way (entries gone, name no longer answered).
 * - Simulated hosts: N agents that do what a host does with the cluster's endpoint records — a watch of
 *   etcd's endpoint prefix, and per change the peer reconcile (planPeers + apply) onto a recording
 *   kernel (src/kernel/fake.ts), and before it the names a host gives its embedded DNS (the endpoint's
 *   names, remoteDiscoveryEndpoint, into a DnsRegistry of its own) — against the same etcd while host 1
 *   creates the sandboxes. An agent's latency is t0 → the moment its kernel holds the entries AND its
 *   registry answers the name (checked when the bench reads the times). Agents share `--connections` etcd clients
 *   (each agent its own watch) and one event loop, so the later agents of a burst also wait for the
 *   earlier ones' processing: the figures are an upper bound of what N separate hosts would see.
 * Everything lives in cnmt-* namespaces and temp dirs and is removed at the end, also on failure.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { remoteDiscoveryEndpoint } from '../src/controller/sandbox-dns.js';
import type { EndpointRecord } from '../src/controller/records.js';
import { DnsRegistry } from '../src/dns/registry.js';
import { reconcilePeers } from '../src/drivers/overlay/peer-apply.js';
import type { RemotePeer } from '../src/drivers/types.js';
import { FakeKernel } from '../src/kernel/fake.js';
import { NetlinkKernel } from '../src/kernel/netlink/kernel.js';
import { EtcdStore } from '../src/store/etcd.js';
import { startTestDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../test/helpers/etcd.js';
import { deleteTestNetns, netnsPath } from '../test/helpers/netns.js';
import { makeUnderlayHosts } from '../test/helpers/underlay.js';
import { buildDist } from './lib/build.js';
import { SandboxDnsProbe } from './lib/dns-probe.js';
import { SocketClient } from './lib/http.js';
import { percentile } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '30' },
    agents: { type: 'string', default: '10,100,1000' },
    connections: { type: 'string', default: '10' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const REPS = Number(values.reps);
const AGENT_COUNTS = values.agents!.split(',').map(Number);
const CONNECTIONS = Number(values.connections);
const vtep = (i: number) => `10.199.0.${i}`;
const ENDPOINT_PREFIX = 'cnm/v1/endpoints/';

const ASKER = 'cnm-bench-asker';

const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** A simulated host: its own view of the network's endpoints, a recording kernel and a DNS registry it programs. */
class Agent {
  readonly kernel = new FakeKernel();
  /** What its embedded DNS would answer: a local sandbox (ASKER) on the network asks. */
  readonly dns = new DnsRegistry();
  private readonly endpoints = new Map<string, RemotePeer & { id: string }>();
  /** Endpoint id → when this agent's kernel held it (performance.now()). */
  readonly programmed = new Map<string, number>();
  readonly withdrawn = new Map<string, number>();
  private busy: Promise<void> = Promise.resolve();

  constructor(
    readonly vtep: string,
    private readonly networkId: string,
  ) {}

  async start(): Promise<void> {
    await this.kernel.linkAdd(null, { kind: 'vxlan', name: 'cnmx-sim', vni: 4096, learning: false });
    this.dns.setNetwork({ id: this.networkId, name: 'ov', internal: false });
    this.dns.addEndpoint({ id: `${ASKER}-ep`, networkId: this.networkId, sandboxId: ASKER, sandboxName: ASKER, hostname: ASKER, shortId: '000000000000', aliases: [] });
  }

  /** The addresses this agent's DNS answers for `name` to its local sandbox. */
  resolve(name: string): string[] {
    return this.dns.resolve(ASKER, name, 'A').addresses;
  }

  onEvent(event: { type: 'put'; key: string; value: string } | { type: 'delete'; key: string }): void {
    const id = event.key.slice(ENDPOINT_PREFIX.length);
    let ep: EndpointRecord | undefined;
    if (event.type === 'put') {
      ep = JSON.parse(event.value) as EndpointRecord;
      if (ep.networkId !== this.networkId || !ep.vtep) return;
      const ips = [ep.ipv4Address, ep.ipv6Address].filter((a): a is string => a !== undefined).map((a) => a.split('/')[0]!);
      this.endpoints.set(id, { id, mac: ep.macAddress, ips, vtep: ep.vtep });
    } else if (!this.endpoints.delete(id)) {
      return;
    }
    // One change at a time per agent, as the controller serialises a host's changes: names, then peers.
    this.busy = this.busy.then(async () => {
      if (ep) this.dns.addEndpoint(remoteDiscoveryEndpoint(ep));
      else this.dns.removeEndpoint(id);
      await reconcilePeers(this.kernel, null, { ifname: 'cnmx-sim', peers: [...this.endpoints.values()], localVtep: this.vtep });
      (event.type === 'put' ? this.programmed : this.withdrawn).set(id, performance.now());
    });
  }
}

interface Summary {
  p50: number;
  p99: number;
  max: number;
  n: number;
}

function summary(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN, n: s.length };
}

async function main(): Promise<void> {
  const namespaces: string[] = [];
  const daemons: TestDaemon[] = [];
  const kernels: NetlinkKernel[] = [];
  const stores: EtcdStore[] = [];
  const probes: SandboxDnsProbe[] = [];
  let etcd: EtcdCluster | undefined;
  try {
    const entry = await buildDist();
    log('3-member etcd, underlay, three compiled daemons');
    etcd = await startEtcdCluster(3);
    const { hosts } = makeUnderlayHosts(3, namespaces);
    const store = `unix://${etcd.endpoints.map((e) => e.slice('unix:'.length)).join(',')}`;
    for (let i = 1; i <= 3; i++) {
      const hostNs = hosts[i - 1]!;
      // --dns 127.0.0.1 (nothing listens there): a name the embedded DNS does not have yet is never asked outside.
      daemons.push(await startTestDaemon(['--log-level', 'warn', '--dns', '127.0.0.1', '--cluster-store', store, '--advertise-addr', vtep(i)], { hostNs, nodeEntry: entry }));
    }
    const clients = daemons.map((d) => new SocketClient(d.socket));
    const [c1] = clients as [SocketClient];
    const created = await c1.ok('POST', '/networks/create', { Name: 'ov', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.92.0.0/20' }] } });
    const networkId = created.json().Id as string;
    const vxlan = `cnmx-${networkId.slice(0, 10)}`;
    // Hosts 2 and 3 learn the network from etcd; a sandbox on each makes their VXLAN device.
    for (const [i, c] of clients.entries()) {
      if (i === 0) continue;
      for (let t = 0; ; t++) {
        const r = await c.call('POST', '/cnm/v1/sandboxes', { Name: `resident${i}`, Networks: [{ Network: 'ov' }] });
        if (r.status === 201) break;
        if (t > 200) throw new Error(`host ${i + 1}: ${r.status} ${r.body}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const observers = [2, 3].map((i) => {
      const k = new NetlinkKernel({ hostNetns: netnsPath(hosts[i - 1]!) });
      kernels.push(k);
      return k;
    });
    // The embedded DNS of hosts 2 and 3, asked from their resident sandboxes' namespaces.
    for (const i of [1, 2]) {
      const sb = (await clients[i]!.ok('GET', `/cnm/v1/sandboxes/resident${i}`)).json() as { NetnsPath: string };
      probes.push(await SandboxDnsProbe.open(sb.NetnsPath));
    }

    // Simulated hosts: the largest count of agents, each measured size uses the first N of them.
    const maxAgents = Math.max(0, ...AGENT_COUNTS);
    for (let c = 0; c < Math.min(CONNECTIONS, maxAgents); c++) stores.push(await EtcdStore.open({ endpoints: etcd.endpoints }));
    const agents: Agent[] = [];
    for (let a = 0; a < maxAgents; a++) {
      const agent = new Agent(`10.250.${a >> 8}.${a & 255}`, networkId);
      await agent.start();
      agents.push(agent);
    }
    const stopWatches: Array<() => void> = [];
    let watching = 0;
    const watchAgents = (n: number) => {
      for (; watching < n; watching++) {
        const agent = agents[watching]!;
        stopWatches.push(stores[watching % stores.length]!.watch(ENDPOINT_PREFIX, (e) => agent.onEvent(e)));
      }
    };

    const real: number[] = [];
    const realDns: number[] = [];
    const realAll: number[] = [];
    const realWithdraw: number[] = [];
    const realWithdrawAll: number[] = [];
    const api: number[] = [];
    const perSize = new Map<number, { agent: number[]; all: number[]; withdrawAll: number[] }>();
    const sizes = [0, ...AGENT_COUNTS.filter((n) => n > 0).sort((a, b) => a - b)];
    let rep = 0;
    for (const size of sizes) {
      watchAgents(size);
      // Let the new watches settle before the first timed change.
      await new Promise((r) => setTimeout(r, 500));
      const group = { agent: [] as number[], all: [] as number[], withdrawAll: [] as number[] };
      for (let r = 0; r < REPS; r++, rep++) {
        const before = await Promise.all(observers.map((k) => k.fdbList(null, vxlan)));
        const known = new Set(before.flat().map((e) => e.mac));
        const t0 = performance.now();
        const res = await c1.ok('POST', '/cnm/v1/sandboxes', { Name: `c${rep}`, Networks: [{ Network: 'ov' }] });
        api.push(performance.now() - t0);
        const sandbox = res.json().Id as string;
        const detail = (await c1.ok('GET', `/cnm/v1/sandboxes/${sandbox}`)).json() as { Networks: Record<string, { EndpointID: string; MacAddress: string; IPAddress: string }> };
        const ep = detail.Networks['ov']!;
        // Hosts 2 and 3: until the MAC is in the FDB and the address in the neighbour table, and their
        // embedded DNS answers the name with the address.
        const [seen, named] = await Promise.all([
          Promise.all(observers.map((k) => waitFor(k, vxlan, ep.MacAddress, ep.IPAddress, true, known))),
          Promise.all(probes.map((p) => waitForName(p, `c${rep}`, ep.IPAddress))),
        ]);
        real.push(Math.max(...seen) - t0);
        realDns.push(Math.max(...named) - t0);
        realAll.push(Math.max(...seen, ...named) - t0);
        const agentTimes = await waitAgents(agents.slice(0, size), ep.EndpointID, 'programmed', `c${rep}`, ep.IPAddress);
        group.agent.push(...agentTimes.map((t) => t - t0));
        if (size > 0) group.all.push(Math.max(...agentTimes) - t0);

        const t1 = performance.now();
        await c1.ok('DELETE', `/cnm/v1/sandboxes/${sandbox}?force=1`);
        const [gone, unnamed] = await Promise.all([
          Promise.all(observers.map((k) => waitFor(k, vxlan, ep.MacAddress, ep.IPAddress, false, known))),
          Promise.all(probes.map((p) => waitForName(p, `c${rep}`, undefined))),
        ]);
        realWithdraw.push(Math.max(...gone) - t1);
        realWithdrawAll.push(Math.max(...gone, ...unnamed) - t1);
        const withdrawTimes = await waitAgents(agents.slice(0, size), ep.EndpointID, 'withdrawn', `c${rep}`, undefined);
        if (size > 0) group.withdrawAll.push(Math.max(...withdrawTimes) - t1);
      }
      perSize.set(size, group);
      log(`${size} simulated hosts: ${REPS} reps done`);
    }
    for (const stop of stopWatches) stop();

    const rows: Array<{ what: string } & Summary> = [
      { what: 'sandbox create on host 1 (API answer)', ...summary(api) },
      { what: '3 real hosts: endpoint programmed on hosts 2 and 3 (FDB + neighbour)', ...summary(real) },
      { what: '3 real hosts: name answered by the embedded DNS on hosts 2 and 3', ...summary(realDns) },
      { what: '3 real hosts: all of it on hosts 2 and 3 (FDB + neighbour + DNS)', ...summary(realAll) },
      { what: '3 real hosts: endpoint withdrawn on hosts 2 and 3 after rm (FDB + neighbour)', ...summary(realWithdraw) },
      { what: '3 real hosts: all of it withdrawn after rm (FDB + neighbour + DNS)', ...summary(realWithdrawAll) },
    ];
    for (const [size, g] of perSize) {
      if (size === 0) continue;
      rows.push({ what: `${size} simulated hosts: per host (FDB + neighbour + DNS)`, ...summary(g.agent) });
      rows.push({ what: `${size} simulated hosts: all programmed`, ...summary(g.all) });
      rows.push({ what: `${size} simulated hosts: all withdrawn after rm`, ...summary(g.withdrawAll) });
    }
    console.log(`| convergence (${REPS} reps per size) | p50 ms | p99 ms | max ms | samples |`);
    console.log('|---|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.what} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.n} |`);
    await mkdir(values.out!, { recursive: true });
    const file = join(values.out!, `convergence-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    await writeFile(file, JSON.stringify({ reps: REPS, agents: AGENT_COUNTS, connections: CONNECTIONS, rows }, null, 2));
    console.log(`written to ${file}`);
  } finally {
    for (const s of stores) await s.close().catch(() => {});
    for (const p of probes) p.close();
    for (const k of kernels) k.close();
    for (const d of daemons) await d.cleanup().catch(() => {});
    for (const ns of namespaces.reverse()) deleteTestNetns(ns);
    await etcd?.close();
  }
}

/** Polls a host's VXLAN device until the endpoint is programmed (or gone); returns when it saw it. */
async function waitFor(k: NetlinkKernel, dev: string, mac: string, ip: string, present: boolean, known: Set<string>): Promise<number> {
  const deadline = performance.now() + 30_000;
  const want = mac.toLowerCase();
  if (present && known.has(want)) throw new Error(`${want} was programmed before the sandbox existed`);
  for (;;) {
    const [fdb, neigh] = await Promise.all([k.fdbList(null, dev), k.neighList(null, dev)]);
    const has = fdb.some((e) => e.mac === want) && neigh.some((n) => n.ip === ip);
    const none = !fdb.some((e) => e.mac === want) && !neigh.some((n) => n.ip === ip);
    if (present ? has : none) return performance.now();
    if (performance.now() > deadline) throw new Error(`${dev}: ${want} ${ip} not ${present ? 'programmed' : 'withdrawn'} within 30 s`);
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * Asks a host's embedded DNS about every millisecond until it answers `name` with `ip` (or, ip undefined,
 * no longer answers it). Not back to back: the daemon answering is the one programming the endpoint, and
 * thousands of queries a second would slow what is measured.
 */
async function waitForName(probe: SandboxDnsProbe, name: string, ip: string | undefined): Promise<number> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const addresses = await probe.addresses(name);
    if (ip === undefined ? addresses.length === 0 : addresses.includes(ip)) return performance.now();
    if (performance.now() > deadline) throw new Error(`DNS: ${name} ${ip === undefined ? 'still answered' : `not answered with ${ip}`} within 30 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** When every agent had applied the change; each agent's DNS must then answer `name` with `ip` (or not at all). */
async function waitAgents(agents: Agent[], endpointId: string, which: 'programmed' | 'withdrawn', name: string, ip: string | undefined): Promise<number[]> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const times = agents.map((a) => a[which].get(endpointId));
    if (times.every((t) => t !== undefined)) {
      const wrong = agents.filter((a) => (ip === undefined ? a.resolve(name).length > 0 : !a.resolve(name).includes(ip)));
      if (wrong.length > 0) throw new Error(`${wrong.length} agents' DNS ${ip === undefined ? 'still answers' : 'does not answer'} ${name} after the change`);
      return times as number[];
    }
    if (performance.now() > deadline) throw new Error(`${times.filter((t) => t === undefined).length} agents never ${which} ${endpointId}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

await main();
