/**
 * The embedded DNS's view of the world: which names exist on which network, and which networks each
 * sandbox is on. Pure and in memory, fed by explicit calls from the controller (no store, no kernel), so
 * a change is visible to the very next query without touching any socket.
 *
 * Semantics follow Docker's resolver (libnetwork Sandbox.ResolveName / Network.ResolveName):
 * - an endpoint is known on its network by its sandbox's name, hostname, short ID and network aliases
 *   (Docker's DNSNames), all case-insensitive;
 * - a sandbox sees only names on networks it is itself connected to;
 * - "a.b.c" is tried as a whole on every shared network, then as "a.b" on network "c", then as "a" on
 *   network "b.c" (network names may contain dots);
 * - a name that exists but has no address of the asked family is still ours: an empty answer, never
 *   forwarded (Docker: "exists in the docker domain");
 * - several endpoints under one name (a shared alias) answer with all their addresses; we rotate the
 *   order by one per query (round robin) where Docker shuffles;
 * - PTR answers "<sandbox name>.<network name>";
 * - a service (cnm's, scoped to its network like an alias) adds two names: NAME answers with its VIP
 *   (vip mode; the VIP's PTR is "<service name>.<network name>") or with every backend address, rotated
 *   (dnsrr), and tasks.NAME always answers with every backend address, rotated.
 *
 * Every lookup is a hash-map hit per network the asking sandbox is on; nothing scans all endpoints.
 */
import { InvalidParameterError, NotFoundError } from '../errors.js';
import { formatIp, parseIp, splitAddressWithPrefix } from '../util/ip.js';
import { addressBytes } from './message.js';
import {
  EMBEDDED_DNS_ADDRESS,
  MAX_UPSTREAMS,
  ndotsOf,
  isEmbeddedResolver,
  parseUpstream,
  type ResolverConfig,
  type UpstreamOrigin,
  type UpstreamServer,
} from './resolv-conf.js';

export interface DnsNetworkSpec {
  id: string;
  name: string;
  /** Internal networks have no way out: a sandbox only on such networks never forwards. */
  internal: boolean;
}

export interface DnsEndpointSpec {
  id: string;
  networkId: string;
  sandboxId: string;
  sandboxName: string;
  hostname: string;
  /** The sandbox's 12-hex short ID. */
  shortId: string;
  aliases: readonly string[];
  /** "10.0.0.2/24" (as in EndpointRecord) or a bare address. */
  ipv4?: string;
  ipv6?: string;
}

/** A service's names on its network; replaced as a whole whenever its backends change. */
export interface DnsServiceSpec {
  id: string;
  networkId: string;
  name: string;
  /**
   * vip mode: NAME answers with this IPv4 address alone ("10.0.0.5/24" or bare), and AAAA with vip6.
   * Both absent (dnsrr): with the backends.
   */
  vip?: string;
  vip6?: string;
  /** Every backend's addresses, as in DnsEndpointSpec; tasks.NAME answers with all of them. */
  backends: ReadonlyArray<{ ipv4?: string; ipv6?: string }>;
}

export interface SandboxDnsConfig extends ResolverConfig {
  /** Explicit ndots; when absent, taken from `options` ("ndots:N"). */
  ndots?: number;
}

export interface Resolution {
  addresses: string[];
  /** The name exists on a network the asker shares (even with no address of this family): do not forward. */
  authoritative: boolean;
}

export interface AddressRecord {
  readonly text: string;
  /** 4 or 16 bytes: the RDATA, encoded once when the endpoint is added. */
  readonly bytes: Buffer;
}

/** What the server needs per query: records ready to encode. */
export interface RecordLookup {
  authoritative: boolean;
  records: readonly AddressRecord[];
}

export type AddressFamilyQuery = 'A' | 'AAAA';

/** What a name answers with: an endpoint, a service's VIP, or one backend of a service. */
interface AddressHolder {
  readonly ipv4: AddressRecord | undefined;
  readonly ipv6: AddressRecord | undefined;
  /** First part of the PTR answer for these addresses: the sandbox's (or the VIP's service's) name. */
  readonly ptrLabel: string;
}

interface EndpointEntry extends AddressHolder {
  readonly spec: DnsEndpointSpec;
  readonly names: readonly string[];
}

interface ServiceEntry {
  readonly spec: DnsServiceSpec;
  /** Every (name, holder) pair this service put into its network's names. */
  readonly links: ReadonlyArray<readonly [string, AddressHolder]>;
  /** In the network's byAddress (PTR); backends are not: their PTR is their endpoint's. */
  readonly vip: AddressHolder | undefined;
}

/** All endpoints (and service records) known under one name on one network. */
class NameEntry {
  readonly endpoints: AddressHolder[] = [];
  private cursor = 0;

  /** Addresses of one family, deduplicated, rotated by one per call when there are several. */
  addresses(family: AddressFamilyQuery): readonly AddressRecord[] {
    const pick = family === 'A' ? (e: AddressHolder) => e.ipv4 : (e: AddressHolder) => e.ipv6;
    if (this.endpoints.length === 1) {
      const record = pick(this.endpoints[0]!);
      return record ? [record] : [];
    }
    const seen = new Set<string>();
    const found: AddressRecord[] = [];
    for (const endpoint of this.endpoints) {
      const record = pick(endpoint);
      if (record && !seen.has(record.text)) {
        seen.add(record.text);
        found.push(record);
      }
    }
    if (found.length < 2) return found;
    const start = this.cursor++ % found.length;
    if (this.cursor >= Number.MAX_SAFE_INTEGER) this.cursor = 0;
    return [...found.slice(start), ...found.slice(0, start)];
  }
}

interface NetworkEntry {
  spec: DnsNetworkSpec;
  nameLower: string;
  readonly names: Map<string, NameEntry>;
  /** Canonical address text → endpoints (or service VIPs) holding it (normally one). */
  readonly byAddress: Map<string, AddressHolder[]>;
}

interface SandboxEntry {
  /** One endpoint per network, in connection order: the order networks are searched in. */
  readonly endpoints: EndpointEntry[];
  dns: SandboxDnsConfig | undefined;
  /** Parsed from dns.servers once (forwarding asks for them on every query). */
  upstreams: UpstreamServer[];
}

const NOT_FOUND: RecordLookup = { authoritative: false, records: [] };

export class DnsRegistry {
  private readonly networks = new Map<string, NetworkEntry>();
  private readonly endpoints = new Map<string, EndpointEntry>();
  private readonly services = new Map<string, ServiceEntry>();
  private readonly sandboxes = new Map<string, SandboxEntry>();
  private hostDns: ResolverConfig = { servers: [], search: [], options: [] };
  private hostUpstreams: UpstreamServer[] = [];

  constructor(
    private readonly listenAddress = EMBEDDED_DNS_ADDRESS,
    private readonly listenPort = 53,
  ) {}

  // ---- Feeding ----

  /** Add a network or update its name / internal flag. */
  setNetwork(spec: DnsNetworkSpec): void {
    const existing = this.networks.get(spec.id);
    if (existing) {
      existing.spec = { ...spec };
      existing.nameLower = spec.name.toLowerCase();
      return;
    }
    this.networks.set(spec.id, { spec: { ...spec }, nameLower: spec.name.toLowerCase(), names: new Map(), byAddress: new Map() });
  }

  /** Forget a network and every endpoint and service still on it. */
  removeNetwork(id: string): void {
    for (const endpoint of [...this.endpoints.values()]) {
      if (endpoint.spec.networkId === id) this.removeEndpoint(endpoint.spec.id);
    }
    for (const service of [...this.services.values()]) {
      if (service.spec.networkId === id) this.removeService(service.spec.id);
    }
    this.networks.delete(id);
  }

  /** Register an endpoint; an endpoint with the same ID is replaced (aliases or addresses changed). */
  addEndpoint(spec: DnsEndpointSpec): void {
    const network = this.networks.get(spec.networkId);
    if (!network) throw new NotFoundError(`DNS: network ${spec.networkId} is not registered`);
    this.removeEndpoint(spec.id);
    const entry: EndpointEntry = {
      spec: { ...spec, aliases: [...spec.aliases] },
      names: namesOf(spec),
      ipv4: addressRecord(spec.ipv4, 4, 'ipv4'),
      ipv6: addressRecord(spec.ipv6, 6, 'ipv6'),
      ptrLabel: spec.sandboxName,
    };
    for (const name of entry.names) linkName(network, name, entry);
    linkAddresses(network, entry);
    this.endpoints.set(spec.id, entry);
    this.sandboxEntry(spec.sandboxId).endpoints.push(entry);
  }

  /** The endpoint's names vanish at once; removing an unknown endpoint is a no-op. */
  removeEndpoint(id: string): void {
    const entry = this.endpoints.get(id);
    if (!entry) return;
    this.endpoints.delete(id);
    const network = this.networks.get(entry.spec.networkId);
    if (network) {
      for (const name of entry.names) unlinkName(network, name, entry);
      unlinkAddresses(network, entry);
    }
    const sandbox = this.sandboxes.get(entry.spec.sandboxId);
    if (sandbox) {
      removeFrom(sandbox.endpoints, entry);
      if (sandbox.endpoints.length === 0 && sandbox.dns === undefined) this.sandboxes.delete(entry.spec.sandboxId);
    }
  }

  /**
   * Register a service's names on its network, or replace them (its backends changed): every address is
   * checked before anything changes. Only sandboxes on that network see them, as with aliases.
   */
  setService(spec: DnsServiceSpec): void {
    const network = this.networks.get(spec.networkId);
    if (!network) throw new NotFoundError(`DNS: network ${spec.networkId} is not registered`);
    const name = normalise(spec.name);
    if (name === '') throw new InvalidParameterError('DNS: a service needs a name');
    const backends: AddressHolder[] = spec.backends.map((b) => ({
      ipv4: addressRecord(b.ipv4, 4, 'ipv4'),
      ipv6: addressRecord(b.ipv6, 6, 'ipv6'),
      ptrLabel: spec.name,
    }));
    const vip: AddressHolder | undefined =
      spec.vip === undefined && spec.vip6 === undefined
        ? undefined
        : { ipv4: addressRecord(spec.vip, 4, 'ipv4'), ipv6: addressRecord(spec.vip6, 6, 'ipv6'), ptrLabel: spec.name };
    const links: Array<readonly [string, AddressHolder]> = backends.map((b) => [`tasks.${name}`, b] as const);
    if (vip) links.push([name, vip]);
    else links.push(...backends.map((b) => [name, b] as const));
    this.removeService(spec.id);
    for (const [linked, holder] of links) linkName(network, linked, holder);
    if (vip) linkAddresses(network, vip);
    this.services.set(spec.id, { spec: { ...spec, backends: spec.backends.map((b) => ({ ...b })) }, links, vip });
  }

  /** The service's names vanish at once; removing an unknown service is a no-op. */
  removeService(id: string): void {
    const entry = this.services.get(id);
    if (!entry) return;
    this.services.delete(id);
    const network = this.networks.get(entry.spec.networkId);
    if (!network) return;
    for (const [name, holder] of entry.links) unlinkName(network, name, holder);
    if (entry.vip) unlinkAddresses(network, entry.vip);
  }

  /** The sandbox's own --dns / --dns-search / --dns-option (empty lists fall back to the host's). */
  setSandboxDns(sandboxId: string, config: SandboxDnsConfig): void {
    const sandbox = this.sandboxEntry(sandboxId);
    sandbox.dns = {
      servers: [...config.servers],
      search: [...config.search],
      options: [...config.options],
      ...(config.ndots === undefined ? {} : { ndots: config.ndots }),
    };
    sandbox.upstreams = this.parseUpstreams(config.servers, 'sandbox');
  }

  /** Forget a removed sandbox's DNS settings and any endpoint still registered for it. */
  removeSandbox(sandboxId: string): void {
    const sandbox = this.sandboxes.get(sandboxId);
    if (!sandbox) return;
    for (const endpoint of [...sandbox.endpoints]) this.removeEndpoint(endpoint.spec.id);
    this.sandboxes.delete(sandboxId);
  }

  /** The daemon host's resolver configuration (its /etc/resolv.conf, or the daemon's --dns settings). */
  setHostDns(config: ResolverConfig): void {
    this.hostDns = { servers: [...config.servers], search: [...config.search], options: [...config.options] };
    this.hostUpstreams = this.parseUpstreams(config.servers, 'daemon');
  }

  // ---- Queries ----

  /** Addresses for `qname` as seen from `askingSandboxId` (see the file comment for the rules). */
  resolve(askingSandboxId: string, qname: string, family: AddressFamilyQuery): Resolution {
    const found = this.lookup(askingSandboxId, normalise(qname), family);
    return { addresses: found.records.map((r) => r.text), authoritative: found.authoritative };
  }

  /** resolve() for the hot path: `name` already lowercase without a trailing dot; records ready to encode. */
  lookup(askingSandboxId: string, name: string, family: AddressFamilyQuery): RecordLookup {
    const sandbox = this.sandboxes.get(askingSandboxId);
    if (!sandbox || sandbox.endpoints.length === 0 || name === '') return NOT_FOUND;
    const whole = this.lookupOnNetworks(sandbox, name, undefined, family);
    if (whole) return whole;
    // "name.network": split at each dot from the right; the suffix must be one of the asker's networks.
    for (let dot = name.lastIndexOf('.'); dot > 0; dot = name.lastIndexOf('.', dot - 1)) {
      const found = this.lookupOnNetworks(sandbox, name.slice(0, dot), name.slice(dot + 1), family);
      if (found) return found;
    }
    return NOT_FOUND;
  }

  /** True when `name` exists for the asker in either family (MX and other types answer NODATA then). */
  exists(askingSandboxId: string, name: string): boolean {
    return this.lookup(askingSandboxId, name, 'A').authoritative;
  }

  /** PTR targets ("<name>.<network>") for an address, on the networks the asker shares. */
  reverse(askingSandboxId: string, ip: string): string[] {
    const sandbox = this.sandboxes.get(askingSandboxId);
    const address = parseIp(ip.includes('/') ? ip.slice(0, ip.indexOf('/')) : ip);
    if (!sandbox || !address) return [];
    const key = formatIp(address);
    const names: string[] = [];
    for (const own of sandbox.endpoints) {
      const network = this.networks.get(own.spec.networkId);
      const holder = network?.byAddress.get(key)?.[0];
      if (!network || !holder) continue;
      const target = `${holder.ptrLabel}.${network.spec.name}`;
      if (!names.includes(target)) names.push(target);
    }
    return names;
  }

  /** False when the sandbox has no network with a way out (all internal, or none): never forward. */
  forwardingAllowed(askingSandboxId: string): boolean {
    const sandbox = this.sandboxes.get(askingSandboxId);
    if (!sandbox) return false;
    return sandbox.endpoints.some((e) => this.networks.get(e.spec.networkId)?.spec.internal === false);
  }

  /**
   * Where this sandbox's other queries go: its own --dns servers (queried from its namespace), else the
   * host's (queried from the daemon's namespace); our own address removed, at most 3.
   */
  upstreams(sandboxId: string): readonly UpstreamServer[] {
    const own = this.sandboxes.get(sandboxId)?.upstreams;
    return own && own.length > 0 ? own : this.hostUpstreams;
  }

  /** The search domains and options in force for the sandbox (its own, else the host's), and its ndots. */
  effectiveDns(sandboxId: string): { search: string[]; options: string[]; ndots: number | undefined } {
    const own = this.sandboxes.get(sandboxId)?.dns;
    const search = own && own.search.length > 0 ? own.search : this.hostDns.search;
    const options = own && own.options.length > 0 ? own.options : this.hostDns.options;
    return { search: [...search], options: [...options], ndots: own?.ndots ?? ndotsOf(options) };
  }

  /**
   * Docker: when ndots was set explicitly, a single-label name we do not own gets an empty answer instead
   * of going upstream, so the stub resolver goes on with its search domains.
   */
  ndotsSet(sandboxId: string): boolean {
    return this.effectiveDns(sandboxId).ndots !== undefined;
  }

  /** Counts, for /info and tests. */
  size(): { networks: number; endpoints: number; sandboxes: number } {
    return { networks: this.networks.size, endpoints: this.endpoints.size, sandboxes: this.sandboxes.size };
  }

  private lookupOnNetworks(
    sandbox: SandboxEntry,
    name: string,
    networkName: string | undefined,
    family: AddressFamilyQuery,
  ): RecordLookup | undefined {
    let authoritative = false;
    for (const own of sandbox.endpoints) {
      const network = this.networks.get(own.spec.networkId);
      if (!network || (networkName !== undefined && network.nameLower !== networkName)) continue;
      const entry = network.names.get(name);
      if (!entry) continue;
      authoritative = true;
      const records = entry.addresses(family);
      if (records.length > 0) return { authoritative, records };
    }
    return authoritative ? { authoritative, records: [] } : undefined;
  }

  private sandboxEntry(id: string): SandboxEntry {
    let sandbox = this.sandboxes.get(id);
    if (!sandbox) this.sandboxes.set(id, (sandbox = { endpoints: [], dns: undefined, upstreams: [] }));
    return sandbox;
  }

  /**
   * Whether `server`, queried from the sandbox's own namespace, would reach the sandbox's own embedded
   * resolver (a loop). From the daemon's namespace the same address is another resolver (Docker's, when
   * cnm runs in a container), unless the sandbox lives in the daemon's namespace (see QueryHandler).
   */
  isOwnResolver(server: Pick<UpstreamServer, 'address' | 'port'>): boolean {
    return isEmbeddedResolver(server, this.listenAddress, this.listenPort);
  }

  /**
   * Valid addresses only, at most 3. A sandbox's own --dns servers are queried from its namespace, where
   * our own address is ourselves: those are removed. The daemon's are kept (see isOwnResolver).
   */
  private parseUpstreams(servers: readonly string[], from: UpstreamOrigin): UpstreamServer[] {
    const out: UpstreamServer[] = [];
    for (const text of servers) {
      const server = parseUpstream(text, from);
      if (!server || (from === 'sandbox' && this.isOwnResolver(server))) continue;
      out.push(server);
      if (out.length === MAX_UPSTREAMS) break;
    }
    return out;
  }
}

function linkName(network: NetworkEntry, name: string, holder: AddressHolder): void {
  let nameEntry = network.names.get(name);
  if (!nameEntry) network.names.set(name, (nameEntry = new NameEntry()));
  nameEntry.endpoints.push(holder);
}

function unlinkName(network: NetworkEntry, name: string, holder: AddressHolder): void {
  const nameEntry = network.names.get(name);
  if (!nameEntry) return;
  removeFrom(nameEntry.endpoints, holder);
  if (nameEntry.endpoints.length === 0) network.names.delete(name);
}

function linkAddresses(network: NetworkEntry, holder: AddressHolder): void {
  for (const record of [holder.ipv4, holder.ipv6]) {
    if (!record) continue;
    const holders = network.byAddress.get(record.text);
    if (holders) holders.push(holder);
    else network.byAddress.set(record.text, [holder]);
  }
}

function unlinkAddresses(network: NetworkEntry, holder: AddressHolder): void {
  for (const record of [holder.ipv4, holder.ipv6]) {
    const holders = record && network.byAddress.get(record.text);
    if (!holders) continue;
    removeFrom(holders, holder);
    if (holders.length === 0) network.byAddress.delete(record!.text);
  }
}

function namesOf(spec: DnsEndpointSpec): string[] {
  const names = new Set<string>();
  for (const name of [spec.sandboxName, ...spec.aliases, spec.shortId, spec.hostname]) {
    const key = normalise(name);
    if (key !== '') names.add(key);
  }
  return [...names];
}

function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function addressRecord(text: string | undefined, family: 4 | 6, what: string): AddressRecord | undefined {
  if (text === undefined || text === '') return undefined;
  const bare = text.includes('/') ? splitAddressWithPrefix(text)?.address : text;
  const parsed = bare === undefined ? undefined : parseIp(bare);
  if (!parsed || parsed.family !== family) throw new InvalidParameterError(`DNS: invalid ${what} ${JSON.stringify(text)}`);
  // Canonical text, so "fd00:0::2" and "fd00::2" are one key for PTR lookups.
  return { text: formatIp(parsed), bytes: addressBytes(bare!) };
}

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}
