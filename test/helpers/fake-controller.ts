/**
 * An in-memory test double of the Controller for exercising the API's routing, validation and
 * rendering. It fakes only the controller's surface (lookups, conflicts, events) with simple rules;
 * it is no model of the real controller's networking. Its error messages and paths are its own: a test
 * that asserts a message or path the controller writes runs on test/helpers/real-api.ts instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer } from '../../src/api/server.js';
import { silentLogger } from '../../src/util/log.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, ServiceRecord } from '../../src/controller/records.js';
import type {
  ConnectRequest,
  Controller,
  ControllerEvent,
  CreateNetworkRequest,
  CreateSandboxRequest,
  CreateServiceRequest,
  NetworkDetail,
  ServiceDetail,
  SandboxDetail,
} from '../../src/controller/types.js';
import { ConflictError, ForbiddenError, InvalidParameterError, NoSuchSandboxError, NotFoundError } from '../../src/errors.js';
import type { Pool } from '../../src/ipam/types.js';
import { newId, randomMac, rfc3339Nano } from '../../src/util/ids.js';

const PREDEFINED = ['bridge', 'host', 'none'];
const KNOWN_DRIVERS = ['bridge', 'host', 'null', 'macvlan', 'overlay'];

export interface FakeCall {
  method: string;
  args: unknown[];
}

export class FakeController implements Controller {
  readonly networks = new Map<string, NetworkRecord>();
  readonly sandboxes = new Map<string, SandboxRecord>();
  readonly endpoints = new Map<string, EndpointRecord>();
  readonly services = new Map<string, ServiceRecord>();
  /** Every mutating call with its arguments, so tests can check what the API asked for. */
  readonly calls: FakeCall[] = [];
  private readonly listeners = new Set<(e: ControllerEvent) => void>();
  private readonly nextHost = new Map<string, number>();
  private subnetCounter = 0;
  private sandboxCounter = 0;
  private eventCounter = 0n;

  constructor() {
    this.addNetwork({ name: 'bridge', driver: 'bridge', predefined: true, pools: [pool4('172.17.0.0/16')], options: { 'com.docker.network.bridge.name': 'cnm0' } });
    this.addNetwork({ name: 'host', driver: 'host', predefined: true, pools: [] });
    this.addNetwork({ name: 'none', driver: 'null', predefined: true, pools: [] });
  }

  // ---- networks ------------------------------------------------------------------------------

  listNetworks(): NetworkDetail[] {
    return [...this.networks.values()].map((n) => this.networkDetail(n));
  }

  getNetwork(ref: string): NetworkDetail {
    return this.networkDetail(this.findNetwork(ref));
  }

  async createNetwork(req: CreateNetworkRequest): Promise<{ id: string; warning: string }> {
    this.calls.push({ method: 'createNetwork', args: [req] });
    if (!req.name) throw new InvalidParameterError('network name is required');
    if (PREDEFINED.includes(req.name) || req.name === 'default') {
      throw new ForbiddenError(`operation is not permitted on predefined ${req.name} network`);
    }
    if ([...this.networks.values()].some((n) => n.name === req.name)) {
      throw new ConflictError(`network with name ${req.name} already exists`);
    }
    const driver = req.driver ?? 'bridge';
    if (!KNOWN_DRIVERS.includes(driver)) throw new NotFoundError(`plugin "${driver}" not found`);
    const configs = req.ipam?.configs ?? [];
    const pools: Pool[] = configs.map((c) => {
      if (!c.subnet) throw new InvalidParameterError('fake controller: a config needs a subnet');
      const p = c.subnet.includes(':') ? pool6(c.subnet) : pool4(c.subnet, c.gateway);
      return { ...p, ipRange: c.ipRange, auxAddresses: c.auxAddresses ?? {} };
    });
    const enableIPv4 = req.enableIPv4 ?? true;
    if (enableIPv4 && !pools.some((p) => p.family === 4)) pools.push(pool4(`10.99.${++this.subnetCounter}.0/24`));
    const net = this.addNetwork({
      name: req.name,
      driver,
      predefined: false,
      pools,
      options: req.options,
      labels: req.labels,
      internal: req.internal,
      attachable: req.attachable,
      configOnly: req.configOnly,
      configFrom: req.configFrom,
      enableIPv4,
      enableIPv6: req.enableIPv6 ?? false,
      ipamDriver: req.ipam?.driver,
      ipamOptions: req.ipam?.options,
      scope: req.scope,
    });
    this.emit('network', 'create', net.id, { name: net.name, type: net.driver });
    return { id: net.id, warning: '' };
  }

  async removeNetwork(ref: string): Promise<void> {
    this.calls.push({ method: 'removeNetwork', args: [ref] });
    const net = this.findNetwork(ref);
    if (net.predefined) throw new ForbiddenError(`${net.name} is a pre-defined network and cannot be removed`);
    const eps = this.endpointsOf(net.id);
    if (eps.length > 0) {
      throw new ForbiddenError(`network ${net.name} has active endpoints (${eps.map((e) => e.name).join(', ')})`);
    }
    this.networks.delete(net.id);
    this.emit('network', 'destroy', net.id, { name: net.name, type: net.driver });
  }

  async pruneNetworks(select: (net: NetworkRecord) => boolean): Promise<string[]> {
    this.calls.push({ method: 'pruneNetworks', args: [] });
    const removed: string[] = [];
    for (const net of [...this.networks.values()]) {
      if (net.predefined || this.endpointsOf(net.id).length > 0 || !select(net)) continue;
      await this.removeNetwork(net.id);
      removed.push(net.name);
    }
    return removed;
  }

  async connect(req: ConnectRequest): Promise<EndpointRecord> {
    this.calls.push({ method: 'connect', args: [req] });
    const net = this.findNetwork(req.network);
    const sb = this.findSandbox(req.sandbox);
    return this.attach(net, sb, req);
  }

  async disconnect(network: string, sandbox: string, force: boolean): Promise<void> {
    this.calls.push({ method: 'disconnect', args: [network, sandbox, force] });
    const net = this.findNetwork(network);
    const sb = this.findSandbox(sandbox);
    const ep = this.endpointsOf(net.id).find((e) => e.sandboxId === sb.id);
    if (!ep) throw new ForbiddenError(`container ${sb.name} is not connected to network ${net.name}`);
    this.endpoints.delete(ep.id);
    this.emit('network', 'disconnect', net.id, { name: net.name, type: net.driver, container: sb.id });
  }

  // ---- sandboxes -----------------------------------------------------------------------------

  listSandboxes(): SandboxDetail[] {
    return [...this.sandboxes.values()].map((s) => this.sandboxDetail(s));
  }

  getSandbox(ref: string): SandboxDetail {
    return this.sandboxDetail(this.findSandbox(ref));
  }

  async createSandbox(req: CreateSandboxRequest): Promise<SandboxDetail> {
    this.calls.push({ method: 'createSandbox', args: [req] });
    const name = req.name ?? `sandbox_${++this.sandboxCounter}`;
    if ([...this.sandboxes.values()].some((s) => s.name === name)) {
      throw new ConflictError(`sandbox name "${name}" is already in use`);
    }
    const id = newId();
    const hostNetwork = req.networks?.some((n) => n.network === 'host') ?? false;
    const sb: SandboxRecord = {
      id,
      name,
      hostname: req.hostname ?? id.slice(0, 12),
      netnsPath: req.netnsPath ?? (hostNetwork ? '' : `/run/cnm/netns/${id}`),
      adopted: req.netnsPath !== undefined,
      hostNetwork,
      created: rfc3339Nano(),
      labels: req.labels ?? {},
      dns: { servers: req.dns ?? [], search: req.dnsSearch ?? [], options: req.dnsOptions ?? [] },
    };
    this.sandboxes.set(id, sb);
    this.emit('sandbox', 'create', id, { name });
    if (!hostNetwork) {
      for (const n of req.networks ?? [{ network: 'bridge' }]) {
        await this.attach(this.findNetwork(n.network), sb, n);
      }
    }
    return this.sandboxDetail(sb);
  }

  async removeSandbox(ref: string, force: boolean): Promise<void> {
    this.calls.push({ method: 'removeSandbox', args: [ref, force] });
    const sb = this.findSandbox(ref);
    for (const ep of [...this.endpoints.values()].filter((e) => e.sandboxId === sb.id)) {
      await this.disconnect(ep.networkId, sb.id, true);
    }
    this.sandboxes.delete(sb.id);
    this.emit('sandbox', 'destroy', sb.id, { name: sb.name });
  }

  async checkSandbox(ref: string): Promise<string[]> {
    this.calls.push({ method: 'checkSandbox', args: [ref] });
    this.getSandbox(ref);
    return [];
  }

  sandboxFiles(ref: string): { netnsPath: string; resolvConf: string; hosts: string; hostname: string } {
    const sb = this.findSandbox(ref);
    const dir = `/run/cnm/sandboxes/${sb.id}`;
    return { netnsPath: sb.netnsPath, resolvConf: `${dir}/resolv.conf`, hosts: `${dir}/hosts`, hostname: `${dir}/hostname` };
  }

  // ---- services: a plain record store (the real rules live in the controller's own tests) -------

  listServices(): ServiceDetail[] {
    return [...this.services.values()].map((s) => this.serviceDetail(s));
  }

  getService(ref: string): ServiceDetail {
    const svc = [...this.services.values()].find((s) => s.id === ref || s.name === ref || s.id.startsWith(ref));
    if (!svc) throw new NotFoundError(`No such service: ${ref}`);
    return this.serviceDetail(svc);
  }

  async createService(req: CreateServiceRequest): Promise<ServiceDetail> {
    this.calls.push({ method: 'createService', args: [req] });
    if ([...this.services.values()].some((s) => s.name === req.name)) throw new ConflictError(`service with name ${req.name} already exists`);
    const net = this.findNetwork(req.network);
    const svc: ServiceRecord = {
      id: newId(), name: req.name, networkId: net.id, mode: req.mode ?? 'vip',
      ports: (req.ports ?? []).map((p) => ({ port: Number(p.split('/')[0]), protocol: p.endsWith('/udp') ? 'udp' : 'tcp' })),
      labels: req.labels ?? {}, created: rfc3339Nano(), ...(req.mode === 'dnsrr' ? {} : { vip: '10.99.0.100/24' }),
    };
    this.services.set(svc.id, svc);
    return this.serviceDetail(svc);
  }

  async removeService(ref: string): Promise<void> {
    this.calls.push({ method: 'removeService', args: [ref] });
    this.services.delete(this.getService(ref).service.id);
  }

  private serviceDetail(service: ServiceRecord): ServiceDetail {
    const backends = [...this.endpoints.values()]
      .filter((e) => e.services?.includes(service.id))
      .map((endpoint) => ({ endpoint, sandbox: this.sandboxes.get(endpoint.sandboxId)! }));
    return { service, network: this.networks.get(service.networkId)!, backends };
  }

  subscribe(listener: (event: ControllerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  info() {
    return {
      networks: this.networks.size,
      sandboxes: this.sandboxes.size,
      endpoints: this.endpoints.size,
      storeKind: 'fake',
      rootDir: '/var/lib/cnm',
      execRoot: '/run/cnm',
      pid: process.pid,
      drivers: ['bridge', 'fake', 'host', 'null'],
    };
  }

  /** Test hook: emit an arbitrary event. */
  emit(type: ControllerEvent['type'], action: ControllerEvent['action'], id: string, attributes: Record<string, string>): void {
    const event: ControllerEvent = { type, action, id, attributes, timeNano: BigInt(Date.now()) * 1_000_000n + (this.eventCounter++ % 1_000_000n) };
    for (const l of this.listeners) l(event);
  }

  // ---- internals -----------------------------------------------------------------------------

  private addNetwork(spec: {
    name: string;
    driver: string;
    predefined: boolean;
    pools: Pool[];
    options?: Record<string, string>;
    labels?: Record<string, string>;
    internal?: boolean;
    attachable?: boolean;
    configOnly?: boolean;
    configFrom?: string;
    enableIPv4?: boolean;
    enableIPv6?: boolean;
    ipamDriver?: string;
    ipamOptions?: Record<string, string>;
    scope?: NetworkRecord['scope'];
  }): NetworkRecord {
    const net: NetworkRecord = {
      id: newId(),
      name: spec.name,
      driver: spec.driver,
      scope: spec.scope ?? 'local',
      created: rfc3339Nano(),
      internal: spec.internal ?? false,
      attachable: spec.attachable ?? false,
      ingress: false,
      configOnly: spec.configOnly ?? false,
      configFrom: spec.configFrom,
      enableIPv4: spec.enableIPv4 ?? spec.pools.some((p) => p.family === 4),
      enableIPv6: spec.enableIPv6 ?? false,
      ipam: { driver: spec.ipamDriver ?? 'default', options: spec.ipamOptions ?? {}, pools: spec.pools },
      options: spec.options ?? {},
      labels: spec.labels ?? {},
      predefined: spec.predefined,
      driverState: {},
    };
    this.networks.set(net.id, net);
    return net;
  }

  private attach(net: NetworkRecord, sb: SandboxRecord, req: Omit<ConnectRequest, 'network' | 'sandbox'>): EndpointRecord {
    if (this.endpointsOf(net.id).some((e) => e.sandboxId === sb.id)) {
      throw new ForbiddenError(`endpoint with name ${sb.name} already exists in network ${net.name}`);
    }
    const v4 = net.ipam.pools.find((p) => p.family === 4);
    const v6 = net.ipam.pools.find((p) => p.family === 6);
    const host = (this.nextHost.get(net.id) ?? 1) + 1;
    this.nextHost.set(net.id, host);
    const prefix = (p: Pool) => p.subnet.split('/')[1];
    const ep: EndpointRecord = {
      id: newId(),
      name: sb.name,
      networkId: net.id,
      sandboxId: sb.id,
      macAddress: req.macAddress ?? randomMac(),
      ipv4Address: v4 ? `${req.ipv4Address ?? addHost4(v4.subnet, host)}/${prefix(v4)}` : undefined,
      ipv6Address: v6 ? `${req.ipv6Address ?? `${v6.subnet.split('/')[0]}${host.toString(16)}`}/${prefix(v6)}` : undefined,
      staticIpv4: req.ipv4Address !== undefined,
      staticIpv6: req.ipv6Address !== undefined,
      aliases: req.aliases ?? [],
      gwPriority: req.gwPriority ?? 0,
      driverOpts: req.driverOpts ?? {},
      ifName: `eth${[...this.endpoints.values()].filter((e) => e.sandboxId === sb.id).length}`,
      driverState: {},
      created: rfc3339Nano(),
    };
    this.endpoints.set(ep.id, ep);
    this.emit('network', 'connect', net.id, { name: net.name, type: net.driver, container: sb.id });
    return ep;
  }

  private endpointsOf(networkId: string): EndpointRecord[] {
    return [...this.endpoints.values()].filter((e) => e.networkId === networkId);
  }

  private networkDetail(net: NetworkRecord): NetworkDetail {
    return {
      network: net,
      endpoints: this.endpointsOf(net.id).map((endpoint) => ({ endpoint, sandbox: this.sandboxes.get(endpoint.sandboxId)! })),
      attachments: [],
    };
  }

  private sandboxDetail(sb: SandboxRecord): SandboxDetail {
    return {
      sandbox: sb,
      endpoints: [...this.endpoints.values()]
        .filter((e) => e.sandboxId === sb.id)
        .map((endpoint) => ({ endpoint, network: this.networks.get(endpoint.networkId)! })),
    };
  }

  private findNetwork(ref: string): NetworkRecord {
    return resolve([...this.networks.values()], ref, 'network', `network ${ref} not found`);
  }

  private findSandbox(ref: string): SandboxRecord {
    try {
      return resolve([...this.sandboxes.values()], ref, 'sandbox', `sandbox ${ref} not found`);
    } catch (err) {
      // The real controller's contract: the API words a missing sandbox per route.
      if (err instanceof NotFoundError) throw new NoSuchSandboxError(ref);
      throw err;
    }
  }
}

/** Full ID, then exact name, then unique ID prefix (as the real controller promises). */
function resolve<T extends { id: string; name: string }>(items: T[], ref: string, kind: string, notFound: string): T {
  const byId = items.find((i) => i.id === ref);
  if (byId) return byId;
  const byName = items.find((i) => i.name === ref);
  if (byName) return byName;
  const byPrefix = ref ? items.filter((i) => i.id.startsWith(ref)) : [];
  if (byPrefix.length > 1) throw new InvalidParameterError(`${kind} ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
  if (byPrefix.length === 1) return byPrefix[0]!;
  throw new NotFoundError(notFound);
}

function pool4(subnet: string, gateway?: string): Pool {
  return { id: subnet, family: 4, subnet, gateway: gateway ?? addHost4(subnet, 1), auxAddresses: {} };
}

function pool6(subnet: string): Pool {
  return { id: subnet, family: 6, subnet, gateway: `${subnet.split('/')[0]}1`, auxAddresses: {} };
}

function addHost4(subnet: string, host: number): string {
  const base = subnet.split('/')[0]!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const n = base + host;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

// ---- an API server on the fake, over a unix socket in a temp dir ---------------------------------

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json(): any;
}

export interface FakeApi {
  controller: FakeController;
  socketPath: string;
  dir: string;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  close(): Promise<void>;
}

/** Start the real API server on a FakeController; `close` stops it and removes the temp dir. */
export async function startFakeApi(controller = new FakeController()): Promise<FakeApi> {
  const dir = await mkdtemp(join(tmpdir(), 'cnm-api-'));
  const socketPath = join(dir, 'run', 'cnm.sock');
  const server = await startApiServer({
    controller,
    socketPath,
    logger: silentLogger,
    version: '0.1.0-test',
    daemon: { pid: process.pid, rootDir: join(dir, 'root'), execRoot: join(dir, 'run') },
  });
  return {
    controller,
    socketPath,
    dir,
    request: (method, path, body, headers) => httpRequest(socketPath, method, path, body, headers),
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One HTTP request over a unix socket. A string or Buffer body is sent as is; anything else as JSON. */
export function httpRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        agent: false, // no pooled keep-alive socket for the server's idle timeout to close under us
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
