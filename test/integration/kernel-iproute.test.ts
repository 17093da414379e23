import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { errnoFromStderr, IprouteKernel } from '../../src/kernel/iproute.js';
import { kernelConformance, realKernelFixture } from '../conformance/kernel.js';
import { realKernelSkip } from '../helpers/privileges.js';

const SKIP = realKernelSkip();
if (!SKIP) {
  kernelConformance('iproute2', () => realKernelFixture((hostNetns) => new IprouteKernel({ hostNetns }), { slowSteps: true }));
} else {
  it('iproute2 kernel conformance', { skip: SKIP }, () => undefined);
}

describe('IprouteKernel error mapping', () => {
  it('recovers errno names from what ip, nsenter and sysctl print', () => {
    assert.equal(errnoFromStderr('RTNETLINK answers: File exists'), 'EEXIST');
    assert.equal(errnoFromStderr('Cannot find device "cnmx"'), 'ENODEV');
    assert.equal(errnoFromStderr('Error: argument "cnmnobr" is wrong: Device does not exist'), 'ENODEV');
    assert.equal(errnoFromStderr('Error: Unknown device type.'), 'EOPNOTSUPP');
    assert.equal(errnoFromStderr('Error: Nexthop has invalid gateway.'), 'ENETUNREACH');
    assert.equal(errnoFromStderr('nsenter: cannot open /x: No such file or directory'), 'ENOENT');
    assert.equal(errnoFromStderr('sysctl: cannot stat /proc/sys/net/ipv4/x: No such file or directory'), 'ENOENT');
    assert.equal(errnoFromStderr('something else entirely'), undefined);
  });
});
