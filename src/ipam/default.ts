/**
 * The "default" IPAM driver: pure in-memory logic over the pools it has reserved. The controller
 * persists pools and addresses with the objects that own them and restores them here at start.
 */
import { InvalidParameterError, IpamExhaustedError, NotFoundError, PoolOverlapError } from '../errors.js';
import { formatCidr, requireCidr, type IpCidr, type IpFamily } from '../util/ip.js';
import { findFreeSubnet, validateBasePool, type CheckedBasePool } from './default-pools.js';
import { PoolAllocator, type PoolSpec } from './pool-allocator.js';
import { ReservedSubnets } from './reserved-subnets.js';
import type { BasePool, IpamDriver, Pool, PoolRequest } from './types.js';

export { DEFAULT_V4_POOLS, GLOBAL_V4_POOLS, parseAddressPoolFlag, ulaPoolForHost } from './default-pools.js';

export interface DefaultIpamConfig {
  /** Carved in order when a network gives no --subnet. */
  v4Pools: readonly BasePool[];
  /** Usually [ulaPoolForHost(hostId)]; empty means IPv6 networks need an explicit subnet. */
  v6Pools: readonly BasePool[];
}

export class DefaultIpam implements IpamDriver {
  readonly name = 'default';
  private readonly basePools: Record<IpFamily, CheckedBasePool[]>;
  private readonly allocators = new Map<string, PoolAllocator>();
  private readonly reserved = new ReservedSubnets();

  constructor(config: DefaultIpamConfig) {
    this.basePools = {
      4: config.v4Pools.map((p) => ({ base: validateBasePool(p, 4), size: p.size })),
      6: config.v6Pools.map((p) => ({ base: validateBasePool(p, 6), size: p.size })),
    };
  }

  requestPool(req: PoolRequest): Pool {
    if (req.family !== 4 && req.family !== 6) {
      throw new InvalidParameterError(`invalid address family ${String(req.family)}`);
    }
    if (req.subnet === undefined && (req.ipRange !== undefined || req.gateway !== undefined || hasAny(req.auxAddresses))) {
      throw new InvalidParameterError('an ip-range, gateway or auxiliary address needs an explicit subnet');
    }
    const spec: PoolSpec = {
      family: req.family,
      subnet: req.subnet ?? this.pickSubnet(req),
      ...(req.ipRange !== undefined ? { ipRange: req.ipRange } : {}),
      ...(req.gateway !== undefined ? { gateway: req.gateway } : {}),
      ...(req.auxAddresses !== undefined ? { auxAddresses: req.auxAddresses } : {}),
    };
    // Validate everything before reserving anything: a failed request leaves no trace.
    const allocator = new PoolAllocator(spec);
    this.assertNoOverlap(allocator);
    this.add(allocator);
    return copyPool(allocator.pool);
  }

  releasePool(poolId: string): void {
    const allocator = this.allocators.get(poolId);
    if (!allocator) return;
    this.allocators.delete(poolId);
    this.reserved.remove(allocator.subnet);
  }

  requestAddress(poolId: string, preferred?: string): string {
    return this.allocator(poolId).allocate(preferred);
  }

  /** Idempotent: unknown pools and free addresses are ignored; a malformed address is still an error. */
  releaseAddress(poolId: string, address: string): void {
    this.allocators.get(poolId)?.release(address);
  }

  /**
   * Subnets with host bits set are accepted here (and cleared) because networks created before
   * Docker validated them must keep loading. The pool keeps its persisted id.
   */
  restorePool(pool: Pool, addresses: string[]): void {
    if (this.allocators.has(pool.id)) {
      throw new PoolOverlapError(`Pool overlaps with other one on this address space: ${pool.id} is already reserved`);
    }
    const allocator = new PoolAllocator(
      {
        family: pool.family,
        subnet: pool.subnet,
        ...(pool.ipRange !== undefined ? { ipRange: pool.ipRange } : {}),
        gateway: pool.gateway,
        auxAddresses: pool.auxAddresses,
      },
      { id: pool.id },
    );
    this.assertNoOverlap(allocator);
    allocator.restore(addresses);
    this.add(allocator);
  }

  pools(): Pool[] {
    return [...this.allocators.values()].map((a) => copyPool(a.pool));
  }

  /** Addresses allocated in a pool (gateway and aux addresses excluded), ascending. */
  addresses(poolId: string): string[] {
    return this.allocator(poolId).addresses();
  }

  private allocator(poolId: string): PoolAllocator {
    const allocator = this.allocators.get(poolId);
    if (!allocator) throw new NotFoundError(`address pool ${poolId} not found`);
    return allocator;
  }

  private add(allocator: PoolAllocator): void {
    this.allocators.set(allocator.pool.id, allocator);
    this.reserved.add(allocator.subnet, allocator.pool.subnet);
  }

  private assertNoOverlap(candidate: PoolAllocator): void {
    const existing = this.reserved.overlapping(candidate.subnet);
    if (existing !== undefined) {
      throw new PoolOverlapError(
        `Pool overlaps with other one on this address space: ${candidate.pool.subnet} overlaps ${existing}`,
      );
    }
  }

  /** The first default subnet clear of reserved pools and of the subnets the caller asks to avoid. */
  private pickSubnet(req: PoolRequest): string {
    const avoid: IpCidr[] = (req.avoid ?? []).map((text) => requireCidr(text, 'subnet to avoid'));
    const bases = req.from ? req.from.map((p) => ({ base: validateBasePool(p, req.family), size: p.size })) : this.basePools[req.family];
    const subnet = findFreeSubnet(bases, this.reserved.obstacles(req.family, avoid));
    if (!subnet) {
      throw new IpamExhaustedError(
        `could not find an available, non-overlapping IPv${req.family} address pool among the defaults to assign to the network`,
      );
    }
    return formatCidr(subnet);
  }
}

function copyPool(pool: Pool): Pool {
  return { ...pool, auxAddresses: { ...pool.auxAddresses } };
}

function hasAny(record: Record<string, string> | undefined): boolean {
  return record !== undefined && Object.keys(record).length > 0;
}
