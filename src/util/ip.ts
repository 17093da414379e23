/**
 * IPv4/IPv6 addresses and CIDR blocks as plain values. Addresses are BigInts so both families share one
 * arithmetic; formatting follows Go's net/netip (what Docker prints): RFC 5952 for IPv6, with
 * IPv4-mapped addresses shown as ::ffff:a.b.c.d.
 *
 * Parsing is strict like netip: no leading zeros in IPv4 octets or prefix lengths, no zones.
 * `parse*` return undefined on bad input; `require*` throw InvalidParameterError naming what was bad.
 */
import { InvalidParameterError } from '../errors.js';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A CIDR block; `address` is kept as written (it may have host bits set, see `maskCidr`). */
export interface IpCidr {
  readonly family: IpFamily;
  readonly address: bigint;
  readonly prefixLength: number;
}

export function addressBits(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const value = parseIpv6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === undefined ? undefined : { family: 4, value: BigInt(value) };
}

/** IPv4 dotted quad as an unsigned 32-bit number. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (part.length > 3 || !DECIMAL.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0]!, halves.length === 1 ? 'whole' : 'head');
  const tail = halves.length === 2 ? groupsOf(halves[1]!, 'tail') : [];
  if (head === undefined || tail === undefined) return undefined;
  const explicit = head.length + tail.length;
  // "::" stands for at least one zero group; without it all eight groups must be written.
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...tail];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(group);
  return value;
}

/** Hex groups of one side of "::"; an embedded IPv4 address may end the last side. */
function groupsOf(side: string, position: 'whole' | 'head' | 'tail'): number[] | undefined {
  if (side === '') return position === 'whole' ? undefined : [];
  const parts = side.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const isLast = i === parts.length - 1;
    if (isLast && position !== 'head' && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push(Math.floor(v4 / 65536), v4 % 65536);
    } else if (HEX_GROUP.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

export function formatIp(address: IpAddress): string {
  return address.family === 4 ? formatIpv4(Number(address.value)) : formatIpv6(address.value);
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

const IPV4_MAPPED_PREFIX = 0xffffn << 32n;

function formatIpv6(value: bigint): string {
  if (value >> 32n === 0xffffn) return `::ffff:${formatIpv4(Number(value - IPV4_MAPPED_PREFIX))}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

export function ipFamilyOf(text: string): IpFamily | undefined {
  return parseIp(text)?.family;
}

/** The address re-formatted canonically ("FD00:0::1" → "fd00::1"), or undefined when invalid. */
export function canonicalIp(text: string): string | undefined {
  const address = parseIp(text);
  return address && formatIp(address);
}

export function parseCidr(text: string): IpCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || lengthText.length > 3 || !DECIMAL.test(lengthText)) return undefined;
  const prefixLength = Number(lengthText);
  if (prefixLength > addressBits(address.family)) return undefined;
  return { family: address.family, address: address.value, prefixLength };
}

export function formatCidr(cidr: IpCidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.address })}/${cidr.prefixLength}`;
}

/** Number of host bits (32 - prefix length for IPv4). */
export function hostBits(cidr: IpCidr): number {
  return addressBits(cidr.family) - cidr.prefixLength;
}

export function cidrSize(cidr: IpCidr): bigint {
  return 1n << BigInt(hostBits(cidr));
}

/** The block with its host bits cleared ("10.0.0.7/24" → "10.0.0.0/24"). */
export function maskCidr(cidr: IpCidr): IpCidr {
  return { ...cidr, address: cidrFirst(cidr) };
}

export function hasHostBits(cidr: IpCidr): boolean {
  return cidrFirst(cidr) !== cidr.address;
}

/** Canonical text of a CIDR (host bits cleared, address re-formatted), or undefined when invalid. */
export function canonicalCidr(text: string): string | undefined {
  const cidr = parseCidr(text);
  return cidr && formatCidr(maskCidr(cidr));
}

export function cidrFirst(cidr: IpCidr): bigint {
  const bits = BigInt(hostBits(cidr));
  return (cidr.address >> bits) << bits;
}

export function cidrLast(cidr: IpCidr): bigint {
  return cidrFirst(cidr) + cidrSize(cidr) - 1n;
}

export function cidrContains(cidr: IpCidr, address: IpAddress): boolean {
  return (
    cidr.family === address.family && address.value >= cidrFirst(cidr) && address.value <= cidrLast(cidr)
  );
}

export function cidrContainsCidr(outer: IpCidr, inner: IpCidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefixLength <= inner.prefixLength &&
    cidrFirst(inner) >= cidrFirst(outer) &&
    cidrLast(inner) <= cidrLast(outer)
  );
}

/** CIDR blocks either nest or are disjoint, so overlap means one contains the other's first address. */
export function cidrsOverlap(a: IpCidr, b: IpCidr): boolean {
  return a.family === b.family && cidrFirst(a) <= cidrLast(b) && cidrFirst(b) <= cidrLast(a);
}

/** String convenience for other layers: is `ip` inside `subnet`? False when either is invalid. */
export function subnetContainsIp(subnet: string, ip: string): boolean {
  const cidr = parseCidr(subnet);
  const address = parseIp(ip);
  return cidr !== undefined && address !== undefined && cidrContains(cidr, address);
}

/** String convenience: do two CIDRs share an address? False when either is invalid. */
export function subnetsOverlap(a: string, b: string): boolean {
  const left = parseCidr(a);
  const right = parseCidr(b);
  return left !== undefined && right !== undefined && cidrsOverlap(left, right);
}

/** Splits "10.0.0.2/24" into its address and prefix length; undefined when invalid. */
export function splitAddressWithPrefix(text: string): { address: string; prefixLength: number } | undefined {
  const cidr = parseCidr(text);
  return cidr && {
    address: formatIp({ family: cidr.family, value: cidr.address }),
    prefixLength: cidr.prefixLength,
  };
}

/** `what` names the thing in the error message ("gateway", "aux address db", ...). */
export function requireIp(text: string, what: string): IpAddress {
  const address = parseIp(text);
  if (!address) throw new InvalidParameterError(`invalid ${what} ${text}: invalid address`);
  return address;
}

export function requireCidr(text: string, what: string): IpCidr {
  const cidr = parseCidr(text);
  if (!cidr) throw new InvalidParameterError(`invalid ${what} ${text}: invalid CIDR block notation`);
  return cidr;
}

/** Network-order bytes of an address (4 or 16), as sockets and netlink carry it. */
export function ipToBytes(address: IpAddress): Buffer {
  return Buffer.from(address.value.toString(16).padStart(address.family === 4 ? 8 : 32, '0'), 'hex');
}

/** The address held in 4 or 16 network-order bytes; undefined for any other length. */
export function ipFromBytes(bytes: Buffer): IpAddress | undefined {
  if (bytes.length !== 4 && bytes.length !== 16) return undefined;
  return { family: bytes.length === 4 ? 4 : 6, value: BigInt(`0x${bytes.toString('hex')}`) };
}
