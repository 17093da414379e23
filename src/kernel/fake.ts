/**
 * An in-memory kernel for unit tests: namespaces, links (veth pairs point at each other, masters, parents,
 * per-namespace indices), addresses, main-table routes and sysctls, with the kernel's side effects
 * (connected routes follow addresses on up links; going down drops routes and IPv6 addresses; deleting a
 * veth end deletes its peer) and the kernel's errno names. Every call is logged in `calls`.
 * Permanent neighbour entries and VXLAN FDB entries are kept per link (what cnm programs).
 * It passes test/conformance/kernel.ts; what it does not model: IPv6 link-local addresses, learned neighbours,
 * secondary-address promotion, carrier.
 */
import { KernelError } from '../errors.js';
import {
  FLOOD_MAC, TOMBSTONE_GROUP, type AddressInfo, type FdbEntry, type FdbInfo, type KernelOps, type LinkChange, type LinkInfo, type LinkSpec,
  type NeighEntry, type NeighInfo, type NetnsRef, type RouteInfo, type RouteSpec, type VxlanInfo, type VxlanSpec,
} from './types.js';
import {
  addConnectedRoute, addInterfaceSysctls, addLink, bridgeFor, checkGroup, checkMtu, checkName, covers, entryMac, type FakeAddr, type FakeLink,
  type FakeNs, fail, interfaceOfKey, linkInfo, mustLink, networkCidr, newNamespace, normalizeMac, parseDst,
  renameInterfaceSysctls, requireAddressWithPrefix, requireIp, sysctlAlias,
} from './fake-model.js';
import { formatIp } from '../util/ip.js';

export interface KernelCall {
  method: keyof KernelOps;
  args: unknown[];
}

export class FakeKernel implements KernelOps {
  readonly calls: KernelCall[] = [];
  private readonly host: FakeNs = newNamespace();
  private readonly namespaces = new Map<string, FakeNs>();
  private readonly pendingFailures = new Map<keyof KernelOps, KernelError>();

  /** Make the next call of `method` throw `error` (once), for rollback tests. */
  failNext(method: keyof KernelOps, error = new KernelError(`injected failure in ${method}`, 'EIO')): void {
    this.pendingFailures.set(method, error);
  }

  /** Paths of the namespaces currently pinned. */
  netnsPaths(): string[] {
    return [...this.namespaces.keys()];
  }

  async createNetns(path: string): Promise<void> {
    this.record('createNetns', path);
    if (this.namespaces.has(path)) fail('EEXIST', `createNetns ${path}`);
    this.namespaces.set(path, newNamespace());
  }

  async deleteNetns(path: string): Promise<void> {
    this.record('deleteNetns', path);
    const ns = this.namespaces.get(path);
    if (!ns) return;
    this.namespaces.delete(path);
    // An adopted namespace's pin: the namespace lives on under its other paths.
    if ([...this.namespaces.values()].includes(ns)) return;
    for (const link of [...ns.links.values()]) if (link.name !== 'lo') this.destroy(link);
  }

  async netnsExists(path: string): Promise<boolean> {
    this.record('netnsExists', path);
    return this.namespaces.has(path);
  }

  async adoptNetns(source: string, pin: string): Promise<string> {
    this.record('adoptNetns', source, pin);
    const ns = this.namespaces.get(source);
    if (!ns) fail('EINVAL', `cannot adopt ${source}: not a network namespace`);
    if (this.namespaces.has(pin)) fail('EEXIST', `adoptNetns ${pin}`);
    this.namespaces.set(pin, ns);
    return this.identityOf(ns);
  }

  async netnsIdentity(path: string): Promise<string | undefined> {
    this.record('netnsIdentity', path);
    const ns = this.namespaces.get(path);
    return ns && this.identityOf(ns);
  }

  /**
   * One identity per namespace object, the same for all its paths; a namespace created later at a path
   * another one had gets a new identity, as a new nsfs inode would.
   */
  private identityOf(ns: FakeNs): string {
    let id = this.identities.get(ns);
    if (id === undefined) {
      id = `fake-ns:${++this.identityCount}`;
      this.identities.set(ns, id);
    }
    return id;
  }

  private readonly identities = new WeakMap<FakeNs, string>();
  private identityCount = 0;

  async linkAdd(nsRef: NetnsRef, spec: LinkSpec): Promise<void> {
    this.record('linkAdd', nsRef, spec);
    const ns = this.ns(nsRef);
    const what = `linkAdd ${spec.name}`;
    // A macvlan may be born in another namespace; its name, master and up then belong to that one.
    const home = spec.kind === 'macvlan' && spec.netns !== undefined ? this.ns(spec.netns) : ns;
    checkName(spec.name, what);
    checkMtu(spec.mtu, what);
    if (spec.mac !== undefined) normalizeMac(spec.mac, what);
    if (home.links.has(spec.name)) fail('EEXIST', what);
    const master = spec.master === undefined ? undefined : bridgeFor(home, spec.master, what);
    let lower: FakeLink | undefined;
    let mtu = spec.mtu ?? 1500;
    switch (spec.kind) {
      case 'veth': {
        const peerNs = spec.peer.netns === undefined ? ns : this.ns(spec.peer.netns);
        checkName(spec.peer.name, what);
        checkMtu(spec.peer.mtu, what);
        if (spec.peer.mac !== undefined) normalizeMac(spec.peer.mac, what);
        if (peerNs.links.has(spec.peer.name) || (peerNs === ns && spec.peer.name === spec.name)) fail('EEXIST', what);
        checkGroup(spec.group, what);
        checkGroup(spec.peer.group, what);
        const peer = addLink(peerNs, { name: spec.peer.name, kind: 'veth', mtu: spec.peer.mtu ?? 1500, mac: spec.peer.mac, group: spec.peer.group });
        const self = addLink(ns, { name: spec.name, kind: 'veth', mtu, mac: spec.mac, group: spec.group });
        [peer.peer, self.peer, self.master] = [self, peer, master];
        if (spec.peer.up) this.setUp(peer, true);
        if (spec.up) this.setUp(self, true);
        return;
      }
      case 'vxlan': {
        const port = spec.dstPort ?? 4789;
        if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni >= 1 << 24) fail('ERANGE', what);
        if (spec.local !== undefined) requireIp(spec.local, what);
        if (spec.dev !== undefined) lower = mustLink(ns, spec.dev, what);
        mtu = spec.mtu ?? (lower ? lower.mtu - (spec.local?.includes(":") ? 70 : 50) : 1500);
        if ([...ns.links.values()].some((l) => l.kind === 'vxlan' && l.vxlan?.vni === spec.vni && l.vxlan.port === port)) {
          fail('EEXIST', what);
        }
        break;
      }
      case 'macvlan':
        lower = mustLink(ns, spec.parent, what);
        mtu = spec.mtu ?? lower.mtu;
        break;
      case 'bridge':
      case 'dummy':
        break;
    }
    const link = addLink(home, { name: spec.name, kind: spec.kind, mtu, mac: spec.mac, group: spec.group });
    [link.lower, link.master] = [lower, master];
    if (spec.kind === 'vxlan') link.vxlan = vxlanInfo(spec);
    if (spec.kind === 'bridge') link.multicastSnooping = spec.multicastSnooping ?? true;
    if (spec.up) this.setUp(link, true);
  }

  async linkSet(nsRef: NetnsRef, name: string, change: LinkChange): Promise<void> {
    this.record('linkSet', nsRef, name, change);
    const what = `linkSet ${name}`;
    const from = this.ns(nsRef);
    const link = mustLink(from, name, what);
    const ns = change.netns === undefined ? from : this.ns(change.netns);
    const newName = change.name ?? name;
    // Check everything first: like ip(8) and the netlink implementation, which resolve names before sending
    // one message, a refused change leaves the link as it was.
    checkName(newName, what);
    checkMtu(change.mtu, what);
    checkGroup(change.group, what);
    const mac = change.mac === undefined ? undefined : normalizeMac(change.mac, what);
    if (ns !== from && (link.kind === 'bridge' || link.name === 'lo')) fail('EINVAL', what);
    if (ns.links.get(newName) !== undefined && ns.links.get(newName) !== link) fail('EEXIST', what);
    const master = typeof change.master === 'string' ? bridgeFor(ns, change.master, what) : undefined;
    if (ns !== from) {
      this.detach(link);
      link.ns = ns;
      if ([...ns.links.values()].some((l) => l.index === link.index)) link.index = ns.nextIndex++;
      ns.links.set(name, link);
      addInterfaceSysctls(ns, name);
      link.neighbours.clear(); // the kernel flushes a moved link's neighbour entries
    }
    if (mac !== undefined) link.mac = mac;
    if (change.mtu !== undefined) link.mtu = change.mtu;
    if (change.group !== undefined) link.group = change.group;
    // Current kernels (6.18 here) rename an up link too; older ones answered EBUSY.
    if (newName !== link.name) {
      renameInterfaceSysctls(ns, link.name, newName);
      ns.links.delete(link.name);
      link.name = newName;
      ns.links.set(newName, link);
    }
    if (change.master !== undefined) link.master = master;
    if (change.up !== undefined) this.setUp(link, change.up);
  }

  async linkDel(nsRef: NetnsRef, name: string): Promise<void> {
    this.record('linkDel', nsRef, name);
    const link = this.ns(nsRef).links.get(name);
    if (!link) return;
    if (link.name === 'lo') fail('EOPNOTSUPP', `linkDel ${name}`);
    this.destroy(link);
  }

  async linkGet(nsRef: NetnsRef, name: string): Promise<LinkInfo | undefined> {
    this.record('linkGet', nsRef, name);
    const link = this.ns(nsRef).links.get(name);
    return link && link.group !== TOMBSTONE_GROUP ? linkInfo(link) : undefined;
  }

  async linkList(nsRef: NetnsRef): Promise<LinkInfo[]> {
    this.record('linkList', nsRef);
    const live = [...this.ns(nsRef).links.values()].filter((l) => l.group !== TOMBSTONE_GROUP);
    // As the real kernels: the transmit checksum setting costs a query per link, so linkGet alone reports it.
    return live.sort((a, b) => a.index - b.index).map(linkInfo).map((l) => (l.vxlan && delete l.vxlan.txChecksumOffload, l));
  }

  async addrAdd(nsRef: NetnsRef, ifname: string, cidr: string): Promise<void> {
    this.record('addrAdd', nsRef, ifname, cidr);
    const what = `addrAdd ${ifname} ${cidr}`;
    const ns = this.ns(nsRef);
    const link = mustLink(ns, ifname, what);
    const { ip, prefix } = requireAddressWithPrefix(cidr, what);
    if (ip.family === 6 && ns.sysctls.get(`net.ipv6.conf.${ifname}.disable_ipv6`) === '1') fail('EACCES', what);
    const sameIp = (a: FakeAddr): boolean => a.link === link && a.ip.family === ip.family && a.ip.value === ip.value;
    if (ns.addrs.some((a) => sameIp(a) && a.prefix === prefix)) return;
    // IPv4 keys an address by (address, prefix); IPv6 by address alone, so a re-add replaces the prefix.
    const replaced = ip.family === 6 ? ns.addrs.find(sameIp) : undefined;
    if (replaced) this.removeAddr(ns, replaced);
    const addr = { link, ip, prefix };
    ns.addrs.push(addr);
    if (link.up) addConnectedRoute(ns, addr);
  }

  async addrDel(nsRef: NetnsRef, ifname: string, cidr: string): Promise<void> {
    this.record('addrDel', nsRef, ifname, cidr);
    const ns = this.ns(nsRef);
    const { ip, prefix } = requireAddressWithPrefix(cidr, `addrDel ${ifname} ${cidr}`);
    const addr = ns.addrs.find(
      (a) => a.link.name === ifname && a.ip.family === ip.family && a.ip.value === ip.value && a.prefix === prefix,
    );
    if (addr) this.removeAddr(ns, addr);
  }

  async addrList(nsRef: NetnsRef, ifname?: string): Promise<AddressInfo[]> {
    this.record('addrList', nsRef, ifname);
    const ns = this.ns(nsRef);
    if (ifname !== undefined) mustLink(ns, ifname, `addrList ${ifname}`);
    return ns.addrs
      .filter((a) => ifname === undefined || a.link.name === ifname)
      .sort((a, b) => a.link.index - b.link.index || a.ip.family - b.ip.family)
      .map((a) => ({ ifname: a.link.name, cidr: `${formatIp(a.ip)}/${a.prefix}`, family: a.ip.family }));
  }

  async routeReplace(nsRef: NetnsRef, route: RouteSpec): Promise<void> {
    this.record('routeReplace', nsRef, route);
    const ns = this.ns(nsRef);
    const what = `routeReplace ${route.dst}`;
    const dst = parseDst(route.dst, route.family, what);
    let dev = route.dev === undefined ? undefined : mustLink(ns, route.dev, what);
    if (dev && !dev.up) fail('ENETDOWN', what);
    if (route.via !== undefined) {
      const via = requireIp(route.via, what);
      if (via.family !== route.family) fail('EINVAL', what);
      const onLink = ns.routes.find(
        (r) => r.protocol === 'kernel' && r.family === via.family && (!dev || r.dev === dev.name) && covers(r.dst, via),
      );
      // IPv4 answers an off-link gateway with ENETUNREACH, IPv6 with EHOSTUNREACH.
      if (!onLink) fail(route.family === 4 ? 'ENETUNREACH' : 'EHOSTUNREACH', what);
      dev = ns.links.get(onLink.dev!);
    }
    if (!dev) fail('EINVAL', what);
    const metric = route.metric ?? (route.family === 6 ? 1024 : 0);
    const info: RouteInfo = {
      dst: dst, via: route.via === undefined ? undefined : formatIp(requireIp(route.via, what)), dev: dev.name, metric,
      family: route.family, protocol: 'boot', scope: route.via === undefined && route.family === 4 ? 'link' : 'universe',
    };
    if (info.via === undefined) delete info.via;
    const existing = ns.routes.findIndex((r) => r.family === route.family && r.dst === dst && r.metric === metric);
    if (existing >= 0) ns.routes[existing] = info;
    else ns.routes.push(info);
  }

  async routeDel(nsRef: NetnsRef, route: RouteSpec): Promise<void> {
    this.record('routeDel', nsRef, route);
    const ns = this.ns(nsRef);
    const what = `routeDel ${route.dst}`;
    const dst = parseDst(route.dst, route.family, what);
    const via = route.via === undefined ? undefined : formatIp(requireIp(route.via, what));
    const i = ns.routes.findIndex(
      (r) =>
        r.family === route.family && r.dst === dst &&
        (route.metric === undefined || r.metric === route.metric) &&
        (via === undefined || r.via === via) &&
        (route.dev === undefined || r.dev === route.dev),
    );
    if (i >= 0) ns.routes.splice(i, 1);
  }

  async routeList(nsRef: NetnsRef, family: 4 | 6): Promise<RouteInfo[]> {
    this.record('routeList', nsRef, family);
    return this.ns(nsRef).routes.filter((r) => r.family === family).map((r) => ({ ...r }));
  }

  async sysctlSet(nsRef: NetnsRef, key: string, value: string): Promise<void> {
    this.record('sysctlSet', nsRef, key, value);
    const ns = this.ns(nsRef);
    const canonical = sysctlAlias(key);
    const current = ns.sysctls.get(canonical);
    if (current === undefined) fail('ENOENT', `sysctl ${key}`);
    const normalized = current.includes('\t') ? value.trim().split(/\s+/).join('\t') : value.trim();
    if (!current.includes('\t') && !/^-?\d+$/.test(normalized)) fail('EINVAL', `sysctl ${key}=${value}`);
    ns.sysctls.set(canonical, current.includes('\t') ? normalized : String(Number.parseInt(normalized, 10)));
    const disabled = /^net\.ipv6\.conf\.(.+)\.disable_ipv6$/.exec(canonical);
    const link = disabled && ns.links.get(disabled[1]!);
    if (link && normalized !== '0') for (const a of ns.addrs.filter((x) => x.link === link && x.ip.family === 6)) this.removeAddr(ns, a);
  }

  async neighDel(nsRef: NetnsRef, ifname: string, ip: string): Promise<void> {
    // The fake keeps permanent entries only: nothing is ever learned, so only those can be forgotten.
    this.record('neighDel', nsRef, ifname, ip);
    const canonical = formatIp(requireIp(ip, `neighDel ${ifname} ${ip}`));
    this.ns(nsRef).links.get(ifname)?.neighbours.delete(canonical);
  }

  async neighReplace(nsRef: NetnsRef, entry: NeighEntry): Promise<void> {
    this.record('neighReplace', nsRef, entry);
    const what = `neighReplace ${entry.ifname} ${entry.ip}`;
    const ip = formatIp(requireIp(entry.ip, what));
    const mac = entryMac(entry.mac, what);
    mustLink(this.ns(nsRef), entry.ifname, what).neighbours.set(ip, mac);
  }

  async neighList(nsRef: NetnsRef, ifname: string): Promise<NeighInfo[]> {
    this.record('neighList', nsRef, ifname);
    const link = mustLink(this.ns(nsRef), ifname, `neighList ${ifname}`);
    return [...link.neighbours].map(([ip, mac]) => ({ ifname, ip, mac, permanent: true }));
  }

  async fdbAdd(nsRef: NetnsRef, entry: FdbEntry): Promise<void> {
    this.record('fdbAdd', nsRef, entry);
    const { link, mac, dst } = this.fdbTarget(nsRef, entry, `fdbAdd ${entry.ifname} ${entry.mac} ${entry.dst}`);
    if (mac === FLOOD_MAC) {
      if (!link.fdb.some((e) => e.mac === mac && e.dst === dst)) link.fdb.push({ mac, dst });
      return;
    }
    const existing = link.fdb.find((e) => e.mac === mac);
    if (existing) existing.dst = dst;
    else link.fdb.push({ mac, dst });
  }

  async fdbDel(nsRef: NetnsRef, entry: FdbEntry): Promise<void> {
    this.record('fdbDel', nsRef, entry);
    const what = `fdbDel ${entry.ifname} ${entry.mac} ${entry.dst}`;
    const [mac, dst] = [entryMac(entry.mac, what), formatIp(requireIp(entry.dst, what))];
    const link = this.ns(nsRef).links.get(entry.ifname);
    if (link) link.fdb = link.fdb.filter((e) => !(e.mac === mac && e.dst === dst));
  }

  async fdbList(nsRef: NetnsRef, ifname: string): Promise<FdbInfo[]> {
    this.record('fdbList', nsRef, ifname);
    const link = mustLink(this.ns(nsRef), ifname, `fdbList ${ifname}`);
    return link.fdb.map((e) => ({ ifname, mac: e.mac, dst: e.dst, permanent: true }));
  }

  private fdbTarget(nsRef: NetnsRef, entry: FdbEntry, what: string): { link: FakeLink; mac: string; dst: string } {
    const [mac, dst] = [entryMac(entry.mac, what), formatIp(requireIp(entry.dst, what))];
    const link = mustLink(this.ns(nsRef), entry.ifname, what);
    if (link.kind !== 'vxlan') fail('EOPNOTSUPP', what);
    return { link, mac, dst };
  }

  async sysctlGet(nsRef: NetnsRef, key: string): Promise<string> {
    this.record('sysctlGet', nsRef, key);
    const value = this.ns(nsRef).sysctls.get(sysctlAlias(key));
    if (value === undefined) fail('ENOENT', `sysctl ${key}`);
    return value;
  }

  async settle(): Promise<void> {
    // Deletions are immediate here: only links put in the tombstone group by hand can be left.
    for (const link of [...this.ns(null).links.values()]) if (link.group === TOMBSTONE_GROUP) this.destroy(link);
  }

  close(): void {
    this.record('close');
  }

  private record(method: keyof KernelOps, ...args: unknown[]): void {
    this.calls.push({ method, args: structuredClone(args) });
    const failure = this.pendingFailures.get(method);
    if (failure) {
      this.pendingFailures.delete(method);
      throw failure;
    }
  }

  private ns(ref: NetnsRef): FakeNs {
    if (ref === null) return this.host;
    const ns = this.namespaces.get(ref);
    if (!ns) fail('ENOENT', `namespace ${ref}`);
    return ns;
  }

  private setUp(link: FakeLink, up: boolean): void {
    if (link.up === up) return;
    link.up = up;
    const ns = link.ns;
    if (up) {
      for (const a of ns.addrs) if (a.link === link) addConnectedRoute(ns, a);
      return;
    }
    // Like the kernel with keep_addr_on_down=0: routes through the link go, and so do its IPv6 addresses.
    ns.routes = ns.routes.filter((r) => r.dev !== link.name);
    ns.addrs = ns.addrs.filter((a) => a.link !== link || a.ip.family === 4);
  }

  /** Take a link out of its namespace's tables (addresses, routes, sysctls, master/ports). */
  private detach(link: FakeLink): void {
    const ns = link.ns;
    this.setUp(link, false);
    ns.addrs = ns.addrs.filter((a) => a.link !== link);
    ns.links.delete(link.name);
    for (const key of [...ns.sysctls.keys()]) if (interfaceOfKey(key) === link.name) ns.sysctls.delete(key);
    link.master = undefined;
    for (const other of ns.links.values()) if (other.master === link) other.master = undefined;
  }

  private destroy(link: FakeLink): void {
    if (link.ns.links.get(link.name) !== link) return;
    this.detach(link);
    if (link.peer) this.destroy(link.peer);
    for (const ns of [this.host, ...this.namespaces.values()]) {
      for (const other of [...ns.links.values()]) if (other.lower === link) this.destroy(other);
    }
  }

  private removeAddr(ns: FakeNs, addr: FakeAddr): void {
    ns.addrs = ns.addrs.filter((a) => a !== addr);
    const net = networkCidr(addr.ip, addr.prefix);
    const stillCovered = ns.addrs.some((a) => a.link === addr.link && a.prefix === addr.prefix && networkCidr(a.ip, a.prefix) === net);
    if (!stillCovered) ns.routes = ns.routes.filter((r) => !(r.protocol === 'kernel' && r.dev === addr.link.name && r.dst === net));
  }
}

function vxlanInfo(spec: VxlanSpec): VxlanInfo {
  const info: VxlanInfo = {
    vni: spec.vni, port: spec.dstPort ?? 4789, learning: spec.learning ?? false, arpProxy: spec.arpProxy ?? false,
    ttl: spec.ttl ?? 0, udpChecksum: spec.udpChecksum ?? false, txChecksumOffload: spec.txChecksumOffload ?? true,
  };
  if (spec.local !== undefined) info.local = formatIp(requireIp(spec.local, `linkAdd ${spec.name}`));
  return info;
}
