/**
 * A service record as the other layers see it: its VIP address claims (IPAM, store), its balancing per
 * family (firewall, on the host or inside sandboxes) and its names (embedded DNS). Pure conversions.
 */
import type { DiscoveryService } from '../dns/discovery.js';
import type { FirewallService } from '../firewall/types.js';
import type { EndpointRecord, ServiceRecord } from './records.js';
import type { AddressClaim } from './repository.js';

export function vipClaims(svc: ServiceRecord): AddressClaim[] {
  const claims: AddressClaim[] = [];
  if (svc.vip && svc.vipPoolId) claims.push({ poolId: svc.vipPoolId, address: svc.vip.split('/')[0]! });
  if (svc.vip6 && svc.vip6PoolId) claims.push({ poolId: svc.vip6PoolId, address: svc.vip6.split('/')[0]! });
  return claims;
}

/** The service's VIPs (IPv4 first), bare. */
export function vipAddresses(svc: ServiceRecord): string[] {
  return [svc.vip, svc.vip6].flatMap((v) => (v ? [v.split('/')[0]!] : []));
}

/** One firewall service per VIP, each balancing over the backends' addresses of its family. */
export function firewallServicesOf(svc: ServiceRecord, backends: readonly EndpointRecord[]): FirewallService[] {
  const of = (cidr: string | undefined) => (cidr ? [cidr.split('/')[0]!] : []);
  const out: FirewallService[] = [];
  if (svc.vip) out.push({ id: svc.id, vip: of(svc.vip)[0]!, ports: svc.ports, backends: backends.flatMap((ep) => of(ep.ipv4Address)) });
  if (svc.vip6) out.push({ id: svc.id, vip: of(svc.vip6)[0]!, ports: svc.ports, backends: backends.flatMap((ep) => of(ep.ipv6Address)) });
  return out;
}

/** The service as the DNS sees it: NAME → the VIP (vip) or the backends (dnsrr); tasks.NAME → the backends. */
export function discoveryService(svc: ServiceRecord, backends: readonly EndpointRecord[]): DiscoveryService {
  return {
    id: svc.id,
    networkId: svc.networkId,
    name: svc.name,
    ...(svc.vip ? { vip: svc.vip } : {}),
    ...(svc.vip6 ? { vip6: svc.vip6 } : {}),
    backends: backends.map((ep) => ({
      ...(ep.ipv4Address ? { ipv4: ep.ipv4Address } : {}),
      ...(ep.ipv6Address ? { ipv6: ep.ipv6Address } : {}),
    })),
  };
}
