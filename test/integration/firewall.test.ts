/**
 * The nftables firewall on the real kernel, inside a throwaway "host" namespace built by hand:
 *
 *   c1 ─┐                     ┌─ cnmbr-a 10.91.1.1/24 fd91:1::1/64
 *   c2 ─┴ cnmbr-a ─┐          │
 *                  host ns ───┤  cnmv-out 198.51.100.1/29 (+ .3 for host_ipv4), fd99::1/64
 *   c3 ─┬ cnmbr-b ─┘          │        └── outside ns 198.51.100.2/29, fd99::2/64 (no route back!)
 *   c4 ─┘                     └─ cnmbr-b 10.91.2.1/24 fd91:2::1/64
 *
 * The outside namespace has no route to the container subnets, so any reply it sends proves source NAT;
 * its TCP server answers with the source address it saw. Runs once per NftRunner and per br_netfilter
 * setting (bridge-nf-call-ip(6)tables is per namespace on this kernel).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestNetns, deleteTestNetns, inNetns, netnsPath, withTestNetns } from '../helpers/netns.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { NftFirewall } from '../../src/firewall/nft-firewall.js';
import { LibNftRunner } from '../../src/firewall/runner-libnft.js';
import { CliNftRunner } from '../../src/firewall/runner-cli.js';
import type { FirewallNetwork, NftRunner } from '../../src/firewall/types.js';
import { KernelError } from '../../src/errors.js';
import { inNamespace, ping, tcpRead } from '../helpers/probe.js';

const SKIP = realKernelSkip();
const OUTSIDE_V4 = '198.51.100.2';
const OUTSIDE_V6 = 'fd99::2';
const HOST_OUT_V4 = '198.51.100.1';
const HOST_SNAT_V4 = '198.51.100.3';
const SERVER_PORT = 8080;
const ECHO_PORT = 8081;
const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'firewall');

type ContainerName = 'c1' | 'c2' | 'c3' | 'c4';
interface NetSpec {
  bridge: string;
  v4: string;
  v6: string;
  members: readonly [ContainerName, ContainerName];
}
const NET_A: NetSpec = { bridge: 'cnmbr-a', v4: '10.91.1', v6: 'fd91:1:', members: ['c1', 'c2'] };
const NET_B: NetSpec = { bridge: 'cnmbr-b', v4: '10.91.2', v6: 'fd91:2:', members: ['c3', 'c4'] };
const HOST_BYTE: Record<ContainerName, number> = { c1: 11, c2: 12, c3: 13, c4: 14 };

function v4Of(c: ContainerName): string {
  return `${(NET_A.members.includes(c) ? NET_A : NET_B).v4}.${HOST_BYTE[c]}`;
}
function v6Of(c: ContainerName): string {
  return `${(NET_A.members.includes(c) ? NET_A : NET_B).v6}:${HOST_BYTE[c]}`;
}

function network(spec: NetSpec, over: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return {
    id: (spec === NET_A ? 'a' : 'b').repeat(64),
    bridge: spec.bridge,
    ipv4Subnets: [`${spec.v4}.0/24`],
    ipv6Subnets: [`${spec.v6}:/64`],
    icc: true,
    masquerade: true,
    internal: false,
    ...over,
  };
}

function ip(ns: string, ...args: string[]): void {
  execFileSync('ip', ['-n', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

class Topology {
  readonly host = createTestNetns();
  readonly outside = createTestNetns();
  readonly containers = {} as Record<ContainerName, string>;
  private server?: ChildProcess;

  async build(): Promise<void> {
    const h = this.host;
    inNetns(h, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const net of [NET_A, NET_B]) {
      ip(h, 'link', 'add', net.bridge, 'type', 'bridge');
      ip(h, 'addr', 'add', `${net.v4}.1/24`, 'dev', net.bridge);
      ip(h, 'addr', 'add', `${net.v6}:1/64`, 'dev', net.bridge, 'nodad');
      ip(h, 'link', 'set', net.bridge, 'up');
      for (const c of net.members) {
        const ns = (this.containers[c] = createTestNetns());
        ip(h, 'link', 'add', `cnmv-${c}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        ip(h, 'link', 'set', `cnmv-${c}`, 'master', net.bridge, 'up');
        ip(ns, 'addr', 'add', `${v4Of(c)}/24`, 'dev', 'eth0');
        ip(ns, 'addr', 'add', `${v6Of(c)}/64`, 'dev', 'eth0', 'nodad');
        ip(ns, 'link', 'set', 'eth0', 'up');
        ip(ns, 'route', 'add', 'default', 'via', `${net.v4}.1`);
        ip(ns, '-6', 'route', 'add', 'default', 'via', `${net.v6}:1`);
      }
    }
    const o = this.outside;
    ip(h, 'link', 'add', 'cnmv-out', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', o);
    ip(h, 'addr', 'add', `${HOST_OUT_V4}/29`, 'dev', 'cnmv-out');
    ip(h, 'addr', 'add', `${HOST_SNAT_V4}/29`, 'dev', 'cnmv-out');
    ip(h, 'addr', 'add', 'fd99::1/64', 'dev', 'cnmv-out', 'nodad');
    ip(h, 'link', 'set', 'cnmv-out', 'up');
    ip(o, 'addr', 'add', `${OUTSIDE_V4}/29`, 'dev', 'eth0');
    ip(o, 'addr', 'add', `${OUTSIDE_V6}/64`, 'dev', 'eth0', 'nodad');
    ip(o, 'link', 'set', 'eth0', 'up');
    await this.startServer();
  }

  setBrNetfilter(on: boolean): void {
    const v = on ? '1' : '0';
    inNetns(this.host, 'sysctl', ['-qw', `net.bridge.bridge-nf-call-iptables=${v}`, `net.bridge.bridge-nf-call-ip6tables=${v}`]);
  }

  /**
   * TCP servers in the outside namespace: SERVER_PORT answers with the client address it sees and closes;
   * ECHO_PORT keeps the connection and echoes each line prefixed with the client address.
   */
  private startServer(): Promise<void> {
    const code = `const net = require('net');
      const peer = (s) => s.remoteAddress.replace(/^::ffff:/, '');
      net.createServer((s) => s.end(peer(s) + '\\n')).listen(${SERVER_PORT}, '::', () => {
        net.createServer((s) => s.on('data', (d) => s.write(peer(s) + ' ' + d))).listen(${ECHO_PORT}, '::', () => console.log('ready'));
      });`;
    const child = spawn('ip', ['netns', 'exec', this.outside, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.server = child;
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => reject(new Error(`server exited with ${c}`)));
      child.stdout!.once('data', () => resolve());
    });
  }

  destroy(): void {
    this.server?.kill();
    for (const ns of [...Object.values(this.containers), this.outside, this.host]) deleteTestNetns(ns);
  }
}

async function canPing(fromNs: string, address: string): Promise<boolean> {
  return (await ping(inNamespace(fromNs), address)).outcome === 'reached';
}

/**
 * The source address the outside server saw for a TCP connection, or undefined when the connection was
 * blocked (no answer, ICMP unreachable, no route). A probe that could not run throws.
 */
async function sourceSeenOutside(fromNs: string, address: string): Promise<string | undefined> {
  const r = await tcpRead(inNamespace(fromNs), address, SERVER_PORT);
  if (r.outcome === 'blocked') return undefined;
  assert.notEqual(r.output, '', `the server at ${address} answered nothing`);
  return r.output;
}

/** A long-lived TCP connection from a container to the outside echo server, driven line by line. */
class EchoClient {
  private readonly child: ChildProcess;
  private buffered = '';
  private waiting?: (line: string) => void;

  constructor(fromNs: string) {
    const script = `exec 3<>/dev/tcp/${OUTSIDE_V4}/${ECHO_PORT} || exit 1
      while read -r line; do echo "$line" >&3; read -r reply <&3 || exit 1; echo "$reply"; done`;
    this.child = spawn('ip', ['netns', 'exec', fromNs, 'bash', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffered += chunk;
      const nl = this.buffered.indexOf('\n');
      if (nl >= 0 && this.waiting) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting(line);
      }
    });
  }

  /** Send a line and return the reply, or undefined when none arrives within 3 s (connection broken). */
  exchange(line: string): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 3000);
      this.waiting = (reply) => {
        clearTimeout(timer);
        this.waiting = undefined;
        resolve(reply);
      };
      this.child.stdin!.write(line + '\n');
    });
  }

  close(): void {
    this.child.kill();
  }
}

function neighbourResolved(fromNs: string, address: string): boolean {
  const out = inNetns(fromNs, 'ip', ['neigh', 'show', address]);
  return /lladdr/.test(out) && !/FAILED|INCOMPLETE/.test(out);
}

const RUNNERS: { name: string; make: (path: string) => NftRunner }[] = [
  { name: 'libnftables', make: (path) => new LibNftRunner({ netnsPath: path }) },
  { name: 'nft binary', make: (path) => new CliNftRunner({ netnsPath: path }) },
];

// The four combinations each build their own namespaces and wait mostly on probes (pings and connections
// that must time out): they run at once; the tests inside each stay in order (concurrency 1, they build
// on each other's rules).
describe('firewall on the kernel, every runner and br_netfilter setting at once', { skip: SKIP, concurrency: true }, () => {
  for (const runner of RUNNERS) {
    for (const brNetfilter of [false, true]) {
      describe(`firewall on the kernel via ${runner.name}, br_netfilter ${brNetfilter ? 'on' : 'off'}`, { skip: SKIP, concurrency: 1 }, () => {
        let topo: Topology;
        let fw: NftFirewall;
        const c = (name: ContainerName) => topo.containers[name];

        before(async () => {
          topo = new Topology();
          await topo.build();
          topo.setBrNetfilter(brNetfilter);
          fw = new NftFirewall(runner.make(netnsPath(topo.host)));
        });
        after(() => {
          fw?.close();
          topo?.destroy();
        });

        it('without cnm rules networks route to each other and nothing is translated', async () => {
          assert.equal(await fw.isIntact(), false);
          assert.ok(await canPing(c('c1'), v4Of('c3')), 'routed between networks');
          assert.equal(await sourceSeenOutside(topo.host, OUTSIDE_V4), HOST_OUT_V4, 'the server answers the host');
          assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), undefined, 'no route back without NAT');
        });

        it('same network talks, networks are isolated both ways, masquerade reaches the outside', async () => {
          await fw.ensureBase();
          await fw.addNetwork(network(NET_A));
          await fw.addNetwork(network(NET_B));
          assert.equal(await fw.isIntact(), true);
          assert.ok(await canPing(c('c1'), v4Of('c2')));
          assert.ok(await canPing(c('c3'), v4Of('c4')));
          assert.ok(await canPing(c('c2'), v6Of('c1')));
          assert.equal(await canPing(c('c1'), v4Of('c3')), false, 'a → b');
          assert.equal(await canPing(c('c4'), v4Of('c2')), false, 'b → a');
          assert.equal(await canPing(c('c1'), v6Of('c4')), false, 'a → b over IPv6');
          assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), HOST_OUT_V4);
          assert.equal(await sourceSeenOutside(c('c3'), OUTSIDE_V4), HOST_OUT_V4);
          assert.equal(await sourceSeenOutside(c('c2'), OUTSIDE_V6), 'fd99::1');
        });

        it(`bridged traffic ${brNetfilter ? 'is' : 'is not'} seen by the inet forward hook`, async () => {
          inNetns(topo.host, 'nft', ['add table inet cnmprobe']);
          inNetns(topo.host, 'nft', ['add chain inet cnmprobe forward { type filter hook forward priority -10; }']);
          inNetns(topo.host, 'nft', ['add rule inet cnmprobe forward iifname "cnmbr-a" oifname "cnmbr-a" counter']);
          try {
            assert.ok(await canPing(c('c1'), v4Of('c2')));
            const listing = inNetns(topo.host, 'nft', ['list', 'chain', 'inet', 'cnmprobe', 'forward']);
            const packets = Number(/counter packets (\d+)/.exec(listing)?.[1]);
            assert.equal(packets > 0, brNetfilter, listing);
          } finally {
            inNetns(topo.host, 'nft', ['delete', 'table', 'inet', 'cnmprobe']);
          }
        });

        it('icc=false blocks containers on that bridge; the gateway answers, ARP and ND still resolve', async () => {
          await fw.reconcile([network(NET_A, { icc: false }), network(NET_B)]);
          assert.ok(await canPing(c('c1'), `${NET_A.v4}.1`), 'IPv4 gateway');
          assert.ok(await canPing(c('c2'), `${NET_A.v6}:1`), 'IPv6 gateway');
          assert.equal(await canPing(c('c1'), v4Of('c2')), false, 'IPv4 between ports');
          assert.equal(await canPing(c('c2'), v6Of('c1')), false, 'IPv6 between ports');
          assert.ok(neighbourResolved(c('c1'), v4Of('c2')), 'ARP resolved');
          assert.ok(neighbourResolved(c('c2'), v6Of('c1')), 'neighbour discovery resolved');
          assert.ok(await canPing(c('c3'), v4Of('c4')), 'the other network is unaffected');
          assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), HOST_OUT_V4);
        });

        it('an internal network reaches neither the outside nor other networks', async () => {
          await fw.reconcile([network(NET_A), network(NET_B, { internal: true })]);
          assert.ok(await canPing(c('c3'), v4Of('c4')), 'inside the internal network');
          assert.ok(await canPing(c('c4'), v6Of('c3')), 'inside the internal network, IPv6');
          assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), HOST_OUT_V4);
          assert.equal(await sourceSeenOutside(c('c3'), OUTSIDE_V4), undefined);
          assert.equal(await canPing(c('c3'), OUTSIDE_V6), false);
          assert.equal(await canPing(c('c3'), v4Of('c1')), false);
          assert.equal(await canPing(c('c1'), v4Of('c4')), false);
        });

        it('masquerade disabled translates nothing; host_ipv4 translates to that address', async () => {
          await fw.reconcile([network(NET_A, { masquerade: false }), network(NET_B, { hostIpv4: HOST_SNAT_V4 })]);
          assert.equal(await sourceSeenOutside(c('c3'), OUTSIDE_V4), HOST_SNAT_V4);
          assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), undefined);
          assert.equal(await sourceSeenOutside(c('c4'), OUTSIDE_V6), 'fd99::1', 'IPv6 still masqueraded');
        });

        it('no unsolicited inbound: the outside reaches a container without cnm rules, not with them', async () => {
          const networks = [network(NET_A), network(NET_B)];
          // Routes back to network a, for this test only (the others prove NAT by the outside having none).
          ip(topo.outside, 'route', 'add', `${NET_A.v4}.0/24`, 'via', HOST_OUT_V4);
          ip(topo.outside, '-6', 'route', 'add', `${NET_A.v6}:/64`, 'via', 'fd99::1');
          try {
            inNetns(topo.host, 'nft', ['flush', 'ruleset']);
            assert.ok(await canPing(topo.outside, v4Of('c1')), 'without rules the outside reaches c1 (the probe works)');
            assert.ok(await canPing(topo.outside, v6Of('c2')), 'without rules the outside reaches c2 over IPv6');
            await fw.reconcile(networks);
            assert.equal(await canPing(topo.outside, v4Of('c1')), false, 'outside → c1 with cnm rules');
            assert.equal(await canPing(topo.outside, v6Of('c2')), false, 'outside → c2 over IPv6 with cnm rules');
            assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), HOST_OUT_V4, 'c1 → outside still works');
          } finally {
            ip(topo.outside, 'route', 'del', `${NET_A.v4}.0/24`);
            ip(topo.outside, '-6', 'route', 'del', `${NET_A.v6}:/64`);
          }
        });

        it('reconcile restores everything after `nft flush ruleset`', async () => {
          const networks = [network(NET_A), network(NET_B)];
          await fw.reconcile(networks);
          inNetns(topo.host, 'nft', ['flush', 'ruleset']);
          assert.equal(await fw.isIntact(), false);
          assert.ok(await canPing(c('c1'), v4Of('c3')), 'isolation is gone after the flush');
          await fw.reconcile(networks);
          assert.equal(await fw.isIntact(), true);
          assert.equal(await canPing(c('c1'), v4Of('c3')), false, 'isolation is back');
          assert.equal(await sourceSeenOutside(c('c2'), OUTSIDE_V4), HOST_OUT_V4);
        });

        it('an established masqueraded connection survives reconcile, and flush + reconcile', async () => {
          const networks = [network(NET_A), network(NET_B)];
          await fw.reconcile(networks);
          const client = new EchoClient(c('c1'));
          try {
            assert.equal(await client.exchange('one'), `${HOST_OUT_V4} one`);
            await fw.reconcile(networks);
            assert.equal(await client.exchange('two'), `${HOST_OUT_V4} two`, 'after reconcile');
            inNetns(topo.host, 'nft', ['flush', 'ruleset']);
            await fw.reconcile(networks);
            assert.equal(await client.exchange('three'), `${HOST_OUT_V4} three`, 'after flush + reconcile');
          } finally {
            client.close();
          }
        });

        it('removeNetwork is idempotent and leaves other networks working', async () => {
          await fw.removeNetwork(network(NET_B));
          await fw.removeNetwork(network(NET_B));
          assert.equal(await fw.isIntact(), true);
          assert.ok(await canPing(c('c1'), v4Of('c2')));
          assert.equal(await sourceSeenOutside(c('c1'), OUTSIDE_V4), HOST_OUT_V4);
          assert.equal(await sourceSeenOutside(c('c3'), OUTSIDE_V4), undefined, "b's masquerade is gone");
          assert.ok(await canPing(c('c1'), v4Of('c3')), "b's bridge is no longer isolated");
          await fw.addNetwork(network(NET_B));
          assert.equal(await canPing(c('c1'), v4Of('c3')), false, 'isolated again once added back');
        });

        it('removeNetwork succeeds when the tables are gone', async () => {
          inNetns(topo.host, 'nft', ['delete', 'table', 'bridge', 'cnm']);
          await fw.removeNetwork(network(NET_A, { icc: false }));
          inNetns(topo.host, 'nft', ['flush', 'ruleset']);
          await fw.removeNetwork(network(NET_A));
          assert.equal(await fw.isIntact(), false);
        });
      });
    }
  }
});

describe('nft runners on the kernel', { skip: SKIP }, () => {
  for (const runner of RUNNERS) {
    it(`${runner.name}: the golden scripts are valid for this nft and kernel`, () =>
      withTestNetns(async (_name, path) => {
        const r = runner.make(path);
        try {
          const files = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.nft')).sort();
          assert.ok(files.length >= 5);
          // base first, then full (which replaces it), then every add and remove script on top.
          const order = ['base.nft', 'full.nft', ...files.filter((f) => f !== 'base.nft' && f !== 'full.nft')];
          for (const file of order) await r.run(readFileSync(join(GOLDEN_DIR, file), 'utf8'));
        } finally {
          r.close();
        }
      }),
    );

    it(`${runner.name}: errors carry nft's text and errno`, () =>
      withTestNetns(async (_name, path) => {
        const r = runner.make(path);
        try {
          await assert.rejects(r.run('list table inet cnm'), (e: unknown) => e instanceof KernelError && e.errno === 'ENOENT');
          await assert.rejects(r.run('add tabel inet x'), (e: unknown) => e instanceof KernelError && /syntax error/.test(e.message));
        } finally {
          r.close();
        }
      }),
    );
  }

  it('a libnftables context programs only the namespace it was created in, also later', async () => {
    const ownNamespace = readlinkSync('/proc/thread-self/ns/net');
    const ns1 = createTestNetns();
    const ns2 = createTestNetns();
    const runners: LibNftRunner[] = [];
    try {
      inNetns(ns1, 'nft', ['add table inet cnmprobe1']);
      const r1 = new LibNftRunner({ netnsPath: netnsPath(ns1) });
      const r2 = new LibNftRunner({ netnsPath: netnsPath(ns2) });
      runners.push(r1, r2);
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), ownNamespace, 'the thread is back in its namespace');
      await new Promise((resolve) => setTimeout(resolve, 10)); // later, from another event-loop turn
      assert.equal((await r1.run('list tables')).trim(), 'table inet cnmprobe1');
      assert.equal((await r2.run('list tables')).trim(), '');
      await r2.run('add table inet cnmprobe2');
      assert.equal(inNetns(ns2, 'nft', ['list', 'tables']).trim(), 'table inet cnmprobe2');
      assert.equal(inNetns(ns1, 'nft', ['list', 'tables']).trim(), 'table inet cnmprobe1');
      assert.doesNotMatch(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }), /cnmprobe/, 'own namespace untouched');
    } finally {
      for (const r of runners) r.close();
      deleteTestNetns(ns1);
      deleteTestNetns(ns2);
    }
  });

  it('a libnftables runner for a missing namespace fails cleanly and stays in its namespace', () => {
    const ownNamespace = readlinkSync('/proc/thread-self/ns/net');
    assert.throws(
      () => new LibNftRunner({ netnsPath: '/run/netns/cnmt-does-not-exist' }),
      (e: unknown) => e instanceof KernelError && e.errno === 'ENOENT',
    );
    assert.equal(readlinkSync('/proc/thread-self/ns/net'), ownNamespace);
  });
});
