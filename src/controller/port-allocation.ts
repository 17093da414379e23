/**
 * Host ports for a sandbox's published ports: requested ones checked, missing ones chosen from the
 * ephemeral range (ip_local_port_range minus ip_local_reserved_ports). A port is taken when cnm already
 * publishes it or a process of the daemon's namespace listens on it, on the same or a wildcard address
 * of the same family: 0.0.0.0 covers every IPv4 address, :: every IPv6 one. A request may name several
 * host addresses (0.0.0.0 and :: on a dual-stack network): they get the same port, one free on all of
 * them. All or nothing: the result is either every binding or an error. Pure.
 */
import { ConflictError } from '../errors.js';
import type { HostPortFacts } from '../kernel/host-ports.js';
import type { PublishedPort } from './records.js';
import type { PortBindingRequest } from './types.js';

function overlaps(a: string, b: string): boolean {
  if (a === b) return true;
  const v6 = a.includes(':');
  if (v6 !== b.includes(':')) return false;
  const any = v6 ? '::' : '0.0.0.0';
  return a === any || b === any;
}

/** A request with its host addresses resolved (canonical; the network's defaults applied). */
export type ResolvedPortRequest = Omit<PortBindingRequest, 'hostIp'> & { hostIps: string[] };

/** "0.0.0.0:8080", "[::]:8080": how Docker writes an address and port in its messages. */
export function hostAndPort(hostIp: string, port: number | string): string {
  return hostIp.includes(':') ? `[${hostIp}]:${port}` : `${hostIp}:${port}`;
}

/** Host addresses bound per protocol and port: one lookup per candidate, whatever is published. */
export class BoundPorts {
  private readonly byPort = new Map<number, string[]>();
  add(protocol: string, port: number, address: string): void {
    const key = keyOf(protocol, port);
    const list = this.byPort.get(key);
    if (list) list.push(address);
    else this.byPort.set(key, [address]);
  }
  /** Forget one binding (the first with that address). */
  remove(protocol: string, port: number, address: string): void {
    const key = keyOf(protocol, port);
    const list = this.byPort.get(key);
    const i = list?.indexOf(address) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.byPort.delete(key);
  }
  overlaps(protocol: string, port: number, address: string): boolean {
    const list = this.byPort.get(keyOf(protocol, port));
    return list !== undefined && list.some((a) => overlaps(a, address));
  }
}

function keyOf(protocol: string, port: number): number {
  return (protocol === 'tcp' ? 0 : protocol === 'udp' ? 1 : 2) * 65536 + port;
}

/** Whether `port` is free on every one of `hostIps`; else the first address where it is not, and why. */
function isTaken(
  protocol: string,
  hostIps: readonly string[],
  port: number,
  published: PublishedCheck,
  granted: BoundPorts,
  listened: BoundPorts,
): { hostIp: string; why: 'published' | 'listened' } | undefined {
  for (const hostIp of hostIps) {
    if (published(protocol, port, hostIp) || granted.overlaps(protocol, port, hostIp)) return { hostIp, why: 'published' };
    if (listened.overlaps(protocol, port, hostIp)) return { hostIp, why: 'listened' };
  }
  return undefined;
}

function reserved(port: number, facts: HostPortFacts): boolean {
  return facts.reserved.some((r) => port >= r.start && port <= r.end);
}

/** True when cnm already publishes `port` of `protocol` on `hostIp` or on an address overlapping it. */
export type PublishedCheck = (protocol: string, port: number, hostIp: string) => boolean;

/** A check over a plain list (tests, small sets). */
export function publishedIn(ports: readonly PublishedPort[]): PublishedCheck {
  const bound = new BoundPorts();
  for (const p of ports) bound.add(p.protocol, p.hostPort, p.hostIp);
  return (protocol, port, hostIp) => bound.overlaps(protocol, port, hostIp);
}

/**
 * Resolve `requests` (each hostIp already defaulted) against what is published and listened on.
 * `start` picks where the search for a free port begins in each range (random in the daemon, fixed in
 * tests). Throws ConflictError naming the first port that cannot be had.
 */
export function allocateHostPorts(
  requests: readonly ResolvedPortRequest[],
  published: PublishedCheck,
  facts: HostPortFacts,
  start: (span: number) => number,
): PublishedPort[] {
  const granted = new BoundPorts();
  const listened = new BoundPorts();
  for (const l of facts.listeners) listened.add(l.protocol, l.port, l.address);
  const out: PublishedPort[] = [];
  for (const r of requests) {
    const fixed = r.hostPortStart !== 0 && r.hostPortStart === r.hostPortEnd;
    const where = r.hostIps[0]!;
    let port: number | undefined;
    if (fixed) {
      const taken = isTaken(r.protocol, r.hostIps, r.hostPortStart, published, granted, listened);
      if (taken?.why === 'published') {
        throw new ConflictError(`Bind for ${hostAndPort(taken.hostIp, r.hostPortStart)} failed: port is already allocated`);
      }
      if (taken?.why === 'listened') {
        throw new ConflictError(
          `Bind for ${hostAndPort(taken.hostIp, r.hostPortStart)}/${r.protocol} failed: address already in use (a process on the host listens on it)`,
        );
      }
      port = r.hostPortStart;
    } else {
      // A range the user gave is searched whole; the ephemeral range skips the reserved ports.
      const ephemeral = r.hostPortStart === 0;
      const lo = ephemeral ? facts.ephemeral.start : r.hostPortStart;
      const hi = ephemeral ? facts.ephemeral.end : r.hostPortEnd;
      const span = hi - lo + 1;
      const first = span > 0 ? start(span) % span : 0;
      for (let i = 0; i < span && port === undefined; i++) {
        const candidate = lo + ((first + i) % span);
        if (candidate === 0 || (ephemeral && reserved(candidate, facts))) continue;
        if (isTaken(r.protocol, r.hostIps, candidate, published, granted, listened) === undefined) port = candidate;
      }
      if (port === undefined) {
        throw new ConflictError(
          ephemeral
            ? `Bind for ${hostAndPort(where, r.containerPort)}/${r.protocol} failed: all ports are allocated`
            : `Bind for ${hostAndPort(where, `${r.hostPortStart}-${r.hostPortEnd}`)} failed: all ports in the range are allocated`,
        );
      }
    }
    for (const hostIp of r.hostIps) {
      const binding: PublishedPort = { protocol: r.protocol, containerPort: r.containerPort, hostIp, hostPort: port };
      granted.add(binding.protocol, binding.hostPort, binding.hostIp);
      out.push(binding);
    }
  }
  return out;
}
