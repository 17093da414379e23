/**
 * Issue #2's walkthrough on the real kernel, through the cnm CLI: two networks, three sandboxes,
 * connectivity inside a network, isolation across networks, two interfaces on one sandbox.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { realKernelSkip } from '../helpers/privileges.js';

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout.trim();
}

function ipOf(d: { Networks: Record<string, { IPAddress: string }> }, net: string): string {
  const ip = d.Networks[net]?.IPAddress;
  assert.ok(ip, `no address on ${net}: ${JSON.stringify(d)}`);
  return ip;
}

describe('walkthrough (real kernel, cnm CLI)', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
  });
  after(async () => d?.cleanup());

  it('builds two networks and three sandboxes', async () => {
    const netaId = await ok(d, ['network', 'create', '--subnet', '10.20.0.0/24', 'neta']);
    assert.match(netaId, /^[0-9a-f]{64}$/);
    await ok(d, ['network', 'create', 'netb']);
    await ok(d, ['sandbox', 'create', 'a', '--network', 'neta']);
    await ok(d, ['sandbox', 'create', 'b', '--network', 'neta']);
    await ok(d, ['network', 'connect', 'netb', 'b']);
    await ok(d, ['sandbox', 'create', 'c', '--network', 'netb']);
  });

  it('lets sandboxes on one network talk and isolates different networks', async () => {
    const b = (await d.api('GET', '/cnm/v1/sandboxes/b')).json();
    const c = (await d.api('GET', '/cnm/v1/sandboxes/c')).json();
    const ping = (from: string, ip: string) => d.exec(from, ['ping', '-c1', '-W1', ip]);
    const toB = await ping('a', ipOf(b, 'neta'));
    assert.equal(toB.code, 0, `a → b: ${toB.stdout}${toB.stderr}`);
    const toC = await ping('a', ipOf(c, 'netb'));
    assert.notEqual(toC.code, 0, 'a must not reach c on another network');
    const bToC = await ping('b', ipOf(c, 'netb'));
    assert.equal(bToC.code, 0, `b shares netb with c: ${bToC.stdout}${bToC.stderr}`);
    const cToBOnNeta = await ping('c', ipOf(b, 'neta'));
    assert.notEqual(cToBOnNeta.code, 0, "c must not reach b's neta address");
  });

  it('gives b two interfaces and a default route via the first network', async () => {
    const addrs = await d.exec('b', ['ip', '-o', '-4', 'addr', 'show']);
    assert.equal(addrs.code, 0, addrs.stderr);
    assert.match(addrs.stdout, /eth0\s+inet 10\.20\.0\.\d+\/24/);
    assert.match(addrs.stdout, /eth1\s+inet \d+\.\d+\.\d+\.\d+\/24/);
    const routes = await d.exec('b', ['ip', '-4', 'route', 'show', 'default']);
    assert.match(routes.stdout, /default via 10\.20\.0\.1 dev eth0/);
  });

  it('inspects neta in Docker shape with a and b in Containers', async () => {
    const out = await ok(d, ['network', 'inspect', 'neta']);
    const [net] = JSON.parse(out);
    assert.equal(net.Name, 'neta');
    assert.equal(net.Driver, 'bridge');
    assert.equal(net.IPAM.Config[0].Subnet, '10.20.0.0/24');
    const names = Object.values(net.Containers as Record<string, { Name: string }>).map((c) => c.Name).sort();
    assert.deepEqual(names, ['a', 'b']);
  });

  it('runs exec with the sandbox resolv.conf and hosts, passing the exit code through', async () => {
    const hosts = await d.exec('a', ['cat', '/etc/hosts']);
    assert.match(hosts.stdout, /10\.20\.0\.\d+\s+\S+ a/);
    const code = await d.exec('a', ['sh', '-c', 'exit 7']);
    assert.equal(code.code, 7);
  });
});
