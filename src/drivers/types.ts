/**
 * Network drivers: the data plane. A driver turns CNM objects into kernel objects and returns what it
 * did; it never calls back into the controller. Optional abilities are separate small interfaces.
 *
 * cnm endpoints always belong to a sandbox (as Docker's connect), so a driver's `join` both creates
 * the endpoint's interface and plugs it into the sandbox; `leave` removes it.
 */
import type { FirewallNetwork } from '../firewall/types.js';
import type { Pool } from '../ipam/types.js';

export interface DriverNetwork<Options> {
  id: string;
  name: string;
  options: Options;
  internal: boolean;
  enableIPv4: boolean;
  enableIPv6: boolean;
  ipv4Pools: Pool[];
  ipv6Pools: Pool[];
  /** What this driver returned from createNetwork (empty before). */
  driverState: Record<string, string>;
}

export interface DriverEndpoint<Options> {
  id: string;
  options: Options;
  macAddress: string;
  /** "10.0.0.2/24". */
  ipv4Address?: string;
  ipv6Address?: string;
  /** Interface name inside the sandbox. */
  ifName: string;
  /** What this driver returned from join (empty before). */
  driverState: Record<string, string>;
}

export interface DriverSandbox {
  id: string;
  /** Namespace file path; null for the daemon's own namespace (host network). */
  netnsPath: string | null;
  /**
   * A namespace cnm made (false for adopted and followed namespaces and the host network). Interfaces
   * created in it start without IPv6 (its net.ipv6.conf.default.disable_ipv6 is 1), so a join turns IPv6
   * on where the endpoint has an IPv6 address instead of off everywhere else. Any other namespace is
   * not cnm's to change, and its owner may look at it, reuse it or delete it as soon as a leave returns:
   * a leave hands it back with nothing of cnm's left in it — the veth pair destroyed, not only retired (a
   * retired sandbox end stays there, down and renamed, until the reaper destroys it a few ms later).
   */
  ownNamespace?: boolean;
}

export interface NetworkProgram {
  /** Persisted with the network and handed back on every later call. */
  driverState: Record<string, string>;
  /** Rules the controller asks the firewall for; absent for drivers that need none. */
  firewall?: FirewallNetwork;
}

export interface JoinResult {
  /** Persisted with the endpoint and handed back on leave / restore. */
  driverState: Record<string, string>;
  /** Gateway addresses this endpoint offers for the sandbox's default route (none on internal networks). */
  gatewayIpv4?: string;
  gatewayIpv6?: string;
  /**
   * The endpoint gives no gateway but its sandbox should still reach outside (an overlay): the controller
   * then gives the sandbox an endpoint on the host's gateway network (Docker's docker_gwbridge) unless
   * another endpoint of the sandbox gives it a gateway. Ignored on internal networks.
   */
  requiresDefaultGateway?: boolean;
  /**
   * The endpoint's other end in the daemon's namespace (a veth pair's host end), for runtimes whose own
   * plugins act on it (CNI's bandwidth shapes it); absent when the endpoint has none.
   */
  hostInterface?: HostInterface;
}

/** A host-side interface: its name and MAC address (the driver sets the MAC, so it is known without asking the kernel). */
export interface HostInterface {
  name: string;
  mac: string;
  /** The bridge it is a port of, in the daemon's namespace (CNI results list it first, as the bridge plugin does). */
  bridge?: string;
}

/** An endpoint of a multi-host network on another host, as setPeers receives it. */
export interface RemotePeer {
  /** The endpoint's MAC on the overlay. */
  mac: string;
  /** Its overlay addresses (IPv4 and / or IPv6). */
  ips: string[];
  /** Underlay address of the host it lives on. */
  vtep: string;
}

/** joinForHandoff: the interface (in the daemon's namespace) another runtime moves into its container. */
export interface HandoffJoinResult extends JoinResult {
  srcName: string;
}

export interface NetworkDriver<NetOptions = unknown, EpOptions = unknown> {
  readonly name: string;
  readonly scope: 'local' | 'global';
  /** Whether endpoints of this driver get an address from IPAM. */
  readonly needsIpam: boolean;
  /** Validate and type the network's driver options (throws InvalidParameterError). */
  parseNetworkOptions(raw: Record<string, string>): NetOptions;
  /** Validate and type an endpoint's DriverOpts (throws InvalidParameterError). */
  parseEndpointOptions(raw: Record<string, string>): EpOptions;
  /**
   * Checks against the other networks of this driver before anything is applied
   * (e.g. a bridge name already in use). Throws a CnmError.
   */
  validateNetwork(net: DriverNetwork<NetOptions>, others: DriverNetwork<NetOptions>[]): void;
  createNetwork(net: DriverNetwork<NetOptions>): Promise<NetworkProgram>;
  /** Idempotent. */
  deleteNetwork(net: DriverNetwork<NetOptions>): Promise<void>;
  join(net: DriverNetwork<NetOptions>, ep: DriverEndpoint<EpOptions>, sandbox: DriverSandbox): Promise<JoinResult>;
  /**
   * Drivers whose endpoints can live in another runtime's container (Docker's remote driver protocol):
   * create the endpoint's interface in the daemon's namespace, unconfigured, for that runtime to move into
   * its container (it sets the addresses and routes itself); `leave` removes it again wherever it is.
   * Absent: the driver cannot serve other runtimes.
   */
  joinForHandoff?(net: DriverNetwork<NetOptions>, ep: DriverEndpoint<EpOptions>): Promise<HandoffJoinResult>;
  /**
   * Start-up: false when a handed-over endpoint's interface is gone (its container's namespace died while
   * the daemon was down, taking the pair with it). Absent: unknown, the endpoint is kept.
   */
  handoffPresent?(net: DriverNetwork<NetOptions>, ep: DriverEndpoint<EpOptions>): Promise<boolean>;
  /** Idempotent. */
  leave(net: DriverNetwork<NetOptions>, ep: DriverEndpoint<EpOptions>, sandbox: DriverSandbox): Promise<void>;
  /**
   * Start-up: make the kernel match this network (re-create what is missing, fix what drifted).
   * Returns the firewall program as createNetwork would.
   */
  restoreNetwork(net: DriverNetwork<NetOptions>): Promise<NetworkProgram>;
  /**
   * Drivers that can carry a service VIP (traffic to it must reach the host, where nftables balances it)
   * add or remove the address; idempotent both ways. Absent: the driver offers no VIP mode.
   */
  setServiceAddress?(net: DriverNetwork<NetOptions>, address: string, present: boolean): Promise<void>;
  /**
   * True for drivers whose networks give the host no address or path onto them (the overlay): a service
   * VIP there is balanced inside every sandbox on the network, by an nftables table in the sandbox's own
   * namespace (firewall/sandbox-lb.ts), never on the host. A driver with neither this nor
   * setServiceAddress offers no VIP mode.
   */
  readonly balancesInSandboxes?: boolean;
  /** Start-up: true when the endpoint's kernel objects are all present and correct. */
  endpointIntact(net: DriverNetwork<NetOptions>, ep: DriverEndpoint<EpOptions>, sandbox: DriverSandbox): Promise<boolean>;
  /**
   * Names of links in the daemon's namespace that this driver creates for these networks/endpoints. At
   * start-up a link carrying the daemon's owner mark (its interface group) that no driver lists is debris
   * from a crash and is removed; unmarked links are never touched, whatever their names.
   */
  ownedLinks(nets: DriverNetwork<NetOptions>[], eps: DriverEndpoint<EpOptions>[]): string[];
  /**
   * Drivers whose networks span hosts: the endpoints of this network on OTHER hosts, the whole current list
   * each time (the controller calls it on start, on every change it sees and periodically). Idempotent;
   * the driver makes its tables exactly match (planPeers). Absent: the driver's networks are host-local.
   */
  setPeers?(net: DriverNetwork<NetOptions>, peers: RemotePeer[]): Promise<void>;
  /**
   * A number the controller allocates cluster-wide for every network of this driver (unique among them,
   * in the store transaction that creates the network) and passes in the network's options under
   * `option`, unless the user gave that option (then the controller claims the given value, 409 if taken).
   */
  readonly clusterId?: { option: string; min: number; max: number };
}

/** A driver with untyped options, as the controller's registry holds them. */
export type AnyNetworkDriver = NetworkDriver<unknown, unknown>;
