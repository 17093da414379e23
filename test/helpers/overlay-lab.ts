/**
 * A multi-host overlay on one machine, for real-kernel tests: an underlay namespace holding a bridge
 * (the "switch"), N host namespaces each wired to it by a veth with an underlay address, and in each host
 * what an overlay network needs — a bridge and a VXLAN device per VNI — plus sandbox namespaces attached
 * by veths. Everything is made through KernelOps (one NetlinkKernel per namespace), every namespace is
 * cnmt-*, every link cnm*; close() removes all of it, also after a failure.
 */
import { NetlinkKernel } from '../../src/kernel/netlink/kernel.js';
import { DEFAULT_OWNER_GROUP, type KernelOps } from '../../src/kernel/types.js';
import type { RemotePeer } from '../../src/drivers/overlay/peers.js';
import { createTestNetns, deleteTestNetns, netnsPath } from './netns.js';

export const UNDERLAY_SUBNET = '10.199.0';
export const UNDERLAY_MTU = 1500;

export interface LabHost {
  index: number;
  ns: string;
  path: string;
  vtep: string;
  kernel: KernelOps;
}

export interface LabEndpoint extends RemotePeer {
  name: string;
  host: LabHost;
  vni: number;
  ip: string;
  /** The sandbox namespace's file. */
  path: string;
  /** The sandbox's interface and its host-side peer. */
  ifname: string;
  hostIfname: string;
}

export function bridgeOf(vni: number): string {
  return `cnmbr${vni}`;
}

export function vxlanOf(vni: number): string {
  return `cnmvx${vni}`;
}

export class OverlayLab {
  readonly hosts: LabHost[] = [];
  readonly endpoints: LabEndpoint[] = [];
  private readonly namespaces: string[] = [];
  private readonly kernels: KernelOps[] = [];
  private underlay: KernelOps | undefined;

  private newNamespace(): { ns: string; path: string } {
    const ns = createTestNetns();
    this.namespaces.push(ns);
    return { ns, path: netnsPath(ns) };
  }

  private newKernel(path: string): KernelOps {
    const kernel = new NetlinkKernel({ hostNetns: path });
    this.kernels.push(kernel);
    return kernel;
  }

  /** The underlay switch and `count` hosts on it (10.199.0.1, .2, ...). */
  async start(count: number): Promise<void> {
    const { path: underlayPath } = this.newNamespace();
    this.underlay = this.newKernel(underlayPath);
    await this.underlay.linkAdd(null, { kind: 'bridge', name: 'cnmul0', up: true });
    for (let index = 1; index <= count; index++) {
      const { ns, path } = this.newNamespace();
      await this.underlay.linkAdd(null, {
        kind: 'veth', name: `cnmul${index}`, master: 'cnmul0', up: true, mtu: UNDERLAY_MTU,
        peer: { name: 'cnmeth0', netns: path, up: true, mtu: UNDERLAY_MTU },
      });
      const host: LabHost = { index, ns, path, vtep: `${UNDERLAY_SUBNET}.${index}`, kernel: this.newKernel(path) };
      await host.kernel.addrAdd(null, 'cnmeth0', `${host.vtep}/24`);
      this.hosts.push(host);
    }
  }

  /** A bridge and a VXLAN device for `vni` on `host`, as the overlay driver makes them. */
  async addNetwork(host: LabHost, vni: number, mtu: number, txChecksumOffload = false): Promise<void> {
    await host.kernel.linkAdd(null, { kind: 'bridge', name: bridgeOf(vni), mtu, up: true, multicastSnooping: false, group: DEFAULT_OWNER_GROUP });
    await host.kernel.linkAdd(null, {
      kind: 'vxlan', name: vxlanOf(vni), vni, local: host.vtep, learning: false, arpProxy: true, txChecksumOffload,
      mtu, master: bridgeOf(vni), up: true, group: DEFAULT_OWNER_GROUP,
    });
  }

  /** An empty namespace (a sandbox for a driver to join), removed with the lab. */
  addSandbox(): string {
    return this.newNamespace().path;
  }

  /** A sandbox namespace on `host` with one interface on the VNI's bridge. */
  async addEndpoint(name: string, host: LabHost, vni: number, ip: string, mac: string, mtu: number): Promise<LabEndpoint> {
    const { path } = this.newNamespace();
    const hostIfname = `cnmv${name}`;
    await host.kernel.linkAdd(null, {
      kind: 'veth', name: hostIfname, master: bridgeOf(vni), up: true, mtu, group: DEFAULT_OWNER_GROUP,
      peer: { name: 'cnmeth0', netns: path, mac, mtu, up: true },
    });
    await host.kernel.addrAdd(path, 'cnmeth0', `${ip}/24`);
    const endpoint: LabEndpoint = { name, host, vni, ip, path, mac, ips: [ip], vtep: host.vtep, ifname: 'cnmeth0', hostIfname };
    this.endpoints.push(endpoint);
    return endpoint;
  }

  /** The remote peers a host's device for `vni` should know: every endpoint of that VNI. */
  peersOf(vni: number, except: string[] = []): RemotePeer[] {
    return this.endpoints
      .filter((e) => e.vni === vni && !except.includes(e.name))
      .map(({ mac, ips, vtep }) => ({ mac, ips, vtep }));
  }

  close(): void {
    for (const kernel of this.kernels) kernel.close();
    for (const ns of this.namespaces.reverse()) deleteTestNetns(ns);
  }
}
