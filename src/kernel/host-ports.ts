/**
 * What the daemon's network namespace says about host ports: the ephemeral range
 * (net.ipv4.ip_local_port_range), the reserved ports (ip_local_reserved_ports) and the sockets bound
 * there (/proc/net/{tcp,udp}{,6}: TCP listeners, bound UDP sockets). Read synchronously on the main
 * thread, which is in the daemon's namespace whenever JavaScript runs (setns windows are synchronous),
 * so the files describe that namespace. Parsing is pure and exported for tests.
 */
import { readFileSync } from 'node:fs';

export interface PortRange {
  start: number;
  end: number;
}

export interface HostListener {
  protocol: 'tcp' | 'udp';
  /** IPv4 address, or '0.0.0.0' for a wildcard (an IPv6 wildcard socket takes IPv4 too). */
  address: string;
  port: number;
}

export interface HostPortFacts {
  ephemeral: PortRange;
  reserved: PortRange[];
  listeners: HostListener[];
}

/** "32768\t60999" → the range. */
export function parsePortRangeSysctl(text: string): PortRange {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`unexpected ip_local_port_range ${JSON.stringify(text)}`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

/** "8080,9000-9010" (or empty) → ranges. */
export function parseReservedPorts(text: string): PortRange[] {
  return text
    .trim()
    .split(',')
    .filter((s) => s !== '')
    .map((s) => {
      const [a, b] = s.split('-');
      return { start: Number(a), end: Number(b ?? a) };
    });
}

const TCP_LISTEN = '0A';

/** One /proc/net/{tcp,udp}[6] table → its listening TCP / bound UDP sockets (IPv4-relevant ones). */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp', v6: boolean): HostListener[] {
  const out: HostListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [addrHex, portHex] = cols[1]!.split(':');
    if (protocol === 'tcp' && cols[3] !== TCP_LISTEN) continue;
    const port = parseInt(portHex ?? '', 16);
    if (!Number.isInteger(port) || port === 0) continue;
    const address = v6 ? v6ToV4(addrHex ?? '') : hexToV4(addrHex ?? '');
    if (address !== undefined) out.push({ protocol, address, port });
  }
  return out;
}

/** /proc prints the address as 32-bit words in host (little-endian) order. */
function hexToV4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/** An IPv6 socket matters for IPv4 ports when it is the wildcard (dual-stack) or a v4-mapped address. */
function v6ToV4(hex: string): string | undefined {
  if (/^0{32}$/.test(hex)) return '0.0.0.0';
  if (hex.slice(0, 16) === '0000000000000000' && hex.slice(16, 24).toUpperCase() === 'FFFF0000') return hexToV4(hex.slice(24));
  return undefined;
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Read the facts in the daemon's namespace (the calling thread's: see the file comment). */
export function readHostPortFacts(): HostPortFacts {
  const listeners: HostListener[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    listeners.push(...parseProcNet(readFileSync(`/proc/thread-self/net/${protocol}`, 'utf8'), protocol, false));
    listeners.push(...parseProcNet(readOptional(`/proc/thread-self/net/${protocol}6`), protocol, true));
  }
  return {
    ephemeral: parsePortRangeSysctl(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')),
    reserved: parseReservedPorts(readOptional('/proc/sys/net/ipv4/ip_local_reserved_ports')),
    listeners,
  };
}
