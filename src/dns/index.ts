/** The embedded DNS: what the daemon wires (see server.ts for the moving parts). */
export { DnsRegistry } from './registry.js';
export type { DnsEndpointSpec, DnsNetworkSpec, DnsServiceSpec, Resolution, SandboxDnsConfig } from './registry.js';
export { EmbeddedDnsServer, DEFAULT_SERVER_OPTIONS } from './server.js';
export type { EmbeddedDnsServerOptions, EmbeddedDnsStats } from './server.js';
export { DEFAULT_FORWARDER_OPTIONS } from './forwarder.js';
export type { ForwarderOptions } from './forwarder.js';
export {
  EMBEDDED_DNS_ADDRESS,
  parseResolvConf,
  renderEmbeddedResolvConf,
  type ResolverConfig,
  type UpstreamServer,
} from './resolv-conf.js';
export { EmbeddedDnsDiscovery } from './discovery.js';
export type { DiscoveryEndpoint, DiscoveryNetwork, DiscoveryService, NamespaceAttacher, ServiceDiscovery } from './discovery.js';
