/**
 * Followed namespaces (NetnsFollow, the CNI plugin's sandboxes) against the recording kernel: adopted
 * without a pin or an embedded DNS server, released when the namespace dies or its path names another.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { httpStatusOf } from '../../src/errors.js';

describe('controller: followed namespaces', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.controller.createNetwork({ name: 'fo', ipam: { configs: [{ subnet: '10.31.0.0/24' }] } });
  });
  after(async () => h.cleanup());

  it('adopts without keeping a pin, with the host resolver, and refuses NetnsFollow without NetnsPath', async () => {
    await h.kernel.createNetns('/ext/f1');
    const s = await h.controller.createSandbox({ name: 'f1', netnsPath: '/ext/f1', netnsFollow: true, networks: [{ network: 'fo' }] });
    assert.equal(s.sandbox.netnsPath, '/ext/f1', 'the given path itself, no pin');
    assert.equal(typeof s.sandbox.followsNetns, 'string');
    assert.equal(s.sandbox.embeddedDns, undefined, 'no DNS server sockets in the namespace');
    assert.ok(!h.kernel.netnsPaths().some((p) => p.endsWith(s.sandbox.id)), 'no pin under the exec root');
    assert.ok(await h.kernel.linkGet('/ext/f1', 'eth0'));
    await assert.rejects(h.controller.createSandbox({ name: 'f0', netnsFollow: true }), (err: unknown) => httpStatusOf(err) === 400);
    assert.deepEqual(await h.controller.releaseLostSandboxes(), [], 'a live namespace is kept');
    await h.controller.removeSandbox('f1', false);
    assert.deepEqual(h.kernel.netnsPaths().filter((p) => p === '/ext/f1'), ['/ext/f1'], 'rm leaves the namespace to its runtime');
    assert.equal(await h.kernel.linkGet('/ext/f1', 'eth0'), undefined, 'but takes its interface');
  });

  it('releases a sandbox whose namespace died or whose path names another namespace, without entering it', async () => {
    await h.kernel.createNetns('/ext/f2');
    await h.kernel.createNetns('/ext/f3');
    const a = await h.controller.createSandbox({ name: 'f2', netnsPath: '/ext/f2', netnsFollow: true, networks: [{ network: 'fo' }] });
    await h.controller.createSandbox({ name: 'f3', netnsPath: '/ext/f3', netnsFollow: true, networks: [{ network: 'fo' }] });
    const address = a.endpoints[0]!.endpoint.ipv4Address!.split('/')[0]!;
    await h.kernel.deleteNetns('/ext/f2');
    await h.kernel.deleteNetns('/ext/f3');
    await h.kernel.createNetns('/ext/f3'); // the path now names a newcomer
    assert.deepEqual((await h.controller.releaseLostSandboxes()).sort(), ['f2', 'f3']);
    assert.throws(() => h.controller.getSandbox('f2'), /No such sandbox/);
    assert.deepEqual((await h.kernel.linkList('/ext/f3')).map((l) => l.name).filter((n) => n !== 'lo'), [], 'nothing was done in the newcomer');
    // The address is free again.
    const b = await h.controller.createSandbox({ name: 'g', networks: [{ network: 'fo', ipv4Address: address }] });
    assert.equal(b.endpoints[0]!.endpoint.ipv4Address, `${address}/24`);
  });
});
