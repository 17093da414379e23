import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { loadLibc, ThreadNamespace } from '../../src/kernel/netlink/libc.js';
import { NetlinkKernel } from '../../src/kernel/netlink/kernel.js';
import { kernelConformance, realKernelFixture } from '../conformance/kernel.js';
import { realKernelSkip } from '../helpers/privileges.js';

const SKIP = realKernelSkip();
if (!SKIP) {
  kernelConformance('netlink', () => realKernelFixture((hostNetns) => new NetlinkKernel({ hostNetns })));

  it('namespace visits do not nest: the inner one fails and the thread comes home', () => {
    const libc = loadLibc();
    const thread = new ThreadNamespace(libc);
    const home = readlinkSync('/proc/thread-self/ns/net');
    try {
      assert.throws(() => thread.withNetns(thread.homeFd, 'outer', () => thread.withNetns(thread.homeFd, 'inner', () => 1)), /nested namespace visit/);
      assert.equal(thread.withNetns(thread.homeFd, 'again', () => 2), 2, 'a later visit works');
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), home);
    } finally {
      thread.close();
    }
  });
} else {
  it('netlink kernel conformance', { skip: SKIP }, () => undefined);
}
