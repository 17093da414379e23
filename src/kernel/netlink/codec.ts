/**
 * rtnetlink wire format (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h): building requests from
 * attributes and reading replies back into attribute maps. Pure functions over Buffers, host byte order
 * (netlink is native-endian; every machine cnm targets is little-endian, checked at load).
 */
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('the netlink codec assumes a little-endian host');

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** The kernel sends the requester the notification of what its request made. */
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** On an NLMSG_ERROR: extended-ack attributes follow the echoed header. */
export const NLM_F_ACK_TLVS = 0x200;
export const NLM_F_CAPPED = 0x100;

export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const;

export const NDA_DST = 1;
export const NDA_LLADDR = 2;
/** linux/neighbour.h NUD_* states and NTF_* flags. */
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
export const NLM_F_APPEND = 0x800;
export const AF_BRIDGE = 7;

/** struct ndmsg: family, padding, ifindex, state, flags, type. */
export function ndmsg(family: number, index: number, state = 0, flags = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const IFF_UP = 0x1;

export const IFLA = {
  ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28, EXT_MASK: 29, LINK_NETNSID: 37, GROUP: 27,
} as const;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const VETH_INFO_PEER = 1;
export const IFLA_MACVLAN_MODE = 1;
export const IFLA_BR_MCAST_SNOOPING = 23;
/** linux/if_link.h IFLA_VXLAN_*. */
export const IFLA_VXLAN = {
  ID: 1, LINK: 3, LOCAL: 4, TTL: 5, LEARNING: 7, PROXY: 11, L2MISS: 13, L3MISS: 14, PORT: 15, LOCAL6: 17, UDP_CSUM: 18,
} as const;
export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3 } as const;
export const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, TABLE: 15 } as const;
export const NLMSGERR_ATTR_MSG = 1;

export const RT_TABLE_MAIN = 254;
export const RTPROT_UNSPEC = 0;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;
export const RTM_F_CLONED = 0x200;

const NLA_HDRLEN = 4;
/** High bits of nla_type: NLA_F_NESTED / NLA_F_NET_BYTEORDER. */
const NLA_TYPE_MASK = 0x3fff;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One attribute (header + payload + padding). */
export function attr(type: number, payload: Buffer): Buffer {
  const len = NLA_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, NLA_HDRLEN);
  return out;
}

export function nested(type: number, parts: Buffer[]): Buffer {
  return attr(type, Buffer.concat(parts));
}

export function u32Attr(type: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return attr(type, b);
}

export function u8Attr(type: number, value: number): Buffer {
  return attr(type, Buffer.from([value & 0xff]));
}

/** A big-endian u16 (ports travel in network byte order). */
export function be16Attr(type: number, value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return attr(type, b);
}

/** NUL-terminated string, as the kernel's NLA_STRING / NLA_NUL_STRING policies expect. */
export function stringAttr(type: number, value: string): Buffer {
  return attr(type, Buffer.from(`${value}\0`, 'utf8'));
}

export function header(type: number, flags: number, seq: number, bodyLength: number): Buffer {
  const h = Buffer.alloc(NLMSG_HDRLEN);
  h.writeUInt32LE(NLMSG_HDRLEN + bodyLength, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return h;
}

export function ifinfomsg(family: number, index: number, flags: number, change: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

export function ifaddrmsg(family: number, prefixLength: number, scope: number, index: number, flags = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLength, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

export interface RtmsgFields {
  family: number;
  dstLength: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
}

export function rtmsg(f: RtmsgFields): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(f.family, 0);
  b.writeUInt8(f.dstLength, 1);
  b.writeUInt8(f.table, 4);
  b.writeUInt8(f.protocol, 5);
  b.writeUInt8(f.scope, 6);
  b.writeUInt8(f.type, 7);
  return b;
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

/** Split a datagram into messages (a dump packs many into one). */
export function splitMessages(datagram: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= datagram.length) {
    const len = datagram.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > datagram.length) break;
    out.push({
      type: datagram.readUInt16LE(off + 4),
      flags: datagram.readUInt16LE(off + 6),
      seq: datagram.readUInt32LE(off + 8),
      payload: datagram.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The first attribute of `type` from `offset` on, without collecting the others. */
export function findAttr(buf: Buffer, offset: number, type: number): Buffer | undefined {
  let off = offset;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > buf.length) return undefined;
    if ((buf.readUInt16LE(off + 2) & NLA_TYPE_MASK) === type) return buf.subarray(off + NLA_HDRLEN, off + len);
    off += align4(len);
  }
  return undefined;
}

/** Attributes from `offset` to the end of `buf`, by type (the first occurrence wins). */
export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let off = offset;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > buf.length) break;
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (!attrs.has(type)) attrs.set(type, buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return attrs;
}

export function readString(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  const nul = value.indexOf(0);
  return value.toString('utf8', 0, nul === -1 ? value.length : nul);
}

export function readU32(value: Buffer | undefined): number | undefined {
  return value !== undefined && value.length >= 4 ? value.readUInt32LE(0) : undefined;
}

export { formatMac, parseMac } from '../../util/mac.js';
