/** Adopted namespaces against the recording kernel: refusals change nothing; default routes come back. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { httpStatusOf } from '../../src/errors.js';
import type { LinkDeleteOptions } from '../../src/kernel/types.js';

describe('controller: adopted namespaces', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.controller.createNetwork({ name: 'ad', ipam: { configs: [{ subnet: '10.30.0.0/24' }] } });
  });
  after(async () => h.cleanup());

  const defaults = async (ns: string) =>
    (await h.kernel.routeList(ns, 4)).filter((r) => r.dst === 'default').map((r) => `${r.via} ${r.dev} ${r.metric}`);

  it('pins the namespace and refuses one another sandbox has, changing nothing', async () => {
    await h.kernel.createNetns('/ext/a');
    const s = await h.controller.createSandbox({ name: 'a', netnsPath: '/ext/a', networks: [{ network: 'none' }] });
    assert.notEqual(s.sandbox.netnsPath, '/ext/a', 'the pin is used, not the given path');
    assert.equal(s.sandbox.adoptedFrom, '/ext/a');
    const paths = h.kernel.netnsPaths().sort();
    for (const path of ['/ext/a', s.sandbox.netnsPath, '/ext/missing', 'relative/path']) {
      await assert.rejects(h.controller.createSandbox({ name: 'other', netnsPath: path, networks: [{ network: 'none' }] }), (err: unknown) => {
        assert.equal(httpStatusOf(err), 400, (err as Error).message);
        return true;
      });
      assert.deepEqual(h.kernel.netnsPaths().sort(), paths, `${path}: no pin left`);
      assert.throws(() => h.controller.getSandbox('other'), /No such sandbox/);
    }
    await h.controller.removeSandbox('a', false);
    assert.deepEqual(h.kernel.netnsPaths(), ['/ext/a'], 'rm unpins; the namespace itself stays');
  });

  it('puts back the default routes the namespace had, on the last disconnect and on rm', async () => {
    await h.kernel.createNetns('/ext/r');
    await h.kernel.linkAdd('/ext/r', { kind: 'veth', name: 'cnmd0', up: true, peer: { name: 'cnmd1' } });
    await h.kernel.linkSet('/ext/r', 'cnmd1', { up: true });
    await h.kernel.addrAdd('/ext/r', 'cnmd0', '10.99.0.2/24');
    await h.kernel.routeReplace('/ext/r', { dst: 'default', via: '10.99.0.1', family: 4 });
    await h.kernel.routeReplace('/ext/r', { dst: 'default', via: '10.99.0.254', metric: 100, family: 4 });
    const original = await defaults('/ext/r');
    await h.controller.createSandbox({ name: 'r', netnsPath: '/ext/r', networks: [{ network: 'ad' }] });
    assert.deepEqual(await defaults('/ext/r'), ['10.30.0.1 eth0 0'], "cnm's default route alone");
    await h.controller.disconnect('ad', 'r', false);
    assert.deepEqual((await defaults('/ext/r')).sort(), original.sort(), 'the last disconnect restores them');
    await h.controller.connect({ network: 'ad', sandbox: 'r' });
    assert.deepEqual(await defaults('/ext/r'), ['10.30.0.1 eth0 0']);
    await h.controller.removeSandbox('r', false);
    assert.deepEqual((await defaults('/ext/r')).sort(), original.sort(), 'rm restores them');
    assert.ok(await h.kernel.linkGet('/ext/r', 'cnmd0'), 'links cnm did not create stay');
  });
});

describe('controller: a namespace that is not cnm\'s gets its veth destroyed before a disconnect returns', () => {
  it('adopted: the host end is deleted untilDestroyed; a namespace cnm made: in the background only', async () => {
    const deletions: Array<{ name: string; untilDestroyed: boolean }> = [];
    const h = await startHarness(undefined, (k) =>
      new Proxy(k, {
        get(target, prop, receiver) {
          if (prop === 'linkDel') {
            return (ns: string | null, name: string, options: LinkDeleteOptions = {}) => {
              deletions.push({ name, untilDestroyed: options.untilDestroyed === true });
              return target.linkDel(ns, name);
            };
          }
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    );
    try {
      await h.controller.createNetwork({ name: 'fx', ipam: { configs: [{ subnet: '10.31.0.0/24' }] } });
      await h.kernel.createNetns('/ext/f');
      await h.controller.createSandbox({ name: 'adopted', netnsPath: '/ext/f', networks: [{ network: 'fx' }] });
      await h.controller.createSandbox({ name: 'own', networks: [{ network: 'fx' }] });
      const hostEnd = (sb: string) => h.controller.getSandbox(sb).endpoints[0]!.endpoint.hostInterface!.name;
      const [adoptedEnd, ownEnd] = [hostEnd('adopted'), hostEnd('own')];
      await h.controller.disconnect('fx', 'adopted', false);
      await h.controller.disconnect('fx', 'own', false);
      assert.deepEqual(deletions.filter((d) => d.name === adoptedEnd || d.name === ownEnd), [
        { name: adoptedEnd, untilDestroyed: true },
        { name: ownEnd, untilDestroyed: false },
      ]);
    } finally {
      await h.cleanup();
    }
  });
});
