/**
 * What the controller's services share: the dependencies the entry point wired in, the in-memory
 * state, and per-object runtime facts that are derived (never persisted).
 */
import { NotFoundError } from '../errors.js';
import type { ServiceDiscovery } from '../dns/discovery.js';
import type { AnyNetworkDriver, DriverEndpoint, DriverNetwork, DriverSandbox } from '../drivers/types.js';
import type { Firewall, FirewallNetwork, FirewallService, SandboxBalancer } from '../firewall/types.js';
import type { IpamDriver } from '../ipam/types.js';
import type { HostPortFacts } from '../kernel/host-ports.js';
import type { KernelOps } from '../kernel/types.js';
import type { Store } from '../store/types.js';
import type { Logger } from '../util/log.js';
import type { ClusterDeps, ClusterRuntime } from './cluster.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from './records.js';
import type { Repository } from './repository.js';
import type { SandboxFiles } from './sandbox-files.js';
import type { CnmState } from './state.js';
import type { ControllerEvent, CreateNetworkRequest } from './types.js';

export interface ControllerDeps {
  store: Store;
  storeKind: string;
  kernel: KernelOps;
  firewall: Firewall;
  /** Service VIPs balanced inside sandboxes (networks whose driver `balancesInSandboxes`: the overlay). */
  balancer: SandboxBalancer;
  ipam: IpamDriver;
  drivers: Map<string, AnyNetworkDriver>;
  files: SandboxFiles;
  /** Told about every network, endpoint and sandbox change (the embedded DNS). */
  discovery: ServiceDiscovery;
  rootDir: string;
  execRoot: string;
  logger: Logger;
  /** Changes that may wait for the one being applied; one more is refused with 503 (default 256). */
  maxQueuedChanges?: number;
  /**
   * The interface group the daemon marks its links with (the drivers were given the same): only links in
   * it are removed as leftovers. Default DEFAULT_OWNER_GROUP.
   */
  ownerGroup?: number;
  /**
   * Reads the daemon namespace's ephemeral port range, reserved ports and bound sockets (published
   * ports avoid them). Default: the kernel's default range, nothing reserved or bound (tests' fake kernel).
   */
  hostPorts?: () => HostPortFacts;
  /** Where a search for a free host port starts within a range of `span` ports (default: random). */
  portSearchStart?: (span: number) => number;
  /**
   * The cluster (daemon with --cluster-store): the shared store where global-scope networks live, this
   * host's id and advertise address, the registered hosts. Absent: global-scope networks are refused.
   */
  cluster?: ClusterDeps;
  /**
   * The network that gives sandboxes on overlays their way out (Docker's docker_gwbridge), made when first
   * needed. Default DEFAULT_GATEWAY_NETWORK (gateway.ts): `cnm_gwbridge`, bridge `cnmgw0`, ICC off, masquerade.
   */
  gatewayNetwork?: CreateNetworkRequest;
}

export interface NetworkRuntime {
  driver: AnyNetworkDriver;
  /** The record's options parsed by its driver once. */
  options: unknown;
  /** What the firewall holds for this network (needed to remove it again). */
  firewall?: FirewallNetwork;
  /** Why the network could not be restored at start-up (see broken.ts); undefined when it works. */
  error?: string;
}

export interface Ctx extends ControllerDeps {
  state: CnmState;
  repo: Repository;
  networks: Map<string, NetworkRuntime>;
  /** Default gateways currently programmed per sandbox, so unchanged routes are not rewritten. */
  routes: Map<string, { v4?: string; v6?: string }>;
  /** What each sandbox balances in its own namespace now, by sandbox ID (service-balancing.ts). */
  balanced: Map<string, Map<string, FirewallService>>;
  /** The cache of the cluster's records (with ControllerDeps.cluster). */
  global?: ClusterRuntime;
  emit(event: Omit<ControllerEvent, 'timeNano'>): void;
}

export function driverOf(ctx: Ctx, name: string): AnyNetworkDriver {
  const driver = ctx.drivers.get(name);
  if (!driver) throw new NotFoundError(`plugin "${name}" not found`);
  return driver;
}

export function runtimeOf(ctx: Ctx, net: NetworkRecord): NetworkRuntime {
  let rt = ctx.networks.get(net.id);
  if (!rt) {
    const driver = driverOf(ctx, net.driver);
    rt = { driver, options: driver.parseNetworkOptions(net.options) };
    ctx.networks.set(net.id, rt);
  }
  return rt;
}

export function toDriverNetwork(net: NetworkRecord, options: unknown): DriverNetwork<unknown> {
  return {
    id: net.id,
    name: net.name,
    options,
    internal: net.internal,
    enableIPv4: net.enableIPv4,
    enableIPv6: net.enableIPv6,
    ipv4Pools: net.ipam.pools.filter((p) => p.family === 4),
    ipv6Pools: net.ipam.pools.filter((p) => p.family === 6),
    driverState: net.driverState,
  };
}

export function toDriverEndpoint(ep: EndpointRecord, options: unknown): DriverEndpoint<unknown> {
  return {
    id: ep.id,
    options,
    macAddress: ep.macAddress,
    ipv4Address: ep.ipv4Address,
    ipv6Address: ep.ipv6Address,
    ifName: ep.ifName,
    driverState: ep.driverState,
  };
}

export function toDriverSandbox(sb: SandboxRecord): DriverSandbox {
  if (sb.hostNetwork) return { id: sb.id, netnsPath: null };
  return { id: sb.id, netnsPath: sb.netnsPath, ownNamespace: ownsNamespace(sb) };
}

/** The sandbox's namespace is one cnm made (not adopted, not followed, not the host's). */
export function ownsNamespace(sb: SandboxRecord): boolean {
  return !sb.hostNetwork && !sb.adopted && sb.followsNetns === undefined;
}

/** What every namespace cnm makes gets: its interfaces start without IPv6 (see DriverSandbox). */
export const NETNS_IPV6_DEFAULT_KEY = 'net.ipv6.conf.default.disable_ipv6';

/** Make the namespace of a sandbox cnm owns, or (at start) give one made by an older cnm the same default. */
export async function prepareOwnNamespace(ctx: Pick<Ctx, 'kernel'>, sb: SandboxRecord, create: boolean): Promise<void> {
  if (create) await ctx.kernel.createNetns(sb.netnsPath);
  await ctx.kernel.sysctlSet(sb.netnsPath, NETNS_IPV6_DEFAULT_KEY, '1');
}
