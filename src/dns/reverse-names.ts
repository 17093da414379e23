/**
 * PTR query names ⇄ addresses: "4.3.2.1.in-addr.arpa" is 1.2.3.4, "b.a.9.8....ip6.arpa" (32 nibbles) an
 * IPv6 address. Partial names (a whole /24 zone, say) are not addresses and yield undefined: those go
 * upstream like any other name we do not own.
 */
import { formatIp } from '../util/ip.js';

const IPV4_SUFFIX = '.in-addr.arpa';
const IPV6_SUFFIX = '.ip6.arpa';
const OCTET = /^(0|[1-9][0-9]{0,2})$/;
const NIBBLE = /^[0-9a-f]$/;

/** The canonical address text a lowercase PTR query name stands for, or undefined. */
export function addressFromReverseName(name: string): string | undefined {
  if (name.endsWith(IPV4_SUFFIX)) {
    const octets = name.slice(0, -IPV4_SUFFIX.length).split('.');
    if (octets.length !== 4 || !octets.every((o) => OCTET.test(o) && Number(o) <= 255)) return undefined;
    return octets.reverse().join('.');
  }
  if (name.endsWith(IPV6_SUFFIX)) {
    const nibbles = name.slice(0, -IPV6_SUFFIX.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => NIBBLE.test(n))) return undefined;
    return formatIp({ family: 6, value: BigInt(`0x${nibbles.reverse().join('')}`) });
  }
  return undefined;
}

/** The PTR query name for an address given as its 4 or 16 bytes (inverse of addressFromReverseName). */
export function reverseNameOf(addressBytes: Buffer): string {
  if (addressBytes.length === 4) return `${[...addressBytes].reverse().join('.')}${IPV4_SUFFIX}`;
  return `${addressBytes.toString('hex').split('').reverse().join('.')}${IPV6_SUFFIX}`;
}
