/**
 * The libnetwork core: the single owner of CNM state. Mutations run one at a time (a FIFO mutex), so
 * IPAM decisions and name checks never race inside one daemon; store transactions with create-only
 * claims protect against other writers. Reads are served from memory without waiting.
 */
import { ForbiddenError, UnavailableError } from '../errors.js';
import { Mutex } from '../util/mutex.js';
import type { ControllerDeps, Ctx } from './context.js';
import { createHandoffNetwork } from './handoff-networks.js';
import { programAttachmentPorts, revokeAttachmentPorts } from './attachment-ports.js';
import { attachmentOf, createAttachment, joinAttachment, leaveAttachment, removeAttachment, removeNetworkById } from './attachments.js';
import { loadCluster, newClusterRuntime, stopCluster } from './cluster.js';
import { applyClusterEvents, networkPeers, syncPeers } from './cluster-sync.js';
import { connect, disconnect, removeEndpoint } from './endpoints.js';
import { syncGatewayEndpoint } from './gateway.js';
import { createNetwork, pruneNetworks, removeNetwork } from './networks.js';
import { reconcile, retryBrokenNetwork, retryBrokenNetworks, type ReconcileReport } from './reconcile.js';
import type { AttachmentRecord, EndpointRecord, NetworkRecord } from './records.js';
import { Repository } from './repository.js';
import { firewallPorts } from './ports.js';
import { createSandbox, releaseLostSandboxes, removeSandbox } from './sandboxes.js';
import { followedNamespaceAlive } from './adopted-netns.js';
import { sandboxProblems } from './sandbox-check.js';
import { createService, firewallServices, removeService } from './services.js';
import { balanceAllSandboxes } from './service-balancing.js';
import { serviceBackends } from './cluster.js';
import { CnmState } from './state.js';
import type {
  AttachmentController,
  AttachRequest,
  ConnectRequest,
  Controller,
  HandoffJoin,
  ControllerEvent,
  PortBindingRequest,
  CreateNetworkRequest,
  CreateSandboxRequest,
  CreateServiceRequest,
  ServiceDetail,
  NetworkDetail,
  SandboxDetail,
} from './types.js';

/**
 * Start-up: every sandbox's gateway endpoint as its endpoints need it (a daemon killed between an overlay's
 * connect and its gateway endpoint, or between a disconnect and the removal); one failure does not stop the start.
 */
async function syncGateways(ctx: Ctx): Promise<void> {
  for (const sb of [...ctx.state.sandboxes.values()]) {
    await syncGatewayEndpoint(ctx, sb).catch((err: unknown) => ctx.logger.error('gateway endpoint not restored', { sandbox: sb.name, error: err }));
  }
}

/** Changes (create, connect, remove...) that may wait behind the one being applied before 503. */
export const DEFAULT_MAX_QUEUED_CHANGES = 256;

export interface DefaultBridgeConfig {
  /** Interface name of the predefined "bridge" network. */
  bridgeName: string;
  /** Subnet of the predefined "bridge" network (--bip); default: the first free default pool. */
  subnet?: string;
  mtu?: number;
}

export class CnmController implements Controller, AttachmentController {
  private readonly ctx: Ctx;
  private readonly mutex: Mutex;
  private readonly listeners = new Set<(e: ControllerEvent) => void>();
  /**
   * Errors of the start (a network that could not be restored, ...) happen before anyone can subscribe:
   * kept for the first subscriber (the API's event history), then dropped.
   */
  private startupEvents: ControllerEvent[] | undefined = [];
  private started = false;
  private clusterSyncQueued = false;

  private constructor(deps: ControllerDeps) {
    this.mutex = new Mutex(
      deps.maxQueuedChanges ?? DEFAULT_MAX_QUEUED_CHANGES,
      (n) => new UnavailableError(`the daemon is busy: ${n} changes are already waiting to be applied; try again later`),
    );
    this.ctx = {
      ...deps,
      state: new CnmState(),
      repo: new Repository(deps.store),
      networks: new Map(),
      routes: new Map(),
      balanced: new Map(),
      emit: (event) => this.emit(event),
      ...(deps.cluster ? { global: newClusterRuntime(deps.cluster) } : {}),
    };
  }

  /** Load the store, reconcile the kernel with it, and make sure the predefined networks exist. */
  static async start(deps: ControllerDeps, defaults: DefaultBridgeConfig): Promise<{ controller: CnmController; report: ReconcileReport }> {
    const controller = new CnmController(deps);
    const { ctx } = controller;
    try {
      const report = await controller.mutex.runAlways(async () => {
        const persisted = await ctx.repo.load();
        // Global networks join the persisted state: the reconcile restores them as local ones.
        if (ctx.global) await loadCluster(ctx, persisted, () => controller.scheduleClusterSync());
        const r = await reconcile(ctx, persisted);
        await controller.ensurePredefined(defaults);
        await syncGateways(ctx);
        await syncPeers(ctx, true);
        // After the sandboxes are back (a namespace lost to a reboot is made again by the reconcile).
        await balanceAllSandboxes(ctx);
        return r;
      });
      controller.started = true;
      controller.scheduleClusterSync();
      return { controller, report };
    } catch (err) {
      stopCluster(ctx);
      throw err;
    }
  }

  /** Changes the cluster store's watches delivered are applied once (coalesced) after what runs now. */
  private scheduleClusterSync(): void {
    if (!this.started || this.clusterSyncQueued) return;
    this.clusterSyncQueued = true;
    void this.mutex
      .runAlways(async () => {
        this.clusterSyncQueued = false;
        await applyClusterEvents(this.ctx);
      })
      .catch((err: unknown) => this.ctx.logger.error('cluster changes not applied', { error: err }));
  }

  /**
   * The periodic check of a cluster member: every global network's peers are sent to its driver again
   * (the driver repairs its tables to match), and every sandbox that balances VIPs gets its whole list
   * again, whatever changed or not.
   */
  syncCluster(): Promise<void> {
    return this.mutex.runAlways(async () => {
      await applyClusterEvents(this.ctx);
      await syncPeers(this.ctx, true);
      await balanceAllSandboxes(this.ctx);
    });
  }

  /** Stops following the cluster store (the daemon's stop; the store itself is the caller's). */
  async close(): Promise<void> {
    await this.drain();
    stopCluster(this.ctx);
  }

  private async ensurePredefined(defaults: DefaultBridgeConfig): Promise<void> {
    const { state } = this.ctx;
    if (!state.networkByName('none')) await createNetwork(this.ctx, { name: 'none', driver: 'null' }, { predefined: true });
    if (!state.networkByName('host')) await createNetwork(this.ctx, { name: 'host', driver: 'host' }, { predefined: true });
    if (!state.networkByName('bridge')) {
      const options: Record<string, string> = {
        'com.docker.network.bridge.name': defaults.bridgeName,
        'com.docker.network.bridge.default_bridge': 'true',
        'com.docker.network.bridge.enable_icc': 'true',
        'com.docker.network.bridge.enable_ip_masquerade': 'true',
        'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
      };
      if (defaults.mtu) options['com.docker.network.driver.mtu'] = String(defaults.mtu);
      await createNetwork(
        this.ctx,
        { name: 'bridge', driver: 'bridge', options, ipam: { configs: defaults.subnet ? [{ subnet: defaults.subnet }] : [] } },
        { predefined: true },
      );
    }
  }

  private emit(event: Omit<ControllerEvent, 'timeNano'>): void {
    const full: ControllerEvent = { ...event, timeNano: BigInt(Date.now()) * 1_000_000n };
    if (this.startupEvents && full.action === 'error' && this.listeners.size === 0 && this.startupEvents.length < 1000) {
      this.startupEvents.push(full);
    }
    for (const listener of this.listeners) {
      try {
        listener(full);
      } catch (err) {
        this.ctx.logger.warn('event listener failed', { error: err });
      }
    }
  }

  subscribe(listener: (event: ControllerEvent) => void): () => void {
    const early = this.startupEvents ?? [];
    this.startupEvents = undefined;
    for (const event of early) listener(event);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  listNetworks(): NetworkDetail[] {
    return [...this.ctx.state.networks.values()].map((n) => this.networkDetail(n));
  }

  getNetwork(ref: string): NetworkDetail {
    return this.networkDetail(this.ctx.state.network(ref));
  }

  private networkDetail(network: NetworkRecord): NetworkDetail {
    const { state } = this.ctx;
    const error = this.ctx.networks.get(network.id)?.error;
    const peers = networkPeers(this.ctx, network);
    return {
      network,
      ...(error === undefined ? {} : { error }),
      endpoints: state.endpointsOfNetwork(network.id).map((endpoint) => ({
        endpoint,
        sandbox: state.sandboxes.get(endpoint.sandboxId)!,
      })),
      attachments: state.attachmentsOfNetwork(network.id),
      ...(peers ? { peers } : {}),
    };
  }

  createNetwork(req: CreateNetworkRequest): Promise<{ id: string; warning: string }> {
    return this.mutex.run(async () => {
      const net = await createNetwork(this.ctx, req);
      return { id: net.id, warning: '' };
    });
  }

  removeNetwork(ref: string): Promise<void> {
    return this.mutex.run(() => removeNetwork(this.ctx, ref));
  }

  createHandoffNetwork(req: CreateNetworkRequest & { id: string }): Promise<{ id: string }> {
    return this.mutex.run(async () => ({ id: (await createHandoffNetwork(this.ctx, req)).id }));
  }

  removeNetworkById(id: string): Promise<void> {
    return this.mutex.run(() => removeNetworkById(this.ctx, id));
  }

  createAttachment(req: AttachRequest): Promise<AttachmentRecord> {
    return this.mutex.run(() => createAttachment(this.ctx, req));
  }

  getAttachment(networkId: string, endpointId: string): AttachmentRecord {
    return attachmentOf(this.ctx, networkId, endpointId);
  }

  joinAttachment(networkId: string, endpointId: string, sandboxKey: string): Promise<HandoffJoin> {
    return this.mutex.run(() => joinAttachment(this.ctx, networkId, endpointId, sandboxKey));
  }

  leaveAttachment(networkId: string, endpointId: string): Promise<void> {
    return this.mutex.run(() => leaveAttachment(this.ctx, networkId, endpointId));
  }

  removeAttachment(networkId: string, endpointId: string): Promise<void> {
    return this.mutex.run(() => removeAttachment(this.ctx, networkId, endpointId));
  }

  programAttachmentPorts(networkId: string, endpointId: string, ports: PortBindingRequest[]): Promise<void> {
    return this.mutex.run(() => programAttachmentPorts(this.ctx, networkId, endpointId, ports));
  }

  revokeAttachmentPorts(networkId: string, endpointId: string): Promise<void> {
    return this.mutex.run(() => revokeAttachmentPorts(this.ctx, networkId, endpointId));
  }

  pruneNetworks(select: (net: NetworkRecord) => boolean): Promise<string[]> {
    return this.mutex.run(() => pruneNetworks(this.ctx, select));
  }

  connect(req: ConnectRequest): Promise<EndpointRecord> {
    return this.mutex.run(async () => {
      // Docker looks the container up first: both missing is "No such container".
      const sb = this.ctx.state.sandbox(req.sandbox);
      const net = await this.usableNetwork(req.network);
      if (sb.followsNetns !== undefined && !(await followedNamespaceAlive(this.ctx, sb))) {
        throw new ForbiddenError(`the network namespace of sandbox ${sb.name} is gone`);
      }
      const ep = await connect(this.ctx, net, sb, req);
      // The sandbox's way out follows: a gateway endpoint added (an overlay joined) or dropped (a network
      // with a gateway joined). An endpoint that needs one and cannot get it is taken back.
      try {
        await syncGatewayEndpoint(this.ctx, sb);
      } catch (err) {
        if (ep.requiresGateway) {
          await removeEndpoint(this.ctx, net, sb, ep, true).catch((undo: unknown) =>
            this.ctx.logger.error('rollback of connect incomplete', { endpoint: ep.id, error: undo }),
          );
          throw err;
        }
        this.ctx.logger.warn('gateway endpoint not removed after connect', { sandbox: sb.name, error: err });
      }
      return ep;
    });
  }

  disconnect(network: string, sandbox: string, force: boolean): Promise<void> {
    return this.mutex.run(async () => {
      const sb = this.ctx.state.sandbox(sandbox);
      const net = this.ctx.state.network(network);
      await disconnect(this.ctx, net, sb, force);
      // The last overlay gone takes the gateway endpoint; the last network with a gateway gone brings it.
      await syncGatewayEndpoint(this.ctx, sb).catch((err: unknown) =>
        this.ctx.logger.error('gateway endpoint not updated after disconnect', { sandbox: sb.name, error: err }),
      );
    });
  }

  listSandboxes(): SandboxDetail[] {
    return [...this.ctx.state.sandboxes.values()].map((s) => this.getSandbox(s.id));
  }

  getSandbox(ref: string): SandboxDetail {
    const { state } = this.ctx;
    const sandbox = state.sandbox(ref);
    return {
      sandbox,
      endpoints: state.endpointsOfSandbox(sandbox.id).map((endpoint) => ({
        endpoint,
        network: state.networks.get(endpoint.networkId)!,
      })),
    };
  }

  createSandbox(req: CreateSandboxRequest): Promise<SandboxDetail> {
    return this.mutex.run(async () => {
      for (const n of req.networks ?? []) await this.usableNetwork(n.network);
      return this.getSandbox((await createSandbox(this.ctx, req)).id);
    });
  }

  removeSandbox(ref: string, force: boolean): Promise<void> {
    return this.mutex.run(() => removeSandbox(this.ctx, ref, force));
  }

  checkSandbox(ref: string): Promise<string[]> {
    const sb = this.ctx.state.sandbox(ref);
    return this.mutex.run(() => sandboxProblems(this.ctx, sb));
  }

  /**
   * Release every sandbox that follows a namespace which is gone (its container died without its runtime
   * removing it). The daemon calls this on kernel link removals and periodically; returns their names.
   */
  async releaseLostSandboxes(): Promise<string[]> {
    // Most link removals are cnm's own (disconnects): no followed sandbox, no wait for the mutex.
    if (![...this.ctx.state.sandboxes.values()].some((sb) => sb.followsNetns !== undefined)) return [];
    return this.mutex.runAlways(() => releaseLostSandboxes(this.ctx));
  }

  sandboxFiles(ref: string): { netnsPath: string; resolvConf: string; hosts: string; hostname: string } {
    const sb = this.ctx.state.sandbox(ref);
    const p = this.ctx.files.paths(sb.id);
    return { netnsPath: sb.netnsPath, resolvConf: p.resolvConf, hosts: p.hosts, hostname: p.hostname };
  }

  info() {
    const { state } = this.ctx;
    return {
      networks: state.networks.size,
      sandboxes: state.sandboxes.size,
      endpoints: state.endpoints.size,
      storeKind: this.ctx.storeKind,
      rootDir: this.ctx.rootDir,
      execRoot: this.ctx.execRoot,
      pid: process.pid,
      drivers: [...this.ctx.drivers.keys()].sort(),
    };
  }

  /**
   * Re-apply cnm's firewall when its tables were removed behind its back (a `nft flush ruleset`, a
   * firewall reload: moby#12294). Returns true when it had to restore them.
   */
  /** The network `ref` names; one that is out of service is tried again first, and refused (403) if still broken. */
  private async usableNetwork(ref: string): Promise<NetworkRecord> {
    const net = this.ctx.state.network(ref);
    const broken = await retryBrokenNetwork(this.ctx, net);
    if (broken !== undefined) throw new ForbiddenError(`network ${net.name} is out of service: ${broken}`);
    return net;
  }

  /** Networks that could not be restored at start-up, tried again (the daemon calls this periodically). */
  retryBrokenNetworks(): Promise<void> {
    return this.mutex.run(() => retryBrokenNetworks(this.ctx));
  }

  restoreFirewallIfLost(): Promise<boolean> {
    return this.mutex.runAlways(async () => {
      if (await this.ctx.firewall.isIntact()) return false;
      const programs = [...this.ctx.networks.values()].flatMap((rt) => (rt.firewall ? [rt.firewall] : []));
      await this.ctx.firewall.reconcile(programs, firewallServices(this.ctx), firewallPorts(this.ctx));
      this.ctx.logger.warn('cnm firewall rules were missing and have been restored', { networks: programs.length });
      return true;
    });
  }

  listServices(): ServiceDetail[] {
    return [...this.ctx.state.services.values()].map((s) => this.serviceDetail(s.id));
  }

  getService(ref: string): ServiceDetail {
    return this.serviceDetail(this.ctx.state.service(ref).id);
  }

  createService(req: CreateServiceRequest): Promise<ServiceDetail> {
    return this.mutex.run(async () => this.serviceDetail((await createService(this.ctx, req)).id));
  }

  removeService(ref: string): Promise<void> {
    return this.mutex.run(() => removeService(this.ctx, ref));
  }

  private serviceDetail(id: string): ServiceDetail {
    const service = this.ctx.state.services.get(id)!;
    return {
      service,
      network: this.ctx.state.networks.get(service.networkId)!,
      // Other hosts' backends are named by their shared record (the sandbox is theirs).
      backends: serviceBackends(this.ctx, service).map((endpoint) => ({
        endpoint,
        sandbox: this.ctx.state.sandboxes.get(endpoint.sandboxId) ?? { id: endpoint.sandboxId, name: endpoint.name },
      })),
    };
  }

  /** Wait for in-flight mutations to finish (clean shutdown). */
  async drain(): Promise<void> {
    await this.mutex.runAlways(async () => undefined);
  }
}
