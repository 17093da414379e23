/**
 * Peer reconciliation of an overlay network's VXLAN device, pure: from the remote endpoints that should
 * be reachable (MAC, addresses, the underlay address of their host) and what the kernel lists now (the
 * device's FDB and neighbour tables), the fewest operations that make the tables exactly right.
 *
 * Stale entries after a reboot or a lost host are the most-reported overlay bug (flannel 533, moby
 * 35807): this is the one function that decides what to program, used alike on start, on every change
 * and periodically, so "apply a delta" and "repair" can never disagree.
 *
 * Only permanent entries are cnm's: entries the kernel learned or resolved itself are left alone. A peer
 * is an FDB entry `mac → vtep` plus a neighbour entry `ip → mac` per address (moby's peerAdd); with
 * `flood`, every remote VTEP is also on the all-zeros MAC's list (broadcast and unknown unicast).
 */
import { canonicalIp } from '../../util/ip.js';
import { FLOOD_MAC, type FdbEntry, type FdbInfo, type NeighEntry, type NeighInfo } from '../../kernel/types.js';
import type { RemotePeer } from '../types.js';

export type { RemotePeer } from '../types.js';

export interface PeerDesired {
  /** The VXLAN device the entries go on. */
  ifname: string;
  peers: RemotePeer[];
  /** This host's own underlay address: records that name it are local endpoints, never programmed. */
  localVtep?: string;
  /** Keep every remote VTEP on the flood list (all-zeros MAC). Default false (no broadcast, as swarm). */
  flood?: boolean;
}

export interface PeerTables {
  fdb: FdbInfo[];
  neighbours: NeighInfo[];
}

export type PeerOp =
  | { op: 'neighDel'; ifname: string; ip: string }
  | { op: 'fdbDel'; entry: FdbEntry }
  | { op: 'fdbAdd'; entry: FdbEntry }
  | { op: 'neighReplace'; entry: NeighEntry };

export interface PeerPlan {
  /**
   * In an order that never sends traffic astray: neighbour entries go first and come last (an address
   * is never answered for before its MAC can be forwarded), stale FDB entries go before new ones.
   */
  ops: PeerOp[];
  /** Desired records that could not be programmed as given (bad values, two claims on one MAC or address). */
  rejected: string[];
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function canonicalMac(mac: string): string | undefined {
  const m = mac.toLowerCase();
  return MAC_RE.test(m) && m !== FLOOD_MAC && (Number.parseInt(m.slice(0, 2), 16) & 1) === 0 ? m : undefined;
}

interface Wanted {
  /** unicast MAC → VTEP */
  fdb: Map<string, string>;
  /** IP → MAC */
  neighbours: Map<string, string>;
  flood: Set<string>;
  rejected: string[];
}

/** The desired tables; conflicting claims resolve to the smallest (VTEP, MAC) so every host picks alike. */
function wantedTables(desired: PeerDesired): Wanted {
  const wanted: Wanted = { fdb: new Map(), neighbours: new Map(), flood: new Set(), rejected: [] };
  const local = desired.localVtep === undefined ? undefined : canonicalIp(desired.localVtep);
  const peers = desired.peers
    .map((p) => ({ peer: p, mac: canonicalMac(p.mac), vtep: canonicalIp(p.vtep) }))
    .sort((a, b) => compare(a.vtep ?? '', b.vtep ?? '') || compare(a.mac ?? '', b.mac ?? ''));
  for (const { peer, mac, vtep } of peers) {
    const label = `${peer.mac} at ${peer.vtep}`;
    if (mac === undefined) { wanted.rejected.push(`${label}: not a unicast MAC address`); continue; }
    if (vtep === undefined) { wanted.rejected.push(`${label}: not an IP address`); continue; }
    if (vtep === local) continue;
    const owner = wanted.fdb.get(mac);
    if (owner !== undefined && owner !== vtep) { wanted.rejected.push(`${label}: MAC already at ${owner}`); continue; }
    const ips: string[] = [];
    for (const text of peer.ips) {
      const ip = canonicalIp(text);
      const holder = ip === undefined ? undefined : wanted.neighbours.get(ip);
      if (ip === undefined) wanted.rejected.push(`${label}: ${text} is not an IP address`);
      else if (holder !== undefined && holder !== mac) wanted.rejected.push(`${label}: ${ip} already at ${holder}`);
      else ips.push(ip);
    }
    wanted.fdb.set(mac, vtep);
    for (const ip of ips) wanted.neighbours.set(ip, mac);
    if (desired.flood) wanted.flood.add(vtep);
  }
  return wanted;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function planPeers(desired: PeerDesired, current: PeerTables): PeerPlan {
  const ifname = desired.ifname;
  const wanted = wantedTables(desired);
  const neighDels: PeerOp[] = [];
  const fdbDels: PeerOp[] = [];
  const fdbAdds: PeerOp[] = [];
  const neighAdds: PeerOp[] = [];

  // Neighbours: permanent entries on this device only.
  const have = new Map<string, string>();
  for (const n of current.neighbours) {
    const ip = canonicalIp(n.ip);
    if (!n.permanent || n.ifname !== ifname || ip === undefined) continue;
    have.set(ip, n.mac.toLowerCase());
    if (!wanted.neighbours.has(ip)) neighDels.push({ op: 'neighDel', ifname, ip });
  }
  for (const [ip, mac] of wanted.neighbours) {
    if (have.get(ip) !== mac) neighAdds.push({ op: 'neighReplace', entry: { ifname, ip, mac } });
  }

  // FDB: a unicast MAC has one destination (replace fixes a wrong one); the flood MAC has a set.
  const unicast = new Map<string, string[]>();
  const flood = new Set<string>();
  for (const e of current.fdb) {
    const dst = canonicalIp(e.dst);
    if (!e.permanent || e.ifname !== ifname || dst === undefined) continue;
    const mac = e.mac.toLowerCase();
    if (mac === FLOOD_MAC) flood.add(dst);
    else unicast.set(mac, [...(unicast.get(mac) ?? []), dst]);
  }
  for (const [mac, dsts] of unicast) {
    const want = wanted.fdb.get(mac);
    // A wrong single destination is replaced in place (one op, no gap); anything else extra goes.
    const replaced = want !== undefined && !dsts.includes(want) ? dsts[0] : undefined;
    for (const dst of dsts) if (dst !== want && dst !== replaced) fdbDels.push({ op: 'fdbDel', entry: { ifname, mac, dst } });
  }
  for (const [mac, vtep] of wanted.fdb) {
    if (!(unicast.get(mac) ?? []).includes(vtep)) fdbAdds.push({ op: 'fdbAdd', entry: { ifname, mac, dst: vtep } });
  }
  for (const dst of flood) if (!wanted.flood.has(dst)) fdbDels.push({ op: 'fdbDel', entry: { ifname, mac: FLOOD_MAC, dst } });
  for (const dst of wanted.flood) if (!flood.has(dst)) fdbAdds.push({ op: 'fdbAdd', entry: { ifname, mac: FLOOD_MAC, dst } });

  return { ops: [...neighDels, ...fdbDels, ...fdbAdds, ...neighAdds], rejected: wanted.rejected };
}
