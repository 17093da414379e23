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
import { createPinPlaceholder, isNetnsFile, MAX_STACKED_PINS, removePinPlaceholder } from '../netns-file.js';
import type {
  AddressInfo, KernelOps, LinkChange, LinkInfo, LinkSpec, NetnsRef, RouteInfo, RouteSpec,
} from '../types.js';
import {
  IFLA, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM, stringAttr, u32Attr,
} from './codec.js';
import { closeQuietly, type Libc, loadLibc, openNamespaceFile, ThreadNamespace } from './libc.js';
import { type LinkCreateContext, commonAttrs, createLinkBody, decodeLink, linkHeader, macAttr, type RawLink, withMasterName, checkLinkName } from './links.js';
import { addressBody, addressDumpBody, decodeAddress, decodeRoute, routeBody, routeDumpBody } from './routes.js';
import { RtnlSocket } from './socket.js';

export interface NetlinkKernelOptions {
  /** Namespace that `null` means; default: the daemon's own. Tests point it at a throwaway namespace. */
  hostNetns?: string;
}

export class NetlinkKernel implements KernelOps {
  private readonly libc: Libc;
  private readonly thread: ThreadNamespace;
  private readonly hostNetns: string | undefined;
  private hostSocket: RtnlSocket | undefined;
  private closed = false;

  constructor(options: NetlinkKernelOptions = {}) {
    this.libc = loadLibc();
    this.thread = new ThreadNamespace(this.libc);
    this.hostNetns = options.hostNetns === undefined ? undefined : resolve(options.hostNetns);
  }

  async createNetns(path: string): Promise<void> {
    const file = resolve(path);
    const what = `createNetns ${file}`;
    if (await isNetnsFile(file)) throw new KernelError(`${what}: already a namespace`, 'EEXIST');
    this.checkOpen(what);
    await createPinPlaceholder(file);
    try {
      this.thread.runInNew(what, () => {
        this.thread.bindMountCurrent(file, what);
        const socket = RtnlSocket.open(this.libc);
        try {
          socket.request(RTM.NEWLINK, 0, [linkHeader(1, true)], `${what}: lo up`);
        } finally {
          socket.close();
        }
      });
    } catch (err) {
      await this.deleteNetns(file);
      throw err;
    }
  }

  async deleteNetns(path: string): Promise<void> {
    const file = resolve(path);
    for (let i = 0; i < MAX_STACKED_PINS && (await isNetnsFile(file)); i++) this.thread.unmount(file, `deleteNetns ${file}`);
    await removePinPlaceholder(file);
  }

  async netnsExists(path: string): Promise<boolean> {
    return isNetnsFile(resolve(path));
  }

  async linkAdd(ns: NetnsRef, spec: LinkSpec): Promise<void> {
    const what = `linkAdd ${spec.name}`;
    const fds: number[] = [];
    const openFd = (ref: NetnsRef): number => {
      const { fd, owned } = this.namespaceFd(ref);
      if (owned) fds.push(fd);
      return fd;
    };
    try {
      this.withSocket(ns, what, (s) => {
        const ctx: LinkCreateContext = {};
        const intoOtherNs = spec.kind === 'macvlan' && spec.netns !== undefined;
        if (spec.master !== undefined && !intoOtherNs) ctx.masterIndex = this.indexOf(s, spec.master, what);
        if (spec.kind === 'macvlan') ctx.lowerIndex = this.indexOf(s, spec.parent, what);
        if (spec.kind === 'vxlan' && spec.dev !== undefined) ctx.lowerIndex = this.indexOf(s, spec.dev, what);
        if (spec.kind === 'veth' && spec.peer.netns !== undefined) ctx.peerNetnsFd = openFd(spec.peer.netns);
        if (spec.kind === 'macvlan' && spec.netns !== undefined) ctx.netnsFd = openFd(spec.netns);
        s.request(RTM.NEWLINK, NLM_F_CREATE | NLM_F_EXCL, createLinkBody(spec, ctx, what), what);
      });
    } finally {
      fds.forEach(closeQuietly);
    }
    // Second steps, undone with the link if they fail: a veth peer cannot be IFF_UP while its other end is
    // still being registered (ENOTCONN), and a link made in another namespace is enslaved / raised there.
    let second: (() => Promise<void>) | undefined;
    if (spec.kind === 'veth' && spec.peer.up) {
      const peerNs = spec.peer.netns === undefined ? ns : spec.peer.netns;
      second = () => this.linkSet(peerNs, spec.peer.name, { up: true });
    } else if (spec.kind === 'macvlan' && spec.netns !== undefined && (spec.master !== undefined || spec.up)) {
      const home = spec.netns;
      second = () => this.linkSet(home, spec.name, { master: spec.master, up: spec.up });
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
    let current = name;
    let where = ns;
    if (change.netns !== undefined) {
      const target = change.netns;
      // Check the master first so a refused change does not leave the link moved.
      if (typeof change.master === 'string') {
        const master = change.master;
        this.withSocket(target, what, (s) => this.indexOf(s, master, what));
      }
      const { fd, owned } = this.namespaceFd(target);
      try {
        this.withSocket(ns, what, (s) => {
          const body = [linkHeader(this.indexOf(s, name, what), undefined), u32Attr(IFLA.NET_NS_FD, fd)];
          if (change.name !== undefined) body.push(...commonAttrs({ name: change.name }, what));
          s.request(RTM.NEWLINK, 0, body, what);
        });
      } finally {
        if (owned) closeQuietly(fd);
      }
      current = change.name ?? name;
      where = target;
    }
    const renaming = change.name !== undefined && change.netns === undefined;
    const anything = change.mac !== undefined || change.mtu !== undefined || renaming || change.master !== undefined || change.up !== undefined;
    if (!anything) return;
    this.withSocket(where, what, (s) => {
      // One message: the kernel applies address, mtu, name, master, then flags (so rename-then-up works).
      const body = [linkHeader(this.indexOf(s, current, what), change.up)];
      if (change.mac !== undefined) body.push(macAttr(change.mac, what));
      if (change.mtu !== undefined) body.push(u32Attr(IFLA.MTU, change.mtu));
      if (renaming) {
        checkLinkName(change.name!, what);
        body.push(stringAttr(IFLA.IFNAME, change.name!));
      }
      if (change.master !== undefined) {
        body.push(u32Attr(IFLA.MASTER, change.master === null ? 0 : this.indexOf(s, change.master, what)));
      }
      s.request(RTM.NEWLINK, 0, body, what);
    });
  }

  async linkDel(ns: NetnsRef, name: string): Promise<void> {
    const what = `linkDel ${name}`;
    this.withSocket(ns, what, (s) => {
      const index = this.findIndex(s, name, what);
      if (index === undefined) return;
      try {
        s.request(RTM.DELLINK, 0, [linkHeader(index, undefined)], what);
      } catch (err) {
        // Gone meanwhile (a peer deleted with its other end): deletes are idempotent.
        if (!(err instanceof KernelError && err.errno === 'ENODEV')) throw err;
      }
    });
  }

  async linkGet(ns: NetnsRef, name: string): Promise<LinkInfo | undefined> {
    const what = `linkGet ${name}`;
    return this.withSocket(ns, what, (s) => {
      const raw = this.getLink(s, name, what);
      if (!raw) return undefined;
      return withMasterName(raw, (index) => this.getLinkByIndex(s, index, what)?.name);
    });
  }

  async linkList(ns: NetnsRef): Promise<LinkInfo[]> {
    return this.withSocket(ns, 'linkList', (s) => {
      const raws = this.dumpLinks(s, 'linkList');
      const names = new Map(raws.map((l) => [l.index, l.name]));
      return raws.map((raw) => withMasterName(raw, (index) => names.get(index)));
    });
  }

  async addrAdd(ns: NetnsRef, ifname: string, cidr: string): Promise<void> {
    const what = `addrAdd ${ifname} ${cidr}`;
    this.withSocket(ns, what, (s) => {
      // Replace, not add: re-adding an existing address must succeed.
      s.request(RTM.NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, addressBody(this.indexOf(s, ifname, what), cidr, what), what);
    });
  }

  async addrDel(ns: NetnsRef, ifname: string, cidr: string): Promise<void> {
    const what = `addrDel ${ifname} ${cidr}`;
    this.withSocket(ns, what, (s) => {
      const index = this.findIndex(s, ifname, what);
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
      if (ifname === undefined) for (const l of this.dumpLinks(s, what)) names.set(l.index, l.name);
      else names.set(this.indexOf(s, ifname, what), ifname);
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
      const oif = route.dev === undefined ? undefined : this.indexOf(s, route.dev, what);
      s.request(RTM.NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, routeBody(route, oif, false, what), what);
    });
  }

  async routeDel(ns: NetnsRef, route: RouteSpec): Promise<void> {
    const what = `routeDel ${route.dst}`;
    this.withSocket(ns, what, (s) => {
      const oif = route.dev === undefined ? undefined : this.findIndex(s, route.dev, what);
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
      const names = new Map(this.dumpLinks(s, 'routeList').map((l) => [l.index, l.name]));
      return s
        .dump(RTM.GETROUTE, routeDumpBody(family), 'routeList')
        .map((m) => decodeRoute(m, family, (index) => names.get(index)))
        .filter((r) => r !== undefined);
    });
  }

  async sysctlSet(ns: NetnsRef, key: string, value: string): Promise<void> {
    this.inNamespace(ns, `sysctl ${key}=${value}`, () => writeFileSync(sysctlPath(key), value));
  }

  async sysctlGet(ns: NetnsRef, key: string): Promise<string> {
    return this.inNamespace(ns, `sysctl ${key}`, () => readFileSync(sysctlPath(key), 'utf8').replace(/\n$/, ''));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hostSocket?.close();
    this.thread.close();
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
    const socket = this.openSocket(ns, what);
    try {
      return fn(socket);
    } finally {
      socket.close();
    }
  }

  private openSocket(ns: NetnsRef, what: string): RtnlSocket {
    if (ns === null && this.hostNetns === undefined) return RtnlSocket.open(this.libc);
    return this.inNamespace(ns, what, () => RtnlSocket.open(this.libc));
  }

  /** Run a synchronous `fn` on a thread inside `ns`; /proc/sys and new sockets then belong to it. */
  private inNamespace<T>(ns: NetnsRef, what: string, fn: () => T): T {
    this.checkOpen(what);
    if (ns === null && this.hostNetns === undefined) return translateFsError(what, fn);
    const { fd, owned } = this.namespaceFd(ns);
    try {
      return this.thread.run(fd, what, () => translateFsError(what, fn));
    } finally {
      if (owned) closeQuietly(fd);
    }
  }

  /** An fd for `ns` (the caller closes it when `owned`); null is the host namespace. */
  private namespaceFd(ns: NetnsRef): { fd: number; owned: boolean } {
    const path = ns ?? this.hostNetns;
    if (path === undefined) return { fd: this.thread.homeFd, owned: false };
    return { fd: openNamespaceFile(resolve(path)), owned: true };
  }

  private getLink(s: RtnlSocket, name: string, what: string): RawLink | undefined {
    checkLinkName(name, what);
    try {
      const [reply] = s.request(RTM.GETLINK, 0, [linkHeader(0, undefined), stringAttr(IFLA.IFNAME, name)], what);
      return reply && decodeLink(reply);
    } catch (err) {
      if (err instanceof KernelError && err.errno === 'ENODEV') return undefined;
      throw err;
    }
  }

  private getLinkByIndex(s: RtnlSocket, index: number, what: string): RawLink | undefined {
    try {
      const [reply] = s.request(RTM.GETLINK, 0, [linkHeader(index, undefined)], what);
      return reply && decodeLink(reply);
    } catch (err) {
      if (err instanceof KernelError && err.errno === 'ENODEV') return undefined;
      throw err;
    }
  }

  private dumpLinks(s: RtnlSocket, what: string): RawLink[] {
    return s.dump(RTM.GETLINK, [linkHeader(0, undefined)], what).filter((m) => m.type === RTM.NEWLINK).map(decodeLink);
  }

  private findIndex(s: RtnlSocket, name: string, what: string): number | undefined {
    return this.getLink(s, name, what)?.index;
  }

  private indexOf(s: RtnlSocket, name: string, what: string): number {
    const index = this.findIndex(s, name, what);
    if (index === undefined) throw new KernelError(`${what}: ${name}: No such device`, 'ENODEV');
    return index;
  }
}

/** "net.ipv4.ip_forward" → /proc/sys/net/ipv4/ip_forward. */
function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
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
