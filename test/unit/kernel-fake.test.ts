import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelError } from '../../src/errors.js';
import { FakeKernel } from '../../src/kernel/fake.js';
import { kernelConformance } from '../conformance/kernel.js';

kernelConformance('fake', async () => {
  let n = 0;
  const kernel = new FakeKernel();
  return { kernel, real: false, newNetnsPath: () => `/fake/netns/sb${n++}`, cleanup: async () => kernel.close() };
}, 'fake');

describe('FakeKernel extras', () => {
  it('logs every call with a copy of its arguments', async () => {
    const k = new FakeKernel();
    const spec = { kind: 'bridge' as const, name: 'cnmbr0', up: true };
    await k.linkAdd(null, spec);
    spec.name = 'cnmchanged';
    await k.linkGet(null, 'cnmbr0');
    assert.deepEqual(k.calls, [
      { method: 'linkAdd', args: [null, { kind: 'bridge', name: 'cnmbr0', up: true }] },
      { method: 'linkGet', args: [null, 'cnmbr0'] },
    ]);
  });

  it('failNext makes exactly the next call of that method fail', async () => {
    const k = new FakeKernel();
    k.failNext('linkAdd', new KernelError('boom', 'EIO'));
    await assert.rejects(k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' }), { errno: 'EIO' });
    assert.equal(await k.linkGet(null, 'cnmbr0'), undefined);
    await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
    assert.ok(await k.linkGet(null, 'cnmbr0'));
  });

  it('writes IPv6 addresses canonically', async () => {
    const k = new FakeKernel();
    await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
    await k.addrAdd(null, 'cnmbr0', 'FD00:0:0:0:0:0:0:1/64');
    await k.addrAdd(null, 'cnmbr0', '2001:db8:0:1:0:0:0:0/64');
    assert.deepEqual((await k.addrList(null, 'cnmbr0')).map((a) => a.cidr), ['fd00::1/64', '2001:db8:0:1::/64']);
    assert.ok((await k.routeList(null, 6)).some((r) => r.dst === '2001:db8:0:1::/64'));
  });

  it('setting disable_ipv6 drops the link\'s IPv6 addresses and refuses new ones', async () => {
    const k = new FakeKernel();
    await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
    await k.addrAdd(null, 'cnmbr0', 'fd00::1/64');
    await k.sysctlSet(null, 'net.ipv6.conf.cnmbr0.disable_ipv6', '1');
    assert.deepEqual(await k.addrList(null, 'cnmbr0'), []);
    await assert.rejects(k.addrAdd(null, 'cnmbr0', 'fd00::1/64'), { errno: 'EACCES' });
  });
});

describe('FakeKernel refusals leave nothing behind', () => {
  it('a veth whose peer MAC is invalid creates neither end', async () => {
    const k = new FakeKernel();
    await assert.rejects(
      k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1', mac: 'zz:00:00:00:00:00' } }),
      { errno: 'EADDRNOTAVAIL' },
    );
    assert.deepEqual((await k.linkList(null)).map((l) => l.name), ['lo']);
  });

  it('a move with a missing master in the target leaves the link where it was', async () => {
    const k = new FakeKernel();
    await k.createNetns('/fake/sb');
    await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
    await assert.rejects(k.linkSet(null, 'cnmv1', { netns: '/fake/sb', master: 'cnmnobr' }), { errno: 'ENODEV' });
    assert.ok(await k.linkGet(null, 'cnmv1'));
    assert.equal(await k.linkGet('/fake/sb', 'cnmv1'), undefined);
  });

  it('deleting a namespace deletes the veth peers of its links', async () => {
    const k = new FakeKernel();
    await k.createNetns('/fake/sb');
    await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'eth0', netns: '/fake/sb' } });
    await k.deleteNetns('/fake/sb');
    assert.equal(await k.linkGet(null, 'cnmv0'), undefined);
    assert.deepEqual(k.netnsPaths(), []);
  });
});
