/**
 * A VIP service on an overlay network with backends on two hosts, three real daemons on a real 3-member
 * etcd (one per host namespace, an underlay bridge between them, as cluster-overlay.test.ts). Backends b2
 * (host 2) and b3 (host 3) each run a server answering every TCP connection with its own name and the
 * client's address. The client c1 on host 1 connects N times to VIP:80 and to web:80 (the name through
 * its embedded DNS) and is answered by both, its own address kept (balanced inside its namespace, no
 * masquerade); a sandbox of another overlay on host 1 does not reach the VIP while c1 does; once b3 is
 * removed on host 3 only b2 answers.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { deleteTestNetns } from '../helpers/netns.js';
import { serveDualStack } from '../helpers/port-servers.js';
import { assertReachedThenBlocked, dig, reached, tcpRead } from '../helpers/probe.js';
import { makeUnderlayHosts } from '../helpers/underlay.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 300_000;
const vtep = (i: number) => `10.199.0.${i}`;

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not converged within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function cli(d: TestDaemon, ...args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * `count` TCP connections from `from` to target:80 in one `cnm exec`; each answer is "NAME CLIENT-ADDRESS"
 * (a connection that got none prints FAIL). Counts per answer line. bash, timeout and cat must run: a
 * sandbox that cannot run them fails the test (exit code checked).
 */
async function connections(d: TestDaemon, from: string, target: string, count: number): Promise<Map<string, number>> {
  const script = `for i in $(seq ${count}); do timeout 2 bash -c 'exec 3<>/dev/tcp/${target}/80 && cat <&3' 2>/dev/null || echo FAIL; done`;
  const r = await d.exec(from, ['bash', '-c', script]);
  assert.equal(r.code, 0, `connections could not run: ${r.stderr}`);
  const counts = new Map<string, number>();
  for (const line of r.stdout.split('\n').filter(Boolean)) counts.set(line.trim(), (counts.get(line.trim()) ?? 0) + 1);
  return counts;
}

const show = (m: Map<string, number>) => JSON.stringify([...m]);

describe('three daemons on one etcd: a VIP service on an overlay with backends on two hosts', { skip }, () => {
  let etcd: EtcdCluster | undefined;
  const namespaces: string[] = [];
  const daemons: TestDaemon[] = [];
  const servers: ChildProcess[] = [];
  before(async () => {
    etcd = await startEtcdCluster(3);
    makeUnderlayHosts(3, namespaces);
  });
  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    for (const d of daemons) await d.cleanup().catch(() => {});
    for (const ns of namespaces.reverse()) deleteTestNetns(ns);
    await etcd?.close();
  });

  it('answers from both hosts by VIP and by name; another overlay is kept out; a removed backend stops answering', { timeout: TIMEOUT }, async () => {
    const store = `unix://${etcd!.endpoints.map((e) => e.slice('unix:'.length)).join(',')}`;
    for (let i = 1; i <= 3; i++) {
      daemons.push(await startTestDaemon(['--dns', '127.0.0.1', '--cluster-store', store, '--advertise-addr', vtep(i), '--host-ttl', '3'], { hostNs: namespaces[i]! }));
    }
    const [d1, d2, d3] = daemons as [TestDaemon, TestDaemon, TestDaemon];
    await cli(d1, 'network', 'create', '--driver', 'overlay', '--subnet', '10.92.0.0/24', 'ovs');
    await cli(d1, 'network', 'create', '--driver', 'overlay', '--subnet', '10.93.0.0/24', 'ovx');
    await cli(d1, 'service', 'create', 'web', '--network', 'ovs');
    const vip: string = (await d1.api('GET', '/cnm/v1/services/web')).json().VirtualIP;
    assert.match(vip, /^10\.92\.0\.\d+$/);
    for (const d of [d2, d3]) await until(`web known on ${d.hostNs}`, async () => (await d.api('GET', '/cnm/v1/services/web')).status === 200);
    assert.equal((await d3.api('GET', '/cnm/v1/services/web')).json().VirtualIP, vip, 'the same VIP on host 3');

    const ip: Record<string, string> = {};
    for (const [d, name] of [[d2, 'b2'], [d3, 'b3']] as const) {
      await cli(d, 'sandbox', 'create', name, '--network', 'ovs', '--service', 'web');
      const sb = (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
      ip[name] = sb.Networks.ovs.IPAddress;
      servers.push(await serveDualStack(sb.NetnsPath, name, 'tcp', [80]));
    }
    await cli(d1, 'sandbox', 'create', 'c1', '--network', 'ovs');
    await cli(d1, 'sandbox', 'create', 'x1', '--network', 'ovx');
    const c1 = (await d1.api('GET', '/cnm/v1/sandboxes/c1')).json().Networks.ovs.IPAddress as string;
    // The backends themselves, straight over the overlay, before any VIP is relied on.
    for (const b of ['b2', 'b3']) await until(`c1 reaches ${b} directly`, async () => (await connections(d1, 'c1', ip[b]!, 1)).has(`${b} ${c1}`));
    // Both backends listed on host 1, with the hosts they live on.
    await until('both backends on host 1', async () => (await d1.api('GET', '/cnm/v1/services/web')).json().Backends.length === 2);
    const listed = (await d1.api('GET', '/cnm/v1/services/web')).json().Backends.map((b: { SandboxName: string; Host: string }) => b.SandboxName).sort();
    assert.deepEqual(listed, ['b2', 'b3']);

    // By VIP: 40 connections from host 1 reach both hosts' backends, each seeing c1's own address.
    const byVip = await connections(d1, 'c1', vip, 40);
    assert.equal(byVip.get('FAIL'), undefined, show(byVip));
    assert.ok((byVip.get(`b2 ${c1}`) ?? 0) > 0 && (byVip.get(`b3 ${c1}`) ?? 0) > 0, show(byVip));
    assert.equal((byVip.get(`b2 ${c1}`) ?? 0) + (byVip.get(`b3 ${c1}`) ?? 0), 40, `every answer shows the client's address: ${show(byVip)}`);
    // By name: the embedded DNS answers web with the VIP and tasks.web with both backends.
    const run = (argv: string[]) => d1.exec('c1', argv);
    assert.match(reached(await dig(run, '127.0.0.11', ['web', 'A']), 'dig web'), new RegExp(`\\sIN\\s+A\\s+${vip.replaceAll('.', '\\.')}\\b`));
    const tasks = reached(await dig(run, '127.0.0.11', ['tasks.web', 'A']), 'dig tasks.web');
    assert.deepEqual([...tasks.matchAll(/\sIN\s+A\s+(\S+)/g)].map((m) => m[1]).sort(), [ip.b2, ip.b3].sort());
    const byName = await connections(d1, 'c1', 'web', 40);
    assert.equal(byName.get('FAIL'), undefined, show(byName));
    assert.ok((byName.get(`b2 ${c1}`) ?? 0) > 0 && (byName.get(`b3 ${c1}`) ?? 0) > 0, show(byName));

    // Another overlay on the same host does not reach the VIP (the same probe reaches it from c1 first).
    await assertReachedThenBlocked(
      (from) => tcpRead((argv) => d1.exec(from, argv), vip, 80),
      'c1',
      'x1',
      'the VIP from its own network, then from another overlay',
    );

    // b3 removed on host 3: host 1 stops sending it anything; b2 answers every connection.
    await cli(d3, 'sandbox', 'rm', '-f', 'b3');
    await until('b3 out of the balancing on host 1', async () => {
      const m = await connections(d1, 'c1', vip, 10);
      return (m.get(`b2 ${c1}`) ?? 0) === 10;
    });
    const after3 = await connections(d1, 'c1', vip, 40);
    assert.deepEqual([...after3], [[`b2 ${c1}`, 40]], show(after3));
    const tasksAfter = reached(await dig(run, '127.0.0.11', ['tasks.web', 'A']), 'dig tasks.web');
    assert.deepEqual([...tasksAfter.matchAll(/\sIN\s+A\s+(\S+)/g)].map((m) => m[1]), [ip.b2]);
  });
});
