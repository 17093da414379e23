/**
 * The link-removal monitor on the real kernel: its socket filter lets removals through and keeps every
 * other link message (creation, up, master, address of a link) out, so a connect never wakes the daemon's
 * monitor; close() still wakes the parked poll. The same probe through an unfiltered group monitor sees
 * the creation messages, so the filter (not a quiet kernel) is what keeps them out.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { header, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, type NetlinkMessage } from '../../src/kernel/netlink/codec.js';
import { messageTypeFilter, NetlinkGroupMonitor } from '../../src/kernel/netlink/group-monitor.js';
import { loadLibc } from '../../src/kernel/netlink/libc.js';
import { LinkRemovalMonitor } from '../../src/kernel/netlink/link-monitor.js';
import { ThreadNamespace } from '../../src/kernel/netns.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { realKernelSkip } from '../helpers/privileges.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const NETLINK_ROUTE = 0;
const RTNLGRP_LINK = 1;
const RTM_GETLINK = 18;

/** An acknowledged RTM_GETLINK of lo: answered at once, so it wakes a parked monitor on close. */
function wakeRequest(): Buffer {
  const body = Buffer.alloc(16);
  body.writeInt32LE(1, 4);
  return Buffer.concat([header(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 0, body.length), body]);
}

const ip = (ns: string, ...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('link-removal monitor (real kernel)', { skip: realKernelSkip() }, () => {
  let ns = '';
  const thread = new ThreadNamespace();
  before(() => {
    ns = createTestNetns();
  });
  after(() => {
    thread.close();
    deleteTestNetns(ns);
  });

  /** Opened inside the test namespace, as the daemon opens it in its own. */
  function inNs<T>(open: () => T): T {
    return thread.withNetnsAt(netnsPath(ns), 'open monitor', open);
  }

  it('wakes on removals only; an unfiltered monitor of the same group sees the creations', async () => {
    const libc = loadLibc();
    let removals = 0;
    const losses: string[] = [];
    const filtered = inNs(() => LinkRemovalMonitor.open(libc, () => removals++, (e) => losses.push(e.message)));
    const seen: NetlinkMessage[] = [];
    const unfiltered = inNs(() =>
      NetlinkGroupMonitor.open(
        libc,
        { name: 'probe', protocol: NETLINK_ROUTE, group: RTNLGRP_LINK, wakeRequest: wakeRequest() },
        { onMessages: (m) => seen.push(...m), onLoss: (e) => losses.push(e.message) },
      ),
    );
    // The filtered monitor's own view, through the same filter on a socket whose messages we can count.
    const counted: NetlinkMessage[] = [];
    const sameFilter = inNs(() =>
      NetlinkGroupMonitor.open(
        libc,
        { name: 'counted', protocol: NETLINK_ROUTE, group: RTNLGRP_LINK, wakeRequest: wakeRequest(), acceptTypes: [RTM_DELLINK, NLMSG_ERROR] },
        { onMessages: (m) => counted.push(...m), onLoss: (e) => losses.push(e.message) },
      ),
    );
    try {
      ip(ns, 'link', 'add', 'cnmlm0', 'type', 'veth', 'peer', 'name', 'cnmlm1');
      ip(ns, 'link', 'set', 'cnmlm0', 'up');
      ip(ns, 'link', 'set', 'cnmlm1', 'up');
      ip(ns, 'link', 'set', 'cnmlm0', 'mtu', '1400');
      await until('the unfiltered monitor sees the creation', () => seen.some((m) => m.type === RTM_NEWLINK));
      assert.equal(removals, 0, 'no removal reported for creations');
      assert.equal(filtered.wakeups, 0, 'creations never woke the link-removal monitor');
      assert.ok(unfiltered.wakeups > 0, 'they did wake an unfiltered one');
      assert.equal(counted.length, 0, `the filter let through ${counted.map((m) => m.type).join(',')}`);

      ip(ns, 'link', 'del', 'cnmlm0');
      await until('the removal is reported', () => removals > 0);
      await until('the filtered socket got the removal', () => counted.length > 0);
      assert.ok(counted.every((m) => m.type === RTM_DELLINK), `only removals: ${counted.map((m) => m.type).join(',')}`);
      assert.deepEqual(losses, []);
    } finally {
      // close() must still wake the parked poll through the filter (its acknowledgement is let in).
      await filtered.close();
      await Promise.all([unfiltered.close(), sameFilter.close()]);
    }
  });

  it('the filter program: each accepted type jumps to accept, anything else is dropped', () => {
    const le = messageTypeFilter([17, 2], true);
    const be = messageTypeFilter([17, 2], false);
    assert.equal(le.length, 5 * 8);
    // ld h [4]; jeq 0x1100 → accept; jeq 0x0200 → accept; ret 0; ret all
    assert.deepEqual([le.readUInt16LE(0), le.readUInt32LE(4)], [0x28, 4]);
    assert.deepEqual([le.readUInt16LE(8), le[10], le[11], le.readUInt32LE(12)], [0x15, 2, 0, 0x1100]);
    assert.deepEqual([le.readUInt16LE(16), le[18], le[19], le.readUInt32LE(20)], [0x15, 1, 0, 0x0200]);
    assert.deepEqual([le.readUInt16LE(24), le.readUInt32LE(28)], [0x06, 0]);
    assert.deepEqual([le.readUInt16LE(32), le.readUInt32LE(36)], [0x06, 0xffffffff]);
    assert.equal(be.readUInt32LE(12), 17, 'big-endian hosts compare the type as it is');
    assert.throws(() => messageTypeFilter([]), RangeError);
  });
});
