/**
 * Service balancing inside a sandbox's own namespace (firewall/sandbox-lb.ts) on the real kernel, through
 * both nft runners: a client namespace and two backend namespaces on a bridge with NO address in a host
 * namespace (as an overlay's: the host cannot carry the VIP). Each backend answers every TCP connection
 * with its name and the client's address. The client's table translates VIP:80 to the backends; a port
 * the service does not list is not translated; updates, removal, clear and replace are idempotent.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CliNftRunner } from '../../src/firewall/runner-cli.js';
import { LibNftRunner } from '../../src/firewall/runner-libnft.js';
import { LB_TABLE, NftSandboxBalancer } from '../../src/firewall/sandbox-lb.js';
import type { FirewallService } from '../../src/firewall/types.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { serveDualStack } from '../helpers/port-servers.js';
import { assertReachedThenBlocked, runCommand, tcpRead } from '../helpers/probe.js';
import { realKernelSkip } from '../helpers/privileges.js';

const SKIP = realKernelSkip();
const VIP = '10.94.0.100';
const ADDR = { c: '10.94.0.20', b1: '10.94.0.11', b2: '10.94.0.12' } as const;
const svc = (backends: string[]): FirewallService => ({ id: 'e'.repeat(64), vip: VIP, ports: [{ protocol: 'tcp', port: 80 }], backends });

describe('service balancing inside a sandbox namespace (nftables, real kernel)', { skip: SKIP }, () => {
  let host = '';
  const ns: Record<string, string> = {};
  const servers: ChildProcess[] = [];
  before(async () => {
    host = createTestNetns();
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    ip('-n', host, 'link', 'add', 'cnmlb0', 'type', 'bridge');
    ip('-n', host, 'link', 'set', 'cnmlb0', 'up');
    for (const [name, addr] of Object.entries(ADDR)) {
      ns[name] = createTestNetns();
      ip('-n', host, 'link', 'add', `cnmlb${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[name]!);
      ip('-n', host, 'link', 'set', `cnmlb${name}`, 'master', 'cnmlb0', 'up');
      ip('-n', ns[name]!, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      ip('-n', ns[name]!, 'link', 'set', 'eth0', 'up');
      if (name !== 'c') servers.push(await serveDualStack(netnsPath(ns[name]!), name, 'tcp', [80, 81]));
    }
  });
  after(() => {
    for (const s of servers) s.kill('SIGKILL');
    for (const n of Object.values(ns)) deleteTestNetns(n);
    if (host) deleteTestNetns(host);
  });

  const client = (argv: string[]) => runCommand('ip', ['netns', 'exec', ns.c!, ...argv]);
  /** `count` connections to VIP:port, answers counted ("FAIL": none). */
  async function connections(port: number, count: number): Promise<Map<string, number>> {
    const r = await client(['bash', '-c', `for i in $(seq ${count}); do timeout 2 bash -c 'exec 3<>/dev/tcp/${VIP}/${port} && cat <&3' 2>/dev/null || echo FAIL; done`]);
    assert.equal(r.code, 0, r.stderr);
    const m = new Map<string, number>();
    for (const line of r.stdout.split('\n').filter(Boolean)) m.set(line, (m.get(line) ?? 0) + 1);
    return m;
  }
  const tables = async () => (await client(['nft', 'list', 'tables'])).stdout;

  for (const [kind, make] of [
    ['libnftables', (path: string) => new LibNftRunner({ netnsPath: path })],
    ['nft binary', (path: string) => new CliNftRunner({ netnsPath: path })],
  ] as const) {
    it(`balances VIP:80 over both backends, keeps the client's address, and follows changes (${kind})`, async () => {
      const lb = new NftSandboxBalancer(make);
      const path = netnsPath(ns.c!);
      await lb.setService(path, svc([ADDR.b1, ADDR.b2]));
      await lb.setService(path, svc([ADDR.b1, ADDR.b2])); // idempotent
      const both = await connections(80, 30);
      assert.deepEqual([...both.keys()].sort(), [`b1 ${ADDR.c}`, `b2 ${ADDR.c}`], JSON.stringify([...both]));
      // A port the service does not list is not translated: nobody has the VIP (reached on :80 first), so
      // its ARP fails: a timeout, or "unreachable" once the kernel has marked the VIP's neighbour entry failed.
      const NOBODY = ['timeout', 'unreachable'];
      await assertReachedThenBlocked((port) => tcpRead(client, VIP, Number(port)), '80', '81', 'VIP port outside the service', NOBODY);

      await lb.setService(path, svc([ADDR.b1]));
      assert.deepEqual([...(await connections(80, 20))], [[`b1 ${ADDR.c}`, 20]]);
      await lb.removeService(path, svc([ADDR.b1]));
      await lb.removeService(path, svc([ADDR.b1])); // idempotent
      await assertReachedThenBlocked((target) => tcpRead(client, target, 80), ADDR.b1, VIP, 'the VIP once removed', NOBODY);
      assert.match(await tables(), new RegExp(`table inet ${LB_TABLE}`));

      await lb.replace(path, [svc([ADDR.b2])]);
      assert.deepEqual([...(await connections(80, 10))], [[`b2 ${ADDR.c}`, 10]]);
      await lb.clear(path);
      await lb.clear(path); // idempotent
      assert.doesNotMatch(await tables(), new RegExp(LB_TABLE));
      await assertReachedThenBlocked((target) => tcpRead(client, target, 80), ADDR.b2, VIP, 'the VIP once cleared', NOBODY);
    });
  }
});
