/**
 * IP address management. The default driver is pure, in-memory logic: the controller restores it from
 * the store at start and persists every allocation inside the same store transaction as the endpoint
 * (or network) that owns it, so the store is always the truth and nothing leaks across crashes.
 */

export interface PoolRequest {
  /** Address family of the pool. */
  family: 4 | 6;
  /** Explicit subnet (--subnet); when absent a subnet is picked from the default pools. */
  subnet?: string;
  /** Allocate dynamic addresses from this sub-range only (--ip-range). */
  ipRange?: string;
  /** Explicit gateway (--gateway); default: the first usable address. */
  gateway?: string;
  /** Addresses reserved for other hosts (--aux-address name=ip). */
  auxAddresses?: Record<string, string>;
  /** Subnets to stay clear of when picking one (routes of the host namespace, other address spaces). */
  avoid?: string[];
  /** Pick from these base pools instead of the driver's defaults (global-scope networks: GLOBAL_V4_POOLS). */
  from?: readonly BasePool[];
}

export interface Pool {
  /** Stable identifier; the subnet in canonical form. */
  id: string;
  family: 4 | 6;
  /** Canonical CIDR ("10.20.0.0/24"). */
  subnet: string;
  ipRange?: string;
  /** Gateway address without prefix length. */
  gateway: string;
  auxAddresses: Record<string, string>;
}

/** One base pool: subnets of `size` prefix length are carved out of `base` (Docker's --default-address-pool). */
export interface BasePool {
  base: string;
  size: number;
}

export interface IpamDriver {
  readonly name: string;
  /**
   * Reserve a pool. Throws InvalidParameterError (bad CIDR, gateway outside subnet, ...),
   * PoolOverlapError (overlaps a pool already reserved) or IpamExhaustedError (no default subnet left).
   */
  requestPool(req: PoolRequest): Pool;
  /** Release a pool and every address in it. Idempotent. */
  releasePool(poolId: string): void;
  /**
   * Allocate an address in the pool: `preferred` exactly (AddressInUseError when taken,
   * InvalidParameterError when outside the subnet), else the next free one after the last allocation
   * (so a just-released address is not handed out again at once). Returns the address without prefix.
   */
  requestAddress(poolId: string, preferred?: string): string;
  /** Idempotent. */
  releaseAddress(poolId: string, address: string): void;
  /** Re-reserve a pool and its addresses exactly as persisted (start-up). Throws on conflicts. */
  restorePool(pool: Pool, addresses: string[]): void;
  /** Pools currently reserved. */
  pools(): Pool[];
}
