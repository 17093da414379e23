/**
 * Start-up with a network that cannot be restored, against the fake kernel: the controller starts, the
 * network says why (and gets no firewall), connects are refused with the reason until it is fixed, an
 * operation after the fix brings it back with its endpoints, and rm never deletes a link cnm did not make.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from '../helpers/controller-harness.js';
import type { ControllerEvent } from '../../src/controller/types.js';
import { httpStatusOf } from '../../src/errors.js';

it('a network whose bridge name is held by another link: out of service with a reason, retried, removable', async () => {
  const h = await startHarness();
  try {
    await h.controller.createNetwork({ name: 'ok', ipam: { configs: [{ subnet: '10.30.0.0/24' }] } });
    const fix = await h.controller.createNetwork({ name: 'fix', ipam: { configs: [{ subnet: '10.31.0.0/24' }] } });
    const gone = await h.controller.createNetwork({ name: 'gone', ipam: { configs: [{ subnet: '10.32.0.0/24' }] } });
    await h.controller.createSandbox({ name: 's1', networks: [{ network: 'fix' }] });
    const bridgeOf = (id: string) => `cnm-${id.slice(0, 11)}`;
    for (const id of [fix.id, gone.id]) {
      await h.kernel.linkDel(null, bridgeOf(id));
      await h.kernel.linkAdd(null, { kind: 'veth', name: bridgeOf(id), peer: { name: `${bridgeOf(id).slice(0, 11)}p` } });
    }
    const h2 = await h.restart();
    const events: ControllerEvent[] = [];
    h2.controller.subscribe((e) => events.push(e));
    assert.equal(h2.controller.getNetwork('ok').error, undefined);
    assert.match(h2.controller.getNetwork('fix').error ?? '', /not a bridge/);
    assert.deepEqual(events.filter((e) => e.action === 'error').map((e) => e.id).sort(), [fix.id, gone.id].sort(), 'start-up events reach the first subscriber');
    const inFirewall = () => [...h2.firewall.networks.values()].map((n) => n.bridge);
    assert.ok(!inFirewall().includes(bridgeOf(fix.id)), 'no firewall elements for a link that is not its bridge');
    assert.ok(inFirewall().includes(bridgeOf(h2.controller.getNetwork('ok').network.id)), 'the others have theirs');

    await assert.rejects(h2.controller.createSandbox({ name: 's2', networks: [{ network: 'fix' }] }), (err: unknown) => {
      assert.equal(httpStatusOf(err), 403);
      assert.match(String(err), /out of service.*not a bridge/);
      return true;
    });
    await h2.controller.removeNetwork('gone');
    assert.equal((await h2.kernel.linkGet(null, bridgeOf(gone.id)))?.kind, 'veth', 'rm leaves the foreign link alone');

    await h2.kernel.linkDel(null, bridgeOf(fix.id));
    await h2.controller.createSandbox({ name: 's2', networks: [{ network: 'fix' }] });
    assert.equal(h2.controller.getNetwork('fix').error, undefined);
    assert.equal((await h2.kernel.linkGet(null, bridgeOf(fix.id)))?.kind, 'bridge');
    assert.ok(inFirewall().includes(bridgeOf(fix.id)), 'its firewall elements are back');
    const s1veth = `cnmv${h2.controller.getSandbox('s1').endpoints[0]!.endpoint.id.slice(0, 11)}`;
    assert.equal((await h2.kernel.linkGet(null, s1veth))?.master, bridgeOf(fix.id), "the old endpoint is back on its bridge");
  } finally {
    await h.cleanup();
  }
});
