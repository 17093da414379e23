/**
 * The real service discovery (EmbeddedDnsDiscovery + DnsRegistry) with a recording stand-in for the
 * server's sockets: controller tests can ask what a sandbox would resolve, and which namespaces the
 * embedded server would be answering in, without opening anything.
 */
import { EmbeddedDnsDiscovery, type NamespaceAttacher } from '../../src/dns/discovery.js';
import { DnsRegistry } from '../../src/dns/registry.js';
import { KernelError } from '../../src/errors.js';

export class RecordingDnsServer implements NamespaceAttacher {
  /** Sandbox ID → namespace path it is being served in. */
  readonly attached = new Map<string, string>();
  readonly calls: string[] = [];
  /** When set, attach fails like a namespace that cannot be entered. */
  failAttach = false;

  async attach(sandboxId: string, netnsPath: string): Promise<void> {
    this.calls.push(`attach ${sandboxId}`);
    if (this.failAttach) throw new KernelError(`cannot enter ${netnsPath}`);
    this.attached.set(sandboxId, netnsPath);
  }

  async detach(sandboxId: string): Promise<void> {
    this.calls.push(`detach ${sandboxId}`);
    this.attached.delete(sandboxId);
  }
}

export interface TestDiscovery {
  discovery: EmbeddedDnsDiscovery;
  registry: DnsRegistry;
  server: RecordingDnsServer;
  /** IPv4 addresses `name` resolves to from the sandbox (empty: not a local name). */
  resolve(sandboxId: string, name: string): string[];
}

export function createTestDiscovery(): TestDiscovery {
  const registry = new DnsRegistry();
  const server = new RecordingDnsServer();
  return {
    discovery: new EmbeddedDnsDiscovery(registry, server),
    registry,
    server,
    resolve: (sandboxId, name) => registry.resolve(sandboxId, name, 'A').addresses,
  };
}
