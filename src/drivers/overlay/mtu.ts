/**
 * The MTU of an overlay network: what is left of the underlay's once a frame is wrapped. A VXLAN packet
 * adds an outer IP header (20 bytes IPv4, 40 IPv6), UDP (8), the VXLAN header (8) and the inner Ethernet
 * header (14): 1500 − 50 = 1450 on an IPv4 underlay, 1500 − 70 on IPv6 (Docker's numbers). An MTU any
 * larger makes the kernel refuse full-size packets with DF set (or fragment the outer ones): the black
 * holes users meet as hanging TLS handshakes (moby#20178).
 */
export const VXLAN_OVERHEAD = { 4: 50, 6: 70 } as const;
/** The smallest IPv4 MTU (RFC 791); an underlay that leaves less cannot carry an overlay. */
export const MIN_OVERLAY_MTU = 68;

export function overlayMtu(underlayMtu: number, underlayFamily: 4 | 6): number {
  const mtu = underlayMtu - VXLAN_OVERHEAD[underlayFamily];
  if (!Number.isInteger(underlayMtu) || mtu < MIN_OVERLAY_MTU) {
    throw new RangeError(`an underlay MTU of ${underlayMtu} leaves no room for an overlay (IPv${underlayFamily} outer headers)`);
  }
  return mtu;
}
