/**
 * Docker's port specifications, parsed as the docker CLI does before it sends `HostConfig.PortBindings`
 * (go-connections nat.ParsePortSpec): `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp|sctp]`,
 * `[::]:` and `[v6addr]:` for IPv6. Ranges of equal length map port to port; a host range with a single
 * container port is the range a free host port is taken from. Errors are worded as Docker's. Pure.
 */
import { isIP } from 'node:net';

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** One container port and where it is published: nat.PortMapping. */
export interface PortMapping {
  /** "80/tcp" (a key of Docker's PortBindings). */
  port: string;
  /** '' = the network's default host address. */
  hostIp: string;
  /** '' = any free port, "8080", or "8000-8010" (a free port from that range). */
  hostPort: string;
}

export class PortSpecError extends Error {}

/** A port or "START-END", each 0–65535 (Docker parses them as 16-bit numbers). */
export function parsePortRange(text: string): { start: number; end: number } {
  const dash = text.indexOf('-');
  const parse = (t: string): number => {
    if (!/^\d{1,5}$/.test(t)) throw new PortSpecError(`invalid port ${JSON.stringify(t)}`);
    const n = Number(t);
    if (n > 65535) throw new PortSpecError(`invalid port ${JSON.stringify(t)}`);
    return n;
  };
  if (dash < 0) {
    const n = parse(text);
    return { start: n, end: n };
  }
  const start = parse(text.slice(0, dash));
  const end = parse(text.slice(dash + 1));
  if (end < start) throw new PortSpecError(`invalid range ${text}`);
  return { start, end };
}

/** "80", "80/udp", "80-90/tcp" → protocol and number part; the protocol defaults to tcp. */
export function splitProtoPort(raw: string): { proto: string; port: string } {
  const slash = raw.indexOf('/');
  const port = slash < 0 ? raw : raw.slice(0, slash);
  const proto = slash < 0 ? '' : raw.slice(slash + 1);
  if (port === '') return { proto: '', port: '' };
  return { proto: proto === '' ? 'tcp' : proto, port };
}

function splitParts(raw: string): { ip: string; hostPort: string; containerPort: string } {
  const parts = raw.split(':');
  if (parts.length === 1) return { ip: '', hostPort: '', containerPort: parts[0]! };
  if (parts.length === 2) return { ip: '', hostPort: parts[0]!, containerPort: parts[1]! };
  const n = parts.length;
  return { ip: parts.slice(0, n - 2).join(':'), hostPort: parts[n - 2]!, containerPort: parts[n - 1]! };
}

export function isPortProtocol(proto: string): proto is PortProtocol {
  return proto === 'tcp' || proto === 'udp' || proto === 'sctp';
}

/** Parse one `-p` value into one mapping per container port. Throws PortSpecError with Docker's words. */
export function parsePortSpec(raw: string): PortMapping[] {
  const parts = splitParts(raw);
  let ip = parts.ip;
  const { hostPort } = parts;
  const split = splitProtoPort(parts.containerPort);
  if (split.port === '') throw new PortSpecError(`no port specified: ${raw}<empty>`);
  const proto = split.proto.toLowerCase();
  if (!isPortProtocol(proto)) throw new PortSpecError(`invalid proto: ${proto}`);
  if (ip.startsWith('[')) {
    if (!ip.endsWith(']') || ip.indexOf(']') !== ip.length - 1) throw new PortSpecError(`invalid IP address ${ip}: missing ']' in address`);
    ip = ip.slice(1, -1);
  }
  if (ip !== '' && isIP(ip) === 0) throw new PortSpecError(`invalid IP address: ${ip}`);

  let container: { start: number; end: number };
  try {
    container = parsePortRange(split.port);
  } catch {
    throw new PortSpecError(`invalid containerPort: ${split.port}`);
  }
  let host = { start: 0, end: 0 };
  if (hostPort !== '') {
    try {
      host = parsePortRange(hostPort);
    } catch {
      throw new PortSpecError(`invalid hostPort: ${hostPort}`);
    }
    // A host range with one container port is the range to pick a free host port from.
    if (container.end - container.start !== host.end - host.start && container.end !== container.start) {
      throw new PortSpecError(`invalid ranges specified for container and host Ports: ${split.port} and ${hostPort}`);
    }
  }
  const count = container.end - container.start + 1;
  const out: PortMapping[] = [];
  for (let i = 0; i < count; i++) {
    let h = '';
    if (hostPort !== '') {
      h = String(host.start + i);
      if (count === 1 && host.start !== host.end) h += `-${host.end}`;
    }
    out.push({ port: `${container.start + i}/${proto}`, hostIp: ip, hostPort: h });
  }
  return out;
}

/** Several `-p` values as Docker's PortBindings map ("80/tcp" → [{HostIp, HostPort}]), in order. */
export function portBindingsOf(specs: readonly string[]): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const spec of specs) {
    for (const m of parsePortSpec(spec)) (bindings[m.port] ??= []).push({ HostIp: m.hostIp, HostPort: m.hostPort });
  }
  return bindings;
}
