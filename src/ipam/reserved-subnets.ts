/**
 * The subnets of the reserved pools, per family, sorted by first address. Reserved pools never
 * overlap one another, so sorted by first address is also sorted by last address and the overlap
 * check is a binary search. Alongside, the union of the pools is kept as merged ranges ("coverage"),
 * updated on every add and remove, so the free-subnet search jumps over a run of adjacent pools in one
 * step instead of rebuilding the union at every request.
 */
import { cidrFirst, cidrLast, type IpCidr, type IpFamily } from '../util/ip.js';
import { compareIntervals, firstEndingAtOrAfter, intervalOf, type Interval } from './default-pools.js';

interface ReservedInterval extends Interval {
  /** The pool's subnet as shown to users (for error messages). */
  subnet: string;
}

export class ReservedSubnets {
  private readonly byFamily: Record<IpFamily, ReservedInterval[]> = { 4: [], 6: [] };
  private readonly coverage: Record<IpFamily, Interval[]> = { 4: [], 6: [] };

  /** The reserved subnet that overlaps `cidr`, if any. */
  overlapping(cidr: IpCidr): string | undefined {
    const list = this.byFamily[cidr.family];
    const index = firstEndingAtOrAfter(list, cidrFirst(cidr));
    const candidate = list[index];
    return candidate !== undefined && candidate.first <= cidrLast(cidr) ? candidate.subnet : undefined;
  }

  /** The caller has checked `overlapping` first. */
  add(cidr: IpCidr, subnet: string): void {
    const list = this.byFamily[cidr.family];
    const entry = { ...intervalOf(cidr), subnet };
    list.splice(firstEndingAtOrAfter(list, entry.first), 0, entry);

    // Absorb the ranges this one touches or is adjacent to.
    const ranges = this.coverage[cidr.family];
    const merged = { first: entry.first, last: entry.last };
    const start = firstEndingAtOrAfter(ranges, entry.first - 1n);
    let end = start;
    while (end < ranges.length && ranges[end]!.first <= entry.last + 1n) {
      if (ranges[end]!.first < merged.first) merged.first = ranges[end]!.first;
      if (ranges[end]!.last > merged.last) merged.last = ranges[end]!.last;
      end++;
    }
    ranges.splice(start, end - start, merged);
  }

  remove(cidr: IpCidr): void {
    const list = this.byFamily[cidr.family];
    const first = cidrFirst(cidr);
    const index = firstEndingAtOrAfter(list, first);
    if (list[index]?.first !== first) return;
    const removed = list[index]!;
    list.splice(index, 1);

    // The other pools cover the rest of the enclosing range exactly: keep what lies on either side.
    const ranges = this.coverage[cidr.family];
    const at = firstEndingAtOrAfter(ranges, removed.first);
    const enclosing = ranges[at]!;
    const pieces: Interval[] = [];
    if (enclosing.first < removed.first) pieces.push({ first: enclosing.first, last: removed.first - 1n });
    if (removed.last < enclosing.last) pieces.push({ first: removed.last + 1n, last: enclosing.last });
    ranges.splice(at, 1, ...pieces);
  }

  /** The union of the reserved subnets plus `extra` (which may overlap anything), sorted by first address. */
  obstacles(family: IpFamily, extra: readonly IpCidr[]): Interval[] {
    const reserved = this.coverage[family];
    const others = extra.filter((c) => c.family === family).map(intervalOf).sort(compareIntervals);
    if (others.length === 0) return reserved;
    const out: Interval[] = [];
    let i = 0;
    let j = 0;
    while (i < reserved.length || j < others.length) {
      const takeReserved = j >= others.length || (i < reserved.length && reserved[i]!.first <= others[j]!.first);
      out.push(takeReserved ? reserved[i++]! : others[j++]!);
    }
    return out;
  }
}
