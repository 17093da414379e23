/**
 * Default address pools and the search for a free subnet in them.
 */
import { createHash } from 'node:crypto';
import { InvalidParameterError } from '../errors.js';
import {
  addressBits,
  cidrFirst,
  cidrLast,
  formatCidr,
  hasHostBits,
  maskCidr,
  parseCidr,
  type IpCidr,
  type IpFamily,
} from '../util/ip.js';
import type { BasePool } from './types.js';

/**
 * Docker's local ranges carved into /24s instead of /16s and /20s: 4,096 networks instead of 31
 * (moby#29239), in the same order so the first networks land where Docker users expect them.
 */
export const DEFAULT_V4_POOLS: readonly BasePool[] = Object.freeze([
  { base: '172.17.0.0/16', size: 24 },
  { base: '172.18.0.0/15', size: 24 },
  { base: '172.20.0.0/14', size: 24 },
  { base: '172.24.0.0/13', size: 24 },
  { base: '192.168.0.0/16', size: 24 },
]);

/**
 * Docker's global address space (moby ipamutils' globalScopeDefaultNetworks): automatic subnets of
 * global-scope networks come from here, apart from the local defaults every host fills on its own.
 */
export const GLOBAL_V4_POOLS: readonly BasePool[] = Object.freeze([{ base: '10.0.0.0/8', size: 24 }]);

const ULA_PREFIX = 0xfdn << 120n;

/**
 * A ULA /48 unique to this host, split into /64s, derived as Docker does (RFC 4193 §3.2.2, loosely):
 * the 40 low bits of the first 8 bytes of SHA-256(hostId) become the global ID after fd00::/8.
 * The same host ID always yields the same pool, so the choice survives restarts.
 */
export function ulaPoolForHost(hostId: string): BasePool {
  const digest = createHash('sha256').update(hostId).digest();
  const globalId = digest.readBigUInt64BE(0) & ((1n << 40n) - 1n);
  const base: IpCidr = { family: 6, address: ULA_PREFIX | (globalId << 80n), prefixLength: 48 };
  return { base: formatCidr(base), size: 64 };
}

/** Parses the daemon's `--default-address-pool base=10.10.0.0/16,size=24`. */
export function parseAddressPoolFlag(flag: string): BasePool {
  const fields = new Map<string, string>();
  for (const field of flag.split(',')) {
    const eq = field.indexOf('=');
    const key = eq < 0 ? field.trim() : field.slice(0, eq).trim().toLowerCase();
    if (eq < 0 || (key !== 'base' && key !== 'size')) {
      throw new InvalidParameterError(`invalid default address pool ${JSON.stringify(flag)}: unexpected field ${JSON.stringify(field)}`);
    }
    if (fields.has(key)) {
      throw new InvalidParameterError(`invalid default address pool ${JSON.stringify(flag)}: ${key} given twice`);
    }
    fields.set(key, field.slice(eq + 1).trim());
  }
  const base = fields.get('base');
  const size = fields.get('size');
  if (base === undefined || size === undefined) {
    throw new InvalidParameterError(`invalid default address pool ${JSON.stringify(flag)}: both base and size are required`);
  }
  if (!/^[0-9]{1,3}$/.test(size)) {
    throw new InvalidParameterError(`invalid default address pool ${JSON.stringify(flag)}: size must be a prefix length`);
  }
  const pool = { base, size: Number(size) };
  validateBasePool(pool);
  return pool;
}

/** Parses and checks a base pool; `family` when the caller needs a particular one. */
export function validateBasePool(pool: BasePool, family?: IpFamily): IpCidr {
  const base = parseCidr(pool.base);
  if (!base) throw new InvalidParameterError(`invalid base pool ${pool.base}: invalid CIDR block notation`);
  if (family !== undefined && base.family !== family) {
    throw new InvalidParameterError(`invalid base pool ${pool.base}: not an IPv${family} block`);
  }
  if (hasHostBits(base)) {
    throw new InvalidParameterError(`invalid base pool ${pool.base}: it should be ${formatCidr(maskCidr(base))}`);
  }
  if (!Number.isInteger(pool.size) || pool.size < base.prefixLength || pool.size > addressBits(base.family)) {
    throw new InvalidParameterError(
      `invalid base pool ${pool.base}: size ${pool.size} must be between ${base.prefixLength} and ${addressBits(base.family)}`,
    );
  }
  return base;
}

export interface CheckedBasePool {
  base: IpCidr;
  size: number;
}

/** An inclusive address range [first, last] of one family. */
export interface Interval {
  first: bigint;
  last: bigint;
}

export function intervalOf(cidr: IpCidr): Interval {
  return { first: cidrFirst(cidr), last: cidrLast(cidr) };
}

export function compareIntervals(a: Interval, b: Interval): number {
  return a.first < b.first ? -1 : a.first > b.first ? 1 : 0;
}

/**
 * The first `size` block, in base-pool order, that touches none of `obstacles` (sorted by first
 * address). Adjacent and nested obstacles are merged first, so a run of taken blocks is jumped over at
 * once: the cost grows with the number of obstacles, not with the size of the base pools.
 */
export function findFreeSubnet(bases: readonly CheckedBasePool[], obstacles: readonly Interval[]): IpCidr | undefined {
  const merged = mergeSorted(obstacles);
  for (const { base, size } of bases) {
    const step = 1n << BigInt(addressBits(base.family) - size);
    const baseLast = cidrLast(base);
    let candidate = cidrFirst(base);
    let i = firstEndingAtOrAfter(merged, candidate);
    while (candidate + step - 1n <= baseLast) {
      while (i < merged.length && merged[i]!.last < candidate) i++;
      const obstacle = merged[i];
      if (obstacle === undefined || obstacle.first > candidate + step - 1n) {
        return { family: base.family, address: candidate, prefixLength: size };
      }
      // The next aligned block after the obstacle.
      candidate = (obstacle.last / step + 1n) * step;
    }
  }
  return undefined;
}

function mergeSorted(sorted: readonly Interval[]): Interval[] {
  const merged: Interval[] = [];
  for (const interval of sorted) {
    const previous = merged[merged.length - 1];
    if (previous && interval.first <= previous.last + 1n) {
      if (interval.last > previous.last) previous.last = interval.last;
    } else {
      merged.push({ ...interval });
    }
  }
  return merged;
}

/** Index of the first interval whose last address is >= `address`; `list` sorted by last address. */
export function firstEndingAtOrAfter(list: readonly Interval[], address: bigint): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (list[mid]!.last < address) low = mid + 1;
    else high = mid;
  }
  return low;
}
