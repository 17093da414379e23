/** The shared skip decision for real-kernel and real-client tests (test/helpers/privileges.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveCapabilities, onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

describe('privileges helper', () => {
  const ALL = effectiveCapabilities('CapEff:\t000001ffffffffff\n');

  it('reads CapEff from /proc/self/status text', () => {
    assert.equal(effectiveCapabilities('Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t0000000000201000\n'), 0x201000n);
    assert.equal(effectiveCapabilities('no such line'), 0n);
  });

  it('a real-kernel test runs as root with CAP_NET_ADMIN and CAP_SYS_ADMIN, and says why not otherwise', () => {
    assert.equal(realKernelSkip(0, ALL), false);
    assert.equal(realKernelSkip(0, (1n << 12n) | (1n << 21n)), false);
    assert.equal(realKernelSkip(1000, ALL), 'real kernel: needs root (uid 1000)');
    assert.equal(realKernelSkip(0, 1n << 21n), 'real kernel: root without CAP_NET_ADMIN');
    assert.equal(realKernelSkip(0, 0n), 'real kernel: root without CAP_NET_ADMIN, CAP_SYS_ADMIN');
  });

  it('a real client is looked up on PATH', () => {
    assert.equal(realClientSkip('sh'), false);
    assert.match(onPath('sh') ?? '', /\/sh$/);
    assert.equal(realClientSkip('cnm-no-such-program'), 'real client: no cnm-no-such-program on PATH (bash scripts/setup.sh test installs it)');
  });
});
