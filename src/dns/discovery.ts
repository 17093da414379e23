/**
 * Service discovery as the controller sees it: a narrow, one-way interface. The controller reports what
 * happened (a network, endpoint or sandbox came or went) in the same operation that changed its own
 * state; the DNS side never calls back. EmbeddedDnsDiscovery feeds the DnsRegistry and attaches the
 * EmbeddedDnsServer; tests use a recording fake.
 *
 * Docker semantics kept here: only user-defined networks have embedded name resolution. Endpoints on the
 * predefined "bridge" (and on host / none) are not names anyone can resolve.
 */
import type { DnsEndpointSpec, DnsNetworkSpec, DnsRegistry, DnsServiceSpec } from './registry.js';
import type { ResolverConfig } from './resolv-conf.js';
import type { EmbeddedDnsServer } from './server.js';

export interface DiscoveryNetwork extends DnsNetworkSpec {
  /** False for the predefined bridge / host / none (and config-only networks): no names on it. */
  userDefined: boolean;
}

export type DiscoveryEndpoint = DnsEndpointSpec;
export type DiscoveryService = DnsServiceSpec;

export interface ServiceDiscovery {
  networkCreated(network: DiscoveryNetwork): void;
  networkRemoved(networkId: string): void;
  /** The endpoint's names resolve from the next query on; ignored on networks without name resolution. */
  endpointJoined(endpoint: DiscoveryEndpoint): void;
  /** The endpoint's names are gone from the next query on; unknown endpoints are a no-op. */
  endpointLeft(endpointId: string): void;
  /**
   * A service's names (NAME, tasks.NAME) answer with these addresses from the next query on: called on
   * create and on every change of its backends; ignored on networks without name resolution.
   */
  serviceChanged(service: DiscoveryService): void;
  /** The service's names are gone from the next query on; unknown services are a no-op. */
  serviceRemoved(serviceId: string): void;
  /** The sandbox's own --dns / --dns-search / --dns-option. */
  sandboxCreated(sandboxId: string, dns: ResolverConfig): void;
  /** Forget the sandbox and stop answering in its namespace (before the namespace is deleted). */
  sandboxRemoved(sandboxId: string): Promise<void>;
  /** Answer at 127.0.0.11 inside the sandbox's namespace; idempotent. Throws when the namespace cannot be used. */
  attach(sandboxId: string, netnsPath: string): Promise<void>;
  /** Stop answering in the sandbox's namespace; no-op when not attached. */
  detach(sandboxId: string): Promise<void>;
}

/** The part of EmbeddedDnsServer this needs (unit tests record it instead of opening sockets). */
export type NamespaceAttacher = Pick<EmbeddedDnsServer, 'attach' | 'detach'>;

export class EmbeddedDnsDiscovery implements ServiceDiscovery {
  /** Networks with name resolution: endpoints on any other network are not registered. */
  private readonly resolvable = new Set<string>();

  constructor(
    private readonly registry: DnsRegistry,
    private readonly server: NamespaceAttacher,
  ) {}

  networkCreated(network: DiscoveryNetwork): void {
    if (!network.userDefined) return;
    this.resolvable.add(network.id);
    this.registry.setNetwork({ id: network.id, name: network.name, internal: network.internal });
  }

  networkRemoved(networkId: string): void {
    if (!this.resolvable.delete(networkId)) return;
    this.registry.removeNetwork(networkId);
  }

  endpointJoined(endpoint: DiscoveryEndpoint): void {
    if (this.resolvable.has(endpoint.networkId)) this.registry.addEndpoint(endpoint);
  }

  endpointLeft(endpointId: string): void {
    this.registry.removeEndpoint(endpointId);
  }

  serviceChanged(service: DiscoveryService): void {
    if (this.resolvable.has(service.networkId)) this.registry.setService(service);
  }

  serviceRemoved(serviceId: string): void {
    this.registry.removeService(serviceId);
  }

  sandboxCreated(sandboxId: string, dns: ResolverConfig): void {
    this.registry.setSandboxDns(sandboxId, dns);
  }

  async sandboxRemoved(sandboxId: string): Promise<void> {
    this.registry.removeSandbox(sandboxId);
    await this.server.detach(sandboxId);
  }

  attach(sandboxId: string, netnsPath: string): Promise<void> {
    return this.server.attach(sandboxId, netnsPath);
  }

  detach(sandboxId: string): Promise<void> {
    return this.server.detach(sandboxId);
  }
}
