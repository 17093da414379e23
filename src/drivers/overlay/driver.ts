/**
 * The overlay driver: networks that span hosts over VXLAN. On each host that has endpoints on a network:
 * a Linux bridge (`cnmo-<id>`, no address) with the network's VXLAN device (`cnmx-<id>`: its VNI, `local`
 * = this host's advertise address, the data-path port, learning off, ARP/ND proxy on) as a port, and a
 * veth pair per endpoint. Both devices are made with the first local endpoint and removed with the last
 * one, "last" read from the kernel (the bridge's ports) so a crash never leaves a count wrong. Remote
 * endpoints reach the device through setPeers as static FDB + neighbour entries (peers.ts), so nothing
 * is learned or flooded.
 *
 * The bridge has no address, no IPv6, no forwarding and answers no ARP: a sandbox has no layer-3 path
 * into or through the host, so two overlays on one host are isolated by construction, not by rules.
 * Outbound connectivity is the controller's: a join on a non-internal network returns no gateway but
 * `requiresDefaultGateway`, and the controller gives the sandbox an endpoint on the host's gateway bridge
 * network (Docker's docker_gwbridge) unless another of its endpoints gives it a gateway.
 * Docker containers join through the plugin (joinForHandoff) with a veth pair like a sandbox's and the
 * same `requiresDefaultGateway`: their way out is Docker's own docker_gwbridge (the plugin does not tell
 * Docker to disable it), where Docker also publishes their ports.
 */
import { ConflictError, errorMessage, ForbiddenError, InvalidParameterError, KernelError } from '../../errors.js';
import { DEFAULT_OWNER_GROUP, type KernelOps, type LinkInfo, type VxlanSpec } from '../../kernel/types.js';
import { randomMac } from '../../util/ids.js';
import { canonicalIp, ipFamilyOf } from '../../util/ip.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { parseEndpointOptions, type EndpointOptions } from '../endpoint-options.js';
import { plugHandoffVeth, plugSandboxVeth, sandboxVethIntact } from '../sandbox-veth.js';
import type { DriverEndpoint, DriverNetwork, DriverSandbox, HandoffJoinResult, JoinResult, NetworkDriver, NetworkProgram, RemotePeer } from '../types.js';
import { overlayMtu } from './mtu.js';
import { parseOverlayNetworkOptions, VNI_MAX, VNI_MIN, VXLANID_LIST_OPTION, type OverlayNetworkOptions } from './options.js';
import { reconcilePeers } from './peer-apply.js';

type OverlayNet = DriverNetwork<OverlayNetworkOptions>;
type OverlayEp = DriverEndpoint<EndpointOptions>;

export const OVERLAY_BRIDGE_PREFIX = 'cnmo-';
export const OVERLAY_VXLAN_PREFIX = 'cnmx-';
/** Host ends of endpoint veths: the same names as the bridge driver's (one endpoint, one driver). */
export const OVERLAY_VETH_PREFIX = 'cnmv';
/** Container ends handed over (the same names as the bridge driver's: one endpoint, one driver). */
export const OVERLAY_HANDOFF_PREFIX = 'cnmc';
export const DEFAULT_DATA_PATH_PORT = 4789;
/** When the advertise address is on no local link (NAT, a test), the MTU is figured from Ethernet's. */
const FALLBACK_UNDERLAY_MTU = 1500;

export function overlayBridgeOf(net: { id: string }): string {
  return `${OVERLAY_BRIDGE_PREFIX}${net.id.slice(0, 10)}`;
}

export function overlayVxlanOf(net: { id: string }): string {
  return `${OVERLAY_VXLAN_PREFIX}${net.id.slice(0, 10)}`;
}

export function overlayVethOf(ep: { id: string }): string {
  return `${OVERLAY_VETH_PREFIX}${ep.id.slice(0, 11)}`;
}

/** The end handed to another runtime (Docker), in the daemon's namespace until it moves it into its container. */
export function overlayHandoffOf(ep: { id: string }): string {
  return `${OVERLAY_HANDOFF_PREFIX}${ep.id.slice(0, 11)}`;
}

export interface OverlayDriverConfig {
  /** KernelOps of the daemon's namespace. */
  kernel: KernelOps;
  /** This host's underlay address (the daemon's --advertise-addr): the VXLAN devices' `local`. */
  vtep: string;
  /** UDP port of VXLAN (Docker's --data-path-port); default 4789. */
  dataPathPort?: number;
  /** The interface group of every link the driver creates (see DEFAULT_OWNER_GROUP). */
  ownerGroup?: number;
  logger?: Logger;
}

export class OverlayDriver implements NetworkDriver<OverlayNetworkOptions, EndpointOptions> {
  readonly name = 'overlay';
  readonly scope = 'global' as const;
  readonly needsIpam = true;
  readonly clusterId = { option: VXLANID_LIST_OPTION, min: VNI_MIN, max: VNI_MAX };
  /** The bridge has no address and the host no path onto the network: VIPs are balanced in the sandboxes. */
  readonly balancesInSandboxes = true;

  private readonly kernel: KernelOps;
  private readonly vtep: string;
  private readonly port: number;
  private readonly ownerGroup: number;
  private readonly logger: Logger;
  /** The last setPeers list per network id: programmed whenever the network's device (re)appears. */
  private readonly peers = new Map<string, RemotePeer[]>();
  /** Per network, the tail of its operations: join, leave, setPeers and restore of one network never interleave. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(config: OverlayDriverConfig) {
    const vtep = canonicalIp(config.vtep);
    if (vtep === undefined) throw new InvalidParameterError(`invalid VTEP address ${JSON.stringify(config.vtep)}`);
    const port = config.dataPathPort ?? DEFAULT_DATA_PATH_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidParameterError(`invalid data-path port ${port}`);
    this.kernel = config.kernel;
    this.vtep = vtep;
    this.port = port;
    this.ownerGroup = config.ownerGroup ?? DEFAULT_OWNER_GROUP;
    this.logger = config.logger ?? silentLogger;
  }

  parseNetworkOptions(raw: Record<string, string>): OverlayNetworkOptions {
    return parseOverlayNetworkOptions(raw);
  }

  parseEndpointOptions(raw: Record<string, string>): EndpointOptions {
    return parseEndpointOptions(raw);
  }

  /** A VNI is one segment: two networks of this host on one VNI would be one L2 network. */
  validateNetwork(net: OverlayNet, others: OverlayNet[]): void {
    const vni = vniOf(net);
    const clash = others.find((o) => o.id !== net.id && o.options.vni === vni);
    if (clash) throw new ConflictError(`vxlan id ${vni} is already used by network ${clash.name}`);
  }

  /** Nothing in the kernel yet: the devices come with the first local endpoint. */
  async createNetwork(net: OverlayNet): Promise<NetworkProgram> {
    vniOf(net);
    return { driverState: {} };
  }

  /**
   * Start-up, or a retry: when this host holds the network (either device is there), make both right and
   * program the peers; when it holds neither, nothing (the rejoin of a local endpoint makes them).
   */
  async restoreNetwork(net: OverlayNet): Promise<NetworkProgram> {
    vniOf(net);
    await this.serial(net.id, async () => {
      const bridge = await this.ownLink(overlayBridgeOf(net), 'bridge');
      const vxlan = await this.ownLink(overlayVxlanOf(net), 'vxlan');
      if (bridge || vxlan) await this.ensureDevices(net, true);
    });
    return { driverState: {} };
  }

  /** Idempotent; by then the network has no endpoint on this host. */
  async deleteNetwork(net: OverlayNet): Promise<void> {
    await this.serial(net.id, () => this.removeDevices(net));
    this.peers.delete(net.id);
  }

  async join(net: OverlayNet, ep: OverlayEp, sandbox: DriverSandbox): Promise<JoinResult> {
    const netnsPath = sandbox.netnsPath;
    if (netnsPath === null) throw new ForbiddenError('a sandbox on the host network cannot join an overlay network');
    vniOf(net);
    return this.serial(net.id, async () => {
      const mtu = await this.ensureDevices(net, false);
      const hostInterface = await plugSandboxVeth(this.kernel, ep, netnsPath, {
        hostIf: overlayVethOf(ep), master: overlayBridgeOf(net), mtu, group: this.ownerGroup, networkName: net.name,
        startsWithoutIpv6: sandbox.ownNamespace,
      }).catch(async (err: unknown) => {
        // A first join that fails leaves no devices behind.
        await this.removeDevicesIfUnused(net).catch(() => undefined);
        throw err;
      });
      // No gateway of its own: the way out is the host's gateway network (the controller's), unless internal.
      return { driverState: {}, hostInterface, ...(net.internal ? {} : { requiresDefaultGateway: true }) };
    });
  }

  /**
   * A Docker container's endpoint (remote driver protocol): the veth pair's host end on the network's
   * bridge, the other end left unconfigured in the daemon's namespace (the overlay's MTU, the endpoint's
   * MAC) for Docker to move into its container. No gateway, as for sandboxes: the way out is the
   * runtime's gateway network (Docker's docker_gwbridge), unless internal.
   */
  async joinForHandoff(net: OverlayNet, ep: OverlayEp): Promise<HandoffJoinResult> {
    vniOf(net);
    return this.serial(net.id, async () => {
      const mtu = await this.ensureDevices(net, false);
      const srcName = overlayHandoffOf(ep);
      try {
        await plugHandoffVeth(this.kernel, ep, srcName, { hostIf: overlayVethOf(ep), master: overlayBridgeOf(net), mtu, group: this.ownerGroup });
      } catch (err) {
        await this.removeDevicesIfUnused(net).catch(() => undefined);
        throw err;
      }
      return { driverState: {}, srcName, ...(net.internal ? {} : { requiresDefaultGateway: true }) };
    });
  }

  /** The host end is still a port of the network's bridge (deleting either end deletes both). */
  async handoffPresent(net: OverlayNet, ep: OverlayEp): Promise<boolean> {
    const host = await this.kernel.linkGet(null, overlayVethOf(ep));
    return host !== undefined && host.master === overlayBridgeOf(net);
  }

  async leave(net: OverlayNet, ep: OverlayEp, sandbox: DriverSandbox): Promise<void> {
    await this.serial(net.id, async () => {
      // Deleting the host end removes the sandbox end with it; another runtime's namespace waits for that (DriverSandbox.ownNamespace).
      await this.kernel.linkDel(null, overlayVethOf(ep), { background: true, untilDestroyed: !sandbox.ownNamespace });
      await this.removeDevicesIfUnused(net);
    });
  }

  async endpointIntact(net: OverlayNet, ep: OverlayEp, sandbox: DriverSandbox): Promise<boolean> {
    if (!(await sandboxVethIntact(this.kernel, ep, sandbox.netnsPath, overlayVethOf(ep), overlayBridgeOf(net)))) return false;
    const vxlan = await this.kernel.linkGet(null, overlayVxlanOf(net));
    return vxlan !== undefined && this.vxlanRight(net, vxlan) && vxlan.master === overlayBridgeOf(net) && vxlan.up;
  }

  /** Both devices of every network (whether this host has them or not) and every endpoint's host end. */
  ownedLinks(nets: OverlayNet[], eps: OverlayEp[]): string[] {
    return [...nets.flatMap((n) => [overlayBridgeOf(n), overlayVxlanOf(n)]), ...eps.map(overlayVethOf), ...eps.map(overlayHandoffOf)];
  }

  /**
   * The endpoints of this network on other hosts. Kept for when the device appears; programmed now when it
   * is there. Entries that cannot be programmed are logged; kernel failures are thrown after every entry was
   * tried (the next call tries them again). Devices whose bridge has no endpoint left (a join cut short by
   * a crash before the controller recorded it) are removed here, the controller calling this periodically.
   */
  async setPeers(net: OverlayNet, peers: RemotePeer[]): Promise<void> {
    this.peers.set(net.id, peers.map((p) => ({ mac: p.mac, vtep: p.vtep, ips: p.ips.map(withoutPrefix) })));
    await this.serial(net.id, async () => {
      const bridge = await this.ownLink(overlayBridgeOf(net), 'bridge');
      if (bridge && (await this.endpointPorts(net)).length === 0) return this.removeDevices(net);
      if (await this.ownLink(overlayVxlanOf(net), 'vxlan')) await this.programPeers(net);
    });
  }

  /** The bridge and the VXLAN device as they should be; returns the MTU of the network's interfaces. */
  private async ensureDevices(net: OverlayNet, repair: boolean): Promise<number> {
    const brName = overlayBridgeOf(net);
    const vxName = overlayVxlanOf(net);
    const bridge = await this.ownLink(brName, 'bridge');
    // A join to a bridge that is there takes its MTU (made right, repaired on restore) without reading the underlay.
    const mtu = net.options.mtu ?? (bridge && !repair ? bridge.mtu : await this.defaultMtu());
    if (!bridge) await this.createBridge(brName, mtu);
    else {
      if (bridge.mtu !== mtu) await this.kernel.linkSet(null, brName, { mtu });
      if (!bridge.up) await this.kernel.linkSet(null, brName, { up: true });
    }
    let vxlan = await this.ownLink(vxName, 'vxlan');
    if (vxlan && !this.vxlanRight(net, vxlan)) {
      this.logger.warn('VXLAN device does not match its network; re-creating it', { network: net.name, device: vxName, vxlan: vxlan.vxlan });
      await this.kernel.linkDel(null, vxName);
      vxlan = undefined;
    }
    if (!vxlan) {
      await this.createVxlan(net, mtu);
      await this.programPeers(net);
      return mtu;
    }
    if (vxlan.mtu !== mtu) await this.kernel.linkSet(null, vxName, { mtu });
    if (vxlan.master !== brName) await this.kernel.linkSet(null, vxName, { master: brName });
    if (!vxlan.up) await this.kernel.linkSet(null, vxName, { up: true });
    if (repair) {
      await this.bridgeSysctls(brName);
      await this.programPeers(net);
    }
    return mtu;
  }

  /**
   * No address, and nothing that would make one useful: IPv6 off (no link-local), IPv4 forwarding off for
   * what arrives on it, and no ARP answers for the host's addresses (arp_ignore 8).
   */
  private async createBridge(name: string, mtu: number): Promise<void> {
    await this.kernel.linkAdd(null, { kind: 'bridge', name, mtu, mac: randomMac(), multicastSnooping: false, group: this.ownerGroup });
    try {
      await this.bridgeSysctls(name);
      await this.kernel.linkSet(null, name, { up: true });
    } catch (err) {
      await this.kernel.linkDel(null, name).catch(() => undefined);
      throw err;
    }
  }

  private async bridgeSysctls(name: string): Promise<void> {
    await this.kernel.sysctlSet(null, `net.ipv6.conf.${name}.disable_ipv6`, '1');
    await this.kernel.sysctlSet(null, `net.ipv4.conf.${name}.forwarding`, '0');
    await this.kernel.sysctlSet(null, `net.ipv4.conf.${name}.arp_ignore`, '8');
  }

  private vxlanSpec(net: OverlayNet, mtu: number): VxlanSpec {
    return {
      kind: 'vxlan',
      name: overlayVxlanOf(net),
      vni: vniOf(net),
      local: this.vtep,
      dstPort: this.port,
      learning: false,
      arpProxy: true,
      ...(net.options.txChecksumOffload === undefined ? {} : { txChecksumOffload: net.options.txChecksumOffload }),
      mtu,
      master: overlayBridgeOf(net),
      up: true,
      group: this.ownerGroup,
    };
  }

  private async createVxlan(net: OverlayNet, mtu: number): Promise<void> {
    await this.kernel.linkAdd(null, this.vxlanSpec(net, mtu)).catch((err: unknown) => {
      if (!(err instanceof KernelError && err.errno === 'EEXIST')) throw err;
      // The name is free (checked), so another device holds this VNI and port.
      throw new ConflictError(`vxlan id ${vniOf(net)} of network ${net.name} is already used by another VXLAN device on this host`, { cause: err });
    });
  }

  /** The tunnel settings that make the device this network's (the checksum offload only when the option says). */
  private vxlanRight(net: OverlayNet, link: LinkInfo): boolean {
    const v = link.vxlan;
    if (!v) return false;
    const tx = net.options.txChecksumOffload;
    return (
      v.vni === vniOf(net) && canonicalIp(v.local ?? '') === this.vtep && v.port === this.port && !v.learning && v.arpProxy &&
      (tx === undefined || v.txChecksumOffload === undefined || v.txChecksumOffload === tx)
    );
  }

  private async programPeers(net: OverlayNet): Promise<void> {
    const result = await reconcilePeers(this.kernel, null, {
      ifname: overlayVxlanOf(net), peers: this.peers.get(net.id) ?? [], localVtep: this.vtep,
    });
    if (result.plan.rejected.length > 0) {
      this.logger.warn('overlay peers not programmed', { network: net.name, rejected: result.plan.rejected });
    }
    if (result.failed.length > 0) {
      const first = result.failed[0]!;
      throw new KernelError(
        `overlay network ${net.name}: ${result.failed.length} of ${result.plan.ops.length} peer entries failed (first: ${first.op.op}: ${errorMessage(first.error)})`,
        first.error instanceof KernelError ? first.error.errno : undefined,
        { cause: first.error },
      );
    }
  }

  /** Ports of the network's bridge other than its VXLAN device: the local endpoints, as the kernel has them. */
  private async endpointPorts(net: OverlayNet): Promise<string[]> {
    const brName = overlayBridgeOf(net);
    const vxName = overlayVxlanOf(net);
    return (await this.kernel.linkList(null)).filter((l) => l.master === brName && l.name !== vxName).map((l) => l.name);
  }

  private async removeDevicesIfUnused(net: OverlayNet): Promise<void> {
    if ((await this.endpointPorts(net)).length === 0) await this.removeDevices(net);
  }

  /**
   * The VXLAN device (and its FDB and neighbour entries with it), then the bridge; only links that are this
   * driver's: whatever else holds a name is left alone, as the bridge driver leaves a bridge it did not make.
   */
  private async removeDevices(net: OverlayNet): Promise<void> {
    const own = async (name: string, kind: string) => {
      const link = await this.kernel.linkGet(null, name);
      return link !== undefined && link.kind === kind && link.group === this.ownerGroup;
    };
    if (await own(overlayVxlanOf(net), 'vxlan')) await this.kernel.linkDel(null, overlayVxlanOf(net));
    // With its last port gone, nothing is stacked on the bridge: it may finish in the background.
    if (await own(overlayBridgeOf(net), 'bridge')) await this.kernel.linkDel(null, overlayBridgeOf(net), { background: true });
  }

  /** The link when it is this driver's (kind and owner mark); a foreign link holding the name is an error. */
  private async ownLink(name: string, kind: 'bridge' | 'vxlan'): Promise<LinkInfo | undefined> {
    const link = await this.kernel.linkGet(null, name);
    if (!link) return undefined;
    if (link.kind !== kind || link.group !== this.ownerGroup) {
      throw new ForbiddenError(`interface ${name} exists and is not cnm's ${kind}: remove or rename it`);
    }
    return link;
  }

  /** The underlay's MTU (the link holding the advertise address) less the VXLAN overhead of its family. */
  private async defaultMtu(): Promise<number> {
    const family = ipFamilyOf(this.vtep) === 6 ? 6 : 4;
    const holder = (await this.kernel.addrList(null)).find((a) => canonicalIp(withoutPrefix(a.cidr)) === this.vtep);
    const link = holder && (await this.kernel.linkGet(null, holder.ifname));
    if (!link) this.logger.warn('advertise address is on no local link; overlay MTU figured from 1500', { vtep: this.vtep });
    return overlayMtu(link?.mtu ?? FALLBACK_UNDERLAY_MTU, family);
  }

  private serial<T>(netId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(netId) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(netId, tail);
    void tail.then(() => {
      if (this.queues.get(netId) === tail) this.queues.delete(netId);
    });
    return run;
  }
}

function vniOf(net: OverlayNet): number {
  const vni = net.options.vni;
  if (vni === undefined) throw new InvalidParameterError(`overlay network ${net.name} has no vxlan id (option ${VXLANID_LIST_OPTION})`);
  return vni;
}

function withoutPrefix(address: string): string {
  const slash = address.indexOf('/');
  return slash < 0 ? address : address.slice(0, slash);
}
