/**
 * The endpoint's host-side interface (JoinResult.hostInterface) as the controller keeps it, against the
 * fake kernel: recorded at connect with the name and MAC the kernel holds, kept across a restart, and
 * replaced when a broken endpoint is rejoined at start-up (a new veth, a new MAC).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from '../helpers/controller-harness.js';

it('records the veth host end (name + MAC, as the kernel has it, and its bridge), keeps it across a restart, renews it on a rejoin', async () => {
  const h = await startHarness();
  try {
    await h.controller.createNetwork({ name: 'hi', ipam: { configs: [{ subnet: '10.33.0.0/24' }] } });
    await h.controller.createSandbox({ name: 's1', networks: [{ network: 'hi' }] });
    const recorded = () => h.controller.getSandbox('s1').endpoints[0]!.endpoint.hostInterface;
    const first = recorded();
    assert.ok(first, 'the endpoint records its host interface');
    const link = await h.kernel.linkGet(null, first.name);
    assert.deepEqual([link?.kind, link?.mac, link?.master?.startsWith('cnm')], ['veth', first.mac, true]);
    assert.equal(first.bridge, link?.master, 'the bridge it is a port of');

    const h2 = await h.restart();
    assert.deepEqual(h2.controller.getSandbox('s1').endpoints[0]!.endpoint.hostInterface, first, 'kept in the store');

    // The host end vanishes while the daemon is down: start-up rejoins the endpoint with a new pair.
    await h2.kernel.linkDel(null, first.name);
    const h3 = await h2.restart();
    const renewed = h3.controller.getSandbox('s1').endpoints[0]!.endpoint.hostInterface;
    const relinked = await h3.kernel.linkGet(null, first.name);
    assert.ok(renewed && relinked, 'rejoined');
    assert.deepEqual(renewed, { name: first.name, mac: relinked.mac, bridge: relinked.master }, 'the record follows the new veth');
    assert.notEqual(renewed.mac, first.mac);
  } finally {
    await h.cleanup();
  }
});
