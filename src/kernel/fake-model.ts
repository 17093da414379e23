/**
 * The fake kernel's state (namespaces, links, addresses) and the checks and side effects it shares
 * between operations, in the kernel's terms and errno names. The operations themselves are in fake.ts.
 */
import { KernelError } from '../errors.js';
import type { LinkInfo, RouteInfo, VxlanInfo } from './types.js';
import { addressBits, cidrContains, formatCidr, formatIp, type IpAddress, maskCidr, parseCidr, parseIp } from '../util/ip.js';
import { confDefaults, globalSysctls } from './fake-sysctls.js';

export interface FakeNs {
  links: Map<string, FakeLink>;
  addrs: FakeAddr[];
  routes: RouteInfo[];
  sysctls: Map<string, string>;
  nextIndex: number;
}

export interface FakeLink {
  ns: FakeNs;
  index: number;
  name: string;
  kind: string;
  mtu: number;
  mac: string;
  up: boolean;
  /** Interface group (0 = default; TOMBSTONE_GROUP hides the link, settle() deletes it). */
  group: number;
  master?: FakeLink;
  peer?: FakeLink;
  /** Lower device of a macvlan or vxlan: deleting it deletes this link too. */
  lower?: FakeLink;
  /** VXLAN links: the tunnel's settings as linkGet reports them. */
  vxlan?: VxlanInfo;
  /** Permanent neighbour entries by canonical IP. */
  neighbours: Map<string, string>;
  /** VXLAN FDB entries (MAC, underlay destination), in insertion order. */
  fdb: Array<{ mac: string; dst: string }>;
  /** Bridges: IGMP/MLD snooping, on unless turned off at creation (as in the kernel). */
  multicastSnooping?: boolean;
}

export interface FakeAddr {
  link: FakeLink;
  ip: IpAddress;
  prefix: number;
}

const errnoText: Record<string, string> = {
  EEXIST: 'File exists', ENODEV: 'No such device', ENOENT: 'No such file or directory', EINVAL: 'Invalid argument',
  EBUSY: 'Device or resource busy', ENETUNREACH: 'Network is unreachable', EHOSTUNREACH: 'No route to host', ENETDOWN: 'Network is down',
  EOPNOTSUPP: 'Operation not supported', EACCES: 'Permission denied',
};

export function newNamespace(): FakeNs {
  const ns: FakeNs = { links: new Map(), addrs: [], routes: [], sysctls: new Map(Object.entries(globalSysctls)), nextIndex: 1 };
  for (const dev of ['all', 'default']) addInterfaceSysctls(ns, dev);
  const lo = addLink(ns, { name: 'lo', kind: '', mtu: 65536, mac: '00:00:00:00:00:00' });
  lo.up = true;
  ns.addrs.push({ link: lo, ip: requireIp('127.0.0.1', 'lo'), prefix: 8 }, { link: lo, ip: requireIp('::1', 'lo'), prefix: 128 });
  return ns;
}

export function addLink(ns: FakeNs, attrs: { name: string; kind: string; mtu: number; mac?: string; group?: number }): FakeLink {
  const mac = attrs.mac === undefined ? randomMac() : normalizeMac(attrs.mac, `linkAdd ${attrs.name}`);
  const group = checkGroup(attrs.group, `linkAdd ${attrs.name}`) ?? 0;
  const link: FakeLink = {
    ns, index: ns.nextIndex++, name: attrs.name, kind: attrs.kind, mtu: attrs.mtu, mac, up: false, group, neighbours: new Map(), fdb: [],
  };
  ns.links.set(link.name, link);
  addInterfaceSysctls(ns, link.name);
  return link;
}

export function linkInfo(link: FakeLink): LinkInfo {
  const info: LinkInfo = { index: link.index, name: link.name, kind: link.kind, mtu: link.mtu, mac: link.mac, up: link.up, group: link.group };
  if (link.master) info.master = link.master.name;
  if (link.multicastSnooping !== undefined) info.multicastSnooping = link.multicastSnooping;
  if (link.vxlan) info.vxlan = { ...link.vxlan };
  return info;
}

export function addConnectedRoute(ns: FakeNs, addr: FakeAddr): void {
  const hostPrefix = addr.ip.family === 4 ? 32 : 128;
  if (addr.prefix === hostPrefix || addr.link.name === 'lo') return;
  const dst = networkCidr(addr.ip, addr.prefix);
  if (ns.routes.some((r) => r.protocol === 'kernel' && r.dev === addr.link.name && r.dst === dst)) return;
  ns.routes.push({
    dst, dev: addr.link.name, family: addr.ip.family, protocol: 'kernel',
    metric: addr.ip.family === 4 ? 0 : 256, scope: addr.ip.family === 4 ? 'link' : 'universe',
  });
}

export function addInterfaceSysctls(ns: FakeNs, dev: string): void {
  for (const family of [4, 6] as const) {
    for (const [param, value] of Object.entries(confDefaults[family])) {
      const inherited = ns.sysctls.get(`net.ipv${family}.conf.default.${param}`);
      ns.sysctls.set(`net.ipv${family}.conf.${dev}.${param}`, inherited ?? value);
    }
  }
}

export function renameInterfaceSysctls(ns: FakeNs, from: string, to: string): void {
  for (const [key, value] of [...ns.sysctls]) {
    if (interfaceOfKey(key) !== from) continue;
    ns.sysctls.delete(key);
    ns.sysctls.set(key.replace(`.conf.${from}.`, `.conf.${to}.`), value);
  }
}

export function interfaceOfKey(key: string): string | undefined {
  const dev = /^net\.ipv[46]\.conf\.(.+)\.[a-z_0-9]+$/.exec(key)?.[1];
  return dev === 'all' || dev === 'default' ? undefined : dev;
}

/** net.ipv4.ip_forward and net.ipv4.conf.all.forwarding are one setting in the kernel. */
export function sysctlAlias(key: string): string {
  return key === 'net.ipv4.conf.all.forwarding' ? 'net.ipv4.ip_forward' : key;
}

export function mustLink(ns: FakeNs, name: string, what: string): FakeLink {
  const link = ns.links.get(name);
  if (!link) fail('ENODEV', what);
  return link;
}

export function bridgeFor(ns: FakeNs, name: string, what: string): FakeLink {
  const master = mustLink(ns, name, what);
  if (master.kind !== 'bridge') fail('EOPNOTSUPP', what);
  return master;
}

export function checkName(name: string, what: string): void {
  if (name.length === 0 || name.length > 15 || /[\s/:]/.test(name) || name === '.' || name === '..') fail('EINVAL', what);
}

/** IFLA_GROUP is a u32. */
export function checkGroup(group: number | undefined, what: string): number | undefined {
  if (group !== undefined && (!Number.isInteger(group) || group < 0 || group > 0xffffffff)) fail('EINVAL', what);
  return group;
}

export function checkMtu(mtu: number | undefined, what: string): void {
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) fail('EINVAL', what);
}

/** A MAC an entry may name (neighbour or FDB): any six octets, multicast and all-zeros included. */
export function entryMac(mac: string, what: string): string {
  const m = mac.toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m)) fail('EINVAL', what);
  return m;
}

export function normalizeMac(mac: string, what: string): string {
  const m = mac.toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m) || (Number.parseInt(m.slice(0, 2), 16) & 1) === 1) fail('EADDRNOTAVAIL', what);
  return m;
}

function randomMac(): string {
  const bytes = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
  bytes[0] = (bytes[0]! & 0xfe) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function fail(errno: string, what: string): never {
  throw new KernelError(`${what}: ${errnoText[errno] ?? errno}`, errno);
}

export function requireIp(text: string, what: string): IpAddress {
  return parseIp(text) ?? fail('EINVAL', what);
}

/** "10.0.0.1/24", or a bare address meaning a host prefix, as ip(8) accepts. */
export function requireAddressWithPrefix(text: string, what: string): { ip: IpAddress; prefix: number } {
  const ip = text.includes('/') ? parseCidr(text) : undefined;
  if (ip) return { ip: { family: ip.family, value: ip.address }, prefix: ip.prefixLength };
  const bare = text.includes('/') ? undefined : parseIp(text);
  return bare ? { ip: bare, prefix: addressBits(bare.family) } : fail('EINVAL', what);
}

export function networkCidr(ip: IpAddress, prefix: number): string {
  return formatCidr(maskCidr({ family: ip.family, address: ip.value, prefixLength: prefix }));
}

export function parseDst(dst: string, family: 4 | 6, what: string): string {
  if (dst === 'default') return dst;
  const { ip, prefix } = requireAddressWithPrefix(dst, what);
  if (ip.family !== family) fail('EINVAL', what);
  const net = networkCidr(ip, prefix);
  // IPv4 refuses host bits in a destination; IPv6 masks them away.
  if (family === 4 && net !== `${formatIp(ip)}/${prefix}`) fail('EINVAL', what);
  return prefix === 0 ? 'default' : net;
}

export function covers(dst: string, ip: IpAddress): boolean {
  const net = dst === 'default' ? undefined : parseCidr(dst);
  return dst === 'default' || (net !== undefined && cidrContains(net, ip));
}
