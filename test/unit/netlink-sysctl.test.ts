/** How the netlink kernel splits a sysctl key into a directory it keeps open and a file below it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sysctlDirFile } from '../../src/kernel/netlink/sysctl-dirs.js';

describe('sysctlDirFile', () => {
  it('keeps the shared part of per-interface keys as the directory', () => {
    assert.deepEqual(sysctlDirFile('net.ipv6.conf.eth0.disable_ipv6'), { dir: '/proc/sys/net/ipv6/conf', file: 'eth0/disable_ipv6' });
    assert.deepEqual(sysctlDirFile('net.ipv4.conf.cnmv0123456789a.rp_filter'), { dir: '/proc/sys/net/ipv4/conf', file: 'cnmv0123456789a/rp_filter' });
  });

  it('short keys keep their last part as the file', () => {
    assert.deepEqual(sysctlDirFile('net.ipv4.ip_forward'), { dir: '/proc/sys/net/ipv4', file: 'ip_forward' });
    assert.deepEqual(sysctlDirFile('kernel.hostname'), { dir: '/proc/sys/kernel', file: 'hostname' });
  });

  it('refuses names that could leave /proc/sys', () => {
    for (const bad of ['net', 'net..ipv4.x', 'net.ipv4/../../etc.passwd', '.net.ipv4', 'net.ipv4.']) {
      assert.throws(() => sysctlDirFile(bad), { errno: 'EINVAL' }, bad);
    }
  });
});
