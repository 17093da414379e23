/**
 * Input validation for the nft compiler: everything that ends up inside an nft script passes through
 * here first, so a script can never be altered by a crafted name or address.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidParameterError } from '../errors.js';
import { formatIp, parseIp, type IpFamily } from '../util/ip.js';

export type { IpFamily };

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

/** An IPv6 address (no zone, no prefix), in canonical RFC 5952 form as nft prints it. */
export function validateIpv6Address(text: string): string {
  if (!isIPv6(text) || text.includes('%')) throw new InvalidParameterError(`invalid IPv6 address ${JSON.stringify(text)}`);
  return formatAddress(6, parseAddress(6, text));
}

/** An address of either family, canonical, with its family. */
export function validateAddress(text: string): { family: IpFamily; text: string } {
  if (isIPv4(text)) return { family: 4, text: validateIpv4Address(text) };
  if (isIPv6(text)) return { family: 6, text: validateIpv6Address(text) };
  throw new InvalidParameterError(`invalid IP address ${JSON.stringify(text)}`);
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

/** Address text (already syntax-checked by node:net) → integer, through the shared IP helpers. */
function parseAddress(family: IpFamily, text: string): bigint {
  const ip = parseIp(text);
  if (!ip || ip.family !== family) throw new InvalidParameterError(`invalid IPv${family} address ${JSON.stringify(text)}`);
  return ip.value;
}

export function formatAddress(family: IpFamily, value: bigint): string {
  return formatIp({ family, value });
}
