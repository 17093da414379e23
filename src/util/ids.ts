import { randomBytes } from 'node:crypto';

/** A Docker-style object ID: 64 lowercase hex characters. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function isFullId(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}

/** RFC3339 with nanoseconds, as Docker prints `Created`. */
export function rfc3339Nano(date: Date = new Date(), nanos = BigInt(process.hrtime.bigint() % 1_000_000n)): string {
  const iso = date.toISOString(); // 2024-01-02T03:04:05.678Z
  const frac = `${iso.slice(20, 23)}${nanos.toString().padStart(6, '0')}`;
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** A locally administered unicast MAC address (02:xx:...), random. */
export function randomMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfe) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
