/**
 * The firewall: everything cnm programs into nftables. Implemented over a pure compiler
 * (desired state → nft script, golden-file tested) and an NftRunner that applies one script as one
 * atomic transaction. Costs per network are set elements, never "flush and refill a chain".
 */

/** What the firewall needs to know about one bridge-like network. Built by the driver, applied by the controller. */
export interface FirewallNetwork {
  /** Network ID (64 hex). */
  id: string;
  /** The host-side interface traffic of this network enters and leaves through (the bridge). */
  bridge: string;
  ipv4Subnets: string[];
  ipv6Subnets: string[];
  /** Inter-container communication on the same network (com.docker.network.bridge.enable_icc). */
  icc: boolean;
  /** Masquerade traffic leaving the host (com.docker.network.bridge.enable_ip_masquerade). */
  masquerade: boolean;
  /** IPv6 on its own (gateway_mode_ipv6 differs from gateway_mode_ipv4); absent = as `masquerade`. */
  masqueradeIpv6?: boolean;
  /** --internal: nothing is forwarded into or out of the network. */
  internal: boolean;
  /** SNAT to this address instead of masquerading (com.docker.network.host_ipv4). */
  hostIpv4?: string;
  /** Default host address of ports published on this network (host_binding_ipv4); absent = 0.0.0.0. */
  hostBindingIpv4?: string;
}

/** One published port: traffic to hostIp:hostPort (0.0.0.0 / :: = every host address of that family) goes to address:containerPort. */
export interface FirewallPort {
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIp: string;
  hostPort: number;
  /** The container's address, of hostIp's family (IPv4 or IPv6). */
  address: string;
  containerPort: number;
}

/** A sandbox's published ports: added and removed together, one transaction each. */
export interface FirewallPorts {
  /** Sandbox ID (64 hex). */
  sandboxId: string;
  ports: FirewallPort[];
}

/**
 * A load-balanced service: connections to `vip` (on the given ports, or any) are spread over `backends`.
 * One family per value: a dual-stack service is two of them with the same id (an IPv4 and an IPv6 VIP).
 */
export interface FirewallService {
  /** Service ID (64 hex). */
  id: string;
  /** Virtual address, IPv4 or IPv6 (the bridge answers for it). */
  vip: string;
  /** Ports balanced; empty = every port (as Docker's VIPs forward everything). */
  ports: Array<{ protocol: 'tcp' | 'udp'; port: number }>;
  /** Addresses of the backends, of the VIP's family; empty = connections are refused by the host. */
  backends: string[];
}

export interface Firewall {
  /** Create cnm's table and base chains/sets when missing (no-op when present). */
  ensureBase(): Promise<void>;
  /** Add one network's elements; O(1) in the number of existing networks. */
  addNetwork(net: FirewallNetwork): Promise<void>;
  /** Remove one network's elements. Idempotent. */
  removeNetwork(net: FirewallNetwork): Promise<void>;
  /**
   * Create one service, or update its backends: one transaction. VIP and ports are fixed for a service's
   * life (remove it to change them): an update only rewrites the backend map.
   */
  setService(service: FirewallService): Promise<void>;
  /** Remove one service. Idempotent. */
  removeService(service: FirewallService): Promise<void>;
  /** Publish one sandbox's ports: one transaction of map elements, whatever is already published. */
  addPorts(ports: FirewallPorts): Promise<void>;
  /** Close one sandbox's ports: one transaction. Idempotent. */
  removePorts(ports: FirewallPorts): Promise<void>;
  /**
   * Replace cnm's whole ruleset with exactly these networks, services and published ports, atomically
   * (start-up, lost-rules recovery).
   */
  reconcile(networks: FirewallNetwork[], services?: FirewallService[], ports?: FirewallPorts[]): Promise<void>;
  /** True when cnm's tables are present in the kernel (used to detect a ruleset flush). */
  isIntact(): Promise<boolean>;
  close(): void;
}

/**
 * Service VIPs balanced inside a sandbox's own namespace (sandbox-lb.ts), for networks whose driver says
 * the host cannot carry them (NetworkDriver.balancesInSandboxes: the overlay). Each call is one
 * transaction in that namespace; the controller keeps track of what each sandbox holds.
 */
export interface SandboxBalancer {
  /** Create one service (one family) in the sandbox, or update its backends. Idempotent. */
  setService(netnsPath: string, service: FirewallService): Promise<void>;
  /** Remove one service from the sandbox. Idempotent. */
  removeService(netnsPath: string, service: FirewallService): Promise<void>;
  /** Make the sandbox hold exactly these services, whatever it held (start-up, periodic check): one transaction. */
  replace(netnsPath: string, services: FirewallService[]): Promise<void>;
  /** Remove everything cnm balances in the sandbox. Idempotent. */
  clear(netnsPath: string): Promise<void>;
}

/** Applies nft scripts. Implementations: libnftables in-process (FFI) and the `nft` binary. */
export interface NftRunner {
  /** Run `script` (nft -f syntax) as one atomic transaction; returns nft's output. Throws KernelError. */
  run(script: string): Promise<string>;
  close(): void;
}
