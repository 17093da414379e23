import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TOMBSTONE_GROUP, TOMBSTONE_PREFIX } from '../../src/kernel/types.js';
import {
  attr, findAttr, header, IFLA, nested, parseAttrs, parseMac, formatMac, readString, RTA, RTM, rtmsg, RT_TABLE_MAIN,
  splitMessages, stringAttr, u32Attr, u8Attr, be16Attr, RTN_UNICAST, IFLA_INFO_DATA, IFLA_BR_MCAST_SNOOPING,
} from '../../src/kernel/netlink/codec.js';
import { createLinkBody, checkLinkName, decodeLink, decodeLinkRef, echoedPeerIndex } from '../../src/kernel/netlink/links.js';
import { addressBody, decodeRoute, routeBody } from '../../src/kernel/netlink/routes.js';
import { errnoName } from '../../src/kernel/netlink/libc.js';
import { KernelError } from '../../src/errors.js';

function message(type: number, body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  return Buffer.concat([header(type, 0, 7, payload.length), payload]);
}

describe('netlink codec', () => {
  it('pads attributes to 4 bytes and reads them back, nested included', () => {
    const a = stringAttr(IFLA.IFNAME, 'cnm0');
    assert.equal(a.length, 12); // 4 header + "cnm0\0" (5) padded to 8
    assert.equal(a.readUInt16LE(0), 9);
    const outer = nested(IFLA.LINKINFO, [stringAttr(1, 'veth'), u32Attr(2, 0xdeadbeef)]);
    const attrs = parseAttrs(Buffer.concat([a, u32Attr(IFLA.MTU, 1400), outer]));
    assert.equal(readString(attrs.get(IFLA.IFNAME)), 'cnm0');
    assert.equal(attrs.get(IFLA.MTU)!.readUInt32LE(0), 1400);
    const inner = parseAttrs(attrs.get(IFLA.LINKINFO)!);
    assert.equal(readString(inner.get(1)), 'veth');
    assert.equal(inner.get(2)!.readUInt32LE(0), 0xdeadbeef);
  });

  it('writes ports big-endian and macs both ways', () => {
    assert.deepEqual([...be16Attr(15, 4789).subarray(4, 6)], [0x12, 0xb5]);
    assert.equal(formatMac(parseMac('02:42:AC:11:00:02')), '02:42:ac:11:00:02');
    assert.equal(parseMac('02:42:ac:11:00'), undefined);
  });

  it('splits a datagram holding several messages and stops at a truncated one', () => {
    const one = message(RTM.NEWLINK, [Buffer.alloc(16)]);
    const two = message(RTM.NEWADDR, [Buffer.alloc(8)]);
    const msgs = splitMessages(Buffer.concat([one, two, one.subarray(0, 10)]));
    assert.deepEqual(msgs.map((m) => [m.type, m.seq, m.payload.length]), [[RTM.NEWLINK, 7, 16], [RTM.NEWADDR, 7, 8]]);
  });

  it('builds a veth with its peer nested under IFLA_INFO_DATA and a namespace fd', () => {
    const body = Buffer.concat(createLinkBody(
      { kind: 'veth', name: 'cnmv0', up: true, peer: { name: 'eth0', mtu: 1400 } }, { peerNetnsFd: 42, masterIndex: 3 }, 't'));
    assert.equal(body.readUInt32LE(8) & 1, 1, 'IFF_UP requested for the host end');
    const attrs = parseAttrs(body, 16);
    assert.equal(readString(attrs.get(IFLA.IFNAME)), 'cnmv0');
    assert.equal(attrs.get(IFLA.MASTER)!.readUInt32LE(0), 3);
    const info = parseAttrs(attrs.get(IFLA.LINKINFO)!);
    const peer = parseAttrs(parseAttrs(info.get(2)!).get(1)!, 16);
    assert.equal(readString(peer.get(IFLA.IFNAME)), 'eth0');
    assert.equal(peer.get(IFLA.MTU)!.readUInt32LE(0), 1400);
    assert.equal(peer.get(IFLA.NET_NS_FD)!.readUInt32LE(0), 42);
  });

  it('decodes a link reply', () => {
    const reply = splitMessages(message(RTM.NEWLINK, [
      Buffer.from([0, 0, 1, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
      stringAttr(IFLA.IFNAME, 'cnm-x'), u32Attr(IFLA.MTU, 1500), attr(IFLA.ADDRESS, parseMac('02:00:00:00:00:01')!),
      u32Attr(IFLA.MASTER, 9),
      nested(IFLA.LINKINFO, [stringAttr(1, 'bridge'), nested(IFLA_INFO_DATA, [u8Attr(IFLA_BR_MCAST_SNOOPING, 0)])]),
    ]))[0]!;
    assert.deepEqual(decodeLink(reply), {
      index: 5, name: 'cnm-x', kind: 'bridge', mtu: 1500, mac: '02:00:00:00:00:01', up: true, group: 0, retired: false, masterIndex: 9,
      multicastSnooping: false,
    });
  });

  it('a link in the tombstone group is retired; a tombstone name alone (an administrator\'s cnmzfoo) is not', () => {
    const link = (name: string, group: number) =>
      decodeLink(splitMessages(message(RTM.NEWLINK, [
        Buffer.from([0, 0, 1, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        stringAttr(IFLA.IFNAME, name), u32Attr(IFLA.GROUP, group),
      ]))[0]!);
    assert.equal(link('cnmv0123456789a', 0).retired, false);
    assert.equal(link('cnmv0123456789a', TOMBSTONE_GROUP).retired, true);
    assert.equal(link(`${TOMBSTONE_PREFIX}0123456789a`, 0).retired, false);
    assert.equal(link(`${TOMBSTONE_PREFIX}foo`, 0).retired, false);
    assert.equal(link('cnmv0123456789a', TOMBSTONE_GROUP).group, TOMBSTONE_GROUP);
  });

  it('a lookup by name reads only the index and the tombstone mark of a reply (decodeLinkRef, findAttr)', () => {
    const reply = (group: number | undefined) =>
      splitMessages(message(RTM.NEWLINK, [
        Buffer.from([0, 0, 1, 0, 42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        stringAttr(IFLA.IFNAME, 'cnmv0123456789a'), u32Attr(IFLA.MTU, 1500),
        ...(group === undefined ? [] : [u32Attr(IFLA.GROUP, group)]),
        nested(IFLA.LINKINFO, [stringAttr(1, 'veth')]),
      ]))[0]!;
    assert.deepEqual(decodeLinkRef(reply(0)), { index: 42, retired: false });
    assert.deepEqual(decodeLinkRef(reply(TOMBSTONE_GROUP)), { index: 42, retired: true });
    assert.deepEqual(decodeLinkRef(reply(undefined)), { index: 42, retired: false });
    // The same verdict as the full decoder, for every case.
    for (const g of [0, 7, TOMBSTONE_GROUP]) assert.equal(decodeLinkRef(reply(g)).retired, decodeLink(reply(g)).retired);
    const attrs = Buffer.concat([u32Attr(IFLA.MTU, 1400), stringAttr(IFLA.IFNAME, 'a'), u32Attr(IFLA.GROUP, 9)]);
    assert.equal(findAttr(attrs, 0, IFLA.GROUP)!.readUInt32LE(0), 9);
    assert.equal(findAttr(attrs, 0, IFLA.MASTER), undefined);
    // A length running past the buffer ends the walk instead of reading beyond it.
    const broken = Buffer.from(attrs);
    broken.writeUInt16LE(200, 0);
    assert.equal(findAttr(broken, 0, IFLA.GROUP), undefined);
  });

  it("reads the other end's index from the echo of a veth's creation, and nothing from anything else", () => {
    const link = (name: string, attrs: Buffer[]) => splitMessages(message(RTM.NEWLINK, [
      Buffer.from([0, 0, 1, 0, 23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), stringAttr(IFLA.IFNAME, name), ...attrs,
    ]))[0]!;
    const echo = link('cnmv0', [u32Attr(IFLA.LINK, 2), u32Attr(IFLA.LINK_NETNSID, 0)]);
    assert.equal(echoedPeerIndex([echo], 'cnmv0'), 2);
    assert.equal(echoedPeerIndex([], 'cnmv0'), undefined, 'a kernel without the echo');
    assert.equal(echoedPeerIndex([echo], 'cnmv1'), undefined, 'another link');
    // IFLA_LINK without a namespace ID is an index in our own namespace, not the other end's.
    assert.equal(echoedPeerIndex([link('cnmv0', [u32Attr(IFLA.LINK, 2)])], 'cnmv0'), undefined);
    assert.equal(echoedPeerIndex([link('cnmv0', [u32Attr(IFLA.LINK, 0), u32Attr(IFLA.LINK_NETNSID, 0)])], 'cnmv0'), undefined);
    const notALink = splitMessages(message(RTM.NEWROUTE, [Buffer.alloc(16), stringAttr(IFLA.IFNAME, 'cnmv0'), u32Attr(IFLA.LINK, 2), u32Attr(IFLA.LINK_NETNSID, 0)]))[0]!;
    assert.equal(echoedPeerIndex([notALink], 'cnmv0'), undefined);
  });

  it('encodes addresses and routes as iproute2 would, and decodes a route dump entry', () => {
    const addr = Buffer.concat(addressBody(4, '10.1.2.3/24', 't'));
    assert.deepEqual([addr[0], addr[1], addr.readUInt32LE(4)], [2, 24, 4]);
    assert.throws(() => addressBody(4, '10.1.2.3/33', 't'), KernelError);
    const add = Buffer.concat(routeBody({ dst: 'default', via: '10.1.2.1', family: 4 }, undefined, false, 't'));
    assert.deepEqual([add[1], add[4], add[5], add[6], add[7]], [0, RT_TABLE_MAIN, 3, 0, RTN_UNICAST]);
    const del = Buffer.concat(routeBody({ dst: '10.9.0.0/16', dev: 'x', family: 4 }, 7, true, 't'));
    assert.deepEqual([del[1], del[5], del[6]], [16, 0, 255]);
    assert.throws(() => routeBody({ dst: 'fd00::/64', family: 4 }, undefined, false, 't'), KernelError);
    const dump = splitMessages(message(RTM.NEWROUTE, [
      rtmsg({ family: 10, dstLength: 64, table: RT_TABLE_MAIN, protocol: 2, scope: 0, type: RTN_UNICAST }),
      attr(RTA.DST, Buffer.from('fd000000000000990000000000000000', 'hex')), u32Attr(RTA.OIF, 3), u32Attr(RTA.PRIORITY, 256),
    ]))[0]!;
    assert.deepEqual(decodeRoute(dump, 6, (i) => (i === 3 ? 'cnmbr0' : undefined)),
      { dst: 'fd00:0:0:99::/64', family: 6, metric: 256, protocol: 'kernel', scope: 'universe', dev: 'cnmbr0' });
    assert.equal(decodeRoute(dump, 4, () => undefined), undefined, 'other family skipped');
  });

  it('validates names like the kernel and names errnos the way the rest of cnm does', () => {
    assert.throws(() => checkLinkName('cnm-name-too-long0', 't'), (e: KernelError) => e.errno === 'EINVAL');
    assert.throws(() => checkLinkName('a/b', 't'), KernelError);
    checkLinkName('eth0', 't');
    assert.equal(errnoName(95), 'EOPNOTSUPP');
    assert.equal(errnoName(11), 'EAGAIN');
    assert.equal(errnoName(2), 'ENOENT');
  });
});
