/**
 * The background reaper's failures (src/kernel/netlink/retirement.ts): reported through onError, never a
 * rejected promise nobody awaits (an unhandled rejection ends the daemon). A real kernel cannot be made to
 * fail the reaper on demand (its socket is opened in the same turn as the deletion, through a namespace
 * fd already open), so the socket here is a stub that records requests.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelError } from '../../src/errors.js';
import type { RawLink } from '../../src/kernel/netlink/links.js';
import { LinkRetirement } from '../../src/kernel/netlink/retirement.js';
import type { RtnlSocket } from '../../src/kernel/netlink/socket.js';

function stubSocket(requests: number[]): RtnlSocket {
  const stub: Pick<RtnlSocket, 'dump' | 'request'> = {
    dump: () => [],
    request: (type: number) => {
      requests.push(type);
      return [];
    },
  };
  return stub as RtnlSocket;
}

const bridge: RawLink = { index: 7, name: 'cnm-x', kind: 'bridge', mtu: 1500, mac: '', up: true, group: 0, retired: false };

for (const [label, failure] of [
  ['its socket cannot be opened', 'open'],
  ['the group deletion fails', 'delete'],
] as const) {
  it(`reaper: when ${label}, the error is reported and nothing rejects`, async () => {
    const errors: unknown[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const retirement = new LinkRetirement({
        withSocket: () => {
          throw new Error('not used for a bridge');
        },
        openHostSocket: () => {
          if (failure === 'open') throw new KernelError('reap retired links: socket: Too many open files', 'EMFILE');
          const s = stubSocket([]);
          return Object.assign(s, {
            requestAsync: async () => {
              throw new KernelError('reap retired links: Operation not permitted', 'EPERM');
            },
          });
        },
        onError: (err) => errors.push(err),
      });
      const requests: number[] = [];
      assert.equal(retirement.retire(stubSocket(requests), bridge, 'test'), true, 'the bridge was retired');
      assert.ok(requests.length > 0, 'retiring sent its requests');
      await retirement.reaped();
      await new Promise((r) => setImmediate(r));
      assert.equal(errors.length, 1);
      assert.match(String(errors[0]), failure === 'open' ? /Too many open files/ : /Operation not permitted/);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
}
