/**
 * The kernel floor for connect / disconnect: the kernel work a bridge connect does and nothing else,
 * done in this process with cnm's own in-process rtnetlink code (src/kernel/netlink), the same calls
 * the bridge driver and the controller make for a connect, without the controller, the store, the
 * sandbox files or DNS. The sandbox namespace already exists (as it does for a running sandbox).
 *
 * Connect (the bridge driver's join, then the controller's default route):
 *   veth <host end> master <bridge>, peer eth1 (its MAC) created straight into the sandbox namespace
 *   host end: disable_ipv6=1, up ; sandbox end: address, up ; default route via the gateway
 * The sandbox namespace has net.ipv6.conf.default.disable_ipv6=1, as every namespace cnm makes, so the
 * sandbox end is born without IPv6 and needs no sysctl write.
 * Disconnect (the driver's leave): delete the host end in the background (retired now, destroyed by the
 * reaper on a libuv thread, as cnm does) and the bridge's neighbour entry for the address.
 * There is no firewall step: cnm's per-network rules match the bridge, a connect adds no rule or set
 * element per endpoint (only service backends do, and the bench's sandboxes have no services).
 *
 * A "fresh" bridge is one made for a single connect, as a new network's is (the first-endpoint row):
 * made up, with its gateway address, without multicast snooping, DAD or (IPv4-only) IPv6, as cnm makes
 * its bridges; made and
 * removed outside the timed part.
 */
import { NetlinkKernel } from '../../src/kernel/netlink/kernel.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../../test/helpers/netns.js';

const BRIDGE = 'cnmflbr0';
const FRESH_BRIDGE = 'cnmflbr1';
const SUBNET_PREFIX = '10.77';
const GATEWAY = `${SUBNET_PREFIX}.0.1`;
const ENDPOINT = `${SUBNET_PREFIX}.15.250`;
const MAC = '02:42:0a:4d:0f:fa';

export class KernelFloor {
  private ports = 0;
  /** The host end of the measured veth: a new name each connect, as each cnm endpoint has its own. */
  private hostVeth = 'cnmfv0';
  private connects = 0;

  private constructor(
    private readonly kernel: NetlinkKernel,
    private readonly hostNs: string,
    private readonly sandboxNs: string,
    private readonly fillerNs: string,
  ) {}

  static async create(): Promise<KernelFloor> {
    const hostNs = createTestNetns('cnmt-fh');
    const sandboxNs = createTestNetns('cnmt-fs');
    const fillerNs = createTestNetns('cnmt-ff');
    const kernel = new NetlinkKernel({ hostNetns: netnsPath(hostNs) });
    const floor = new KernelFloor(kernel, hostNs, sandboxNs, fillerNs);
    try {
      await kernel.sysctlSet(netnsPath(sandboxNs), 'net.ipv6.conf.default.disable_ipv6', '1');
      await floor.makeBridge(BRIDGE);
      return floor;
    } catch (err) {
      await floor.destroy();
      throw err;
    }
  }

  /** Grow the bridge to `count` ports besides the measured one (not measured). */
  async fillTo(count: number): Promise<void> {
    for (let i = this.ports; i < count; i++) {
      await this.kernel.linkAdd(null, {
        kind: 'veth',
        name: `cnmff${i}`,
        master: BRIDGE,
        up: true,
        peer: { name: `f${i}`, netns: netnsPath(this.fillerNs), up: true },
      });
      this.ports = i + 1;
    }
  }

  /** A connect to the shared bridge (the one `fillTo` fills). */
  connect(): Promise<void> {
    return this.connectTo(BRIDGE);
  }

  disconnect(): Promise<void> {
    return this.disconnectFrom(BRIDGE);
  }

  /** Make the bridge of a "new network" for connectFresh (not measured). */
  prepareFresh(): Promise<void> {
    return this.makeBridge(FRESH_BRIDGE);
  }

  /** The first port of a bridge made by prepareFresh. */
  connectFresh(): Promise<void> {
    return this.connectTo(FRESH_BRIDGE);
  }

  /** Disconnect from the fresh bridge and remove it (not measured). */
  async teardownFresh(): Promise<void> {
    await this.disconnectFrom(FRESH_BRIDGE);
    await this.kernel.linkDel(null, FRESH_BRIDGE, { background: true });
  }

  private async makeBridge(name: string): Promise<void> {
    await this.kernel.linkAdd(null, { kind: 'bridge', name, multicastSnooping: false });
    // As cnm makes an IPv4-only network's bridge: no DAD, and no IPv6 at all.
    await this.kernel.sysctlSet(null, `net.ipv6.conf.${name}.accept_dad`, '0');
    await this.kernel.sysctlSet(null, `net.ipv6.conf.${name}.disable_ipv6`, '1');
    await this.kernel.addrAdd(null, name, `${GATEWAY}/20`);
    await this.kernel.linkSet(null, name, { up: true });
  }

  private async connectTo(bridge: string): Promise<void> {
    const k = this.kernel;
    const sandbox = netnsPath(this.sandboxNs);
    this.hostVeth = `cnmfv${this.connects++ % 100_000}`;
    const host = this.hostVeth;
    await k.linkAdd(null, { kind: 'veth', name: host, master: bridge, peer: { name: 'eth1', netns: sandbox, mac: MAC, up: false } });
    await k.sysctlSet(null, `net.ipv6.conf.${host}.disable_ipv6`, '1');
    await k.linkSet(null, host, { up: true });
    await k.addrAdd(sandbox, 'eth1', `${ENDPOINT}/20`);
    await k.linkSet(sandbox, 'eth1', { up: true });
    await k.routeReplace(sandbox, { dst: 'default', via: GATEWAY, family: 4 });
  }

  private async disconnectFrom(bridge: string): Promise<void> {
    await this.kernel.linkDel(null, this.hostVeth, { background: true });
    await this.kernel.neighDel(null, bridge, ENDPOINT);
  }

  /** Wait until every link retired by a disconnect is destroyed (untimed, between samples). */
  settle(): Promise<void> {
    return this.kernel.settle();
  }

  /** Waits for the reaper first, so nothing is left in the namespaces' teardown path. */
  async destroy(): Promise<void> {
    await this.kernel.settle().catch(() => undefined);
    this.kernel.close();
    for (const ns of [this.hostNs, this.sandboxNs, this.fillerNs]) deleteTestNetns(ns);
  }
}
