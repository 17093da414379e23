/** KernelOps conformance cases: adopting (pinning) a namespace made elsewhere. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type CaseRunner, expectKernelError, names } from './kernel-support.js';

export function adoptionCases({ withFixture, withSandbox }: CaseRunner): void {
  describe('adopting namespaces', () => {
    it('adoptNetns pins that namespace; unpinning leaves it and what is in it alive', () =>
      withSandbox(async (fx, k, source) => {
        const pin = fx.newNetnsPath();
        const identity = await k.adoptNetns(source, pin);
        assert.equal(await k.netnsIdentity(source), identity);
        assert.equal(await k.netnsIdentity(pin), identity);
        assert.notEqual(await k.netnsIdentity(fx.newNetnsPath()), identity);
        await k.linkAdd(pin, { kind: 'bridge', name: 'cnmbr9' });
        assert.ok(names(await k.linkList(source)).includes('cnmbr9'), 'the pin is the same namespace');
        await k.deleteNetns(pin);
        assert.equal(await k.netnsExists(pin), false);
        assert.equal(await k.netnsIdentity(pin), undefined);
        assert.ok(names(await k.linkList(source)).includes('cnmbr9'), 'unpinning destroys nothing');
      }));

    it('netnsIdentity tells a namespace made later at the same path from the one that was there', () =>
      withFixture(async (fx, k) => {
        const path = fx.newNetnsPath();
        const seen = new Set<string>();
        // The nsfs inode of a destroyed namespace is handed out again: only the identity's cookie differs.
        for (let i = 0; i < 5; i++) {
          await k.createNetns(path);
          const identity = await k.netnsIdentity(path);
          assert.ok(identity !== undefined);
          assert.ok(!seen.has(identity), `round ${i}: ${identity} was an earlier namespace's`);
          seen.add(identity);
          await k.deleteNetns(path);
          await k.settle();
          // Time for the kernel to free the old namespace (asynchronously), so its inode can be reused.
          await new Promise((r) => setTimeout(r, 200));
        }
      }));

    it('adoptNetns refuses a path that is no namespace, and a pin path already in use, leaving no pin', () =>
      withSandbox(async (fx, k, sb) => {
        const pin = fx.newNetnsPath();
        await expectKernelError(k.adoptNetns(fx.newNetnsPath(), pin), ['EINVAL', 'ENOENT']);
        assert.equal(await k.netnsExists(pin), false);
        await expectKernelError(k.adoptNetns(sb, sb), ['EEXIST']);
        assert.equal(await k.netnsExists(sb), true);
      }));

    it("adoptNetns refuses the daemon's own namespace (real kernels: the host namespace and other kinds)", () =>
      withFixture(async (fx, k) => {
        if (!fx.hostNetnsPath) return;
        const pin = fx.newNetnsPath();
        await expectKernelError(k.adoptNetns(fx.hostNetnsPath, pin), ['EINVAL']);
        await expectKernelError(k.adoptNetns('/proc/self/ns/mnt', pin), ['EINVAL']);
        assert.equal(await k.netnsExists(pin), false);
      }));
  });
}
