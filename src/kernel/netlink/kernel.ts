/**
 * KernelOps over in-process rtnetlink (koffi → libc): no process per operation. Each call is a few
 * syscalls on the main thread, so an endpoint attach costs well under a millisecond where iproute2
 * spends a process spawn per step.
 *
 * Namespaces: the host namespace (`null`) keeps one cached socket. Another namespace gets a socket for
 * the duration of one call — created by setns() into it and back (see libc.ts) and closed right after —
 * because a cached socket would keep a deleted sandbox's namespace alive. Namespaces are created by
 * unshare() + bind mount, and /proc/sys is read and written from inside the target the same way.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KernelError } from '../../errors.js';
import {
  adoptNetnsAt, createPinPlaceholder, isNetnsFile, MAX_STACKED_PINS, netnsIdentityAt, removePinPlaceholder,
} from '../netns-file.js';
import {
  type AddressInfo, type FdbEntry, type FdbInfo, type KernelOps, type LinkChange, type LinkDeleteOptions, type LinkInfo, type LinkSpec,
  type NeighEntry, type NeighInfo, type NetnsRef, type RouteInfo, type RouteSpec,
} from '../types.js';
import { fdbAddAt, fdbDelAt, fdbListAt, neighListAt, neighReplaceAt } from './neighbours.js';
import { getTxChecksum, setTxChecksum } from './ethtool.js';
import {
  attr, IFLA, NDA_DST, ndmsg, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REPLACE, RTM, stringAttr, u32Attr,
} from './codec.js';
import { ipToBytes, parseIp } from '../../util/ip.js';
import { type Libc, loadLibc, ThreadNamespace } from './libc.js';
import { type LinkCreateContext, commonAttrs, createLinkBody, echoedPeerIndex, linkHeader, macAttr, withMasterName, checkLinkName } from './links.js';
import { addressBody, addressDumpBody, decodeAddress, decodeRoute, familyCode, routeBody, routeDumpBody } from './routes.js';
import { deleteLinkAt, dumpLinks, findIndex, getAnyLink, getLink, getLinkByIndex, indexOf } from './lookup.js';
import { LinkRetirement } from './retirement.js';
import { BurstNamespaceHandles } from './ns-handles.js';
import { SysctlDirectories } from './sysctl-dirs.js';
import { RtnlSocket } from './socket.js';

export interface NetlinkKernelOptions {
  /** Namespace that `null` means; default: the daemon's own. Tests point it at a throwaway namespace. */
  hostNetns?: string;
  /** Told about background deletions that failed (default: ignored; their links go at the next settle()). */
  onBackgroundError?: (err: unknown) => void;
}

export class NetlinkKernel implements KernelOps {
  private readonly libc: Libc;
  private readonly thread: ThreadNamespace;
  /** Sandbox namespaces' fds and sockets, shared by the steps of one operation. */
  private readonly handles: BurstNamespaceHandles;
  private readonly hostNetns: string | undefined;
  private hostSocket: RtnlSocket | undefined;
  /** Background deletion of veth pairs and bridges (see retirement.ts). */
  private readonly retirement: LinkRetirement;
  private closed = false;
  private readonly sysctlDirs: SysctlDirectories;

  constructor(options: NetlinkKernelOptions = {}) {
    this.libc = loadLibc();
    this.thread = new ThreadNamespace(this.libc);
    this.handles = new BurstNamespaceHandles(this.libc, this.thread);
    this.sysctlDirs = new SysctlDirectories(this.thread);
    this.retirement = new LinkRetirement({
      withSocket: (ns, what, fn) => this.withSocket(ns, what, fn),
      openHostSocket: (what) => this.openSocket(null, what),
      onError: (err) => options.onBackgroundError?.(err),
    });
    this.hostNetns = options.hostNetns === undefined ? undefined : resolve(options.hostNetns);
  }

  async createNetns(path: string): Promise<void> {
    const file = resolve(path);
    const what = `createNetns ${file}`;
    if (await isNetnsFile(file)) throw new KernelError(`${what}: already a namespace`, 'EEXIST');
    this.checkOpen(what);
    this.handles.evict(file);
    await createPinPlaceholder(file);
    try {
      const socket = this.thread.withNewNetns(what, () => {
        this.thread.bindMountCurrent(file, what);
        const s = RtnlSocket.open(this.libc);
        try {
          s.request(RTM.NEWLINK, 0, [linkHeader(1, true)], `${what}: lo up`);
          return s;
        } catch (err) {
          s.close();
          throw err;
        }
      });
      // Ours until deleteNetns: its handle (and this socket) serve the sandbox's connects from now on.
      try {
        this.handles.keep(file, socket);
      } catch (err) {
        socket.close();
        throw err;
      }
    } catch (err) {
      await this.deleteNetns(file);
      throw err;
    }
  }

  async deleteNetns(path: string): Promise<void> {
    const file = resolve(path);
    this.handles.evict(file);
    this.sysctlDirs.forgetPinned(file);
    for (let i = 0; i < MAX_STACKED_PINS && (await isNetnsFile(file)); i++) this.thread.unmount(file, `deleteNetns ${file}`);
    await removePinPlaceholder(file);
  }

  async netnsExists(path: string): Promise<boolean> {
    return isNetnsFile(resolve(path));
  }

  async adoptNetns(source: string, pin: string): Promise<string> {
    this.checkOpen(`adoptNetns ${source}`);
    this.handles.evict(resolve(pin));
    return adoptNetnsAt(this.thread, source, pin, this.hostNetns);
  }

  async netnsIdentity(path: string): Promise<string | undefined> {
    this.checkOpen(`netnsIdentity ${path}`);
    return netnsIdentityAt(this.thread, path);
  }

  async linkAdd(ns: NetnsRef, spec: LinkSpec): Promise<void> {
    const what = `linkAdd ${spec.name}`;
    this.handles.forgetIndex();
    const create = () =>
      this.withSocket(ns, what, (s) => {
        const ctx: LinkCreateContext = {};
        const intoOtherNs = spec.kind === 'macvlan' && spec.netns !== undefined;
        if (spec.master !== undefined && !intoOtherNs) ctx.masterIndex = indexOf(s, spec.master, what);
        if (spec.kind === 'macvlan') ctx.lowerIndex = indexOf(s, spec.parent, what);
        if (spec.kind === 'vxlan' && spec.dev !== undefined) ctx.lowerIndex = indexOf(s, spec.dev, what);
        if (spec.kind === 'veth' && spec.peer.netns !== undefined) ctx.peerNetnsFd = this.namespaceFd(spec.peer.netns);
        if (spec.kind === 'macvlan' && spec.netns !== undefined) ctx.netnsFd = this.namespaceFd(spec.netns);
        // A veth's sandbox end: the kernel echoes the host end's creation, which names the other end's
        // index there, so the address step after it needs no lookup (kernels without the echo: looked up).
        const peer = spec.kind === 'veth' && typeof spec.peer.netns === 'string' ? { netns: spec.peer.netns, name: spec.peer.name } : undefined;
        const replies = s.request(RTM.NEWLINK, NLM_F_CREATE | NLM_F_EXCL | (peer ? NLM_F_ECHO : 0), createLinkBody(spec, ctx, what), what);
        const peerIndex = peer && echoedPeerIndex(replies, spec.name);
        if (peer && peerIndex !== undefined) this.handles.rememberIndex(peer.netns, peer.name, peerIndex);
      });
    try {
      create();
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      if (err.errno === 'EXFULL') {
        // The bridge's 1,024 ports include retired ones the reaper has not destroyed yet (a burst of
        // deletions with no turn of the event loop between them): let it finish, then try once more.
        await this.retirement.reaped();
      } else if (err.errno !== 'EEXIST' || !this.freeRetiredName(ns, spec.name, what)) {
        throw err;
      }
      create();
    }
    if (spec.kind === 'veth') this.retirement.rememberVeth(ns, spec.name, spec.peer.netns === undefined ? ns : spec.peer.netns, spec.peer.name);
    // Second steps, undone with the link if they fail: a veth peer cannot be IFF_UP while its other end is
    // still being registered (ENOTCONN), and a link made in another namespace is enslaved / raised there.
    let second: (() => Promise<void>) | undefined;
    if (spec.kind === 'veth' && spec.peer.up) {
      const peerNs = spec.peer.netns === undefined ? ns : spec.peer.netns;
      second = () => this.linkSet(peerNs, spec.peer.name, { up: true });
    } else if (spec.kind === 'macvlan' && spec.netns !== undefined && (spec.master !== undefined || spec.up)) {
      const home = spec.netns;
      second = () => this.linkSet(home, spec.name, { master: spec.master, up: spec.up });
    } else if (spec.kind === 'vxlan' && spec.txChecksumOffload !== undefined) {
      const on = spec.txChecksumOffload;
      second = async () => this.inNamespace(ns, what, () => setTxChecksum(this.libc, spec.name, on, what));
    }
    if (second) {
      await second().catch(async (err: unknown) => {
        const home = spec.kind === 'macvlan' && spec.netns !== undefined ? spec.netns : ns;
        await this.linkDel(home, spec.name).catch(() => undefined);
        throw err;
      });
    }
  }

  async linkSet(ns: NetnsRef, name: string, change: LinkChange): Promise<void> {
    const what = `linkSet ${name}`;
    if (change.name !== undefined || change.netns !== undefined) {
      this.retirement.forget(ns, name);
      this.handles.forgetIndex();
    }
    let current = name;
    let where = ns;
    if (change.netns !== undefined) {
      const target = change.netns;
      // Check the master first so a refused change does not leave the link moved.
      if (typeof change.master === 'string') {
        const master = change.master;
        this.withSocket(target, what, (s) => indexOf(s, master, what));
      }
      const fd = this.namespaceFd(target);
      this.withSocket(ns, what, (s) => {
        const body = [linkHeader(indexOf(s, name, what), undefined), u32Attr(IFLA.NET_NS_FD, fd)];
        if (change.name !== undefined) body.push(...commonAttrs({ name: change.name }, what));
        s.request(RTM.NEWLINK, 0, body, what);
      });
      current = change.name ?? name;
      where = target;
    }
    const renaming = change.name !== undefined && change.netns === undefined;
    const anything = change.mac !== undefined || change.group !== undefined || change.mtu !== undefined || renaming || change.master !== undefined || change.up !== undefined;
    if (!anything) return;
    this.withSocket(where, what, (s) => {
      // One message: the kernel applies address, mtu, name, master, then flags (so rename-then-up works).
      // Unless renaming, the kernel finds the link by its name itself (no RTM_GETLINK round trip first),
      // but for a name a retired link may still hold.
      const byName = !renaming && !this.retirement.mayHoldName(where, current);
      if (byName) checkLinkName(current, what);
      const body = byName ? [linkHeader(0, change.up), stringAttr(IFLA.IFNAME, current)] : [linkHeader(indexOf(s, current, what), change.up)];
      if (change.mac !== undefined) body.push(macAttr(change.mac, what));
      if (change.group !== undefined) body.push(u32Attr(IFLA.GROUP, change.group));
      if (change.mtu !== undefined) body.push(u32Attr(IFLA.MTU, change.mtu));
      if (renaming) {
        checkLinkName(change.name!, what);
        body.push(stringAttr(IFLA.IFNAME, change.name!));
      }
      if (change.master !== undefined) {
        body.push(u32Attr(IFLA.MASTER, change.master === null ? 0 : indexOf(s, change.master, what)));
      }
      try {
        s.request(RTM.NEWLINK, 0, body, what);
      } catch (err) {
        // Worded as a lookup's miss is.
        if (byName && err instanceof KernelError && err.errno === 'ENODEV') throw new KernelError(`${what}: ${current}: No such device`, 'ENODEV');
        throw err;
      }
    });
  }

  async linkDel(ns: NetnsRef, name: string, options: LinkDeleteOptions = {}): Promise<void> {
    const what = `linkDel ${name}`;
    this.handles.forgetIndex();
    const retired = this.withSocket(ns, what, (s) => {
      const link = getLink(s, name, what);
      if (!link) return false;
      // Destroying a veth pair or a bridge waits ~20–35 ms in the kernel for RCU grace periods: take it out
      // of service now and let the reaper wait in the background.
      if (options.background && ns === null && this.retirement.retire(s, link, what)) return true;
      this.retirement.forget(ns, name);
      deleteLinkAt(s, link.index, what);
      return false;
    });
    if (retired && options.untilDestroyed) await this.retirement.reaped();
  }

  async linkGet(ns: NetnsRef, name: string): Promise<LinkInfo | undefined> {
    const what = `linkGet ${name}`;
    const link = this.withSocket(ns, what, (s) => {
      const raw = getLink(s, name, what);
      if (!raw) return undefined;
      return withMasterName(raw, (index) => getLinkByIndex(s, index, what)?.name);
    });
    if (link?.vxlan) link.vxlan.txChecksumOffload = this.inNamespace(ns, what, () => getTxChecksum(this.libc, name, what));
    return link;
  }

  async linkList(ns: NetnsRef): Promise<LinkInfo[]> {
    return this.withSocket(ns, 'linkList', (s) => {
      const raws = dumpLinks(s, 'linkList');
      const names = new Map(raws.map((l) => [l.index, l.name]));
      return raws.filter((raw) => !raw.retired).map((raw) => withMasterName(raw, (index) => names.get(index)));
    });
  }

  async addrAdd(ns: NetnsRef, ifname: string, cidr: string): Promise<void> {
    const what = `addrAdd ${ifname} ${cidr}`;
    this.withSocket(ns, what, (s) => {
      // Replace, not add: re-adding an existing address must succeed.
      const index = (ns === null ? undefined : this.handles.knownIndex(ns, ifname)) ?? indexOf(s, ifname, what);
      s.request(RTM.NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, addressBody(index, cidr, what), what);
    });
  }

  async addrDel(ns: NetnsRef, ifname: string, cidr: string): Promise<void> {
    const what = `addrDel ${ifname} ${cidr}`;
    this.withSocket(ns, what, (s) => {
      const index = findIndex(s, ifname, what);
      if (index === undefined) return;
      try {
        s.request(RTM.DELADDR, 0, addressBody(index, cidr, what), what);
      } catch (err) {
        if (!(err instanceof KernelError && ['EADDRNOTAVAIL', 'ENODEV'].includes(err.errno ?? ''))) throw err;
      }
    });
  }

  async addrList(ns: NetnsRef, ifname?: string): Promise<AddressInfo[]> {
    const what = `addrList ${ifname ?? ''}`;
    return this.withSocket(ns, what, (s) => {
      const names = new Map<number, string>();
      if (ifname === undefined) for (const l of dumpLinks(s, what)) names.set(l.index, l.name);
      else names.set(indexOf(s, ifname, what), ifname);
      const found = s
        .dump(RTM.GETADDR, addressDumpBody(), what)
        .map((m) => decodeAddress(m, (index) => names.get(index)))
        .filter((a) => a !== undefined);
      // As `ip addr show` prints them: by link, IPv4 before IPv6, kernel order within each.
      const order = [...names.keys()].sort((a, b) => a - b);
      found.sort((a, b) => order.indexOf(a.index) - order.indexOf(b.index) || a.family - b.family);
      return found.map(({ ifname: name, cidr, family }) => ({ ifname: name, cidr, family }));
    });
  }

  async routeReplace(ns: NetnsRef, route: RouteSpec): Promise<void> {
    const what = `routeReplace ${route.dst}`;
    this.withSocket(ns, what, (s) => {
      const oif = route.dev === undefined ? undefined : indexOf(s, route.dev, what);
      s.request(RTM.NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, routeBody(route, oif, false, what), what);
    });
  }

  async routeDel(ns: NetnsRef, route: RouteSpec): Promise<void> {
    const what = `routeDel ${route.dst}`;
    this.withSocket(ns, what, (s) => {
      const oif = route.dev === undefined ? undefined : findIndex(s, route.dev, what);
      if (route.dev !== undefined && oif === undefined) return;
      try {
        s.request(RTM.DELROUTE, 0, routeBody(route, oif, true, what), what);
      } catch (err) {
        if (!(err instanceof KernelError && ['ESRCH', 'ENOENT', 'ENODEV'].includes(err.errno ?? ''))) throw err;
      }
    });
  }

  async routeList(ns: NetnsRef, family: 4 | 6): Promise<RouteInfo[]> {
    return this.withSocket(ns, 'routeList', (s) => {
      const names = new Map(dumpLinks(s, 'routeList').map((l) => [l.index, l.name]));
      return s
        .dump(RTM.GETROUTE, routeDumpBody(family), 'routeList')
        .map((m) => decodeRoute(m, family, (index) => names.get(index)))
        .filter((r) => r !== undefined);
    });
  }

  async neighDel(ns: NetnsRef, ifname: string, ip: string): Promise<void> {
    const what = `neighDel ${ifname} ${ip}`;
    const address = parseIp(ip);
    if (!address) throw new KernelError(`${what}: invalid address`, 'EINVAL');
    this.withSocket(ns, what, (s) => {
      const index = findIndex(s, ifname, what);
      if (index === undefined) return;
      try {
        s.request(RTM.DELNEIGH, 0, [ndmsg(familyCode(address.family), index), attr(NDA_DST, ipToBytes(address))], what);
      } catch (err) {
        if (!(err instanceof KernelError && ['ENOENT', 'ENODEV', 'ESRCH'].includes(err.errno ?? ''))) throw err;
      }
    });
  }

  async neighReplace(ns: NetnsRef, entry: NeighEntry): Promise<void> {
    const what = `neighReplace ${entry.ifname} ${entry.ip}`;
    this.withSocket(ns, what, (s) => neighReplaceAt(s, entry, what));
  }

  async neighList(ns: NetnsRef, ifname: string): Promise<NeighInfo[]> {
    const what = `neighList ${ifname}`;
    return this.withSocket(ns, what, (s) => neighListAt(s, ifname, what));
  }

  async fdbAdd(ns: NetnsRef, entry: FdbEntry): Promise<void> {
    const what = `fdbAdd ${entry.ifname} ${entry.mac} ${entry.dst}`;
    this.withSocket(ns, what, (s) => fdbAddAt(s, entry, what));
  }

  async fdbDel(ns: NetnsRef, entry: FdbEntry): Promise<void> {
    const what = `fdbDel ${entry.ifname} ${entry.mac} ${entry.dst}`;
    this.withSocket(ns, what, (s) => fdbDelAt(s, entry, what));
  }

  async fdbList(ns: NetnsRef, ifname: string): Promise<FdbInfo[]> {
    const what = `fdbList ${ifname}`;
    return this.withSocket(ns, what, (s) => fdbListAt(s, ifname, what));
  }

  async sysctlSet(ns: NetnsRef, key: string, value: string): Promise<void> {
    this.withSysctlFile(ns, key, `sysctl ${key}=${value}`, (file) => writeFileSync(file, value));
  }

  async sysctlGet(ns: NetnsRef, key: string): Promise<string> {
    return this.withSysctlFile(ns, key, `sysctl ${key}`, (file) => readFileSync(file, 'utf8').replace(/\n$/, ''));
  }

  /**
   * Run `fn` on the sysctl's file inside `ns`, reached below a directory kept open (see sysctl-dirs.ts).
   * ENOENT may come from the directory of a namespace that has died since: forget it and try once more.
   */
  private withSysctlFile<T>(ns: NetnsRef, key: string, what: string, fn: (file: string) => T): T {
    // Resolved before the visit: opening a directory visits the namespace itself, and visits do not nest.
    const attempt = () => {
      const file = this.sysctlDirs.file(this.namespaceFd(ns), key, what);
      return this.inNamespace(ns, what, () => fn(file));
    };
    try {
      return attempt();
    } catch (err) {
      if (!(err instanceof KernelError && err.errno === 'ENOENT')) throw err;
      this.sysctlDirs.forget(this.namespaceFd(ns));
      return attempt();
    }
  }

  async settle(): Promise<void> {
    await this.retirement.reaped();
    // Retired links of a run that ended before its reaper finished: remove them now, synchronously.
    this.withSocket(null, 'settle', (s) => this.retirement.settle(s));
  }

  /** Pending background deletions are abandoned (their tombstones go at the next settle()). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handles.close();
    this.sysctlDirs.close();
    this.hostSocket?.close();
    this.retirement.close();
    this.thread.close();
  }

  /**
   * `name` is held by a retired link the reaper has not destroyed yet (a veth end keeps its name, see
   * retirement.ts): destroy it now so the name can be used (true also when the reaper got there first).
   * False when the holder is a live link.
   */
  private freeRetiredName(ns: NetnsRef, name: string, what: string): boolean {
    return this.withSocket(ns, what, (s) => {
      const holder = getAnyLink(s, name, what);
      // Gone already: the reaper destroyed it between the EEXIST and this lookup.
      if (holder === undefined) return true;
      if (!holder.retired) return false;
      deleteLinkAt(s, holder.index, what);
      this.retirement.released(name);
      return true;
    });
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new KernelError(`${what}: kernel handle closed`, 'EBADF');
  }

  /** Run `fn` with a socket in `ns`: the cached host socket, or a socket for this call only. */
  private withSocket<T>(ns: NetnsRef, what: string, fn: (s: RtnlSocket) => T): T {
    this.checkOpen(what);
    if (ns === null) {
      this.hostSocket ??= this.openSocket(null, what);
      return fn(this.hostSocket);
    }
    return this.handles.withSocket(ns, what, fn);
  }

  private openSocket(ns: NetnsRef, what: string): RtnlSocket {
    const socket = ns === null && this.hostNetns === undefined ? RtnlSocket.open(this.libc) : this.inNamespace(ns, what, () => RtnlSocket.open(this.libc));
    // Links are retired (and keep their names until destroyed) only in the daemon's own namespace.
    if (ns === null) socket.mayHoldRetired = (name) => this.retirement.mayHoldName(null, name);
    return socket;
  }

  /** Run a synchronous `fn` on a thread inside `ns`; /proc/sys and new sockets then belong to it. */
  private inNamespace<T>(ns: NetnsRef, what: string, fn: () => T): T {
    this.checkOpen(what);
    if (ns === null && this.hostNetns === undefined) return translateFsError(what, fn);
    return this.thread.withNetns(this.namespaceFd(ns), what, () => translateFsError(what, fn));
  }

  /** An fd for `ns` (null: the host namespace), valid until the event loop turns; never closed by the caller. */
  private namespaceFd(ns: NetnsRef): number {
    const path = ns ?? this.hostNetns;
    return path === undefined ? this.thread.homeFd : this.handles.fd(path);
  }
}

function translateFsError<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof KernelError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new KernelError(`${what}: ${(err as Error).message}`, code, { cause: err });
  }
}
