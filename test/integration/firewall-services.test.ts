/**
 * Service VIPs on the real kernel: one bridge in a throwaway host namespace, three backends each serving
 * its own name over HTTP (busybox httpd), one client (curl: this busybox's wget crashes). The VIP is an address of the bridge; nftables
 * spreads connections to it over the backends (numgen into the service's slot map) and masquerades them
 * so replies come back through the host.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NftFirewall } from '../../src/firewall/nft-firewall.js';
import { LibNftRunner } from '../../src/firewall/runner-libnft.js';
import type { FirewallNetwork, FirewallService } from '../../src/firewall/types.js';
import { createTestNetns, deleteTestNetns, inNetns, netnsPath } from '../helpers/netns.js';
import { countLines, httpBurstArgv } from '../helpers/http-burst.js';
import { realKernelSkip } from '../helpers/privileges.js';

const SKIP = realKernelSkip();
const VIP = '10.93.0.100';
const BACKENDS = { b1: '10.93.0.11', b2: '10.93.0.12', b3: '10.93.0.13' } as const;
const CLIENT = '10.93.0.20';
const NETWORK: FirewallNetwork = {
  id: 'c'.repeat(64), bridge: 'cnmbr-s', ipv4Subnets: ['10.93.0.0/24'], ipv6Subnets: [], icc: true, masquerade: true, internal: false,
};

function ip(ns: string, ...args: string[]): void {
  execFileSync('ip', ['-n', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

describe('service VIP load balancing (nftables, real kernel)', { skip: SKIP }, () => {
  let host = '';
  const sandboxes: Record<string, string> = {};
  const servers: ChildProcess[] = [];
  let dir = '';
  let firewall: NftFirewall;
  const service = (backends: string[], ports: FirewallService['ports'] = []): FirewallService => ({
    id: 'd'.repeat(64), vip: VIP, ports, backends,
  });

  /** `count` HTTP requests to the VIP from the client, each on a new connection; the names that answered, counted. */
  function requests(count: number, port = 80): Map<string, number> {
    const [node, ...args] = httpBurstArgv(`http://${VIP}:${port}/`, count);
    const counts = countLines(inNetns(sandboxes.client!, node!, args, 60_000));
    assert.equal([...counts.values()].reduce((a, b) => a + b, 0), count, `one line per request: ${JSON.stringify([...counts])}`);
    return counts;
  }

  before(async () => {
    host = createTestNetns();
    dir = mkdtempSync(join(tmpdir(), 'cnmt-svc-'));
    inNetns(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    ip(host, 'link', 'add', NETWORK.bridge, 'type', 'bridge');
    ip(host, 'addr', 'add', '10.93.0.1/24', 'dev', NETWORK.bridge);
    ip(host, 'addr', 'add', `${VIP}/32`, 'dev', NETWORK.bridge);
    ip(host, 'link', 'set', NETWORK.bridge, 'up');
    for (const [name, addr] of [...Object.entries(BACKENDS), ['client', CLIENT]] as Array<[string, string]>) {
      const ns = createTestNetns();
      sandboxes[name] = ns;
      ip(host, 'link', 'add', `cnmv-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip(host, 'link', 'set', `cnmv-${name}`, 'master', NETWORK.bridge, 'up');
      ip(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      ip(ns, 'link', 'set', 'eth0', 'up');
      ip(ns, 'link', 'set', 'lo', 'up');
      ip(ns, 'route', 'add', 'default', 'via', '10.93.0.1');
      if (name === 'client') continue;
      const root = join(dir, name);
      mkdirSync(root);
      writeFileSync(join(root, 'index.html'), `${name}\n`);
      for (const port of ['80', '8080']) {
        servers.push(spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', port, '-h', root], { stdio: 'ignore' }));
      }
    }
    firewall = new NftFirewall(new LibNftRunner({ netnsPath: netnsPath(host) }));
    await firewall.ensureBase();
    await firewall.addNetwork(NETWORK);
    // The servers are up once each answers directly.
    for (const addr of Object.values(BACKENDS)) {
      for (let i = 0; ; i++) {
        try {
          inNetns(sandboxes.client!, 'curl', ['-sf', '-m', '1', '-o', '/dev/null', `http://${addr}/`]);
          break;
        } catch (err) {
          if (i > 50) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  });

  after(() => {
    for (const s of servers) s.kill('SIGKILL');
    firewall?.close();
    for (const ns of Object.values(sandboxes)) deleteTestNetns(ns);
    if (host) deleteTestNetns(host);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('300 requests through the VIP reach all three backends', async () => {
    await firewall.setService(service(Object.values(BACKENDS)));
    const counts = requests(300);
    assert.equal(counts.get('FAIL'), undefined, `failures: ${JSON.stringify([...counts])}`);
    for (const name of Object.keys(BACKENDS)) assert.ok((counts.get(name) ?? 0) > 30, `${name}: ${JSON.stringify([...counts])}`);
  });

  it('a removed backend gets nothing more; the others keep serving', async () => {
    await firewall.setService(service([BACKENDS.b1, BACKENDS.b3]));
    const counts = requests(100);
    assert.equal(counts.get('b2'), undefined, JSON.stringify([...counts]));
    assert.equal(counts.get('FAIL'), undefined);
    assert.ok((counts.get('b1') ?? 0) > 10 && (counts.get('b3') ?? 0) > 10, JSON.stringify([...counts]));
  });

  it('with ports, only those ports are balanced; a service without backends refuses', async () => {
    // A service's VIP and ports are fixed for its life: another port set is another service.
    await firewall.removeService(service([]));
    await firewall.setService(service([BACKENDS.b2], [{ protocol: 'tcp', port: 8080 }]));
    assert.deepEqual([...requests(5, 8080)], [['b2', 5]]);
    // Port 80 is not part of the service any more: the host itself answers, and nothing listens there.
    assert.deepEqual([...requests(2, 80)], [['FAIL', 2]]);
    await firewall.setService(service([], [{ protocol: 'tcp', port: 8080 }]));
    assert.deepEqual([...requests(2, 8080)], [['FAIL', 2]]);
  });

  it('removal is idempotent and leaves the base intact', async () => {
    await firewall.removeService(service([], [{ protocol: 'tcp', port: 8080 }]));
    await firewall.removeService(service([], [{ protocol: 'tcp', port: 8080 }]));
    assert.equal(await firewall.isIntact(), true);
    const listing = inNetns(host, 'nft', ['list', 'table', 'inet', 'cnm']);
    assert.ok(!listing.includes('svc_'), listing);
    assert.ok(!listing.includes(VIP), listing);
  });

  it('reconcile re-creates services with the networks', async () => {
    await firewall.reconcile([NETWORK], [service([BACKENDS.b3])]);
    assert.deepEqual([...requests(5)], [['b3', 5]]);
  });
});
