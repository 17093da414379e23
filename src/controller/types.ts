/**
 * The controller's face towards the API layer. The API turns Docker JSON into these requests and
 * renders the records back in Docker's shapes; all validation of meaning happens in the controller
 * (the API only checks shapes).
 */
import type { AttachmentRecord, EndpointRecord, NetworkRecord, NetworkScope, SandboxRecord, ServiceMode, ServiceRecord } from './records.js';

export interface IpamConfigRequest {
  subnet?: string;
  ipRange?: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
}

export interface CreateNetworkRequest {
  name: string;
  driver?: string;
  scope?: NetworkScope;
  internal?: boolean;
  attachable?: boolean;
  ingress?: boolean;
  configOnly?: boolean;
  configFrom?: string;
  enableIPv4?: boolean;
  enableIPv6?: boolean;
  ipam?: {
    driver?: string;
    configs?: IpamConfigRequest[];
    options?: Record<string, string>;
  };
  options?: Record<string, string>;
  labels?: Record<string, string>;
  /** The network's ID as another runtime chose it (Docker's network ID, plugin front door); default: a new one. */
  id?: string;
  /** The network serves another runtime's containers: its driver must be able to hand interfaces over. */
  forHandoff?: boolean;
  /** The runtime's user named it (a global network of that name made by another host is this one). */
  nameGiven?: boolean;
}

export interface EndpointSettingsRequest {
  ipv4Address?: string;
  ipv6Address?: string;
  aliases?: string[];
  macAddress?: string;
  driverOpts?: Record<string, string>;
  gwPriority?: number;
  /** Services (name, ID or ID prefix) on the same network this endpoint becomes a backend of. */
  services?: string[];
}

export interface ConnectRequest extends EndpointSettingsRequest {
  /** Network name, ID or ID prefix. */
  network: string;
  /** Sandbox name, ID or ID prefix. */
  sandbox: string;
}

/** One container port to publish (HostConfig.PortBindings, one entry). */
export interface PortBindingRequest {
  protocol: 'tcp' | 'udp' | 'sctp';
  containerPort: number;
  /** '' = the network's host_binding_ipv4, else 0.0.0.0 and :: (the families the network has). */
  hostIp: string;
  /** 0/0 = any free port; equal = that port; else a free port from the range. */
  hostPortStart: number;
  hostPortEnd: number;
}

export interface CreateSandboxRequest {
  /** Docker-style name; generated when absent. */
  name?: string;
  hostname?: string;
  /** Networks to connect at creation, in order (the first becomes eth0). Default: the predefined "bridge". */
  networks?: Array<EndpointSettingsRequest & { network: string }>;
  /** Adopt an existing namespace (a bind-mounted file or /proc/PID/ns/net) instead of creating one. */
  netnsPath?: string;
  /**
   * With netnsPath: adopt without pinning; the sandbox lives as long as the namespace does and is released
   * (endpoints, addresses) when it dies. No embedded DNS server runs in it (its sockets would keep it alive).
   */
  netnsFollow?: boolean;
  labels?: Record<string, string>;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Ports to publish, on the first network that can publish them. */
  ports?: PortBindingRequest[];
}

export interface CreateServiceRequest {
  name: string;
  /** Network name, ID or ID prefix. */
  network: string;
  /** Default vip. */
  mode?: ServiceMode;
  /** "80", "80/tcp", "53/udp"; none = every port (vip mode). */
  ports?: string[];
  /** Pick the VIP from this IPv4 subnet of the network (default: its first). */
  vipSubnet?: string;
  labels?: Record<string, string>;
}

/** A service with its current backends. */
export interface ServiceDetail {
  service: ServiceRecord;
  network: NetworkRecord;
  /** On a global network also other hosts' (endpoint.hostId says which; their sandbox by ID and name only). */
  backends: Array<{ endpoint: EndpointRecord; sandbox: Pick<SandboxRecord, 'id' | 'name'> }>;
}

/** A network with the endpoints currently on it, each with the name of its sandbox. */
export interface NetworkDetail {
  network: NetworkRecord;
  /** Why the network is out of service (it could not be restored at start-up); absent when it works. */
  error?: string;
  endpoints: Array<{ endpoint: EndpointRecord; sandbox: SandboxRecord }>;
  /** Endpoints of another runtime's containers (Docker's, through the plugin front door). */
  attachments: AttachmentRecord[];
  /** Global-scope networks only: the live hosts with endpoints on it (host id, advertise address), as Docker's `Peers`. */
  peers?: Array<{ name: string; ip: string }>;
}

export interface SandboxDetail {
  sandbox: SandboxRecord;
  endpoints: Array<{ endpoint: EndpointRecord; network: NetworkRecord }>;
}

export type ControllerEvent = {
  type: 'network' | 'sandbox' | 'service';
  /** 'error': a network, sandbox or service could not be restored at start-up (attributes.error says why). */
  action: 'create' | 'destroy' | 'connect' | 'disconnect' | 'prune' | 'error';
  /** ID of the network (or sandbox). */
  id: string;
  attributes: Record<string, string>;
  /** Unix nanoseconds. */
  timeNano: bigint;
};

export interface Controller {
  listNetworks(): NetworkDetail[];
  /** Lookup by full ID, then exact name, then unique ID prefix. NotFoundError / InvalidParameterError (ambiguous). */
  getNetwork(ref: string): NetworkDetail;
  createNetwork(req: CreateNetworkRequest): Promise<{ id: string; warning: string }>;
  removeNetwork(ref: string): Promise<void>;
  /** Removes unused, non-predefined networks for which `select` is true; returns their names. */
  pruneNetworks(select: (net: NetworkRecord) => boolean): Promise<string[]>;
  connect(req: ConnectRequest): Promise<EndpointRecord>;
  disconnect(network: string, sandbox: string, force: boolean): Promise<void>;

  listSandboxes(): SandboxDetail[];
  getSandbox(ref: string): SandboxDetail;
  createSandbox(req: CreateSandboxRequest): Promise<SandboxDetail>;
  /** `force` is accepted for Docker parity; a sandbox with endpoints is disconnected from them first either way. */
  removeSandbox(ref: string, force: boolean): Promise<void>;
  /** What is wrong with the sandbox's networking in the kernel (empty: intact). */
  checkSandbox(ref: string): Promise<string[]>;
  /** Files bound into the sandbox for `cnm exec`. */
  sandboxFiles(ref: string): { netnsPath: string; resolvConf: string; hosts: string; hostname: string };

  listServices(): ServiceDetail[];
  getService(ref: string): ServiceDetail;
  createService(req: CreateServiceRequest): Promise<ServiceDetail>;
  /** The backends stay connected to the network; they only leave the service. */
  removeService(ref: string): Promise<void>;

  subscribe(listener: (event: ControllerEvent) => void): () => void;
  /** Daemon facts for /info and /version. */
  info(): { networks: number; sandboxes: number; endpoints: number; storeKind: string; rootDir: string; execRoot: string; pid: number; drivers: string[] };
}

/** An endpoint of another runtime's container (the remote driver protocol's CreateEndpoint). */
export interface AttachRequest {
  networkId: string;
  endpointId: string;
  /** The front door making it ("docker"). */
  owner: string;
  /** "10.0.0.2/24", as the runtime's IPAM gave it; claimed in cnm's IPAM. */
  ipv4Address?: string;
  ipv6Address?: string;
  /** Default: cnm picks one. */
  macAddress?: string;
}

/** What a runtime needs to plug a handed-over interface into its container. */
export interface HandoffJoin {
  srcName: string;
  gatewayIpv4?: string;
  gatewayIpv6?: string;
  /**
   * No gateway of its own, but the container should still reach outside (the driver's
   * JoinResult.requiresDefaultGateway): the runtime gives it its own way out (Docker: docker_gwbridge).
   */
  requiresDefaultGateway?: true;
}

/** The controller as front doors for other runtimes (the Docker plugin) see it. IDs are exact, never names. */
export interface AttachmentController {
  /**
   * The runtime's network (with its ID). Global scope: the cluster's network of the same name when there
   * is one (the runtime's ID then becomes an alias of it), else a new one.
   */
  createHandoffNetwork(req: CreateNetworkRequest & { id: string }): Promise<{ id: string }>;
  /** Idempotent: an unknown network is already removed; an alias only drops the alias. */
  removeNetworkById(id: string): Promise<void>;
  createAttachment(req: AttachRequest): Promise<AttachmentRecord>;
  getAttachment(networkId: string, endpointId: string): AttachmentRecord;
  joinAttachment(networkId: string, endpointId: string, sandboxKey: string): Promise<HandoffJoin>;
  /** Idempotent. */
  leaveAttachment(networkId: string, endpointId: string): Promise<void>;
  /** Idempotent; leaves first when still joined. */
  removeAttachment(networkId: string, endpointId: string): Promise<void>;
  /** Publishes the container's ports (replacing those it had); 409 when a host port is taken, nothing changed. */
  programAttachmentPorts(networkId: string, endpointId: string, ports: PortBindingRequest[]): Promise<void>;
  /** Idempotent. */
  revokeAttachmentPorts(networkId: string, endpointId: string): Promise<void>;
}
