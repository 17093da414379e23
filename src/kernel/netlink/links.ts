/** Link messages: LinkSpec / LinkChange → RTM_NEWLINK bodies, RTM_NEWLINK replies → LinkInfo. */
import { KernelError } from '../../errors.js';
import { formatIp, ipFromBytes, ipToBytes, parseIp } from '../../util/ip.js';
import { TOMBSTONE_GROUP, type LinkInfo, type LinkSpec, type MacvlanSpec, type VxlanInfo, type VxlanSpec } from '../types.js';
import {
  AF_UNSPEC, attr, be16Attr, findAttr, formatMac, IFF_UP, IFLA, IFLA_BR_MCAST_SNOOPING, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_MACVLAN_MODE, IFLA_VXLAN,
  ifinfomsg, nested, type NetlinkMessage, parseAttrs, parseMac, readString, readU32, RTM, stringAttr, u32Attr, u8Attr,
  VETH_INFO_PEER,
} from './codec.js';

/** linux/if_link.h MACVLAN_MODE_*. */
const MACVLAN_MODES: Record<MacvlanSpec['mode'], number> = { private: 1, vepa: 2, bridge: 4, passthru: 8 };
/** IFNAMSIZ - 1. */
const MAX_IFNAME = 15;

/** The kernel's dev_valid_name(): checked here so a bad name is EINVAL, not the policy's ERANGE. */
export function checkLinkName(name: string, what: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > MAX_IFNAME || name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw new KernelError(`${what}: invalid interface name "${name}"`, 'EINVAL');
  }
}

export function macAttr(mac: string, what: string): Buffer {
  const bytes = parseMac(mac);
  if (!bytes) throw new KernelError(`${what}: invalid MAC address ${mac}`, 'EINVAL');
  return attr(IFLA.ADDRESS, bytes);
}

/** Attributes every link kind shares: name, mtu, mac, group (the kernel applies IFLA_GROUP at creation). */
export function commonAttrs(spec: { name: string; mtu?: number; mac?: string; group?: number }, what: string): Buffer[] {
  checkLinkName(spec.name, what);
  const attrs = [stringAttr(IFLA.IFNAME, spec.name)];
  if (spec.mtu !== undefined) attrs.push(u32Attr(IFLA.MTU, spec.mtu));
  if (spec.mac !== undefined) attrs.push(macAttr(spec.mac, what));
  if (spec.group !== undefined) attrs.push(u32Attr(IFLA.GROUP, spec.group));
  return attrs;
}

/** ifinfomsg with IFF_UP set (and only IFF_UP changed) when asked. */
export function linkHeader(index: number, up: boolean | undefined): Buffer {
  if (up === undefined) return ifinfomsg(AF_UNSPEC, index, 0, 0);
  return ifinfomsg(AF_UNSPEC, index, up ? IFF_UP : 0, IFF_UP);
}

/** What the caller resolved beforehand for one RTM_NEWLINK create. */
export interface LinkCreateContext {
  masterIndex?: number;
  /** macvlan parent / vxlan underlay device index. */
  lowerIndex?: number;
  /** Open namespace fd the veth peer is created in. */
  peerNetnsFd?: number;
  /** Open namespace fd the (macvlan) link itself is created in. */
  netnsFd?: number;
}

export function createLinkBody(spec: LinkSpec, ctx: LinkCreateContext, what: string): Buffer[] {
  // A link created straight into another namespace comes up (and is enslaved) there, in a second step.
  const up = ctx.netnsFd === undefined && spec.up ? true : undefined;
  const body = [linkHeader(0, up), ...commonAttrs(spec, what)];
  if (ctx.masterIndex !== undefined) body.push(u32Attr(IFLA.MASTER, ctx.masterIndex));
  if (ctx.netnsFd !== undefined) body.push(u32Attr(IFLA.NET_NS_FD, ctx.netnsFd));
  if (ctx.lowerIndex !== undefined && spec.kind === 'macvlan') body.push(u32Attr(IFLA.LINK, ctx.lowerIndex));
  body.push(nested(IFLA.LINKINFO, [stringAttr(IFLA_INFO_KIND, spec.kind), ...kindData(spec, ctx, what)]));
  return body;
}

function kindData(spec: LinkSpec, ctx: LinkCreateContext, what: string): Buffer[] {
  switch (spec.kind) {
    case 'bridge':
      return spec.multicastSnooping === undefined
        ? []
        : [nested(IFLA_INFO_DATA, [u8Attr(IFLA_BR_MCAST_SNOOPING, spec.multicastSnooping ? 1 : 0)])];
    case 'dummy':
      return [];
    case 'veth': {
      // The peer is a whole ifinfomsg + attributes; it comes up in a second message (see the kernel class).
      const peer = [ifinfomsg(AF_UNSPEC, 0, 0, 0), ...commonAttrs(spec.peer, what)];
      if (ctx.peerNetnsFd !== undefined) peer.push(u32Attr(IFLA.NET_NS_FD, ctx.peerNetnsFd));
      return [nested(IFLA_INFO_DATA, [nested(VETH_INFO_PEER, peer)])];
    }
    case 'macvlan':
      return [nested(IFLA_INFO_DATA, [u32Attr(IFLA_MACVLAN_MODE, MACVLAN_MODES[spec.mode])])];
    case 'vxlan':
      return [nested(IFLA_INFO_DATA, vxlanData(spec, ctx, what))];
  }
}

function vxlanData(spec: VxlanSpec, ctx: LinkCreateContext, what: string): Buffer[] {
  if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni >= 1 << 24) throw new KernelError(`${what}: invalid VNI ${spec.vni}`, 'ERANGE');
  const data = [
    u32Attr(IFLA_VXLAN.ID, spec.vni),
    be16Attr(IFLA_VXLAN.PORT, spec.dstPort ?? 4789),
    u8Attr(IFLA_VXLAN.LEARNING, spec.learning ? 1 : 0),
    u8Attr(IFLA_VXLAN.PROXY, spec.arpProxy ? 1 : 0),
    u8Attr(IFLA_VXLAN.L2MISS, 0),
    u8Attr(IFLA_VXLAN.L3MISS, 0),
    u8Attr(IFLA_VXLAN.TTL, spec.ttl ?? 0),
    u8Attr(IFLA_VXLAN.UDP_CSUM, spec.udpChecksum ? 1 : 0),
  ];
  if (spec.local !== undefined) {
    const local = parseIp(spec.local);
    if (!local) throw new KernelError(`${what}: invalid local address ${spec.local}`, 'EINVAL');
    data.push(attr(local.family === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, ipToBytes(local)));
  }
  if (ctx.lowerIndex !== undefined) data.push(u32Attr(IFLA_VXLAN.LINK, ctx.lowerIndex));
  return data;
}

function u8Of(attrs: Map<number, Buffer>, type: number): number {
  const value = attrs.get(type);
  return value !== undefined && value.length >= 1 ? value[0]! : 0;
}

function decodeVxlan(data: Buffer): VxlanInfo {
  const attrs = parseAttrs(data);
  const port = attrs.get(IFLA_VXLAN.PORT);
  const info: VxlanInfo = {
    vni: readU32(attrs.get(IFLA_VXLAN.ID)) ?? 0,
    port: port !== undefined && port.length >= 2 ? port.readUInt16BE(0) : 0,
    learning: u8Of(attrs, IFLA_VXLAN.LEARNING) !== 0,
    arpProxy: u8Of(attrs, IFLA_VXLAN.PROXY) !== 0,
    ttl: u8Of(attrs, IFLA_VXLAN.TTL),
    udpChecksum: u8Of(attrs, IFLA_VXLAN.UDP_CSUM) !== 0,
  };
  const localBytes = attrs.get(IFLA_VXLAN.LOCAL) ?? attrs.get(IFLA_VXLAN.LOCAL6);
  const local = localBytes && ipFromBytes(localBytes);
  if (local) info.local = formatIp(local);
  return info;
}

/** A link as the kernel reported it, before master indexes are turned into names. */
export interface RawLink extends Omit<LinkInfo, 'master'> {
  masterIndex?: number;
  /** On its way out (see retirement.ts): in the tombstone group (its name does not matter). Hidden from callers. */
  retired: boolean;
  /** The other end of a veth (IFLA_LINK), in the namespace `peerNetnsid` names when that is set. */
  peerIndex?: number;
  peerNetnsid?: number;
}

export function decodeLink(msg: NetlinkMessage): RawLink {
  const index = msg.payload.readInt32LE(4);
  const flags = msg.payload.readUInt32LE(8);
  const attrs = parseAttrs(msg.payload, 16);
  const linkInfo = attrs.get(IFLA.LINKINFO);
  const info = linkInfo && parseAttrs(linkInfo);
  const link: RawLink = {
    index,
    name: readString(attrs.get(IFLA.IFNAME)) ?? '',
    kind: (info && readString(info.get(IFLA_INFO_KIND))) ?? '',
    mtu: readU32(attrs.get(IFLA.MTU)) ?? 0,
    mac: formatMac(attrs.get(IFLA.ADDRESS)),
    up: (flags & IFF_UP) !== 0,
    group: readU32(attrs.get(IFLA.GROUP)) ?? 0,
    retired: false,
  };
  const data = info?.get(IFLA_INFO_DATA);
  if (link.kind === 'vxlan' && data) link.vxlan = decodeVxlan(data);
  if (link.kind === 'bridge' && data) {
    const snooping = parseAttrs(data).get(IFLA_BR_MCAST_SNOOPING);
    if (snooping !== undefined && snooping.length >= 1) link.multicastSnooping = snooping[0] !== 0;
  }
  link.retired = link.group === TOMBSTONE_GROUP;
  const master = readU32(attrs.get(IFLA.MASTER));
  if (master !== undefined && master !== 0) link.masterIndex = master;
  const peer = readU32(attrs.get(IFLA.LINK));
  const nsid = attrs.get(IFLA.LINK_NETNSID);
  if (nsid !== undefined && nsid.length >= 4) link.peerNetnsid = nsid.readInt32LE(0);
  // A peer in another namespace may well have our own index number there.
  if (peer !== undefined && peer !== 0 && (peer !== index || link.peerNetnsid !== undefined)) link.peerIndex = peer;
  return link;
}

/** Only what a lookup by name needs of a link: its index, and whether it is retired. */
export function decodeLinkRef(msg: NetlinkMessage): { index: number; retired: boolean } {
  return { index: msg.payload.readInt32LE(4), retired: readU32(findAttr(msg.payload, 16, IFLA.GROUP)) === TOMBSTONE_GROUP };
}

/**
 * From the replies to a veth's creation with NLM_F_ECHO: the index of its other end in the other end's
 * namespace (IFLA_LINK of the echoed `name`, which has IFLA_LINK_NETNSID there). Undefined without an echo.
 */
export function echoedPeerIndex(replies: NetlinkMessage[], name: string): number | undefined {
  for (const msg of replies) {
    if (msg.type !== RTM.NEWLINK || msg.payload.length < 16) continue;
    if (readString(findAttr(msg.payload, 16, IFLA.IFNAME)) !== name || findAttr(msg.payload, 16, IFLA.LINK_NETNSID) === undefined) continue;
    const peer = readU32(findAttr(msg.payload, 16, IFLA.LINK));
    return peer !== undefined && peer > 0 ? peer : undefined;
  }
  return undefined;
}

export function withMasterName(raw: RawLink, nameOf: (index: number) => string | undefined): LinkInfo {
  const { masterIndex, peerIndex: _peer, peerNetnsid: _nsid, retired: _retired, ...info } = raw;
  const link: LinkInfo = info;
  if (masterIndex !== undefined) {
    const master = nameOf(masterIndex);
    if (master !== undefined) link.master = master;
  }
  return link;
}
