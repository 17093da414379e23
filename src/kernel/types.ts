/**
 * Kernel operations: the only door from cnm to the Linux data plane (links, addresses, routes,
 * namespaces, sysctls). Implementations: netlink (in-process rtnetlink over FFI), iproute2 (spawns `ip`),
 * and a recording fake for unit tests. All pass test/conformance/kernel.ts.
 *
 * Conventions every implementation follows:
 * - `ns` selects the network namespace: `null` is the daemon's own; a string is a path to a namespace
 *   file (a pinned bind mount such as <exec-root>/netns/<id>, or /proc/<pid>/ns/net).
 * - Deletes are idempotent: deleting what is not there succeeds.
 * - Adding an address or route that already exists exactly succeeds (replace semantics).
 * - Failures throw KernelError with the errno name (EEXIST, ENOENT, EINVAL, ...) when known.
 */

/**
 * Prefix of the names links take on their way out: a deleted veth pair's sandbox end is taken down and
 * renamed at once (so its name is free) and destroyed in the background. The name is cosmetic: what makes
 * a link a tombstone is TOMBSTONE_GROUP, never its name (an administrator's `cnmzfoo` is left alone).
 */
export const TOMBSTONE_PREFIX = 'cnmz';

/**
 * Interface group ("ip link set group") of tombstones: one RTM_DELLINK of the group destroys every pending
 * one in a namespace with a single RCU grace period, so background deletion keeps pace with any rate of
 * disconnects (one by one, tombstones piled up on a busy bridge until it hit its 1,024-port limit). The
 * kernel deletes in bulk by group only, so the group is the tombstone mark. Never listed; settle()
 * removes any left by a crash. 0x636e6d7a is "cnmz" in ASCII.
 */
export const TOMBSTONE_GROUP = 0x636e6d7a;

/**
 * Ownership mark: every link the daemon creates in its namespace is made in the daemon's own interface
 * group (IFLA_GROUP, set in the creating message itself, also for a veth peer), and only links carrying
 * it are ever removed as leftovers. A group rather than IFLA_IFALIAS: the kernel ignores an alias in
 * RTM_NEWLINK create requests (it would cost a second message per link), while the group is applied at
 * creation and kept when a link moves between namespaces. Each daemon derives its own group (see
 * ownerGroupFor), so a link moved from one cnm daemon's namespace into another's is not the second's.
 */
export const DEFAULT_OWNER_GROUP = 0x636e6d6f; // "cnmo"

/**
 * The owner group of a daemon: a hash of what identifies it (state root, namespace) into
 * [2^28, 2^31): clear of the small groups people number by hand, and below 2^31, which ip(8) prints as a
 * negative number; never TOMBSTONE_GROUP. Stable across restarts.
 */
export function ownerGroupFor(identity: string): number {
  let h = 0x811c9dc5; // FNV-1a
  for (const byte of Buffer.from(identity)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  const group = 0x10000000 + (h % 0x70000000);
  return group === TOMBSTONE_GROUP ? DEFAULT_OWNER_GROUP : group;
}

/** null = the daemon's own namespace; otherwise a path to a namespace file. */
export type NetnsRef = string | null;

export interface LinkAttrs {
  name: string;
  mtu?: number;
  /** MAC address, "02:42:ac:11:00:02" form. */
  mac?: string;
  /** Bring the link up at creation. */
  up?: boolean;
  /** Name of a bridge (in the same namespace) to enslave the link to. */
  master?: string;
  /** Interface group set at creation (the ownership mark, see DEFAULT_OWNER_GROUP); default 0. */
  group?: number;
}

export interface BridgeSpec extends LinkAttrs {
  kind: 'bridge';
  /** IGMP/MLD snooping (IFLA_BR_MCAST_SNOOPING); undefined = the kernel's default (on). */
  multicastSnooping?: boolean;
}

export interface DummySpec extends LinkAttrs {
  kind: 'dummy';
}

/**
 * A veth pair created with one message: `name` stays in `ns`, the peer is created directly in
 * `peer.netns` (default: same namespace) under its final name, so no rename or move is needed.
 */
export interface VethSpec extends LinkAttrs {
  kind: 'veth';
  peer: {
    name: string;
    netns?: NetnsRef;
    mtu?: number;
    mac?: string;
    up?: boolean;
    group?: number;
  };
}

export interface VxlanSpec extends LinkAttrs {
  kind: 'vxlan';
  /** VXLAN network identifier, 0..2^24-1. */
  vni: number;
  /** UDP port, default 4789. */
  dstPort?: number;
  /** Local underlay address (the advertise address): the outer source of every packet. */
  local?: string;
  /** Underlay device name. */
  dev?: string;
  /** MAC learning; overlay programs FDB entries instead, so default false. */
  learning?: boolean;
  /**
   * Answer ARP / neighbour solicitations arriving from the bridge out of the device's own neighbour table
   * (IFLA_VXLAN_PROXY, moby's `Proxy: true`): with peers programmed up front, no broadcast crosses the
   * underlay. Default false. L2/L3 miss notifications are always off (Docker dropped them in 2018).
   */
  arpProxy?: boolean;
  /** TTL of the outer packets; undefined or 0 = inherit the route's default. */
  ttl?: number;
  /** UDP checksum on outer IPv4 packets (IFLA_VXLAN_UDP_CSUM); default off, as the kernel. */
  udpChecksum?: boolean;
  /**
   * Transmit checksum offload of the device (ethtool's `tx`); false turns it off, which avoids a known
   * kernel stall of VXLAN with offloaded checksums (flannel, Calico and Docker users met it). Default:
   * the kernel's (on).
   */
  txChecksumOffload?: boolean;
}

export interface MacvlanSpec extends LinkAttrs {
  kind: 'macvlan';
  /** Parent link name in `ns`. */
  parent: string;
  mode: 'bridge' | 'private' | 'vepa' | 'passthru';
  /** Create the macvlan directly in this namespace. */
  netns?: NetnsRef;
}

export type LinkSpec = BridgeSpec | DummySpec | VethSpec | VxlanSpec | MacvlanSpec;

export interface LinkInfo {
  index: number;
  name: string;
  /** IFLA_INFO_KIND ("bridge", "veth", "vxlan", ...) or "" when the kernel gives none (lo, physical). */
  kind: string;
  mtu: number;
  mac: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Name of the master (bridge) link, when enslaved. */
  master?: string;
  /** Bridges only: whether IGMP/MLD snooping is on. */
  multicastSnooping?: boolean;
  /** Interface group (IFLA_GROUP; 0 = "default"). */
  group: number;
  /** VXLAN links only: what the kernel holds for the tunnel. */
  vxlan?: VxlanInfo;
}

export interface VxlanInfo {
  vni: number;
  /** Local underlay address, when one is set. */
  local?: string;
  /** UDP destination port. */
  port: number;
  learning: boolean;
  arpProxy: boolean;
  /** 0 = inherit. */
  ttl: number;
  udpChecksum: boolean;
  /** Transmit checksum offload; reported by linkGet only (linkList leaves it out: one more query per link). */
  txChecksumOffload?: boolean;
}

export interface LinkChange {
  up?: boolean;
  /** Bridge name to enslave to; null releases the link from its master. */
  master?: string | null;
  mtu?: number;
  mac?: string;
  /** New name. */
  name?: string;
  /** Move the link into this namespace (the link keeps its name unless `name` is also given). */
  netns?: NetnsRef;
  /** Interface group (the ownership mark). */
  group?: number;
}

export interface LinkDeleteOptions {
  /** The link may be taken out of service at once and destroyed after the call (the daemon's namespace). */
  background?: boolean;
  /**
   * With `background`: the call still returns only once the link (and a veth's other end) is destroyed,
   * without holding up anything else meanwhile — for an end in a namespace that is not cnm's.
   */
  untilDestroyed?: boolean;
}

export interface AddressInfo {
  ifname: string;
  /** "10.0.0.1/24" or "fd00::1/64". */
  cidr: string;
  family: 4 | 6;
}

export interface RouteSpec {
  /** "default" or a CIDR ("10.1.0.0/16", "fd00::/64"). */
  dst: string;
  /** Gateway address. */
  via?: string;
  /** Output interface name. */
  dev?: string;
  metric?: number;
  family: 4 | 6;
}

export interface RouteInfo extends RouteSpec {
  /** "kernel", "boot", "static", ... as iproute2 names them. */
  protocol?: string;
  /** "link", "host", "universe". */
  scope?: string;
}

/**
 * A forwarding entry of a VXLAN device (`bridge fdb ... dev VXLAN dst IP self permanent`): frames to `mac`
 * go in a tunnel to the underlay address `dst`. The all-zeros MAC is the flood entry: broadcast and
 * unknown-unicast frames go to every `dst` listed under it.
 */
export interface FdbEntry {
  /** The VXLAN device. */
  ifname: string;
  /** "02:42:0a:00:00:02"; "00:00:00:00:00:00" for the flood list. */
  mac: string;
  /** Underlay address of the remote VTEP. */
  dst: string;
}

export interface FdbInfo extends FdbEntry {
  /** NUD_PERMANENT (programmed) rather than learned. */
  permanent: boolean;
}

/** A neighbour (ARP / NDP) entry: `ip` is at `mac` on `ifname`. */
export interface NeighEntry {
  ifname: string;
  /** IPv4 or IPv6 address. */
  ip: string;
  mac: string;
}

export interface NeighInfo extends NeighEntry {
  /** NUD_PERMANENT (programmed) rather than resolved by ARP / NDP. */
  permanent: boolean;
}

/** The all-zeros MAC of a VXLAN device's flood list. */
export const FLOOD_MAC = '00:00:00:00:00:00';

export interface KernelOps {
  /** Create a new network namespace pinned (bind-mounted) at `path`, with loopback up. */
  createNetns(path: string): Promise<void>;
  /** Unpin the namespace at `path` and remove the file. Idempotent. */
  deleteNetns(path: string): Promise<void>;
  /** True when `path` refers to a live network namespace (a pinned file or /proc/PID/ns/net). */
  netnsExists(path: string): Promise<boolean>;
  /**
   * Adopt a namespace made elsewhere: open `source` once, refuse (EINVAL) anything but a network
   * namespace and the daemon's own, and pin that open namespace at `pin` (deleteNetns(pin) unpins it;
   * the namespace lives on while others hold it). Later use goes through `pin` only, so a /proc/PID path
   * whose PID is reused cannot redirect it. Returns the namespace's identity (see netnsIdentity).
   */
  adoptNetns(source: string, pin: string): Promise<string>;
  /** An identity equal for every path to one namespace ("dev:ino" of nsfs); undefined when none is there. */
  netnsIdentity(path: string): Promise<string | undefined>;

  linkAdd(ns: NetnsRef, spec: LinkSpec): Promise<void>;
  linkSet(ns: NetnsRef, name: string, change: LinkChange): Promise<void>;
  /**
   * Idempotent. Deleting one end of a veth pair deletes both; deleting a lower device deletes the
   * macvlans / vxlans on it. With `background`, an implementation may instead take the link out of
   * service at once and destroy it later (see TOMBSTONE_PREFIX): when the promise resolves its name (and
   * a veth peer's) is free and nothing passes, but devices stacked on it would outlive it for a moment,
   * so only callers that know nothing is stacked on the link ask for it.
   */
  linkDel(ns: NetnsRef, name: string, options?: LinkDeleteOptions): Promise<void>;
  linkGet(ns: NetnsRef, name: string): Promise<LinkInfo | undefined>;
  linkList(ns: NetnsRef): Promise<LinkInfo[]>;

  /**
   * Add (or replace) an address. IPv6 addresses are added without duplicate address detection (as
   * Docker does): cnm's IPAM owns the subnet, and a tentative address would drop traffic for the first
   * second or two of a network or sandbox (published ports and gateways unreachable meanwhile).
   */
  addrAdd(ns: NetnsRef, ifname: string, cidr: string): Promise<void>;
  addrDel(ns: NetnsRef, ifname: string, cidr: string): Promise<void>;
  addrList(ns: NetnsRef, ifname?: string): Promise<AddressInfo[]>;

  /** Add the route, or replace an existing one with the same destination and metric. */
  routeReplace(ns: NetnsRef, route: RouteSpec): Promise<void>;
  routeDel(ns: NetnsRef, route: RouteSpec): Promise<void>;
  /** Routes of the main table. */
  routeList(ns: NetnsRef, family: 4 | 6): Promise<RouteInfo[]>;

  /**
   * Forget what the neighbour table (ARP / NDP) of `ns` holds for `ip` on `ifname`, so the next packet
   * asks again instead of going to a MAC that has left. Idempotent (missing entry or link: nothing to do).
   */
  neighDel(ns: NetnsRef, ifname: string, ip: string): Promise<void>;
  /** Add a permanent neighbour entry, or replace what the table holds for that address on that link. */
  neighReplace(ns: NetnsRef, entry: NeighEntry): Promise<void>;
  /** Neighbour entries of both families on `ifname` (ENODEV when the link is missing), with a MAC. */
  neighList(ns: NetnsRef, ifname: string): Promise<NeighInfo[]>;

  /**
   * Add a permanent FDB entry to a VXLAN device. A unicast MAC has one destination: an existing entry is
   * replaced. The all-zeros MAC (FLOOD_MAC) holds a list: `dst` is appended (present already: nothing to do).
   */
  fdbAdd(ns: NetnsRef, entry: FdbEntry): Promise<void>;
  /** Remove one destination of one MAC. Idempotent. */
  fdbDel(ns: NetnsRef, entry: FdbEntry): Promise<void>;
  /** The device's own (`self`) entries that have a destination, one per (MAC, dst). ENODEV when missing. */
  fdbList(ns: NetnsRef, ifname: string): Promise<FdbInfo[]>;

  /** key as sysctl(8) names it: "net.ipv4.ip_forward", "net.ipv6.conf.eth0.disable_ipv6". */
  sysctlSet(ns: NetnsRef, key: string, value: string): Promise<void>;
  sysctlGet(ns: NetnsRef, key: string): Promise<string>;

  /** Wait for background deletions and remove tombstones left in the host namespace by an earlier run. */
  settle(): Promise<void>;

  /** Release cached sockets / handles. The object is unusable afterwards. */
  close(): void;
}
