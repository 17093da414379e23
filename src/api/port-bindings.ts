/**
 * HostConfig.PortBindings ("80/tcp" → [{HostIp, HostPort}]) → the controller's port requests. Shapes
 * and numbers are checked here, with Docker's wording; what the addresses mean is the controller's.
 */
import type { PortBindingRequest } from '../controller/types.js';
import { InvalidParameterError } from '../errors.js';
import { isPortProtocol, parsePortRange, splitProtoPort } from '../util/port-spec.js';

export type PortBindingsBody = Record<string, Array<{ HostIp?: string | null; HostPort?: string | null }> | null | undefined>;

/** Most bindings one request may carry (every port of every protocol on two addresses). */
export const MAX_PORT_BINDINGS = 65535 * 3 * 2;

export function toPortRequests(bindings: PortBindingsBody | null | undefined): PortBindingRequest[] | undefined {
  if (!bindings) return undefined;
  const out: PortBindingRequest[] = [];
  for (const [key, list] of Object.entries(bindings)) {
    const { proto, port } = splitProtoPort(key);
    const protocol = proto.toLowerCase();
    if (port === '') throw new InvalidParameterError(`invalid port specification: ${JSON.stringify(key)}`);
    if (!isPortProtocol(protocol)) throw new InvalidParameterError(`invalid proto: ${proto}`);
    let container: { start: number; end: number };
    try {
      container = parsePortRange(port);
    } catch {
      throw new InvalidParameterError(`invalid port specification: ${JSON.stringify(port)}`);
    }
    if (container.start !== container.end) {
      throw new InvalidParameterError(`invalid port specification: ${JSON.stringify(key)}: one container port per key (the docker CLI expands ranges)`);
    }
    // Docker publishes an exposed port without bindings nowhere: an empty list changes nothing.
    for (const b of list ?? []) {
      let host = { start: 0, end: 0 };
      const hostPort = b.HostPort ?? '';
      if (hostPort !== '') {
        try {
          host = parsePortRange(hostPort);
        } catch {
          throw new InvalidParameterError(`invalid port specification: ${JSON.stringify(hostPort)}`);
        }
      }
      out.push({ protocol, containerPort: container.start, hostIp: b.HostIp ?? '', hostPortStart: host.start, hostPortEnd: host.end });
      if (out.length > MAX_PORT_BINDINGS) throw new InvalidParameterError(`more than ${MAX_PORT_BINDINGS} port bindings`);
    }
  }
  return out.length > 0 ? out : undefined;
}
