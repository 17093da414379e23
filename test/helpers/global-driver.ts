/**
 * A small recording global-scope driver for control-plane tests: networks that span hosts, a
 * cluster-wide number under its own option, setPeers recorded per network. It touches no kernel; it
 * checks its callers (setPeers, join or leave on a network it has not created is a bug it reports).
 */
import { InvalidParameterError } from '../../src/errors.js';
import type { DriverEndpoint, DriverNetwork, HandoffJoinResult, JoinResult, NetworkDriver, NetworkProgram, RemotePeer } from '../../src/drivers/types.js';

export const TEST_ID_OPTION = 'cnm.test.cluster_id';

export interface GlobalTestOptions {
  clusterId?: number;
}

export class RecordingGlobalDriver implements NetworkDriver<GlobalTestOptions, Record<string, never>> {
  readonly name = 'gtest';
  readonly scope = 'global' as const;
  readonly needsIpam = true;
  readonly clusterId = { option: TEST_ID_OPTION, min: 4096, max: 16777215 };
  /** As the overlay: the host has no path onto the network, so VIPs are balanced in the sandboxes. */
  readonly balancesInSandboxes = true;
  /** Networks created on this host, by id, with the options they were created with. */
  readonly networks = new Map<string, GlobalTestOptions>();
  /** The last peer list per network. */
  readonly peers = new Map<string, RemotePeer[]>();
  readonly calls: string[] = [];
  readonly joined = new Set<string>();
  failSetPeers = false;

  parseNetworkOptions(raw: Record<string, string>): GlobalTestOptions {
    for (const key of Object.keys(raw)) if (key !== TEST_ID_OPTION) throw new InvalidParameterError(`gtest: unknown option ${key}`);
    const v = raw[TEST_ID_OPTION];
    if (v === undefined) return {};
    if (!/^\d+$/.test(v)) throw new InvalidParameterError(`gtest: bad ${TEST_ID_OPTION} ${v}`);
    return { clusterId: Number(v) };
  }

  parseEndpointOptions(raw: Record<string, string>): Record<string, never> {
    if (Object.keys(raw).length > 0) throw new InvalidParameterError('gtest: no endpoint options');
    return {};
  }

  validateNetwork(): void {}

  async createNetwork(net: DriverNetwork<GlobalTestOptions>): Promise<NetworkProgram> {
    if (net.options.clusterId === undefined) throw new Error('gtest: created without its cluster id');
    this.networks.set(net.id, net.options);
    this.calls.push(`create ${net.name} ${net.options.clusterId}`);
    return { driverState: {} };
  }

  async restoreNetwork(net: DriverNetwork<GlobalTestOptions>): Promise<NetworkProgram> {
    this.networks.set(net.id, net.options);
    return { driverState: {} };
  }

  async deleteNetwork(net: DriverNetwork<GlobalTestOptions>): Promise<void> {
    this.networks.delete(net.id);
    this.peers.delete(net.id);
    this.calls.push(`delete ${net.name}`);
  }

  async setPeers(net: DriverNetwork<GlobalTestOptions>, peers: RemotePeer[]): Promise<void> {
    if (!this.networks.has(net.id)) throw new Error(`gtest: setPeers on network ${net.name} it does not have`);
    if (this.failSetPeers) {
      this.calls.push(`peers-failed ${net.name} ${peers.length}`);
      throw new Error('gtest: setPeers fails (test)');
    }
    this.peers.set(net.id, peers.map((p) => ({ ...p, ips: [...p.ips] })));
    this.calls.push(`peers ${net.name} ${peers.length}`);
  }

  async join(net: DriverNetwork<GlobalTestOptions>, ep: DriverEndpoint<Record<string, never>>): Promise<JoinResult> {
    if (!this.networks.has(net.id)) throw new Error(`gtest: join on network ${net.name} it does not have`);
    this.joined.add(ep.id);
    return { driverState: {} };
  }

  /** Another runtime's endpoint (the plugin door): recorded as joined, a made-up interface name handed over. */
  async joinForHandoff(net: DriverNetwork<GlobalTestOptions>, ep: DriverEndpoint<Record<string, never>>): Promise<HandoffJoinResult> {
    if (!this.networks.has(net.id)) throw new Error(`gtest: joinForHandoff on network ${net.name} it does not have`);
    this.joined.add(ep.id);
    return { driverState: {}, srcName: `gtest${ep.id.slice(0, 8)}` };
  }

  async leave(_net: DriverNetwork<GlobalTestOptions>, ep: DriverEndpoint<Record<string, never>>): Promise<void> {
    this.joined.delete(ep.id);
  }

  async endpointIntact(_net: DriverNetwork<GlobalTestOptions>, ep: DriverEndpoint<Record<string, never>>): Promise<boolean> {
    return this.joined.has(ep.id);
  }

  ownedLinks(): string[] {
    return [];
  }
}
