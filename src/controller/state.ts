/**
 * The single in-memory copy of CNM state, indexed for the lookups the API needs. It is changed only
 * after the store has accepted a change, so it never runs ahead of what is persisted.
 */
import { InvalidParameterError, NoSuchSandboxError, NotFoundError } from '../errors.js';
import { BoundPorts } from './port-allocation.js';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, PublishedPort, SandboxRecord, ServiceRecord } from './records.js';

interface Named {
  id: string;
  name: string;
}

/** Docker's lookup order: full ID, exact name, then a unique ID prefix. */
function lookup<T extends Named>(items: Map<string, T>, byName: Map<string, T>, ref: string, kind: string): T {
  const exact = items.get(ref) ?? byName.get(ref) ?? byName.get(ref.replace(/^\//, ''));
  if (exact) return exact;
  if (ref.length > 0 && /^[0-9a-f]+$/.test(ref)) {
    const matches: T[] = [];
    for (const item of items.values()) if (item.id.startsWith(ref)) matches.push(item);
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new InvalidParameterError(`${kind} ${ref} is ambiguous (${matches.length} matches found based on ID prefix)`);
    }
  }
  throw new NotFoundError(kind === 'network' ? `network ${ref} not found` : `No such ${kind}: ${ref}`);
}

export class CnmState {
  readonly networks = new Map<string, NetworkRecord>();
  readonly sandboxes = new Map<string, SandboxRecord>();
  readonly endpoints = new Map<string, EndpointRecord>();
  readonly services = new Map<string, ServiceRecord>();
  /** Endpoints handed to another runtime's containers (Docker), by the runtime's endpoint ID. */
  readonly attachments = new Map<string, AttachmentRecord>();
  /** Another runtime's IDs for global networks made by another host (runtime's ID → network ID). */
  readonly networkAliases = new Map<string, string>();
  private readonly servicesByName = new Map<string, ServiceRecord>();
  private readonly networksByName = new Map<string, NetworkRecord>();
  private readonly sandboxesByName = new Map<string, SandboxRecord>();
  private readonly endpointsByNetwork = new Map<string, Set<string>>();
  private readonly endpointsBySandbox = new Map<string, Set<string>>();
  /** Every host port the sandboxes and attachments publish, so a new one is checked in O(1) whatever is published. */
  readonly publishedPorts = new BoundPorts();

  network(ref: string): NetworkRecord {
    return lookup(this.networks, this.networksByName, ref, 'network');
  }

  sandbox(ref: string): SandboxRecord {
    try {
      return lookup(this.sandboxes, this.sandboxesByName, ref, 'sandbox');
    } catch (err) {
      if (err instanceof NotFoundError) throw new NoSuchSandboxError(ref);
      throw err;
    }
  }

  service(ref: string): ServiceRecord {
    return lookup(this.services, this.servicesByName, ref, 'service');
  }

  serviceByName(name: string): ServiceRecord | undefined {
    return this.servicesByName.get(name);
  }

  servicesOfNetwork(networkId: string): ServiceRecord[] {
    return [...this.services.values()].filter((s) => s.networkId === networkId);
  }

  /** The endpoints that joined a service (on its network), in creation order. */
  backendsOf(svc: ServiceRecord): EndpointRecord[] {
    return this.endpointsOfNetwork(svc.networkId).filter((ep) => ep.services?.includes(svc.id));
  }

  putService(svc: ServiceRecord): void {
    this.services.set(svc.id, svc);
    this.servicesByName.set(svc.name, svc);
  }

  deleteService(id: string): void {
    const svc = this.services.get(id);
    if (!svc) return;
    this.services.delete(id);
    this.servicesByName.delete(svc.name);
  }

  networkByName(name: string): NetworkRecord | undefined {
    return this.networksByName.get(name);
  }

  sandboxByName(name: string): SandboxRecord | undefined {
    return this.sandboxesByName.get(name);
  }

  endpointsOfNetwork(networkId: string): EndpointRecord[] {
    return [...(this.endpointsByNetwork.get(networkId) ?? [])].map((id) => this.endpoints.get(id)!);
  }

  endpointsOfSandbox(sandboxId: string): EndpointRecord[] {
    return [...(this.endpointsBySandbox.get(sandboxId) ?? [])].map((id) => this.endpoints.get(id)!);
  }

  endpointOf(networkId: string, sandboxId: string): EndpointRecord | undefined {
    return this.endpointsOfSandbox(sandboxId).find((e) => e.networkId === networkId);
  }

  attachmentsOfNetwork(networkId: string): AttachmentRecord[] {
    return [...this.attachments.values()].filter((a) => a.networkId === networkId);
  }

  /** Records an attachment (and the host ports it publishes). */
  putAttachment(att: AttachmentRecord): void {
    this.movePorts(this.attachments.get(att.id)?.ports, att.ports);
    this.attachments.set(att.id, att);
  }

  deleteAttachment(id: string): void {
    const old = this.attachments.get(id);
    if (!old) return;
    this.movePorts(old.ports, undefined);
    this.attachments.delete(id);
  }

  putNetwork(net: NetworkRecord): void {
    const old = this.networks.get(net.id);
    if (old && old.name !== net.name) this.networksByName.delete(old.name);
    this.networks.set(net.id, net);
    this.networksByName.set(net.name, net);
  }

  deleteNetwork(id: string): void {
    const net = this.networks.get(id);
    if (!net) return;
    this.networks.delete(id);
    this.networksByName.delete(net.name);
    this.endpointsByNetwork.delete(id);
  }

  putSandbox(sb: SandboxRecord): void {
    this.movePorts(this.sandboxes.get(sb.id)?.ports, sb.ports);
    this.sandboxes.set(sb.id, sb);
    this.sandboxesByName.set(sb.name, sb);
  }

  deleteSandbox(id: string): void {
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    this.movePorts(sb.ports, undefined);
    this.sandboxes.delete(id);
    this.sandboxesByName.delete(sb.name);
    this.endpointsBySandbox.delete(id);
  }

  putEndpoint(ep: EndpointRecord): void {
    this.endpoints.set(ep.id, ep);
    index(this.endpointsByNetwork, ep.networkId).add(ep.id);
    index(this.endpointsBySandbox, ep.sandboxId).add(ep.id);
  }

  deleteEndpoint(id: string): void {
    const ep = this.endpoints.get(id);
    if (!ep) return;
    this.endpoints.delete(id);
    this.endpointsByNetwork.get(ep.networkId)?.delete(id);
    this.endpointsBySandbox.get(ep.sandboxId)?.delete(id);
  }

  /** A record's published host ports change from `before` to `after` (either absent: none). */
  private movePorts(before: readonly PublishedPort[] | undefined, after: readonly PublishedPort[] | undefined): void {
    for (const p of before ?? []) this.publishedPorts.remove(p.protocol, p.hostPort, p.hostIp);
    for (const p of after ?? []) this.publishedPorts.add(p.protocol, p.hostPort, p.hostIp);
  }
}

function index(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}
