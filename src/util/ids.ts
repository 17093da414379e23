import { randomFillSync } from 'node:crypto';
import { formatMac } from './mac.js';

/**
 * Random bytes from the kernel's CSPRNG, drawn in blocks: one `randomFillSync` call costs 10–25 µs in
 * the daemon (a crypto job set up per call), and a connect needs three small draws (the endpoint's ID,
 * its MAC, the host end's MAC). Each byte is handed out once; the block is refilled when used up.
 */
const POOL = Buffer.alloc(4096);
let poolOffset = POOL.length;

function withRandomBytes<T>(count: number, use: (bytes: Buffer) => T): T {
  if (count > POOL.length) return use(randomFillSync(Buffer.alloc(count)));
  if (poolOffset + count > POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const bytes = POOL.subarray(poolOffset, poolOffset + count);
  poolOffset += count;
  try {
    return use(bytes);
  } finally {
    // Nothing drawn stays readable in the pool.
    bytes.fill(0);
  }
}

/** `count` random bytes as lowercase hex (2 × count characters). */
export function randomHex(count: number): string {
  return withRandomBytes(count, (bytes) => bytes.toString('hex'));
}

/** A Docker-style object ID: 64 lowercase hex characters. */
export function newId(): string {
  return randomHex(32);
}

export function isFullId(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}

/** RFC3339 with nanoseconds, as Docker prints `Created` (below the millisecond: the monotonic clock's). */
export function rfc3339Nano(date: Date = new Date(), nanos: number | bigint = process.hrtime()[1] % 1_000_000): string {
  const iso = date.toISOString(); // 2024-01-02T03:04:05.678Z
  const frac = `${iso.slice(20, 23)}${nanos.toString().padStart(6, '0')}`;
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** A locally administered unicast MAC address (02:xx:...), random. */
export function randomMac(): string {
  return withRandomBytes(6, (bytes) => {
    bytes[0] = (bytes[0]! & 0xfe) | 0x02;
    return formatMac(bytes);
  });
}
