/**
 * Namespaces cnm makes give their new interfaces no IPv6 by default (net.ipv6.conf.default.disable_ipv6=1),
 * so an IPv4 connect writes no per-interface sysctl; IPv6 endpoints turn it on; adopted namespaces are
 * left as they are; a namespace made by an older cnm gets the default at start. Recording kernel.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../helpers/controller-harness.js';

const DEFAULT_KEY = 'net.ipv6.conf.default.disable_ipv6';

describe('controller: IPv6 of the interfaces of a sandbox namespace', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.controller.createNetwork({ name: 'v4', ipam: { configs: [{ subnet: '10.31.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'v6', enableIPv6: true, ipam: { configs: [{ subnet: '10.32.0.0/24' }, { subnet: 'fd00:32::/64' }] } });
  });
  after(async () => h.cleanup());

  /** The sysctl writes a step made in `ns`, as key=value. */
  async function sysctlWrites(ns: string, step: () => Promise<unknown>): Promise<string[]> {
    const from = h.kernel.calls.length;
    await step();
    return h.kernel.calls
      .slice(from)
      .filter((c) => c.method === 'sysctlSet' && c.args[0] === ns)
      .map((c) => `${String(c.args[1])}=${String(c.args[2])}`);
  }

  it('a sandbox it makes: the default is off; an IPv4 connect writes no IPv6 sysctl, its interface has none', async () => {
    const s = await h.controller.createSandbox({ name: 'a', networks: [{ network: 'v4' }] });
    const ns = s.sandbox.netnsPath;
    assert.equal(await h.kernel.sysctlGet(ns, DEFAULT_KEY), '1');
    assert.equal(await h.kernel.sysctlGet(ns, 'net.ipv6.conf.eth0.disable_ipv6'), '1');
    const writes = await sysctlWrites(ns, () => h.controller.connect({ network: 'v6', sandbox: 'a' }));
    // The IPv6 endpoint turns IPv6 on for its own interface only.
    assert.ok(writes.includes('net.ipv6.conf.eth1.disable_ipv6=0'), writes.join(' '));
    assert.equal(await h.kernel.sysctlGet(ns, 'net.ipv6.conf.eth1.disable_ipv6'), '0');
    assert.ok((await h.kernel.addrList(ns, 'eth1')).some((a) => a.cidr.startsWith('fd00:32::')));
    await h.controller.disconnect('v4', 'a', false);
    const again = await sysctlWrites(ns, () => h.controller.connect({ network: 'v4', sandbox: 'a' }));
    assert.deepEqual(again.filter((w) => w.includes('disable_ipv6')), [], 'born without IPv6: nothing to write');
    assert.equal(await h.kernel.sysctlGet(ns, 'net.ipv6.conf.eth0.disable_ipv6'), '1');
    await h.controller.removeSandbox('a', false);
  });

  it('an adopted namespace keeps its default; each IPv4 interface gets IPv6 off itself', async () => {
    await h.kernel.createNetns('/ext/v6a');
    const s = await h.controller.createSandbox({ name: 'b', netnsPath: '/ext/v6a', networks: [{ network: 'v4' }] });
    const ns = s.sandbox.netnsPath;
    assert.equal(await h.kernel.sysctlGet(ns, DEFAULT_KEY), '0', 'not ours to change');
    assert.equal(await h.kernel.sysctlGet(ns, 'net.ipv6.conf.eth0.disable_ipv6'), '1');
    await h.controller.removeSandbox('b', false);
  });

  it('a namespace made before this default gets it at the next start, and its next interfaces start without IPv6', async () => {
    const s = await h.controller.createSandbox({ name: 'old', networks: [{ network: 'v4' }] });
    const ns = s.sandbox.netnsPath;
    await h.kernel.sysctlSet(ns, DEFAULT_KEY, '0');
    // A restart shares the exec root: h.cleanup() removes it.
    const restarted = await h.restart();
    assert.equal(await h.kernel.sysctlGet(ns, DEFAULT_KEY), '1');
    await restarted.controller.disconnect('v4', 'old', false);
    const writes = await sysctlWrites(ns, () => restarted.controller.connect({ network: 'v4', sandbox: 'old' }));
    assert.deepEqual(writes.filter((w) => w.includes('disable_ipv6')), []);
    assert.equal(await h.kernel.sysctlGet(ns, 'net.ipv6.conf.eth0.disable_ipv6'), '1');
    await restarted.controller.removeSandbox('old', false);
  });
});
