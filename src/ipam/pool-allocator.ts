/**
 * One reserved pool: its validated configuration and the addresses taken in it.
 *
 * Addresses are offsets from the subnet's first address. Never handed out: the IPv4 network and
 * broadcast addresses (except in /31 and /32, which have neither: RFC 3021), the IPv6 subnet-router
 * anycast address (offset 0), the gateway and the aux addresses. Dynamic allocation is next-fit from
 * the last dynamic allocation, wrapping, inside the ip-range when one is set; static (preferred)
 * addresses may be anywhere in the subnet, as in Docker.
 */
import { AddressInUseError, InvalidParameterError, IpamExhaustedError } from '../errors.js';
import {
  cidrContains,
  cidrContainsCidr,
  cidrFirst,
  cidrLast,
  cidrSize,
  formatCidr,
  formatIp,
  hasHostBits,
  hostBits,
  maskCidr,
  requireCidr,
  requireIp,
  type IpAddress,
  type IpCidr,
  type IpFamily,
} from '../util/ip.js';
import { createOffsetSet, type OffsetSet } from './address-set.js';
import type { Pool } from './types.js';

/** What a pool is made of, before validation (request or persisted record). */
export interface PoolSpec {
  family: IpFamily;
  subnet: string;
  ipRange?: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
}

export class PoolAllocator {
  readonly subnet: IpCidr;
  readonly pool: Pool;
  private readonly taken: OffsetSet;
  /** Offsets that are never allocated nor released: network, broadcast, gateway, aux. */
  private readonly reserved = new Set<bigint>();
  private readonly rangeFirst: bigint;
  private readonly rangeLast: bigint;
  private readonly rangeSize: bigint;
  /** Taken offsets inside [rangeFirst, rangeLast] (reserved ones included): O(1) "is it full". */
  private takenInRange = 0n;
  /** Offset of the last dynamic allocation; the next search starts after it. */
  private cursor: bigint;

  /**
   * Validates `spec` (InvalidParameterError with Docker's wording). When `restoring` a persisted pool,
   * host bits in the subnet are cleared instead of rejected (records written before strict validation
   * must still load) and the persisted id is kept.
   */
  constructor(spec: PoolSpec, restoring?: { id: string }) {
    const written = requireCidr(spec.subnet, 'subnet');
    if (written.family !== spec.family) {
      throw new InvalidParameterError(`invalid subnet ${spec.subnet}: not an IPv${spec.family} block`);
    }
    this.subnet = maskCidr(written);
    if (hasHostBits(written) && !restoring) {
      throw new InvalidParameterError(`invalid subnet ${spec.subnet}: it should be ${formatCidr(this.subnet)}`);
    }
    this.taken = createOffsetSet(cidrSize(this.subnet));

    const range = spec.ipRange === undefined ? undefined : this.validateRange(spec.ipRange);
    this.rangeFirst = range ? cidrFirst(range) - cidrFirst(this.subnet) : 0n;
    this.rangeLast = range ? cidrLast(range) - cidrFirst(this.subnet) : cidrSize(this.subnet) - 1n;
    this.rangeSize = this.rangeLast - this.rangeFirst + 1n;
    this.cursor = this.rangeFirst - 1n;

    for (const offset of this.specialOffsets()) this.reserve(offset);
    const auxAddresses: Record<string, string> = {};
    for (const [name, text] of Object.entries(spec.auxAddresses ?? {})) {
      const offset = this.validateReservable(text, `auxiliary address ${name}`);
      if (this.reserved.has(offset)) {
        throw new InvalidParameterError(`invalid auxiliary address ${name}: ${text} is already reserved`);
      }
      this.reserve(offset);
      auxAddresses[name] = this.format(offset);
    }
    const gatewayOffset = this.gatewayOffset(spec.gateway);
    this.reserve(gatewayOffset);

    this.pool = {
      id: restoring?.id ?? formatCidr(this.subnet),
      family: spec.family,
      subnet: formatCidr(this.subnet),
      ...(range ? { ipRange: formatCidr(range) } : {}),
      gateway: this.format(gatewayOffset),
      auxAddresses,
    };
  }

  /** Allocate `preferred` exactly, or the next free address of the range after the last one. */
  allocate(preferred?: string): string {
    if (preferred !== undefined) {
      const offset = this.validateReservable(preferred, 'preferred address');
      if (this.taken.has(offset)) throw new AddressInUseError('Address already in use');
      this.take(offset);
      return this.format(offset);
    }
    if (this.takenInRange >= this.rangeSize) {
      throw new IpamExhaustedError(`no available IPv${this.pool.family} addresses on this network's address pools`);
    }
    const after = this.cursor + 1n > this.rangeLast ? this.rangeFirst : this.cursor + 1n;
    const offset =
      this.taken.firstFree(after, this.rangeLast) ?? this.taken.firstFree(this.rangeFirst, after - 1n);
    if (offset === undefined) {
      // Unreachable while takenInRange is right; kept as a typed error rather than a crash.
      throw new IpamExhaustedError(`no available IPv${this.pool.family} addresses on this network's address pools`);
    }
    this.take(offset);
    this.cursor = offset;
    return this.format(offset);
  }

  /** Idempotent; the gateway and other reserved addresses stay reserved until the pool goes. */
  release(address: string): void {
    const offset = this.offsetOf(address, 'address');
    if (this.reserved.has(offset) || !this.taken.has(offset)) return;
    this.taken.delete(offset);
    if (this.inRange(offset)) this.takenInRange--;
  }

  /**
   * Re-take persisted addresses. Dynamic allocation resumes after the highest restored one in the
   * range, so addresses released just before a restart are not handed out again at once.
   */
  restore(addresses: string[]): void {
    for (const address of addresses) {
      const offset = this.validateReservable(address, 'restored address');
      if (this.taken.has(offset)) throw new AddressInUseError(`Address already in use: ${address}`);
      this.take(offset);
      if (this.inRange(offset) && offset > this.cursor) this.cursor = offset;
    }
  }

  /** Allocated addresses (reserved ones excluded), ascending. */
  addresses(): string[] {
    return this.taken
      .offsets()
      .filter((offset) => !this.reserved.has(offset))
      .map((offset) => this.format(offset));
  }

  private validateRange(text: string): IpCidr {
    const range = requireCidr(text, 'ip-range');
    const subnetText = formatCidr(this.subnet);
    if (range.family !== this.subnet.family) {
      throw new InvalidParameterError(`invalid ip-range ${text}: parent subnet is an IPv${this.subnet.family} block`);
    }
    if (hasHostBits(range)) {
      throw new InvalidParameterError(`invalid ip-range ${text}: it should be ${formatCidr(maskCidr(range))}`);
    }
    if (range.prefixLength < this.subnet.prefixLength) {
      throw new InvalidParameterError(`invalid ip-range ${text}: CIDR block is bigger than its parent subnet ${subnetText}`);
    }
    if (!cidrContainsCidr(this.subnet, range)) {
      throw new InvalidParameterError(`invalid ip-range ${text}: parent subnet ${subnetText} doesn't contain ip-range`);
    }
    return range;
  }

  /** Network and broadcast (IPv4 wider than /31), subnet-router anycast (IPv6). */
  private specialOffsets(): bigint[] {
    if (this.subnet.family === 6) return [0n];
    return hostBits(this.subnet) > 1 ? [0n, cidrSize(this.subnet) - 1n] : [];
  }

  private gatewayOffset(gateway: string | undefined): bigint {
    if (gateway !== undefined) {
      const offset = this.validateReservable(gateway, 'gateway');
      if (this.reserved.has(offset)) {
        throw new InvalidParameterError(`invalid gateway ${gateway}: the address is reserved as an auxiliary address`);
      }
      return offset;
    }
    // Docker takes the default gateway from the ip-range when there is one.
    const offset = this.taken.firstFree(this.rangeFirst, this.rangeLast);
    if (offset === undefined) {
      throw new InvalidParameterError(`no address left for a gateway in ${formatCidr(this.subnet)}`);
    }
    return offset;
  }

  /** Offset of an address that may be handed out or reserved: in the subnet and not a special one. */
  private validateReservable(text: string, what: string): bigint {
    const offset = this.offsetOf(text, what);
    if (this.specialOffsets().includes(offset)) {
      const kind = this.subnet.family === 6 ? 'subnet-router anycast' : offset === 0n ? 'network' : 'broadcast';
      throw new InvalidParameterError(`invalid ${what} ${text}: it is the ${kind} address of ${formatCidr(this.subnet)}`);
    }
    return offset;
  }

  private offsetOf(text: string, what: string): bigint {
    const address: IpAddress = requireIp(text, what);
    if (address.family !== this.subnet.family) {
      throw new InvalidParameterError(`invalid ${what} ${text}: parent subnet is an IPv${this.subnet.family} block`);
    }
    if (!cidrContains(this.subnet, address)) {
      throw new InvalidParameterError(
        `invalid ${what} ${text}: parent subnet ${formatCidr(this.subnet)} doesn't contain this address`,
      );
    }
    return address.value - cidrFirst(this.subnet);
  }

  private reserve(offset: bigint): void {
    this.reserved.add(offset);
    this.take(offset);
  }

  private take(offset: bigint): void {
    this.taken.add(offset);
    if (this.inRange(offset)) this.takenInRange++;
  }

  private inRange(offset: bigint): boolean {
    return offset >= this.rangeFirst && offset <= this.rangeLast;
  }

  private format(offset: bigint): string {
    return formatIp({ family: this.subnet.family, value: cidrFirst(this.subnet) + offset });
  }
}
