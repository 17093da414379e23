/** What every scenario gets: the running systems, the options, the kernel floor and a progress log. */
import type { KernelFloor } from '../lib/floor.js';
import type { BenchOptions } from '../lib/options.js';
import type { System } from '../lib/systems.js';

export interface BenchContext {
  systems: System[];
  options: BenchOptions;
  floor: KernelFloor;
  log(line: string): void;
  /** Rows or parts of rows left out, with the reason; printed under the table and kept in the JSON. */
  skipped: string[];
}

/** Each rep runs every subject once; the order rotates so drift and warm caches hit all alike. */
export function rotated<T>(subjects: T[], rep: number): T[] {
  if (subjects.length === 0) return [];
  const k = rep % subjects.length;
  return [...subjects.slice(k), ...subjects.slice(0, k)];
}
