import { it } from 'node:test';
import { NetlinkKernel } from '../../src/kernel/netlink/kernel.js';
import { kernelConformance, realKernelFixture } from '../conformance/kernel.js';
import { isRoot } from '../helpers/netns.js';

if (isRoot()) {
  kernelConformance('netlink', () => realKernelFixture((hostNetns) => new NetlinkKernel({ hostNetns })));
} else {
  it('netlink kernel conformance needs root', (t) => t.skip('not root'));
}
