/**
 * Background deletion of links. Destroying a veth pair or a bridge waits in the kernel for RCU grace
 * periods (~20–35 ms), so a deletion the caller allows to finish later is split in two: the link is
 * taken out of service at once, on the request path, and destroyed by a reaper on a libuv thread.
 *
 * Out of service means: nothing passes and the names are free for reuse.
 * - A veth pair: the sandbox end goes down (so nothing passes; the host end loses carrier) and takes a
 *   tombstone name (its name, eth1 say, is free at once) and the tombstone group (which hides it). The host end only joins the tombstone group:
 *   taking it down or renaming it would make the bridge recompute its port states synchronously (a walk
 *   over every port); it is hidden from lookups instead (see RawLink.retired), and linkAdd frees its
 *   name on demand.
 * - A bridge without ports: its addresses go, then down, renamed and grouped.
 * The reaper deletes the whole tombstone group in one request (one grace period for all of them) and
 * runs again if more were retired meanwhile, so it keeps pace with any rate of deletions.
 */
import { KernelError } from '../../errors.js';
import { resolve } from 'node:path';
import { TOMBSTONE_GROUP, TOMBSTONE_PREFIX, type NetnsRef } from '../types.js';
import { IFLA, RTM, stringAttr, u32Attr } from './codec.js';
import { decodeLink, linkHeader, type RawLink } from './links.js';
import { deleteLinkAt, dumpLinks, getLink } from './lookup.js';
import { addressBody, addressDumpBody, decodeAddress } from './routes.js';
import type { RtnlSocket } from './socket.js';
import { randomHex } from '../../util/ids.js';

export interface RetirementDeps {
  /** Run `fn` with a socket inside `ns` (synchronously). */
  withSocket<T>(ns: NetnsRef, what: string, fn: (s: RtnlSocket) => T): T;
  /** A new socket in the host namespace, for the reaper (used from the libuv pool only). */
  openHostSocket(what: string): RtnlSocket;
  /** Told about a background deletion that failed (its links are left for the next settle()). */
  onError(err: unknown): void;
}

export class LinkRetirement {
  private reaperSocket: RtnlSocket | undefined;
  /** The group deletion in flight (one at a time; it waits in the kernel, not on the event loop). */
  private reaping: Promise<void> = Promise.resolve();
  /** Links retired since the deletion in flight started: they need another round. */
  private reapPending = false;
  /**
   * Where the other end of each veth made through this kernel lives (key: namespace + name), so a deletion
   * can retire both ends. Lost on restart: such pairs are then simply deleted synchronously.
   */
  private readonly vethPeers = new Map<string, { ns: NetnsRef; name: string }>();
  /** Host ends retired and not yet destroyed (they keep their names, see above), by retirement number. */
  private readonly retiredNames = new Map<string, number>();
  private retirements = 0;
  private closed = false;

  constructor(private readonly deps: RetirementDeps) {}

  rememberVeth(ns: NetnsRef, name: string, peerNs: NetnsRef, peerName: string): void {
    this.vethPeers.set(endKey(ns, name), { ns: peerNs, name: peerName });
    this.vethPeers.set(endKey(peerNs, peerName), { ns, name });
  }

  forget(ns: NetnsRef, name: string): void {
    const key = endKey(ns, name);
    const peer = this.vethPeers.get(key);
    this.vethPeers.delete(key);
    if (peer) this.vethPeers.delete(endKey(peer.ns, peer.name));
  }

  /** Take `link` (of the host namespace) out of service and queue its destruction; false: delete it now. */
  retire(s: RtnlSocket, link: RawLink, what: string): boolean {
    if (link.kind === 'veth') return this.retireVeth(s, link, what);
    if (link.kind === 'bridge') return this.retireBridge(s, link, what);
    return false;
  }

  /**
   * Whether a link this kernel retired may still hold `name` in the daemon's namespace (a retired host
   * end keeps its name until destroyed): a lookup by name must then skip it.
   */
  mayHoldName(ns: NetnsRef, name: string): boolean {
    return ns === null && this.retiredNames.has(name);
  }

  /** `name` is free again (its retired holder deleted on demand). */
  released(name: string): void {
    this.retiredNames.delete(name);
  }

  /** Resolves when every deletion queued so far has run. */
  reaped(): Promise<void> {
    return this.reaping;
  }

  /** Synchronously delete what a previous run (or an abandoned reaper) left: the tombstone group's links. */
  settle(s: RtnlSocket): void {
    for (const link of dumpLinks(s, 'settle')) {
      if (link.retired) deleteLinkAt(s, link.index, `settle: delete ${link.name}`);
    }
    this.retiredNames.clear();
  }

  /** Pending deletions are abandoned (settle() takes their links later). */
  close(): void {
    this.closed = true;
    this.reaperSocket?.close();
  }

  private retireVeth(s: RtnlSocket, link: RawLink, what: string): boolean {
    const peer = this.vethPeers.get(endKey(null, link.name));
    if (!peer || peer.ns === null) return false;
    try {
      const retiredPeer = this.deps.withSocket(peer.ns, what, (ps) => {
        const other = getLink(ps, peer.name, what);
        // Only the end that points back at this very link (a name can have been reused since).
        if (!other || other.kind !== 'veth' || other.peerIndex !== link.index) return false;
        ps.request(RTM.NEWLINK, 0, [linkHeader(other.index, false)], what);
        const rename = [linkHeader(other.index, undefined), stringAttr(IFLA.IFNAME, tombstoneName()), u32Attr(IFLA.GROUP, TOMBSTONE_GROUP)];
        ps.request(RTM.NEWLINK, 0, rename, what);
        return true;
      });
      if (!retiredPeer) return false;
      s.request(RTM.NEWLINK, 0, [linkHeader(link.index, undefined), u32Attr(IFLA.GROUP, TOMBSTONE_GROUP)], what);
      this.retiredNames.set(link.name, ++this.retirements);
      this.forget(null, link.name);
      this.reap();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Only a bridge without ports (retired ones aside): one with ports is deleted at once, which releases
   * them as callers expect. Its addresses go first and synchronously, so a network created right after
   * with the same subnet and gateway meets no trace of it.
   */
  private retireBridge(s: RtnlSocket, link: RawLink, what: string): boolean {
    try {
      const ports = s.dump(RTM.GETLINK, [linkHeader(0, undefined), u32Attr(IFLA.MASTER, link.index)], what).map(decodeLink);
      if (ports.some((p) => p.masterIndex === link.index && !p.retired)) return false;
      const names = new Map([[link.index, link.name]]);
      for (const addr of s.dump(RTM.GETADDR, addressDumpBody(), what).map((m) => decodeAddress(m, (i) => names.get(i)))) {
        if (addr) s.request(RTM.DELADDR, 0, addressBody(link.index, addr.cidr, what), what);
      }
      // A running link cannot be renamed (EBUSY): down first.
      s.request(RTM.NEWLINK, 0, [linkHeader(link.index, false)], what);
      const rename = [linkHeader(link.index, undefined), stringAttr(IFLA.IFNAME, tombstoneName()), u32Attr(IFLA.GROUP, TOMBSTONE_GROUP)];
      s.request(RTM.NEWLINK, 0, rename, what);
      this.reap();
      return true;
    } catch {
      return false;
    }
  }

  private reap(): void {
    if (this.reapPending) return;
    this.reapPending = true;
    // After the current turn of the event loop: the group deletion holds the kernel's rtnl lock through RCU
    // grace periods, and the caller's next steps (a leave deletes the address's neighbour entry) would
    // otherwise queue behind it on the request path.
    this.reaping = this.reaping.then(() => new Promise<void>((done) => setImmediate(done))).then(async () => {
      this.reapPending = false;
      if (this.closed) return;
      const what = 'reap retired links';
      // Every link retired so far goes with this group deletion; later ones wait for the next round.
      const upTo = this.retirements;
      // Nothing here may reject: the chain is nobody's to await but settle()'s, and a rejection would be
      // unhandled (ending the process). A failure is reported; its links wait for the next settle().
      try {
        this.reaperSocket ??= this.deps.openHostSocket(what);
        await this.reaperSocket.requestAsync(RTM.DELLINK, 0, [linkHeader(0, undefined), u32Attr(IFLA.GROUP, TOMBSTONE_GROUP)], what);
      } catch (err) {
        // ENODEV: none left (their namespaces took them). Otherwise they stay held (and are looked up by
        // index) until the next settle().
        if (!(err instanceof KernelError && err.errno === 'ENODEV')) {
          if (!this.closed) this.deps.onError(err);
          return;
        }
      }
      for (const [name, number] of this.retiredNames) if (number <= upTo) this.retiredNames.delete(name);
    });
  }
}

function endKey(ns: NetnsRef, name: string): string {
  return `${ns === null ? '' : resolve(ns)}\0${name}`;
}

/** cnmz + 11 random hex digits: 15 characters, the longest name the kernel takes. */
function tombstoneName(): string {
  return `${TOMBSTONE_PREFIX}${randomHex(6).slice(0, 11)}`;
}
