/**
 * KernelOps by spawning iproute2, util-linux (unshare, nsenter, umount) and sysctl(8): the fallback and
 * reference implementation. Slow (a process or two per call) but it shows plainly what each operation
 * asks of the kernel. Another namespace is entered with `nsenter --net=PATH`, because iproute2 6.1's
 * `ip -n` only takes names under /run/netns; its `netns` arguments (link add/set) do take paths.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { KernelError } from '../errors.js';
import { parseIp } from '../util/ip.js';
import {
  adoptNetnsAt, createPinPlaceholder, isNetnsFile, MAX_STACKED_PINS, netnsIdentityAt, removePinPlaceholder,
} from './netns-file.js';
import { ThreadNamespace } from './netns.js';
import {
  FLOOD_MAC, TOMBSTONE_GROUP,
  type AddressInfo, type FdbEntry, type FdbInfo, type KernelOps, type LinkChange, type LinkInfo, type LinkSpec, type NeighEntry,
  type NeighInfo, type NetnsRef, type RouteInfo, type RouteSpec, type VxlanInfo,
} from './types.js';

export interface IprouteKernelOptions {
  /** Namespace that `null` means; default: the daemon's own. Tests point it at a throwaway namespace. */
  hostNetns?: string;
}

const COMMAND_TIMEOUT_MS = 30_000;

export class IprouteKernel implements KernelOps {
  private readonly hostNetns: string | undefined;
  private closed = false;

  constructor(options: IprouteKernelOptions = {}) {
    this.hostNetns = options.hostNetns === undefined ? undefined : resolve(options.hostNetns);
  }

  async createNetns(path: string): Promise<void> {
    const file = resolve(path);
    if (await this.netnsExists(file)) throw new KernelError(`createNetns ${file}: already a namespace`, 'EEXIST');
    await createPinPlaceholder(file);
    try {
      // unshare bind-mounts the new namespace onto the file and runs ip inside it: pin and lo up in one spawn.
      await this.run(['unshare', `--net=${file}`, 'ip', 'link', 'set', 'dev', 'lo', 'up'], `createNetns ${file}`);
    } catch (err) {
      await this.deleteNetns(file);
      throw err;
    }
  }

  async deleteNetns(path: string): Promise<void> {
    const file = resolve(path);
    // A path can carry stacked pins; unmount until none is left.
    for (let i = 0; i < MAX_STACKED_PINS && (await this.netnsExists(file)); i++) {
      await this.run(['umount', file], `deleteNetns ${file}`);
    }
    await removePinPlaceholder(file);
  }

  async netnsExists(path: string): Promise<boolean> {
    return isNetnsFile(resolve(path));
  }

  /** No `ip` command opens a path once and pins it: done in-process (kernel/netns.ts). */
  async adoptNetns(source: string, pin: string): Promise<string> {
    const thread = new ThreadNamespace();
    try {
      return await adoptNetnsAt(thread, source, pin, this.hostNetns);
    } finally {
      thread.close();
    }
  }

  /** The namespace cookie is read in-process too (a socket made inside it). */
  async netnsIdentity(path: string): Promise<string | undefined> {
    const thread = new ThreadNamespace();
    try {
      return await netnsIdentityAt(thread, path);
    } finally {
      thread.close();
    }
  }

  async linkAdd(ns: NetnsRef, spec: LinkSpec): Promise<void> {
    const what = `linkAdd ${spec.name}`;
    const args = ['link', 'add', 'name', spec.name, ...attrArgs(spec)];
    let home = ns;
    let deferred: LinkChange | undefined;
    let deferredStep: (() => Promise<void>) | undefined;
    switch (spec.kind) {
      case 'bridge':
        args.push(...masterArg(spec.master), ...upArg(spec.up), 'type', 'bridge');
        if (spec.multicastSnooping !== undefined) args.push('mcast_snooping', spec.multicastSnooping ? '1' : '0');
        break;
      case 'dummy':
        args.push(...masterArg(spec.master), ...upArg(spec.up), 'type', 'dummy');
        break;
      case 'veth': {
        const peer = spec.peer;
        args.push(...masterArg(spec.master), ...upArg(spec.up), 'type', 'veth', 'peer', 'name', peer.name, ...attrArgs(peer));
        if (peer.netns !== undefined) args.push('netns', this.pathArg(peer.netns));
        await this.ip(ns, args, what);
        // The kernel refuses IFF_UP on a peer while its other end is not registered yet (ENOTCONN), so the
        // peer comes up in a second message.
        if (peer.up) {
          const peerNs = peer.netns === undefined ? ns : peer.netns;
          await this.ip(peerNs, ['link', 'set', 'dev', peer.name, 'up'], what).catch(async (err: unknown) => {
            await this.linkDel(ns, spec.name).catch(() => undefined);
            throw err;
          });
        }
        return;
      }
      case 'vxlan':
        args.push(...masterArg(spec.master), ...upArg(spec.up), 'type', 'vxlan', 'id', String(spec.vni));
        args.push('dstport', String(spec.dstPort ?? 4789));
        if (spec.local !== undefined) args.push('local', spec.local);
        if (spec.dev !== undefined) args.push('dev', spec.dev);
        args.push(spec.learning ? 'learning' : 'nolearning', spec.arpProxy ? 'proxy' : 'noproxy', 'nol2miss', 'nol3miss');
        args.push('ttl', String(spec.ttl ?? 0), spec.udpChecksum ? 'udpcsum' : 'noudpcsum');
        if (spec.txChecksumOffload !== undefined) {
          const tx = spec.txChecksumOffload ? 'on' : 'off';
          deferredStep = () => this.exec(ns, ['ethtool', '-K', spec.name, 'tx', tx], what).then(() => undefined);
        }
        break;
      case 'macvlan':
        if (spec.netns !== undefined) {
          // Created straight into another namespace, master and up refer to that namespace: set them there.
          home = spec.netns;
          args.push('netns', this.pathArg(spec.netns));
          if (spec.master !== undefined || spec.up) deferred = { master: spec.master, up: spec.up };
        } else {
          args.push(...masterArg(spec.master), ...upArg(spec.up));
        }
        args.push('link', spec.parent, 'type', 'macvlan', 'mode', spec.mode);
        break;
    }
    await this.ip(ns, args, what);
    if (deferred) {
      const change = deferred;
      deferredStep = () => this.linkSet(home, spec.name, change);
    }
    if (deferredStep) {
      await deferredStep().catch(async (err: unknown) => {
        await this.linkDel(home, spec.name).catch(() => undefined);
        throw err;
      });
    }
  }

  async linkSet(ns: NetnsRef, name: string, change: LinkChange): Promise<void> {
    const what = `linkSet ${name}`;
    let current = name;
    let where = ns;
    if (change.netns !== undefined) {
      // Moving is its own message; check the master first so a refused change does not leave the link moved.
      if (typeof change.master === 'string' && !(await this.linkGet(change.netns, change.master))) {
        throw new KernelError(`${what}: master ${change.master}: No such device`, 'ENODEV');
      }
      const move = ['link', 'set', 'dev', name, 'netns', this.pathArg(change.netns)];
      if (change.name !== undefined) move.push('name', change.name);
      await this.ip(ns, move, what);
      current = change.name ?? name;
      where = change.netns;
    }
    // One message: the kernel applies address, mtu, name, master, then flags (so rename-then-up works).
    const args: string[] = [];
    if (change.mac !== undefined) args.push('address', change.mac);
    if (change.mtu !== undefined) args.push('mtu', String(change.mtu));
    if (change.group !== undefined) args.push('group', String(change.group));
    if (change.name !== undefined && change.netns === undefined) args.push('name', change.name);
    if (change.master !== undefined) args.push(...(change.master === null ? ['nomaster'] : ['master', change.master]));
    if (change.up !== undefined) args.push(change.up ? 'up' : 'down');
    if (args.length > 0) await this.ip(where, ['link', 'set', 'dev', current, ...args], what);
  }

  async linkDel(ns: NetnsRef, name: string): Promise<void> {
    await this.ip(ns, ['link', 'del', 'dev', name], `linkDel ${name}`).catch(ignore('ENODEV'));
  }

  async linkGet(ns: NetnsRef, name: string): Promise<LinkInfo | undefined> {
    try {
      // -N: the group as a number, not a name from /etc/iproute2/group.
      const out = await this.ip(ns, ['-N', '-d', '-json', 'link', 'show', 'dev', name], `linkGet ${name}`);
      const link = parseLinks(out).find((l) => l.group !== TOMBSTONE_GROUP);
      if (link?.vxlan) {
        const features = await this.exec(ns, ['ethtool', '-k', name], `linkGet ${name}`);
        link.vxlan.txChecksumOffload = /^tx-checksumming: on/m.test(features);
      }
      return link;
    } catch (err) {
      if (err instanceof KernelError && err.errno === 'ENODEV') return undefined;
      throw err;
    }
  }

  async linkList(ns: NetnsRef): Promise<LinkInfo[]> {
    return (await this.allLinks(ns)).filter((l) => l.group !== TOMBSTONE_GROUP);
  }

  async addrAdd(ns: NetnsRef, ifname: string, cidr: string): Promise<void> {
    // replace, not add: re-adding an existing address must succeed. IPv6 without DAD (see KernelOps.addrAdd).
    await this.ip(ns, ['addr', 'replace', cidr, 'dev', ifname, ...(cidr.includes(':') ? ['nodad'] : [])], `addrAdd ${ifname} ${cidr}`);
  }

  async addrDel(ns: NetnsRef, ifname: string, cidr: string): Promise<void> {
    await this.ip(ns, ['addr', 'del', cidr, 'dev', ifname], `addrDel ${ifname} ${cidr}`).catch(
      ignore('ENODEV', 'EADDRNOTAVAIL'),
    );
  }

  async addrList(ns: NetnsRef, ifname?: string): Promise<AddressInfo[]> {
    const args = ['-json', 'addr', 'show', ...(ifname === undefined ? [] : ['dev', ifname])];
    const links = JSON.parse(await this.ip(ns, args, `addrList ${ifname ?? ''}`) || '[]') as IpAddrJson[];
    return links.flatMap((link) =>
      (link.addr_info ?? [])
        .filter((a) => a.family === 'inet' || a.family === 'inet6')
        .map((a) => ({ ifname: link.ifname, cidr: `${a.local}/${a.prefixlen}`, family: a.family === 'inet' ? 4 : 6 }) as AddressInfo),
    );
  }

  async routeReplace(ns: NetnsRef, route: RouteSpec): Promise<void> {
    await this.ip(ns, [`-${route.family}`, 'route', 'replace', ...routeArgs(route)], `routeReplace ${route.dst}`);
  }

  async routeDel(ns: NetnsRef, route: RouteSpec): Promise<void> {
    await this.ip(ns, [`-${route.family}`, 'route', 'del', ...routeArgs(route)], `routeDel ${route.dst}`).catch(
      ignore('ESRCH', 'ENOENT', 'ENODEV'),
    );
  }

  async routeList(ns: NetnsRef, family: 4 | 6): Promise<RouteInfo[]> {
    const out = await this.ip(ns, [`-${family}`, '-json', 'route', 'show', 'table', 'main'], 'routeList');
    return (JSON.parse(out || '[]') as IpRouteJson[]).map((r) => parseRoute(r, family));
  }

  async neighDel(ns: NetnsRef, ifname: string, ip: string): Promise<void> {
    await this.ip(ns, ['neigh', 'del', ip, 'dev', ifname], `neighDel ${ifname} ${ip}`).catch(ignore('ENOENT', 'ENODEV', 'ESRCH'));
  }

  async neighReplace(ns: NetnsRef, entry: NeighEntry): Promise<void> {
    checkEntry(entry.ip, entry.mac, `neighReplace ${entry.ifname} ${entry.ip}`);
    const args = ['neigh', 'replace', entry.ip, 'lladdr', entry.mac, 'dev', entry.ifname, 'nud', 'permanent'];
    await this.ip(ns, args, `neighReplace ${entry.ifname} ${entry.ip}`);
  }

  async neighList(ns: NetnsRef, ifname: string): Promise<NeighInfo[]> {
    const out = await this.ip(ns, ['-json', 'neigh', 'show', 'dev', ifname], `neighList ${ifname}`);
    return (JSON.parse(out || '[]') as IpNeighJson[])
      .filter((n) => n.lladdr !== undefined)
      .map((n) => ({ ifname, ip: n.dst, mac: n.lladdr!, permanent: (n.state ?? []).includes('PERMANENT') }));
  }

  async fdbAdd(ns: NetnsRef, entry: FdbEntry): Promise<void> {
    checkEntry(entry.dst, entry.mac, `fdbAdd ${entry.ifname} ${entry.mac} ${entry.dst}`);
    // The flood list holds several destinations (append); a unicast MAC has one (replace).
    const verb = entry.mac.toLowerCase() === FLOOD_MAC ? 'append' : 'replace';
    const args = ['fdb', verb, entry.mac, 'dev', entry.ifname, 'dst', entry.dst, 'self', 'permanent'];
    await this.exec(ns, ['bridge', ...args], `fdbAdd ${entry.ifname} ${entry.mac} ${entry.dst}`);
  }

  async fdbDel(ns: NetnsRef, entry: FdbEntry): Promise<void> {
    const args = ['bridge', 'fdb', 'del', entry.mac, 'dev', entry.ifname, 'dst', entry.dst, 'self'];
    await this.exec(ns, args, `fdbDel ${entry.ifname} ${entry.mac} ${entry.dst}`).catch(ignore('ENOENT', 'ENODEV', 'ESRCH'));
  }

  async fdbList(ns: NetnsRef, ifname: string): Promise<FdbInfo[]> {
    const out = await this.exec(ns, ['bridge', '-json', 'fdb', 'show', 'dev', ifname], `fdbList ${ifname}`);
    return (JSON.parse(out || '[]') as BridgeFdbJson[])
      .filter((e) => e.dst !== undefined && (e.flags ?? []).includes('self'))
      .map((e) => ({ ifname, mac: e.mac, dst: e.dst!, permanent: e.state === 'permanent' }));
  }

  async sysctlSet(ns: NetnsRef, key: string, value: string): Promise<void> {
    await this.exec(ns, ['sysctl', '-q', '-w', `${key}=${value}`], `sysctl ${key}=${value}`);
  }

  async sysctlGet(ns: NetnsRef, key: string): Promise<string> {
    return (await this.exec(ns, ['sysctl', '-n', key], `sysctl ${key}`)).replace(/\n$/, '');
  }

  async settle(): Promise<void> {
    // iproute2 deletes synchronously; only tombstones of an earlier netlink run can be left (by group, not name).
    for (const link of await this.allLinks(null)) {
      if (link.group === TOMBSTONE_GROUP) await this.ip(null, ['link', 'del', 'dev', link.name], 'settle').catch(ignore('ENODEV'));
    }
  }

  /** Every link, tombstones included. */
  private async allLinks(ns: NetnsRef): Promise<LinkInfo[]> {
    return parseLinks(await this.ip(ns, ['-N', '-d', '-json', 'link', 'show'], 'linkList'));
  }

  close(): void {
    this.closed = true;
  }

  /** The path ip(8) should open for a `netns` argument; `null` means our host namespace. */
  private pathArg(ns: NetnsRef): string {
    // A '/' makes iproute2 treat it as a path rather than a name under /run/netns; resolve() guarantees one.
    return resolve(ns ?? this.hostNetns ?? `/proc/${process.pid}/ns/net`);
  }

  private ip(ns: NetnsRef, args: string[], what: string): Promise<string> {
    return this.exec(ns, ['ip', ...args], what);
  }

  /** Run argv inside `ns` (through nsenter unless it is the daemon's own namespace); stdout on success. */
  private exec(ns: NetnsRef, argv: string[], what: string): Promise<string> {
    const target = ns === null ? this.hostNetns : resolve(ns);
    return this.run(target === undefined ? argv : ['nsenter', `--net=${target}`, ...argv], what);
  }

  /** Run argv where the daemon runs; a failure becomes a KernelError carrying the errno it printed. */
  private run(full: string[], what: string): Promise<string> {
    if (this.closed) return Promise.reject(new KernelError(`${what}: kernel handle closed`, 'EBADF'));
    return new Promise((resolvePromise, reject) => {
      const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => reject(new KernelError(`${what}: ${e.message}`, (e as NodeJS.ErrnoException).code, { cause: e })));
      child.on('close', (code, signal) => {
        if (code === 0) return resolvePromise(Buffer.concat(out).toString('utf8'));
        const stderr = Buffer.concat(err).toString('utf8').trim();
        const reason = stderr || (signal ? `killed by ${signal}` : `exit ${code}`);
        reject(new KernelError(`${what}: ${reason} (${full.join(' ')})`, errnoFromStderr(stderr)));
      });
    });
  }
}

interface IpLinkJson {
  ifindex: number;
  ifname: string;
  mtu: number;
  address?: string;
  flags?: string[];
  master?: string;
  group?: string;
  linkinfo?: { info_kind?: string; info_data?: IpLinkInfoData };
}

interface IpLinkInfoData {
  mcast_snooping?: number;
  id?: number;
  local?: string;
  local6?: string;
  port?: number;
  learning?: boolean;
  proxy?: boolean;
  ttl?: number | string;
  udp_csum?: boolean;
}

interface IpNeighJson {
  dst: string;
  lladdr?: string;
  state?: string[];
}

interface BridgeFdbJson {
  mac: string;
  dst?: string;
  flags?: string[];
  state?: string;
}

interface IpAddrJson {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

interface IpRouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
  scope?: string;
}

function parseLinks(out: string): LinkInfo[] {
  return (JSON.parse(out || '[]') as IpLinkJson[]).map((l) => {
    const info: LinkInfo = {
      index: l.ifindex, name: l.ifname, kind: l.linkinfo?.info_kind ?? '', mtu: l.mtu,
      mac: l.address ?? '', up: (l.flags ?? []).includes('UP'), group: Number(l.group ?? 0) >>> 0, // ip -N prints groups of 2^31 and above as negative numbers
    };
    if (l.master !== undefined) info.master = l.master;
    const snooping = l.linkinfo?.info_data?.mcast_snooping;
    if (info.kind === 'bridge' && snooping !== undefined) info.multicastSnooping = snooping !== 0;
    const data = l.linkinfo?.info_data;
    if (info.kind === 'vxlan' && data) info.vxlan = parseVxlan(data);
    return info;
  });
}

function parseVxlan(d: IpLinkInfoData): VxlanInfo {
  const vxlan: VxlanInfo = {
    vni: d.id ?? 0, port: d.port ?? 0, learning: d.learning ?? false, arpProxy: d.proxy ?? false,
    // ip prints a TTL of 0 as "auto" in text and may in JSON too.
    ttl: typeof d.ttl === 'number' ? d.ttl : 0, udpChecksum: d.udp_csum ?? false,
  };
  const local = d.local ?? d.local6;
  if (local !== undefined) vxlan.local = local;
  return vxlan;
}

function parseRoute(r: IpRouteJson, family: 4 | 6): RouteInfo {
  const hostBits = family === 4 ? 32 : 128;
  // ip prints host routes without a prefix length and leaves out what has the default value.
  const route: RouteInfo = {
    dst: r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/${hostBits}`,
    family, metric: r.metric ?? 0, protocol: r.protocol ?? 'boot', scope: r.scope ?? 'universe',
  };
  if (r.gateway !== undefined) route.via = r.gateway;
  if (r.dev !== undefined) route.dev = r.dev;
  return route;
}

/** ip(8) reads "10.77.0" as 10.77.0.0 (inet_aton): check addresses and MACs as the netlink kernel does. */
function checkEntry(ip: string, mac: string, what: string): void {
  if (!parseIp(ip)) throw new KernelError(`${what}: invalid address ${ip}`, 'EINVAL');
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) throw new KernelError(`${what}: invalid MAC address ${mac}`, 'EINVAL');
}

function attrArgs(attrs: { mac?: string; mtu?: number; group?: number }): string[] {
  return [
    ...(attrs.mac === undefined ? [] : ['address', attrs.mac]),
    ...(attrs.mtu === undefined ? [] : ['mtu', String(attrs.mtu)]),
    ...(attrs.group === undefined ? [] : ['group', String(attrs.group)]),
  ];
}

function masterArg(master: string | undefined): string[] {
  return master === undefined ? [] : ['master', master];
}

function upArg(up: boolean | undefined): string[] {
  return up ? ['up'] : [];
}

function routeArgs(route: RouteSpec): string[] {
  const args = [route.dst];
  if (route.via !== undefined) args.push('via', route.via);
  if (route.dev !== undefined) args.push('dev', route.dev);
  if (route.metric !== undefined) args.push('metric', String(route.metric));
  return args;
}

function ignore(...errnos: string[]): (err: unknown) => void {
  return (err) => {
    if (!(err instanceof KernelError && err.errno !== undefined && errnos.includes(err.errno))) throw err;
  };
}

/** strerror(3) texts as printed by "RTNETLINK answers: ...", nsenter, umount and sysctl. */
const strerrorNames: Array<[string, string]> = [
  ['File exists', 'EEXIST'], ['No such device', 'ENODEV'], ['No such file or directory', 'ENOENT'],
  ['Invalid argument', 'EINVAL'], ['Operation not supported', 'EOPNOTSUPP'], ['Device or resource busy', 'EBUSY'],
  ['Network is unreachable', 'ENETUNREACH'], ['No route to host', 'EHOSTUNREACH'], ['Network is down', 'ENETDOWN'],
  ['No such process', 'ESRCH'], ['Numerical result out of range', 'ERANGE'],
  ['Cannot assign requested address', 'EADDRNOTAVAIL'], ['Operation not permitted', 'EPERM'],
  ['Permission denied', 'EACCES'], ['Address family not supported by protocol', 'EAFNOSUPPORT'],
  ['Too many levels of symbolic links', 'ELOOP'], ['Transport endpoint is not connected', 'ENOTCONN'],
  ['Address already in use', 'EADDRINUSE'], ['No buffer space available', 'ENOBUFS'],
  ['Cannot allocate memory', 'ENOMEM'], ['Resource temporarily unavailable', 'EAGAIN'],
  ['Not a directory', 'ENOTDIR'], ['Is a directory', 'EISDIR'],
];

/**
 * When the kernel attaches an extended-ack message, ip prints only that message and drops the errno, and
 * ip's own argument checks print their own words; these map the ones cnm meets back to the kernel's errno.
 */
const messageNames: Array<[RegExp, string]> = [
  [/Cannot find device|Device "[^"]*" does not exist|Device does not exist/, 'ENODEV'],
  [/Unknown device type/, 'EOPNOTSUPP'],
  [/does not allow enslaving|Can not enslave/i, 'EOPNOTSUPP'],
  [/Nexthop has invalid gateway|Gateway is not a unicast/, 'ENETUNREACH'],
  [/Nexthop device is not up|Device for nexthop is not up/, 'ENETDOWN'],
  [/Address not found/i, 'EADDRNOTAVAIL'],
  [/IPv6 is disabled on this device/, 'EACCES'],
  [/already assigned|already exists/i, 'EEXIST'],
  [/Invalid "netns" value/, 'ENOENT'],
  [/Invalid mac address/i, 'EINVAL'],
  [/not mounted/, 'EINVAL'],
  [/^Error: |mtu (less|greater) than device|is immutable|Invalid prefix/m, 'EINVAL'],
];

export function errnoFromStderr(stderr: string): string | undefined {
  for (const [pattern, errno] of messageNames) if (pattern.test(stderr)) return errno;
  for (const [text, errno] of strerrorNames) if (stderr.includes(text)) return errno;
  return undefined;
}
