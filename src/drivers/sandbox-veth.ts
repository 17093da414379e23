/**
 * An endpoint's veth pair between a host-side bridge and a sandbox, as the bridge and overlay drivers make
 * it: the host end a port of `master` in the daemon's namespace, the sandbox end created directly inside
 * the sandbox under its final name with the endpoint's MAC, MTU, sysctls and addresses. All or nothing:
 * a failure removes the pair again before it is reported. The host end gets a MAC of its own choosing
 * (random, locally administered, as the kernel would give it), so the driver can report it without asking
 * the kernel, and a udev "persistent" MAC policy leaves an address set explicitly alone.
 */
import { KernelError } from '../errors.js';
import type { KernelOps } from '../kernel/types.js';
import type { EndpointOptions } from './endpoint-options.js';
import { randomMac } from '../util/ids.js';
import type { DriverEndpoint, HostInterface } from './types.js';

export interface SandboxVethSpec {
  /** Host end's name. */
  hostIf: string;
  /** The bridge it is a port of. */
  master: string;
  mtu?: number;
  /** Owner mark of both ends. */
  group: number;
  /** For the error when the bridge is full. */
  networkName: string;
  /** The sandbox's new interfaces start without IPv6 (DriverSandbox.ownNamespace). */
  startsWithoutIpv6?: boolean;
}

export async function plugSandboxVeth(
  kernel: KernelOps,
  ep: DriverEndpoint<EndpointOptions>,
  netnsPath: string,
  spec: SandboxVethSpec,
): Promise<HostInterface> {
  const { hostIf, mtu, group } = spec;
  const hostMac = randomMac();
  await kernel
    .linkAdd(null, {
      kind: 'veth',
      name: hostIf,
      mac: hostMac,
      mtu,
      master: spec.master,
      group,
      peer: { name: ep.ifName, netns: netnsPath, mtu, mac: ep.macAddress, up: false, group },
    })
    .catch((err: unknown) => {
      if (!(err instanceof KernelError && err.errno === 'EXFULL')) throw err;
      // What Docker users meet as "exchange full" at the 1,024th container on one bridge network.
      throw new KernelError(`network ${spec.networkName} is full: a Linux bridge takes at most 1,024 endpoints`, 'EXFULL', { cause: err });
    });
  try {
    await raiseHostEnd(kernel, hostIf);
    for (const s of ep.options.sysctls) {
      await kernel.sysctlSet(netnsPath, s.key.replace('IFNAME', ep.ifName), s.value);
    }
    if (!ep.ipv6Address) {
      // As Docker does on an IPv4-only network: no link-local address, so no MLD reports and neighbour
      // solicitations flooded to every port of the bridge each time a sandbox joins (O(endpoints)).
      // In a namespace cnm made the interface was born that way (one write and the kernel's IPv6
      // set-up of the interface less per connect).
      if (!spec.startsWithoutIpv6) await kernel.sysctlSet(netnsPath, `net.ipv6.conf.${ep.ifName}.disable_ipv6`, '1');
    } else {
      // Duplicate address detection would hold the address "tentative" for a second or more; IPAM
      // already guarantees uniqueness on the network, as Docker assumes too.
      await kernel.sysctlSet(netnsPath, `net.ipv6.conf.${ep.ifName}.accept_dad`, '0');
      if (spec.startsWithoutIpv6) await kernel.sysctlSet(netnsPath, `net.ipv6.conf.${ep.ifName}.disable_ipv6`, '0');
    }
    if (ep.ipv4Address) await kernel.addrAdd(netnsPath, ep.ifName, ep.ipv4Address);
    if (ep.ipv6Address) await kernel.addrAdd(netnsPath, ep.ifName, ep.ipv6Address);
    await kernel.linkSet(netnsPath, ep.ifName, { up: true });
  } catch (err) {
    await kernel.linkDel(null, hostIf).catch(() => undefined);
    throw err;
  }
  return { name: hostIf, mac: hostMac, bridge: spec.master };
}

/**
 * The pair for another runtime's container (Docker through the plugin): the host end an up port of
 * `master` without IPv6 as for a sandbox, the other end (`srcName`) left down in the daemon's namespace
 * with the endpoint's MAC and the MTU, for the runtime to move into its container and address itself.
 * Deleting the host end removes both.
 */
export async function plugHandoffVeth(
  kernel: KernelOps,
  ep: Pick<DriverEndpoint<unknown>, 'macAddress'>,
  srcName: string,
  spec: Omit<SandboxVethSpec, 'networkName'>,
): Promise<void> {
  const { hostIf, mtu, group } = spec;
  await kernel.linkAdd(null, {
    kind: 'veth', name: hostIf, mtu, master: spec.master, group,
    peer: { name: srcName, mtu, mac: ep.macAddress, up: false, group },
  });
  try {
    await raiseHostEnd(kernel, hostIf);
  } catch (err) {
    await kernel.linkDel(null, hostIf).catch(() => undefined);
    throw err;
  }
}

/**
 * The host end is only a bridge port: without IPv6 it gets no link-local address and no fe80::/64 route,
 * which otherwise pile up one per endpoint in the daemon's table and make every IPv6 packet the bridge
 * receives (MLD, neighbour solicitations of each new sandbox) walk all of them. Up only then: made up at
 * creation (one request less), the first port of a new bridge cost ~1 ms more (bench first-endpoint row,
 * p50 2.9 -> 3.9 ms).
 */
async function raiseHostEnd(kernel: KernelOps, hostIf: string): Promise<void> {
  await kernel.sysctlSet(null, `net.ipv6.conf.${hostIf}.disable_ipv6`, '1');
  await kernel.linkSet(null, hostIf, { up: true });
}

/** Start-up check: the host end is an up port of `master`, the sandbox end is up and holds the endpoint's addresses. */
export async function sandboxVethIntact(
  kernel: KernelOps,
  ep: DriverEndpoint<unknown>,
  netnsPath: string | null,
  hostIf: string,
  master: string,
): Promise<boolean> {
  if (netnsPath === null) return false;
  try {
    const host = await kernel.linkGet(null, hostIf);
    if (!host || host.master !== master || !host.up) return false;
    const inner = await kernel.linkGet(netnsPath, ep.ifName);
    if (!inner || inner.kind !== 'veth' || !inner.up) return false;
    const addrs = (await kernel.addrList(netnsPath, ep.ifName)).map((a) => a.cidr);
    return [ep.ipv4Address, ep.ipv6Address].every((a) => a === undefined || addrs.includes(a));
  } catch (err) {
    if (err instanceof KernelError) return false;
    throw err;
  }
}
