/** Global-scope networks without a cluster store: refused with a clear 4xx, nothing created. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpStatusOf } from '../../src/errors.js';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { RecordingGlobalDriver, TEST_ID_OPTION } from '../helpers/global-driver.js';

describe('global-scope driver on a daemon without a cluster store', () => {
  let h: Harness;
  const driver = new RecordingGlobalDriver();
  before(async () => {
    h = await startHarness(undefined, undefined, [driver]);
  });
  after(async () => h.cleanup());

  it('refuses to create the network (403 naming --cluster-store) and changes nothing', async () => {
    const before = await h.store.list('');
    for (const req of [
      { name: 'g1', driver: 'gtest' },
      { name: 'g2', driver: 'gtest', scope: 'global' as const, options: { [TEST_ID_OPTION]: '5000' }, ipam: { configs: [{ subnet: '10.60.0.0/24' }] } },
    ]) {
      await assert.rejects(h.controller.createNetwork(req), (err: unknown) => {
        assert.equal(httpStatusOf(err), 403);
        assert.match((err as Error).message, /global-scope networks need a cluster store: start the daemon with --cluster-store/);
        return true;
      });
    }
    assert.deepEqual(await h.store.list(''), before, 'nothing stored');
    assert.deepEqual(driver.calls, [], 'driver not called');
    assert.deepEqual(h.controller.listNetworks().map((n) => n.network.name).sort(), ['bridge', 'host', 'none']);
    // The address space is untouched: the same subnet is free for a local network.
    await h.controller.createNetwork({ name: 'local', ipam: { configs: [{ subnet: '10.60.0.0/24' }] } });
  });

  it('a local driver still refuses the global scope (400) and keeps its own scope by default', async () => {
    await assert.rejects(h.controller.createNetwork({ name: 'x', driver: 'bridge', scope: 'global' }), (err: unknown) => httpStatusOf(err) === 400);
    await h.controller.createNetwork({ name: 'plain' });
    assert.equal(h.controller.getNetwork('plain').network.scope, 'local');
  });
});
