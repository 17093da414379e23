/**
 * Sets of taken addresses within one subnet, as offsets from the subnet's first address.
 * Small subnets (every IPv4 pool up to a /12) use a bitmap: membership and next-free search skip 32
 * taken addresses per word. Larger ones (IPv6 /64s) use a hash set: such pools are never dense, so the
 * probe from a cursor finds a free offset at once.
 */
export interface OffsetSet {
  has(offset: bigint): boolean;
  add(offset: bigint): void;
  delete(offset: bigint): void;
  /** The lowest offset in [from, to] not in the set. */
  firstFree(from: bigint, to: bigint): bigint | undefined;
  /** Every offset in the set, ascending. */
  offsets(): bigint[];
}

/** Above this many addresses a subnet gets a hash set instead of a bitmap (2^20 bits = 128 KiB). */
const BITMAP_LIMIT = 1n << 20n;

export function createOffsetSet(subnetSize: bigint): OffsetSet {
  return subnetSize <= BITMAP_LIMIT ? new BitmapOffsetSet(Number(subnetSize)) : new SparseOffsetSet();
}

const FULL_WORD = 0xffffffff;

export class BitmapOffsetSet implements OffsetSet {
  private readonly words: Uint32Array;

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  has(offset: bigint): boolean {
    const i = Number(offset);
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  add(offset: bigint): void {
    const i = Number(offset);
    this.words[i >>> 5]! |= 1 << (i & 31);
  }

  delete(offset: bigint): void {
    const i = Number(offset);
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }

  firstFree(from: bigint, to: bigint): bigint | undefined {
    const last = Math.min(Number(to), this.size - 1);
    let i = Number(from);
    while (i <= last) {
      const wordIndex = Math.floor(i / 32);
      const word = this.words[wordIndex]!;
      if (word !== FULL_WORD) {
        // Free bits at or above i's position in this word.
        const free = ~word & (FULL_WORD << (i & 31));
        if (free !== 0) {
          const found = wordIndex * 32 + lowestSetBit(free);
          return found <= last ? BigInt(found) : undefined;
        }
      }
      i = (wordIndex + 1) * 32;
    }
    return undefined;
  }

  offsets(): bigint[] {
    const out: bigint[] = [];
    for (let w = 0; w < this.words.length; w++) {
      let word = this.words[w]!;
      while (word !== 0) {
        const bit = lowestSetBit(word);
        out.push(BigInt(w * 32 + bit));
        word &= word - 1;
      }
    }
    return out;
  }
}

function lowestSetBit(word: number): number {
  return 31 - Math.clz32(word & -word);
}

export class SparseOffsetSet implements OffsetSet {
  private readonly taken = new Set<bigint>();

  has(offset: bigint): boolean {
    return this.taken.has(offset);
  }

  add(offset: bigint): void {
    this.taken.add(offset);
  }

  delete(offset: bigint): void {
    this.taken.delete(offset);
  }

  firstFree(from: bigint, to: bigint): bigint | undefined {
    // Each probe that fails hits a member, so this is bounded by the set's size.
    for (let offset = from; offset <= to; offset++) {
      if (!this.taken.has(offset)) return offset;
    }
    return undefined;
  }

  offsets(): bigint[] {
    return [...this.taken].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
