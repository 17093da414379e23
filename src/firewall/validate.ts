/**
 * Input validation for the nft compiler: everything that ends up inside an nft script passes through
 * here first, so a script can never be altered by a crafted name or address.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidParameterError } from '../errors.js';

export type IpFamily = 4 | 6;

/** A validated subnet: network address (host bits zero) and prefix, rendered canonically. */
export interface Subnet {
  family: IpFamily;
  /** First address of the subnet. */
  first: bigint;
  /** Last address of the subnet. */
  last: bigint;
  prefix: number;
  /** Canonical text (IPv6 lower-case and compressed per RFC 5952), safe to embed in an nft script. */
  text: string;
}

const IFNAME_MAX_BYTES = 15;
/**
 * Linux accepts nearly any byte in an interface name, but nft 1.0.6's scanner has no escape inside
 * quoted strings and treats a trailing `*` as a wildcard. Only the alphabet the bridge driver accepts
 * (src/drivers/option-schema.ts) is allowed; each of these characters is inert inside nft quotes.
 */
const SAFE_IFNAME = /^[A-Za-z0-9_.@+-]+$/;

export function validateIfname(name: string): string {
  if (!SAFE_IFNAME.test(name) || name.length > IFNAME_MAX_BYTES || name === '.' || name === '..') {
    throw new InvalidParameterError(
      `invalid interface name ${JSON.stringify(name)}: 1-${IFNAME_MAX_BYTES} characters from [A-Za-z0-9_.@+-]`,
    );
  }
  return name;
}

export function validateIpv4Address(text: string): string {
  if (!isIPv4(text)) throw new InvalidParameterError(`invalid IPv4 address ${JSON.stringify(text)}`);
  return formatAddress(4, parseAddress(4, text));
}

/** Parse "addr/prefix" of the given family; host bits must be zero (as Docker requires), prefix ≥ 1. */
export function parseSubnet(text: string, family: IpFamily): Subnet {
  const invalid = (why: string) =>
    new InvalidParameterError(`invalid IPv${family} subnet ${JSON.stringify(text)}: ${why}`);
  const slash = text.indexOf('/');
  if (slash < 0) throw invalid('missing /prefix');
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const bits = family === 4 ? 32 : 128;
  if (!(family === 4 ? isIPv4(addrText) : isIPv6(addrText))) throw invalid('bad address');
  if (addrText.includes('%')) throw invalid('zone index not allowed');
  if (!/^\d{1,3}$/.test(prefixText)) throw invalid('bad prefix length');
  const prefix = Number(prefixText);
  // A /0 "subnet" would make every address a container address (masquerade and isolation everything).
  if (prefix < 1 || prefix > bits) throw invalid(`prefix length must be 1-${bits}`);
  const first = parseAddress(family, addrText);
  const hostBits = BigInt(bits - prefix);
  const hostMask = (1n << hostBits) - 1n;
  if ((first & hostMask) !== 0n) {
    throw invalid(`host bits set, expected ${formatAddress(family, first & ~hostMask)}/${prefix}`);
  }
  return { family, first, last: first | hostMask, prefix, text: `${formatAddress(family, first)}/${prefix}` };
}

/** Address text (already syntax-checked by node:net) → integer. */
function parseAddress(family: IpFamily, text: string): bigint {
  if (family === 4) return ipv4ToBigint(text);
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // Embedded IPv4 (::ffff:1.2.3.4): the last 32 bits are written as a dotted quad.
    tailV4 = ipv4ToBigint(text.slice(lastColon + 1));
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const leftGroups = left ? left.split(':') : [];
  const rightGroups = right ? right.split(':') : [];
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = right === undefined ? leftGroups : [...leftGroups, ...Array<string>(missing).fill('0'), ...rightGroups];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

function ipv4ToBigint(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

export function formatAddress(family: IpFamily, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run (leftmost on ties) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
