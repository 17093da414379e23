/**
 * The one namespace primitive on the real kernel, and its three users: each enters a namespace and
 * comes back, and each refuses a path that is not a network namespace with a KernelError, the thread
 * at home afterwards.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync, statSync } from 'node:fs';
import { KernelError } from '../../src/errors.js';
import { NetnsSockets } from '../../src/dns/netns-socket.js';
import { LibNftRunner } from '../../src/firewall/runner-libnft.js';
import { NetlinkKernel } from '../../src/kernel/netlink/kernel.js';
import { ThreadNamespace } from '../../src/kernel/netns.js';
import { createTestNetns, deleteTestNetns, isRoot, netnsPath } from '../helpers/netns.js';

const here = () => readlinkSync('/proc/thread-self/ns/net');
const NOT_NETNS = ['/proc/self/ns/mnt', '/proc/self/ns/uts', '/etc/hostname'];
const isEinval = (e: unknown) => e instanceof KernelError && e.errno === 'EINVAL';

if (isRoot()) {
  describe('withNetns (real kernel)', () => {
    let ns: string;
    const home = here();
    before(() => {
      ns = createTestNetns();
    });
    after(() => deleteTestNetns(ns));

    it('enters a namespace, runs there and comes home', () => {
      const t = new ThreadNamespace();
      try {
        const inside = t.withNetnsAt(netnsPath(ns), 'visit', here);
        assert.notEqual(inside, home, 'was elsewhere');
        // stat follows the pin to the nsfs inode: the number readlink shows as net:[N].
        assert.equal(inside, `net:[${statSync(netnsPath(ns)).ino}]`, 'was in that namespace');
        assert.equal(here(), home, 'came home');
      } finally {
        t.close();
      }
    });

    it('a path that is not a network namespace fails cleanly and the thread is home', () => {
      const t = new ThreadNamespace();
      try {
        for (const path of NOT_NETNS) {
          let ran = false;
          assert.throws(() => t.withNetnsAt(path, 'visit', () => (ran = true)), isEinval, path);
          assert.equal(ran, false, path);
          assert.equal(here(), home, path);
        }
        assert.throws(() => t.withNetnsAt('/run/netns/cnmt-does-not-exist', 'visit', here), (e: unknown) => e instanceof KernelError && e.errno === 'ENOENT');
        assert.notEqual(t.withNetnsAt(netnsPath(ns), 'visit', here), home, 'the same thread still enters a real one');
      } finally {
        t.close();
      }
    });

    it('its three users refuse such a path the same way and stay home', async () => {
      const kernel = new NetlinkKernel();
      const sockets = new NetnsSockets();
      try {
        for (const path of NOT_NETNS.slice(0, 2)) {
          await assert.rejects(kernel.linkList(path), isEinval, `netlink ${path}`);
          assert.equal(here(), home);
          const handle = sockets.openNamespace(path);
          try {
            assert.throws(() => sockets.socketIn(handle, 'udp', 4), isEinval, `netns-socket ${path}`);
          } finally {
            sockets.closeNamespace(handle);
          }
          assert.equal(here(), home);
          assert.throws(() => new LibNftRunner({ netnsPath: path }), isEinval, `libnftables ${path}`);
          assert.equal(here(), home);
        }
        // The same calls succeed on a network namespace.
        assert.ok((await kernel.linkList(netnsPath(ns))).some((l) => l.name === 'lo'));
        const handle = sockets.openNamespace(netnsPath(ns));
        try {
          sockets.closeFd(sockets.socketIn(handle, 'udp', 4));
        } finally {
          sockets.closeNamespace(handle);
        }
        new LibNftRunner({ netnsPath: netnsPath(ns) }).close();
        assert.equal(here(), home);
      } finally {
        kernel.close();
        sockets.close();
      }
    });
  });
} else {
  it('the namespace primitive on the real kernel needs root', (t) => t.skip('not root'));
}

