/**
 * Neighbour (ARP / NDP) and VXLAN FDB messages over one rtnetlink socket: RTM_NEWNEIGH / RTM_DELNEIGH /
 * RTM_GETNEIGH with family AF_INET / AF_INET6 for neighbours, AF_BRIDGE + NTF_SELF for a VXLAN device's
 * own forwarding table (what `ip neigh` and `bridge fdb ... self` send).
 */
import { KernelError } from '../../errors.js';
import { formatIp, type IpAddress, ipFromBytes, ipToBytes, parseIp } from '../../util/ip.js';
import { FLOOD_MAC, type FdbEntry, type FdbInfo, type NeighEntry, type NeighInfo } from '../types.js';
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, attr, formatMac, NDA_DST, NDA_LLADDR, ndmsg, type NetlinkMessage, NLM_F_APPEND,
  NLM_F_CREATE, NLM_F_REPLACE, NTF_SELF, NUD_PERMANENT, parseAttrs, parseMac, RTM,
} from './codec.js';
import { findIndex, indexOf } from './lookup.js';
import type { RtnlSocket } from './socket.js';

function requireIp(text: string, what: string): IpAddress {
  const ip = parseIp(text);
  if (!ip) throw new KernelError(`${what}: invalid address ${text}`, 'EINVAL');
  return ip;
}

function requireMac(text: string, what: string): Buffer {
  const mac = parseMac(text);
  if (!mac) throw new KernelError(`${what}: invalid MAC address ${text}`, 'EINVAL');
  return mac;
}

function familyOf(ip: IpAddress): number {
  return ip.family === 4 ? AF_INET : AF_INET6;
}

export function neighReplaceAt(s: RtnlSocket, entry: NeighEntry, what: string): void {
  const ip = requireIp(entry.ip, what);
  const mac = requireMac(entry.mac, what);
  const body = [ndmsg(familyOf(ip), indexOf(s, entry.ifname, what), NUD_PERMANENT), attr(NDA_DST, ipToBytes(ip)), attr(NDA_LLADDR, mac)];
  s.request(RTM.NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body, what);
}

export function neighListAt(s: RtnlSocket, ifname: string, what: string): NeighInfo[] {
  const index = indexOf(s, ifname, what);
  return s
    .dump(RTM.GETNEIGH, [ndmsg(AF_UNSPEC, 0)], what)
    .map((m) => decodeNeighbour(m, index, ifname))
    .filter((n) => n !== undefined);
}

function decodeNeighbour(msg: NetlinkMessage, index: number, ifname: string): NeighInfo | undefined {
  if (msg.type !== RTM.NEWNEIGH) return undefined;
  const p = msg.payload;
  const family = p.readUInt8(0);
  if ((family !== AF_INET && family !== AF_INET6) || p.readInt32LE(4) !== index) return undefined;
  const attrs = parseAttrs(p, 12);
  const ip = ipFromBytes(attrs.get(NDA_DST) ?? Buffer.alloc(0));
  const lladdr = attrs.get(NDA_LLADDR);
  // Entries still resolving (or failed) have no MAC yet: nothing to report.
  if (!ip || lladdr === undefined || lladdr.length !== 6) return undefined;
  return { ifname, ip: formatIp(ip), mac: formatMac(lladdr), permanent: (p.readUInt16LE(8) & NUD_PERMANENT) !== 0 };
}

function fdbBody(index: number, entry: FdbEntry, state: number, what: string): Buffer[] {
  const dst = requireIp(entry.dst, what);
  return [ndmsg(AF_BRIDGE, index, state, NTF_SELF), attr(NDA_LLADDR, requireMac(entry.mac, what)), attr(NDA_DST, ipToBytes(dst))];
}

/** Unicast: replace the one destination; the flood MAC: append to its list (the kernel keeps a known one). */
export function fdbAddAt(s: RtnlSocket, entry: FdbEntry, what: string): void {
  const flood = requireMac(entry.mac, what).equals(Buffer.alloc(6));
  const body = fdbBody(indexOf(s, entry.ifname, what), entry, NUD_PERMANENT, what);
  s.request(RTM.NEWNEIGH, NLM_F_CREATE | (flood ? NLM_F_APPEND : NLM_F_REPLACE), body, what);
}

export function fdbDelAt(s: RtnlSocket, entry: FdbEntry, what: string): void {
  fdbBody(0, entry, 0, what); // bad input is EINVAL even when the link is gone
  const index = findIndex(s, entry.ifname, what);
  if (index === undefined) return;
  try {
    s.request(RTM.DELNEIGH, 0, fdbBody(index, entry, 0, what), what);
  } catch (err) {
    if (!(err instanceof KernelError && ['ENOENT', 'ENODEV', 'ESRCH'].includes(err.errno ?? ''))) throw err;
  }
}

export function fdbListAt(s: RtnlSocket, ifname: string, what: string): FdbInfo[] {
  const index = indexOf(s, ifname, what);
  // A bare ndmsg asks for every device's table (the kernel's legacy dump request); filtered here.
  return s
    .dump(RTM.GETNEIGH, [ndmsg(AF_BRIDGE, 0)], what)
    .map((m) => decodeFdb(m, index, ifname))
    .filter((e) => e !== undefined);
}

function decodeFdb(msg: NetlinkMessage, index: number, ifname: string): FdbInfo | undefined {
  if (msg.type !== RTM.NEWNEIGH) return undefined;
  const p = msg.payload;
  if (p.readUInt8(0) !== AF_BRIDGE || p.readInt32LE(4) !== index || (p.readUInt8(10) & NTF_SELF) === 0) return undefined;
  const attrs = parseAttrs(p, 12);
  const lladdr = attrs.get(NDA_LLADDR);
  const dstBytes = attrs.get(NDA_DST);
  const dst = dstBytes && ipFromBytes(dstBytes);
  // The device's own unicast / multicast addresses come with no destination: not tunnel entries.
  if (lladdr === undefined || lladdr.length !== 6 || !dst) return undefined;
  const mac = formatMac(lladdr);
  return { ifname, mac: mac === FLOOD_MAC ? FLOOD_MAC : mac, dst: formatIp(dst), permanent: (p.readUInt16LE(8) & NUD_PERMANENT) !== 0 };
}
