/**
 * Crash recovery on the real kernel: SIGTERM keeps networks; kill -9 (also in the middle of a burst of
 * requests) followed by a restart loses nothing and leaks nothing — links, namespace pins, addresses
 * and nft rules all match what the API reports.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventually } from '../conformance/kernel-support.js';
import { realKernelSkip } from '../helpers/privileges.js';

interface KernelView {
  links: string[];
  bridgeAddrs: string[];
  pins: string[];
  nft: string;
}

async function kernelView(d: TestDaemon): Promise<KernelView> {
  const links = JSON.parse((await d.inHost('ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  const addrs = JSON.parse((await d.inHost('ip', ['-j', 'addr', 'show'])).stdout) as Array<{
    ifname: string;
    addr_info: Array<{ local: string; prefixlen: number; scope: string }>;
  }>;
  return {
    links: links.map((l) => l.ifname).filter((n) => n.startsWith('cnm')).sort(),
    bridgeAddrs: addrs
      .filter((a) => a.ifname.startsWith('cnm'))
      .flatMap((a) => a.addr_info.filter((i) => i.scope === 'global').map((i) => `${a.ifname} ${i.local}/${i.prefixlen}`))
      .sort(),
    pins: (await readdir(join(d.execRoot, 'netns')).catch(() => [] as string[])).sort(),
    nft: (await d.inHost('nft', ['list', 'ruleset'])).stdout,
  };
}

/** What the kernel should hold according to the API. */
async function expectedView(d: TestDaemon): Promise<{ bridges: string[]; veths: number; pins: string[]; gateways: string[] }> {
  const nets = (await d.api('GET', '/networks')).json() as any[];
  const bridges: string[] = [];
  const gateways: string[] = [];
  for (const n of nets.filter((x) => x.Driver === 'bridge')) {
    const name = n.Options['com.docker.network.bridge.name'] ?? `cnm-${n.Id.slice(0, 11)}`;
    bridges.push(name);
    for (const c of n.IPAM.Config) gateways.push(`${name} ${c.Gateway}/${c.Subnet.split('/')[1]}`);
  }
  const sandboxes = (await d.api('GET', '/cnm/v1/sandboxes')).json() as any[];
  const veths = sandboxes.reduce((acc, s) => acc + Object.values(s.Networks).filter((e: any) => e.IPAddress).length, 0);
  const pins = sandboxes.filter((s) => !s.HostNetwork && !s.Adopted).map((s) => s.Id).sort();
  return { bridges: bridges.sort(), veths, pins, gateways: gateways.sort() };
}

/** Deleted veths and bridges are retired at once (renamed cnmz…) and destroyed in the background: they must go. */
async function settledKernelView(d: TestDaemon): Promise<KernelView> {
  await eventually(async () => !(await kernelView(d)).links.some((l) => l.startsWith('cnmz')), 'retired links destroyed');
  return kernelView(d);
}

async function assertConsistent(d: TestDaemon): Promise<void> {
  const k = await settledKernelView(d);
  const e = await expectedView(d);
  const bridgesInKernel = k.links.filter((l) => !l.startsWith('cnmv') && !l.startsWith('cnmt'));
  assert.deepEqual(bridgesInKernel, e.bridges, 'bridges match networks');
  assert.equal(k.links.filter((l) => l.startsWith('cnmv')).length, e.veths, 'one host veth per endpoint');
  assert.deepEqual(k.pins, e.pins, 'one namespace pin per sandbox');
  assert.deepEqual(k.bridgeAddrs, e.gateways, 'bridge addresses are exactly the gateways');
  for (const b of e.bridges) assert.ok(k.nft.includes(`"${b}"`), `nft knows bridge ${b}`);
}

describe('crash recovery (real kernel)', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
  });
  after(async () => d?.cleanup());

  it('keeps networks and connectivity across SIGTERM and kill -9', async () => {
    assert.equal((await d.api('POST', '/networks/create', { Name: 'r1', IPAM: { Config: [{ Subnet: '10.60.0.0/24' }] } })).status, 201);
    for (const name of ['s1', 's2']) {
      assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: 'r1' }] })).status, 201);
    }
    const s2ip = (await d.api('GET', '/cnm/v1/sandboxes/s2')).json().Networks.r1.IPAddress;
    assert.equal((await d.exec('s1', ['ping', '-c1', '-W1', s2ip])).code, 0);

    assert.equal(await d.stop('SIGTERM'), 0, 'clean exit on SIGTERM');
    const afterStop = await kernelView(d);
    assert.ok(afterStop.links.some((l) => l.startsWith('cnm-')), 'networks stay when the daemon stops');
    await d.start();
    assert.equal((await d.exec('s1', ['ping', '-c1', '-W1', s2ip])).code, 0);

    await d.stop('SIGKILL');
    await d.start();
    assert.equal((await d.exec('s1', ['ping', '-c1', '-W1', s2ip])).code, 0, 'connectivity after kill -9');
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/s2')).json().Networks.r1.IPAddress, s2ip);
    await assertConsistent(d);
  });

  it('leaks nothing when killed in the middle of a burst of requests', async () => {
    const burst = Array.from({ length: 12 }, (_, i) =>
      d.api('POST', '/cnm/v1/sandboxes', { Name: `burst${i}`, Networks: [{ Network: 'r1' }] }).catch(() => undefined),
    );
    const nets = Array.from({ length: 4 }, (_, i) => d.api('POST', '/networks/create', { Name: `bn${i}` }).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 150));
    await d.stop('SIGKILL');
    await Promise.all([...burst, ...nets]);
    await d.start();
    await assertConsistent(d);
    // Every sandbox that survived works and no address is handed out twice.
    const sandboxes = (await d.api('GET', '/cnm/v1/sandboxes')).json() as any[];
    const ips = sandboxes.flatMap((s) => Object.values(s.Networks).map((e: any) => e.IPAddress)).filter(Boolean);
    assert.equal(new Set(ips).size, ips.length, 'addresses are unique');
  });

  it('removing everything leaves only the predefined bridge', async () => {
    const sandboxes = (await d.api('GET', '/cnm/v1/sandboxes')).json() as any[];
    for (const s of sandboxes) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${s.Id}?force=1`)).status, 204);
    const pruned = await d.api('POST', '/networks/prune');
    assert.equal(pruned.status, 200, pruned.body);
    const k = await settledKernelView(d);
    assert.deepEqual(k.links.filter((l) => !l.startsWith('cnmt')), ['cnm0']);
    assert.deepEqual(k.pins, []);
    await assertConsistent(d);
  });
});
