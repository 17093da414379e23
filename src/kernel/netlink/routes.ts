/** Address and route messages: encode requests, decode dumps into the KernelOps shapes. */
import { KernelError } from '../../errors.js';
import { formatIp, type IpAddress, ipFromBytes, ipToBytes, parseIp, splitAddressWithPrefix } from '../../util/ip.js';
import type { AddressInfo, RouteInfo, RouteSpec } from '../types.js';
import {
  AF_INET, AF_INET6, AF_UNSPEC, attr, IFA, ifaddrmsg, type NetlinkMessage, parseAttrs, readU32, RT_SCOPE_HOST,
  RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTA, RTM_F_CLONED, rtmsg, RTN_UNICAST,
  RTPROT_BOOT, RTPROT_UNSPEC, u32Attr,
} from './codec.js';

export function familyCode(family: 4 | 6): number {
  return family === 4 ? AF_INET : AF_INET6;
}

function requireAddress(text: string, what: string): IpAddress {
  const ip = parseIp(text);
  if (!ip) throw new KernelError(`${what}: invalid address ${text}`, 'EINVAL');
  return ip;
}

/** "10.0.0.1/24" → address and prefix length, EINVAL when malformed. */
export function parseInterfaceCidr(cidr: string, what: string): { ip: IpAddress; prefixLength: number } {
  const parts = splitAddressWithPrefix(cidr);
  const ip = parts && parseIp(parts.address);
  if (!parts || !ip || parts.prefixLength > (ip.family === 4 ? 32 : 128)) {
    throw new KernelError(`${what}: invalid address ${cidr}`, 'EINVAL');
  }
  return { ip, prefixLength: parts.prefixLength };
}

/**
 * RTM_NEWADDR / RTM_DELADDR body: local and address both set, as `ip addr` does without a peer. IPv6
 * addresses carry IFA_F_NODAD (see KernelOps.addrAdd).
 */
export function addressBody(index: number, cidr: string, what: string): Buffer[] {
  const { ip, prefixLength } = parseInterfaceCidr(cidr, what);
  const loopback = ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
  const bytes = ipToBytes(ip);
  return [
    ifaddrmsg(familyCode(ip.family), prefixLength, loopback ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE, index, ip.family === 6 ? IFA_F_NODAD : 0),
    attr(IFA.LOCAL, bytes),
    attr(IFA.ADDRESS, bytes),
  ];
}

/** An IPv6 address usable at once, without duplicate address detection (linux/if_addr.h). */
const IFA_F_NODAD = 0x02;

export function decodeAddress(msg: NetlinkMessage, nameOf: (index: number) => string | undefined): AddressInfo & { index: number } | undefined {
  const family = msg.payload.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const prefixLength = msg.payload.readUInt8(1);
  const index = msg.payload.readUInt32LE(4);
  const attrs = parseAttrs(msg.payload, 8);
  const raw = attrs.get(IFA.LOCAL) ?? attrs.get(IFA.ADDRESS);
  const ip = raw && ipFromBytes(raw);
  const ifname = nameOf(index);
  if (!ip || ifname === undefined) return undefined;
  return { index, ifname, cidr: `${formatIp(ip)}/${prefixLength}`, family: ip.family };
}

interface ResolvedRoute {
  family: 4 | 6;
  dst?: { ip: IpAddress; prefixLength: number };
  via?: IpAddress;
}

function resolveRoute(route: RouteSpec, what: string): ResolvedRoute {
  const resolved: ResolvedRoute = { family: route.family };
  if (route.dst !== 'default') {
    const dst = parseInterfaceCidr(route.dst.includes('/') ? route.dst : `${route.dst}/${route.family === 4 ? 32 : 128}`, what);
    if (dst.ip.family !== route.family) throw new KernelError(`${what}: ${route.dst} is not IPv${route.family}`, 'EINVAL');
    resolved.dst = dst;
  }
  if (route.via !== undefined) {
    const via = requireAddress(route.via, what);
    if (via.family !== route.family) throw new KernelError(`${what}: gateway ${route.via} is not IPv${route.family}`, 'EINVAL');
    resolved.via = via;
  }
  return resolved;
}

/**
 * RTM_NEWROUTE (replace) or RTM_DELROUTE body, with iproute2's defaults: adds are protocol boot, scope
 * link without a gateway and universe with one; deletes match any protocol and scope.
 */
export function routeBody(route: RouteSpec, oif: number | undefined, forDelete: boolean, what: string): Buffer[] {
  const r = resolveRoute(route, what);
  const scope = forDelete ? RT_SCOPE_NOWHERE : r.via === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  const body = [
    rtmsg({
      family: familyCode(r.family), dstLength: r.dst?.prefixLength ?? 0, table: RT_TABLE_MAIN,
      protocol: forDelete ? RTPROT_UNSPEC : RTPROT_BOOT, scope, type: forDelete ? 0 : RTN_UNICAST,
    }),
  ];
  if (r.dst) body.push(attr(RTA.DST, ipToBytes(r.dst.ip)));
  if (r.via) body.push(attr(RTA.GATEWAY, ipToBytes(r.via)));
  if (oif !== undefined) body.push(u32Attr(RTA.OIF, oif));
  if (route.metric !== undefined) body.push(u32Attr(RTA.PRIORITY, route.metric));
  return body;
}

export function routeDumpBody(family: 4 | 6): Buffer[] {
  return [rtmsg({ family: familyCode(family), dstLength: 0, table: 0, protocol: 0, scope: 0, type: 0 })];
}

/** iproute2's names for rtm_protocol (etc/iproute2/rt_protos). */
const PROTOCOL_NAMES: Record<number, string> = {
  0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 10: 'mrt', 11: 'zebra',
  12: 'bird', 13: 'dnrouted', 14: 'xorp', 15: 'ntk', 16: 'dhcp', 17: 'mrouted', 18: 'keepalived', 42: 'babel',
  186: 'bgp', 187: 'isis', 188: 'ospf', 189: 'rip', 192: 'eigrp',
};
const SCOPE_NAMES: Record<number, string> = { 0: 'universe', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };

/** A unicast route of the main table, or undefined for anything `ip route show table main` would not list. */
export function decodeRoute(msg: NetlinkMessage, family: 4 | 6, nameOf: (index: number) => string | undefined): RouteInfo | undefined {
  const p = msg.payload;
  if (p.readUInt8(0) !== familyCode(family) || p.readUInt8(7) !== RTN_UNICAST) return undefined;
  if (p.readUInt32LE(8) & RTM_F_CLONED) return undefined;
  const attrs = parseAttrs(p, 12);
  const table = readU32(attrs.get(RTA.TABLE)) ?? p.readUInt8(4);
  if (table !== RT_TABLE_MAIN) return undefined;
  const dstLength = p.readUInt8(1);
  const dstBytes = attrs.get(RTA.DST);
  const dst = dstBytes && ipFromBytes(dstBytes);
  const route: RouteInfo = {
    dst: dstLength === 0 || !dst ? 'default' : `${formatIp(dst)}/${dstLength}`,
    family,
    metric: readU32(attrs.get(RTA.PRIORITY)) ?? 0,
    protocol: PROTOCOL_NAMES[p.readUInt8(5)] ?? String(p.readUInt8(5)),
    scope: SCOPE_NAMES[p.readUInt8(6)] ?? String(p.readUInt8(6)),
  };
  const gatewayBytes = attrs.get(RTA.GATEWAY);
  const gateway = gatewayBytes && ipFromBytes(gatewayBytes);
  if (gateway) route.via = formatIp(gateway);
  const oif = readU32(attrs.get(RTA.OIF));
  const dev = oif === undefined ? undefined : nameOf(oif);
  if (dev !== undefined) route.dev = dev;
  return route;
}

export function addressDumpBody(): Buffer[] {
  return [ifaddrmsg(AF_UNSPEC, 0, 0, 0)];
}
