/**
 * Maps CNM records to store keys. Every change that must be all-or-nothing is one store transaction:
 * a network with its name and pool claims, an endpoint with its address claims. Claims are create-only
 * keys, so two writers (two requests, or two hosts sharing etcd) can never both win the same name,
 * subnet or address.
 */
import type { Store, TxnOp } from '../store/types.js';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, SandboxRecord, ServiceRecord } from './records.js';

const ROOT = 'cnm/v1/';

export const keys = {
  network: (id: string) => `${ROOT}networks/${id}`,
  networkName: (name: string) => `${ROOT}names/networks/${name}`,
  sandbox: (id: string) => `${ROOT}sandboxes/${id}`,
  sandboxName: (name: string) => `${ROOT}names/sandboxes/${name}`,
  endpoint: (id: string) => `${ROOT}endpoints/${id}`,
  attachment: (id: string) => `${ROOT}attachments/${id}`,
  service: (id: string) => `${ROOT}services/${id}`,
  serviceName: (name: string) => `${ROOT}names/services/${name}`,
  pool: (poolId: string) => `${ROOT}ipam/pools/${poolId.replaceAll('/', '_')}`,
  address: (poolId: string, ip: string) => `${ROOT}ipam/addresses/${poolId.replaceAll('/', '_')}/${ip}`,
  /** A driver's cluster-wide number (the overlay's VNI), claimed by the network that has it. */
  clusterId: (driver: string, n: number) => `${ROOT}cluster-ids/${driver}/${n}`,
  clusterIds: (driver: string) => `${ROOT}cluster-ids/${driver}/`,
  /** This host's copy of a global-scope network's record (local store): republished if etcd lost it. */
  cachedGlobalNetwork: (id: string) => `${ROOT}cluster-cache/networks/${id}`,
  /** Another runtime's ID for a global network another host made (local store; value: the network's ID). */
  networkAlias: (runtimeId: string) => `${ROOT}network-aliases/${runtimeId}`,
};

/** Everything the repository writes lives under this prefix. */
export const RECORDS_PREFIX = ROOT;

export interface AddressClaim {
  poolId: string;
  address: string;
}

export interface PersistedState {
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  sandboxes: SandboxRecord[];
  services: ServiceRecord[];
  attachments: AttachmentRecord[];
  aliases: Array<{ alias: string; networkId: string }>;
}

export class Repository {
  constructor(private readonly store: Store) {}

  async load(): Promise<PersistedState> {
    const [networks, endpoints, sandboxes, services, attachments, aliases] = await Promise.all([
      this.store.list(`${ROOT}networks/`),
      this.store.list(`${ROOT}endpoints/`),
      this.store.list(`${ROOT}sandboxes/`),
      this.store.list(`${ROOT}services/`),
      this.store.list(`${ROOT}attachments/`),
      this.store.list(keys.networkAlias('')),
    ]);
    return {
      aliases: aliases.map((e) => ({ alias: e.key.slice(keys.networkAlias('').length), networkId: e.value })),
      attachments: attachments.map((e) => JSON.parse(e.value) as AttachmentRecord),
      services: services.map((e) => JSON.parse(e.value) as ServiceRecord),
      networks: networks.map((e) => JSON.parse(e.value) as NetworkRecord),
      endpoints: endpoints.map((e) => JSON.parse(e.value) as EndpointRecord),
      sandboxes: sandboxes.map((e) => JSON.parse(e.value) as SandboxRecord),
    };
  }

  /** `extra`: more claims of the same transaction (a cluster-wide number). */
  async createNetwork(net: NetworkRecord, extra: TxnOp[] = []): Promise<void> {
    await this.store.txn([
      { op: 'put', key: keys.network(net.id), value: JSON.stringify(net), expectedRevision: 0 },
      { op: 'put', key: keys.networkName(net.name), value: net.id, expectedRevision: 0 },
      ...net.ipam.pools.map(
        (p): TxnOp => ({ op: 'put', key: keys.pool(p.id), value: net.id, expectedRevision: 0 }),
      ),
      ...extra,
    ]);
  }

  /** Rewrite an existing network's record (its name and pools are unchanged). */
  async updateNetwork(net: NetworkRecord): Promise<void> {
    await this.store.txn([{ op: 'put', key: keys.network(net.id), value: JSON.stringify(net) }]);
  }

  async deleteNetwork(net: NetworkRecord, extra: TxnOp[] = []): Promise<void> {
    await this.store.txn([
      { op: 'delete', key: keys.network(net.id) },
      { op: 'delete', key: keys.networkName(net.name) },
      ...net.ipam.pools.map((p): TxnOp => ({ op: 'delete', key: keys.pool(p.id) })),
      ...extra,
    ]);
  }

  async createSandbox(sb: SandboxRecord): Promise<void> {
    await this.store.txn([
      { op: 'put', key: keys.sandbox(sb.id), value: JSON.stringify(sb), expectedRevision: 0 },
      { op: 'put', key: keys.sandboxName(sb.name), value: sb.id, expectedRevision: 0 },
    ]);
  }

  async deleteSandbox(sb: SandboxRecord): Promise<void> {
    await this.store.txn([
      { op: 'delete', key: keys.sandbox(sb.id) },
      { op: 'delete', key: keys.sandboxName(sb.name) },
    ]);
  }

  /** `sandbox`: its record changed with this endpoint (see SandboxRecord.embeddedDns); stored in the same transaction. */
  async createEndpoint(ep: EndpointRecord, claims: AddressClaim[], sandbox?: SandboxRecord): Promise<void> {
    await this.store.txn([
      { op: 'put', key: keys.endpoint(ep.id), value: JSON.stringify(ep), expectedRevision: 0 },
      ...claims.map(
        (c): TxnOp => ({ op: 'put', key: keys.address(c.poolId, c.address), value: ep.id, expectedRevision: 0 }),
      ),
      ...(sandbox ? [{ op: 'put', key: keys.sandbox(sandbox.id), value: JSON.stringify(sandbox) } satisfies TxnOp] : []),
    ]);
  }

  async deleteEndpoint(ep: EndpointRecord, claims: AddressClaim[]): Promise<void> {
    await this.store.txn([
      { op: 'delete', key: keys.endpoint(ep.id) },
      ...claims.map((c): TxnOp => ({ op: 'delete', key: keys.address(c.poolId, c.address) })),
    ]);
  }

  /** A service with its name claim and its VIP's address claim, all or nothing. */
  async createService(svc: ServiceRecord, claims: AddressClaim[]): Promise<void> {
    await this.store.txn([
      { op: 'put', key: keys.service(svc.id), value: JSON.stringify(svc), expectedRevision: 0 },
      { op: 'put', key: keys.serviceName(svc.name), value: svc.id, expectedRevision: 0 },
      ...claims.map(
        (c): TxnOp => ({ op: 'put', key: keys.address(c.poolId, c.address), value: svc.id, expectedRevision: 0 }),
      ),
    ]);
  }

  async deleteService(svc: ServiceRecord, claims: AddressClaim[]): Promise<void> {
    await this.store.txn([
      { op: 'delete', key: keys.service(svc.id) },
      { op: 'delete', key: keys.serviceName(svc.name) },
      ...claims.map((c): TxnOp => ({ op: 'delete', key: keys.address(c.poolId, c.address) })),
    ]);
  }

  /** An attachment with its address claims, all or nothing. */
  async createAttachment(att: AttachmentRecord, claims: AddressClaim[]): Promise<void> {
    await this.store.txn([
      { op: 'put', key: keys.attachment(att.id), value: JSON.stringify(att), expectedRevision: 0 },
      ...claims.map((c): TxnOp => ({ op: 'put', key: keys.address(c.poolId, c.address), value: att.id, expectedRevision: 0 })),
    ]);
  }

  async updateAttachment(att: AttachmentRecord): Promise<void> {
    await this.store.txn([{ op: 'put', key: keys.attachment(att.id), value: JSON.stringify(att) }]);
  }

  async deleteAttachment(att: AttachmentRecord, claims: AddressClaim[]): Promise<void> {
    await this.store.txn([
      { op: 'delete', key: keys.attachment(att.id) },
      ...claims.map((c): TxnOp => ({ op: 'delete', key: keys.address(c.poolId, c.address) })),
    ]);
  }

  async putNetworkAlias(alias: string, networkId: string): Promise<void> {
    await this.store.put(keys.networkAlias(alias), networkId);
  }

  async deleteNetworkAlias(alias: string): Promise<void> {
    await this.store.delete(keys.networkAlias(alias));
  }

  /** This host's copies of global-scope network records (see keys.cachedGlobalNetwork). */
  async cachedGlobalNetworks(): Promise<NetworkRecord[]> {
    return (await this.store.list(`${ROOT}cluster-cache/networks/`)).map((e) => JSON.parse(e.value) as NetworkRecord);
  }

  async cacheGlobalNetwork(net: NetworkRecord): Promise<void> {
    await this.store.put(keys.cachedGlobalNetwork(net.id), JSON.stringify({ ...net, driverState: {} }));
  }

  async uncacheGlobalNetwork(id: string): Promise<void> {
    await this.store.delete(keys.cachedGlobalNetwork(id));
  }

  /** Host-wide settings (host ID for IPv6 ULA pools, ...). */
  async getSetting(name: string): Promise<string | undefined> {
    return (await this.store.get(`${ROOT}settings/${name}`))?.value;
  }

  async putSettingOnce(name: string, value: string): Promise<string> {
    const existing = await this.getSetting(name);
    if (existing !== undefined) return existing;
    await this.store.put(`${ROOT}settings/${name}`, value, 0);
    return value;
  }
}
