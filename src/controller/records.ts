/**
 * Persisted CNM state. Plain data: the store repository serialises these, the API layer renders them
 * in Docker's shapes. Nothing here talks to the kernel.
 */
import type { Pool } from '../ipam/types.js';
import type { RouteInfo } from '../kernel/types.js';

export type NetworkScope = 'local' | 'global' | 'swarm';

export interface NetworkRecord {
  /** 64 lowercase hex. */
  id: string;
  name: string;
  driver: string;
  scope: NetworkScope;
  /** RFC3339Nano. */
  created: string;
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
  configOnly: boolean;
  /** Name of a config-only network this one takes its configuration from. */
  configFrom?: string;
  enableIPv4: boolean;
  enableIPv6: boolean;
  ipam: {
    driver: string;
    options: Record<string, string>;
    /** Pools as granted (subnet, range, gateway, aux addresses). */
    pools: Pool[];
  };
  /** Driver options exactly as the user gave them (Docker shows these back). */
  options: Record<string, string>;
  labels: Record<string, string>;
  /** Built in at daemon start (bridge, host, none); cannot be removed. */
  predefined: boolean;
  /** What the driver chose when it created the network (e.g. the bridge name); the driver's own schema. */
  driverState: Record<string, string>;
}

export interface EndpointRecord {
  id: string;
  /** Docker names an endpoint after its container: the sandbox name. */
  name: string;
  networkId: string;
  sandboxId: string;
  macAddress: string;
  /** "10.0.0.2/24"; absent when the network has no IPv4. */
  ipv4Address?: string;
  ipv6Address?: string;
  /** True when the user asked for this exact address (kept across reconnects like Docker's IPAMConfig). */
  staticIpv4: boolean;
  staticIpv6: boolean;
  aliases: string[];
  /** Higher wins the sandbox's default route; ties broken by network name. */
  gwPriority: number;
  /** Endpoint driver options as given (com.docker.network.endpoint.*). */
  driverOpts: Record<string, string>;
  /** Interface name inside the sandbox (eth0, eth1, ...). */
  ifName: string;
  /** What the driver chose (host-side veth name, ...). */
  driverState: Record<string, string>;
  /** IDs of the services this endpoint is a backend of (absent in records written before services). */
  services?: string[];
  /**
   * Endpoints of global-scope networks (shared with other hosts through the cluster store): the host it
   * lives on and that host's underlay address (advertise address), where other hosts send its traffic.
   */
  hostId?: string;
  vtep?: string;
  /** Gateways this endpoint offers the sandbox's default route (from the driver's join). */
  gatewayIpv4?: string;
  gatewayIpv6?: string;
  /** The driver's join asked for a way out through the gateway network (JoinResult.requiresDefaultGateway). */
  requiresGateway?: true;
  /** The endpoint's host-side interface as the driver's join reported it (JoinResult.hostInterface). */
  hostInterface?: { name: string; mac: string; bridge?: string };
  /**
   * Made by cnm on the gateway network (`cnm_gwbridge`, Docker's docker_gwbridge) for the outbound traffic
   * of a sandbox whose other endpoints give it no gateway (Docker's `gateway_<sandbox id>`); cnm removes it
   * when no endpoint needs it any more.
   */
  outboundGateway?: true;
  created: string;
}

export type ServiceMode = 'vip' | 'dnsrr';

export interface ServicePort {
  protocol: 'tcp' | 'udp';
  port: number;
}

/**
 * A named service on one network: its backends are the endpoints that joined it. `vip` mode: the name
 * resolves to a virtual address per family of its network that nftables balances over the backends; `dnsrr`: the name
 * resolves to the backends' addresses, rotated. `tasks.<name>` always lists the backends.
 */
export interface ServiceRecord {
  id: string;
  name: string;
  networkId: string;
  mode: ServiceMode;
  /** Balanced ports; empty = every port. */
  ports: ServicePort[];
  /** The VIP as "10.0.0.5/24" (vip mode, on a network with IPv4) and the IPAM pool it came from. */
  vip?: string;
  vipPoolId?: string;
  /** The IPv6 VIP as "fd00::5/64" (vip mode, on a network with IPv6) and its pool. */
  vip6?: string;
  vip6PoolId?: string;
  labels: Record<string, string>;
  created: string;
}

/** A published port as granted (the host port chosen when none was asked for). */
export interface PublishedPort {
  protocol: 'tcp' | 'udp' | 'sctp';
  containerPort: number;
  /** Host address (canonical IPv4 or IPv6); 0.0.0.0 / :: = every address of that family. */
  hostIp: string;
  hostPort: number;
}

export interface SandboxRecord {
  id: string;
  name: string;
  hostname: string;
  /**
   * Path of the namespace file: <exec-root>/netns/<id>, a namespace cnm created or (adopted) the pin of
   * the one given with --netns. A followed namespace (followsNetns) and records stored before pins were
   * made hold the given path itself.
   */
  netnsPath: string;
  /** True when the namespace was created elsewhere (--netns): cnm unpins it but never destroys it. */
  adopted: boolean;
  /** Adopted only: the path given at adoption, opened once then (kept for inspection only). */
  adoptedFrom?: string;
  /**
   * Adopted only: the default routes (main table, both families) the namespace had when adopted. While
   * an endpoint gives a gateway, cnm's default route replaces them; when none does, exactly these return.
   */
  adoptedRoutes?: RouteInfo[];
  /**
   * Adopted without a pin (`NetnsFollow`, the CNI front door): the namespace's identity ("dev:ino") when
   * adopted. cnm holds nothing in it (no pin, no embedded DNS sockets), so it dies with its container and
   * takes the endpoints' veth pairs along; the sandbox is released as soon as `netnsPath` (the path it was
   * given) no longer names this namespace. Every step inside the namespace checks the identity first.
   */
  followsNetns?: string;
  /** Shares the daemon's namespace (host network): no endpoints of its own. */
  hostNetwork: boolean;
  created: string;
  labels: Record<string, string>;
  dns: {
    servers: string[];
    search: string[];
    options: string[];
  };
  /**
   * Set when the sandbox first joins a user-defined network. As in Docker, the embedded resolver then
   * stays (and resolv.conf keeps 127.0.0.11) until the sandbox is removed, also after it leaves that
   * network: its processes keep the resolver they were given, and a reconnect costs no DNS set-up.
   */
  embeddedDns?: boolean;
  /**
   * Stored with the record while the create request (its namespace, files and first endpoints) is still
   * in progress; the transaction of the create's last endpoint stores the record without it. A record
   * that still has it at start-up belongs to a create the client never saw succeed: reconcile rolls it back.
   */
  creating?: true;
  /**
   * Published ports and the network whose endpoint they lead to (the first the sandbox was created on
   * that can publish). Open while the sandbox has an endpoint on that network. Absent: none.
   */
  ports?: PublishedPort[];
  portsNetworkId?: string;
  /** The port bindings as requested (host address '' and host port 0 as given), for HostConfig.PortBindings. */
  portRequests?: RequestedPort[];
}

/** One requested binding (Docker's HostConfig.PortBindings entry): 0/0 = any host port. */
export interface RequestedPort {
  protocol: 'tcp' | 'udp' | 'sctp';
  containerPort: number;
  hostIp: string;
  hostPortStart: number;
  hostPortEnd: number;
}

/**
 * An endpoint whose interface another container runtime moves into its own container (Docker through
 * the remote driver protocol): cnm creates the interface in the daemon's namespace and hands its name
 * over at join; the runtime owns the namespace, its address configuration and its lifetime. The ID and
 * the addresses are the runtime's (Docker's endpoint ID, Docker's IPAM); cnm claims the addresses.
 */
export interface AttachmentRecord {
  /** The runtime's endpoint ID (64 hex). */
  id: string;
  networkId: string;
  /** Which front door made it ("docker"). */
  owner: string;
  macAddress: string;
  ipv4Address?: string;
  ipv6Address?: string;
  /** Set between join and leave. */
  joined?: {
    /** The interface handed to the runtime (in the daemon's namespace until the runtime moves it). */
    srcName: string;
    /** Where the runtime said the container's namespace is (informational). */
    sandboxKey: string;
    gatewayIpv4?: string;
    gatewayIpv6?: string;
  };
  driverState: Record<string, string>;
  /** Published ports (the runtime's -p, from ProgramExternalConnectivity until revoked or left). */
  ports?: PublishedPort[];
  created: string;
}
