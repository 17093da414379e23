/**
 * The bridge driver: one Linux bridge per network holding the gateway address(es), one veth pair per
 * endpoint (host end on the bridge, sandbox end created directly inside the sandbox namespace under its
 * final name). Firewalling is returned as a FirewallNetwork for the controller to apply.
 */
import { ForbiddenError } from '../../errors.js';
import type { FirewallNetwork } from '../../firewall/types.js';
import type { Pool } from '../../ipam/types.js';
import { DEFAULT_OWNER_GROUP, type KernelOps } from '../../kernel/types.js';
import { randomMac } from '../../util/ids.js';
import { subnetContainsIp } from '../../util/ip.js';
import type {
  DriverEndpoint,
  DriverNetwork,
  DriverSandbox,
  HandoffJoinResult,
  JoinResult,
  NetworkDriver,
  NetworkProgram,
} from '../types.js';
import { plugHandoffVeth, plugSandboxVeth, sandboxVethIntact } from '../sandbox-veth.js';
import {
  parseBridgeEndpointOptions,
  parseBridgeNetworkOptions,
  type BridgeEndpointOptions,
  type BridgeNetworkOptions,
} from './options.js';

type BridgeNet = DriverNetwork<BridgeNetworkOptions>;
type BridgeEp = DriverEndpoint<BridgeEndpointOptions>;

/** Prefixes of the links this driver names itself (ownership is the kernel group mark, not these). */
export const BRIDGE_PREFIX = 'cnm-';
export const VETH_PREFIX = 'cnmv';

export function bridgeNameOf(net: { id: string; options: BridgeNetworkOptions }): string {
  return net.options.bridgeName ?? `${BRIDGE_PREFIX}${net.id.slice(0, 11)}`;
}

export function hostVethOf(ep: { id: string }): string {
  return `${VETH_PREFIX}${ep.id.slice(0, 11)}`;
}

/** The container end of a handed-over endpoint while it is still in the daemon's namespace. */
export const HANDOFF_PREFIX = 'cnmc';

export function handoffPeerOf(ep: { id: string }): string {
  return `${HANDOFF_PREFIX}${ep.id.slice(0, 11)}`;
}

function prefixLen(subnet: string): number {
  return Number(subnet.slice(subnet.indexOf('/') + 1));
}

function gatewayCidr(pool: Pool): string {
  return `${pool.gateway}/${prefixLen(pool.subnet)}`;
}

export class BridgeDriver implements NetworkDriver<BridgeNetworkOptions, BridgeEndpointOptions> {
  readonly name = 'bridge';
  readonly scope = 'local' as const;
  readonly needsIpam = true;
  /**
   * `ownerGroup`: the interface group every link this driver creates in the daemon's namespace is made in
   * (see DEFAULT_OWNER_GROUP); only links carrying it are ever deleted as the driver's own.
   */
  constructor(
    private readonly kernel: KernelOps,
    private readonly ownerGroup: number = DEFAULT_OWNER_GROUP,
  ) {}

  parseNetworkOptions(raw: Record<string, string>): BridgeNetworkOptions {
    return parseBridgeNetworkOptions(raw);
  }

  parseEndpointOptions(raw: Record<string, string>): BridgeEndpointOptions {
    return parseBridgeEndpointOptions(raw);
  }

  validateNetwork(net: BridgeNet, others: BridgeNet[]): void {
    const name = bridgeNameOf(net);
    const clash = others.find((o) => o.id !== net.id && bridgeNameOf(o) === name);
    if (clash) {
      throw new ForbiddenError(`bridge name ${name} is already used by network ${clash.name}`);
    }
    // default_bridge marks the predefined "bridge" network; on a second network it would mean nothing.
    const other = net.options.defaultBridge ? others.find((o) => o.id !== net.id && o.options.defaultBridge) : undefined;
    if (other) {
      throw new ForbiddenError(`option com.docker.network.bridge.default_bridge: network ${other.name} is already the default bridge`);
    }
  }

  /** driverState.bridge: "created" (cnm made the bridge and deletes it with the network) or "adopted". */
  async createNetwork(net: BridgeNet): Promise<NetworkProgram> {
    return this.ensureBridge(net, false);
  }

  /** True when the network's record says cnm made its bridge (records from before the mark: when cnm named it). */
  private createdBridge(net: BridgeNet): boolean {
    const recorded = net.driverState['bridge'];
    return recorded === undefined ? net.options.bridgeName === undefined : recorded === 'created';
  }

  async restoreNetwork(net: BridgeNet): Promise<NetworkProgram> {
    return this.ensureBridge(net, true);
  }

  /** The VIP as a /32 on the bridge: sandboxes' ARP for it is answered, so their packets reach nftables. */
  async setServiceAddress(net: BridgeNet, address: string, present: boolean): Promise<void> {
    const cidr = `${address}/${address.includes(':') ? 128 : 32}`;
    if (present) await this.kernel.addrAdd(null, bridgeNameOf(net), cidr);
    else await this.kernel.addrDel(null, bridgeNameOf(net), cidr);
  }

  /** Create the bridge or bring an existing one to the desired state; never disturbs attached ports. */
  private async ensureBridge(net: BridgeNet, restoring: boolean): Promise<NetworkProgram> {
    const name = bridgeNameOf(net);
    const existing = await this.kernel.linkGet(null, name);
    if (existing && existing.kind !== 'bridge') {
      throw new ForbiddenError(`interface ${name} exists and is not a bridge`);
    }
    // A bridge that is there before the network is created (bridge.name) is adopted: never marked, never deleted.
    const unmarked = existing !== undefined && existing.group !== this.ownerGroup;
    const adopted = unmarked && (!restoring || !this.createdBridge(net));
    if (unmarked && !adopted) {
      // The record says cnm made it, before links carried the owner mark: mark it now.
      await this.kernel.linkSet(null, name, { group: this.ownerGroup });
    }
    if (!existing) {
      // A MAC of its own, as Docker gives it: otherwise the bridge takes its lowest port's, changing as
      // ports come and go, and sandboxes' cached MAC for the gateway or a service VIP stops reaching the host.
      // No IGMP/MLD snooping: a snooping bridge re-arms two multicast timers on every port each time any
      // port comes or goes (br_port_state_selection), which made connect and disconnect grow with the
      // number of endpoints; and without a querier on the network (the bridge is none, nor are sandboxes
      // as a rule) it floods all multicast to every port anyway, so delivery is the same.
      await this.kernel.linkAdd(null, {
        kind: 'bridge', name, mtu: net.options.mtu, mac: randomMac(), multicastSnooping: false, group: this.ownerGroup,
      });
    } else if (net.options.mtu !== undefined && existing.mtu !== net.options.mtu) {
      await this.kernel.linkSet(null, name, { mtu: net.options.mtu });
    }
    if (!adopted) {
      // No duplicate address detection for the bridge's own link-local address. The kernel makes it when
      // the first port brings the bridge's carrier up and holds it "tentative" for 1-2 s; meanwhile every
      // neighbour solicitation the host would send for a packet it forwards (a published port's DNAT, a
      // routed client: sources that are not the bridge's) is dropped unsent, as those go out from the
      // link-local address. The first connection to a network's first sandbox then waited for the next
      // retransmission and often timed out. The address comes from the bridge's random MAC: unique here.
      // An IPv4-only network's bridge has no use for IPv6: without it the first port's carrier brings no
      // link-local address, MLD reports or fe80::/64 and ff00::/8 routes of the bridge into the host (the
      // kernel's share of a new network's first connect), and sandboxes' ends have none either.
      // A bridge.name with a dot cannot be addressed as a sysctl key yet (conf.br.0 reads as conf/br/0):
      // such a bridge keeps the kernel's defaults rather than failing its network's creation.
      if (!name.includes('.')) {
        await this.kernel.sysctlSet(null, `net.ipv6.conf.${name}.accept_dad`, '0');
        if (!net.enableIPv6) await this.kernel.sysctlSet(null, `net.ipv6.conf.${name}.disable_ipv6`, '1');
      }
    }
    for (const cidr of this.bridgeAddresses(net)) {
      await this.kernel.addrAdd(null, name, cidr);
    }
    if (!existing?.up) await this.kernel.linkSet(null, name, { up: true });
    return { driverState: { bridge: adopted ? 'adopted' : 'created' }, firewall: this.firewallProgram(net) };
  }

  private bridgeAddresses(net: BridgeNet): string[] {
    const out: string[] = [];
    if (net.enableIPv4 && !net.options.inhibitIpv4 && net.options.gatewayModeIpv4 !== 'isolated') {
      out.push(...net.ipv4Pools.map(gatewayCidr));
    }
    if (net.enableIPv6 && net.options.gatewayModeIpv6 !== 'isolated') {
      out.push(...net.ipv6Pools.map(gatewayCidr));
    }
    return out;
  }

  private firewallProgram(net: BridgeNet): FirewallNetwork {
    const o = net.options;
    const natMode = (m: string) => m === 'nat' || m === 'nat-unprotected';
    return {
      id: net.id,
      bridge: bridgeNameOf(net),
      ipv4Subnets: net.enableIPv4 ? net.ipv4Pools.map((p) => p.subnet) : [],
      ipv6Subnets: net.enableIPv6 ? net.ipv6Pools.map((p) => p.subnet) : [],
      icc: o.enableIcc,
      masquerade: o.enableIpMasquerade && natMode(o.gatewayModeIpv4) && !net.internal,
      masqueradeIpv6: o.enableIpMasquerade && natMode(o.gatewayModeIpv6) && !net.internal,
      internal: net.internal || o.gatewayModeIpv4 === 'isolated',
      hostIpv4: o.hostIpv4,
      ...(o.hostBindingIpv4 === undefined ? {} : { hostBindingIpv4: o.hostBindingIpv4 }),
    };
  }

  async deleteNetwork(net: BridgeNet): Promise<void> {
    const name = bridgeNameOf(net);
    const link = await this.kernel.linkGet(null, name);
    if (!link) return;
    if (link.kind !== 'bridge' || link.group !== this.ownerGroup) {
      // Not cnm's (an adopted bridge, or whatever holds the name now): left alone, as Docker does; only the
      // gateway addresses cnm put on an adopted bridge go.
      if (link.kind === 'bridge' && !this.createdBridge(net)) {
        for (const cidr of this.bridgeAddresses(net)) await this.kernel.addrDel(null, name, cidr);
      }
      return;
    }
    // Nothing is ever stacked on a cnm bridge but its ports, which are gone by now: may finish in the background.
    await this.kernel.linkDel(null, name, { background: true });
  }

  async join(net: BridgeNet, ep: BridgeEp, sandbox: DriverSandbox): Promise<JoinResult> {
    if (sandbox.netnsPath === null) throw new ForbiddenError('a sandbox on the host network cannot join a bridge network');
    const hostInterface = await plugSandboxVeth(this.kernel, ep, sandbox.netnsPath, {
      hostIf: hostVethOf(ep), master: bridgeNameOf(net), mtu: net.options.mtu, group: this.ownerGroup, networkName: net.name,
      startsWithoutIpv6: sandbox.ownNamespace,
    });
    return { driverState: {}, hostInterface, ...this.gateways(net, ep) };
  }

  /**
   * The pair for another runtime's container: host end on the bridge as for a sandbox, the container end
   * left in the daemon's namespace, down, with the endpoint's MAC and the network's MTU, for the runtime to
   * move into its container; it sets the addresses itself. Deleting the host end (leave) removes both.
   */
  async joinForHandoff(net: BridgeNet, ep: BridgeEp): Promise<HandoffJoinResult> {
    const srcName = handoffPeerOf(ep);
    await plugHandoffVeth(this.kernel, ep, srcName, {
      hostIf: hostVethOf(ep), master: bridgeNameOf(net), mtu: net.options.mtu, group: this.ownerGroup,
    });
    return { driverState: {}, srcName, ...this.gateways(net, ep) };
  }

  /** The host end is still a port of the network's bridge (deleting either end of a veth deletes both). */
  async handoffPresent(net: BridgeNet, ep: BridgeEp): Promise<boolean> {
    const host = await this.kernel.linkGet(null, hostVethOf(ep));
    return host !== undefined && host.master === bridgeNameOf(net);
  }

  private gateways(net: BridgeNet, ep: BridgeEp): Pick<JoinResult, 'gatewayIpv4' | 'gatewayIpv6'> {
    if (net.internal) return {};
    const find = (pools: Pool[], address: string | undefined, mode: string) => {
      if (!address || mode === 'isolated') return undefined;
      const ip = address.slice(0, address.indexOf('/'));
      return pools.find((p) => subnetContainsIp(p.subnet, ip))?.gateway;
    };
    return {
      gatewayIpv4: net.options.inhibitIpv4 ? undefined : find(net.ipv4Pools, ep.ipv4Address, net.options.gatewayModeIpv4),
      gatewayIpv6: find(net.ipv6Pools, ep.ipv6Address, net.options.gatewayModeIpv6),
    };
  }

  async leave(net: BridgeNet, ep: BridgeEp, sandbox: DriverSandbox): Promise<void> {
    // Deleting the host end removes the sandbox end with it; another runtime's namespace waits for that (DriverSandbox.ownNamespace).
    await this.kernel.linkDel(null, hostVethOf(ep), { background: true, untilDestroyed: !sandbox.ownNamespace });
    // The host's ARP / NDP cache still maps the address to the departed MAC: a sandbox joining later with
    // the same address (a static --ip, a reconnect) would be unreachable from the host (and through
    // service VIPs) until that entry went stale.
    for (const cidr of [ep.ipv4Address, ep.ipv6Address]) {
      if (cidr) await this.kernel.neighDel(null, bridgeNameOf(net), cidr.slice(0, cidr.indexOf('/')));
    }
  }

  async endpointIntact(net: BridgeNet, ep: BridgeEp, sandbox: DriverSandbox): Promise<boolean> {
    return sandboxVethIntact(this.kernel, ep, sandbox.netnsPath, hostVethOf(ep), bridgeNameOf(net));
  }

  ownedLinks(nets: BridgeNet[], eps: BridgeEp[]): string[] {
    // A handed-over container end stays in the daemon's namespace until its runtime moves it.
    return [...nets.map(bridgeNameOf), ...eps.map(hostVethOf), ...eps.map(handoffPeerOf)];
  }
}
