/**
 * What the daemon's network namespace says about host ports: the ephemeral range
 * (net.ipv4.ip_local_port_range), the reserved ports (ip_local_reserved_ports) and the sockets bound
 * there (/proc/net/{tcp,udp}{,6}: TCP listeners, bound UDP sockets; /proc/net/sctp/eps: SCTP endpoints,
 * when the kernel has SCTP). Read synchronously on the main
 * thread, which is in the daemon's namespace whenever JavaScript runs (setns windows are synchronous),
 * so the files describe that namespace. Parsing is pure and exported for tests.
 */
import { readFileSync } from 'node:fs';
import { canonicalIp, formatIp } from '../util/ip.js';

export interface PortRange {
  start: number;
  end: number;
}

export interface HostListener {
  protocol: 'tcp' | 'udp' | 'sctp';
  /**
   * IPv4 or IPv6 address; '0.0.0.0' / '::' for a wildcard. An IPv6 wildcard socket is listed twice, as
   * '::' and '0.0.0.0' (it takes IPv4 too unless IPV6_V6ONLY, which /proc does not show).
   */
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

/** One /proc/net/{tcp,udp}[6] table → its listening TCP / bound UDP sockets. */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp', v6: boolean): HostListener[] {
  const out: HostListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [addrHex, portHex] = cols[1]!.split(':');
    if (protocol === 'tcp' && cols[3] !== TCP_LISTEN) continue;
    const port = parseInt(portHex ?? '', 16);
    if (!Number.isInteger(port) || port === 0) continue;
    for (const address of v6 ? v6Addresses(addrHex ?? '') : [hexToV4(addrHex ?? '')]) out.push({ protocol, address, port });
  }
  return out;
}

/** /proc prints the address as 32-bit words in host (little-endian) order. */
function hexToV4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/**
 * An IPv6 socket's address: the wildcard is both families' (dual-stack), a v4-mapped address is that
 * IPv4 address, anything else its IPv6 address (four 32-bit words, each in host order), compressed.
 */
function v6Addresses(hex: string): string[] {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return [];
  if (/^0{32}$/.test(hex)) return ['::', '0.0.0.0'];
  if (hex.slice(0, 16) === '0000000000000000' && hex.slice(16, 24).toUpperCase() === 'FFFF0000') return [hexToV4(hex.slice(24))];
  let value = 0n;
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    value = (value << 32n) | BigInt(`0x${[6, 4, 2, 0].map((i) => word.slice(i, i + 2)).join('')}`);
  }
  return [formatIp({ family: 6, value })];
}

/**
 * /proc/net/sctp/eps → the SCTP endpoints' local ports and addresses. Each line: ENDPT SOCK STY SST HBKT
 * LPORT UID INODE, then every bound address (%pI4, or %pI6: eight uncompressed groups); a wildcard is
 * 0.0.0.0 or :: (an IPv6 one takes IPv4 too, as for TCP).
 */
export function parseSctpEndpoints(text: string): HostListener[] {
  const out: HostListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 9) continue;
    const port = Number(cols[5]);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) continue;
    for (const raw of cols.slice(8)) {
      const address = canonicalIp(raw);
      if (address === undefined) continue;
      const addresses = address === '::' ? ['::', '0.0.0.0'] : address.startsWith('::ffff:') && address.includes('.') ? [address.slice(7)] : [address];
      for (const a of addresses) out.push({ protocol: 'sctp', address: a, port });
    }
  }
  return out;
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
  listeners.push(...parseSctpEndpoints(readOptional('/proc/thread-self/net/sctp/eps')));
  return {
    ephemeral: parsePortRangeSysctl(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')),
    reserved: parseReservedPorts(readOptional('/proc/sys/net/ipv4/ip_local_reserved_ports')),
    listeners,
  };
}
