/** Address helpers for rendering: split "a.b.c.d/len", find an address's pool and gateway. */
import { BlockList, isIP } from 'node:net';
import type { NetworkRecord } from '../controller/records.js';
import type { Pool } from '../ipam/types.js';

export function splitCidr(cidr: string | undefined): { address: string; prefixLen: number } {
  if (!cidr) return { address: '', prefixLen: 0 };
  const slash = cidr.indexOf('/');
  if (slash < 0) return { address: cidr, prefixLen: 0 };
  return { address: cidr.slice(0, slash), prefixLen: Number.parseInt(cidr.slice(slash + 1), 10) || 0 };
}

export function subnetContains(subnet: string, address: string): boolean {
  const { address: base, prefixLen } = splitCidr(subnet);
  const family = isIP(base);
  if (family === 0 || isIP(address) !== family) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  try {
    const list = new BlockList();
    list.addSubnet(base, prefixLen, type);
    return list.check(address, type);
  } catch {
    return false;
  }
}

export function poolOf(network: NetworkRecord, address: string): Pool | undefined {
  if (!address) return undefined;
  return network.ipam.pools.find((p) => subnetContains(p.subnet, address));
}

/**
 * The gateway an endpoint sees: its pool's gateway. Internal networks have no default route, so
 * Docker shows no gateway for their endpoints.
 */
export function gatewayFor(network: NetworkRecord, cidr: string | undefined): string {
  if (network.internal) return '';
  return poolOf(network, splitCidr(cidr).address)?.gateway ?? '';
}
