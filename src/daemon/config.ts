/** `cnm daemon` flags → a typed configuration. */
import { parseArgs } from 'node:util';
import { InvalidParameterError } from '../errors.js';
import { isValidIfName } from '../drivers/option-schema.js';
import { dnsOptionError, searchDomainError } from '../util/dns-names.js';
import { canonicalIp } from '../util/ip.js';
import type { LogLevel } from '../util/log.js';
import { parseClusterFlags, type ClusterConfig } from './cluster-config.js';

export interface DaemonConfig {
  root: string;
  execRoot: string;
  socket: string;
  /** Raw --default-address-pool values ("base=CIDR,size=N"). */
  defaultAddressPools: string[];
  logLevel: LogLevel;
  /** Name of the predefined "bridge" network's interface. */
  bridgeName: string;
  /** --bip: subnet of the predefined bridge network. */
  bip?: string;
  mtu?: number;
  /** How cnm talks to the kernel: in-process netlink (default) or spawning iproute2. */
  kernel: 'netlink' | 'iproute';
  /** How nft scripts are applied: libnftables in-process (default) or the nft binary. */
  nft: 'libnftables' | 'cli';
  /** Seconds between backstop checks of cnm's nft tables (events trigger one at once); 0 disables the watchdog. */
  firewallCheckInterval: number;
  /** --dns / --dns-search / --dns-option: replace the host resolv.conf's entries for every sandbox. */
  dns: { servers: string[]; search: string[]; options: string[] };
  /** --group: group owning the API socket (mode 0660); undefined = root's group. */
  group?: string;
  /** --max-connections: API connections open at once. */
  maxConnections: number;
  /** --max-queued-changes: changes waiting behind the one being applied before 503. */
  maxQueuedChanges: number;
  /** --docker-plugin [NAME]: serve Docker's remote network driver protocol as NAME (default cnm). */
  dockerPlugin?: { name: string; socket: string };
  /** --cluster-store and its companions: the shared etcd store and this host's membership. */
  cluster?: ClusterConfig;
}

/** Where dockerd looks for plugin sockets. */
export const DOCKER_PLUGIN_DIR = '/run/docker/plugins';
const PLUGIN_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

export const DAEMON_USAGE = `Usage: cnm daemon [OPTIONS]

Run the cnm daemon in the foreground.

Options:
  --root DIR                      persistent state (default /var/lib/cnm)
  --exec-root DIR                 runtime state: namespace pins, sandbox files (default /run/cnm)
  --socket PATH                   API socket (default <exec-root>/cnm.sock)
  -G, --group NAME|GID            group of the API socket, mode 0660 (default root)
  --max-connections N             API connections open at once, more are refused (default 512)
  --max-queued-changes N          changes waiting for the one being applied; beyond, 503
                                  (default 256)
  --default-address-pool base=CIDR,size=N
                                  pool for automatic subnets (repeatable; default: /24s from
                                  172.17.0.0/16 ... 172.24.0.0/13 and 192.168.0.0/16)
  --bridge-name NAME              interface of the predefined "bridge" network (default cnm0)
  --bip CIDR                      subnet of the predefined "bridge" network
  --mtu N                         MTU of the predefined "bridge" network
  --kernel netlink|iproute        kernel access: in-process rtnetlink (default) or iproute2 processes
  --nft libnftables|cli           nftables access (default libnftables)
  --firewall-check-interval SEC   nftables events restore cnm's rules at once when another process
                                  changes them; this is the period of the backstop check (default
                                  30, 0 = no watchdog at all, otherwise 0.1 to 86400)
  --dns IP                        upstream DNS server for every sandbox instead of the host's
                                  resolv.conf ones (repeatable)
  --dns-search DOMAIN             DNS search domain for every sandbox (repeatable)
  --dns-option OPTION             resolver option for every sandbox (repeatable)
  --docker-plugin [NAME]          also serve Docker's remote network driver protocol as NAME
                                  (default cnm): docker network create -d NAME
  --docker-plugin-dir DIR         where the plugin socket NAME.sock is made (default
                                  /run/docker/plugins, where dockerd looks)
  --cluster-store URL             etcd cluster shared by cnm hosts: etcd://HOST:PORT[,HOST:PORT...]
                                  or unix:///PATH[,/PATH...] (etcd's unix sockets)
  --advertise-addr IP             this host's address for the other hosts (with --cluster-store)
  --host-ttl SEC                  lease of this host's membership: gone from the others this long
                                  after it dies (default 30, 2 to 3600)
  --data-path-port PORT           UDP port of overlay (VXLAN) traffic between hosts (default 4789,
                                  1024 to 49151; the same on every host)
  --cluster-store-cacert FILE     CA bundle to verify etcd's certificate (TLS)
  --cluster-store-cert FILE       client certificate for etcd (TLS, with --cluster-store-key)
  --cluster-store-key FILE        its private key
  --log-level debug|info|warn|error (default info)
`;

export function parseDaemonArgs(argv: string[]): DaemonConfig | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: withPluginDefault(argv),
      allowPositionals: false,
      options: {
        root: { type: 'string' },
        'exec-root': { type: 'string' },
        socket: { type: 'string' },
        group: { type: 'string', short: 'G' },
        'max-connections': { type: 'string' },
        'max-queued-changes': { type: 'string' },
        'default-address-pool': { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        'bridge-name': { type: 'string' },
        bip: { type: 'string' },
        mtu: { type: 'string' },
        kernel: { type: 'string' },
        nft: { type: 'string' },
        'firewall-check-interval': { type: 'string' },
        dns: { type: 'string', multiple: true },
        'dns-search': { type: 'string', multiple: true },
        'dns-option': { type: 'string', multiple: true },
        'docker-plugin': { type: 'string' },
        'docker-plugin-dir': { type: 'string' },
        'cluster-store': { type: 'string' },
        'advertise-addr': { type: 'string' },
        'host-ttl': { type: 'string' },
        'data-path-port': { type: 'string' },
        'cluster-store-cacert': { type: 'string' },
        'cluster-store-cert': { type: 'string' },
        'cluster-store-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new InvalidParameterError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const execRoot = v['exec-root'] ?? '/run/cnm';
  const logLevel = (v['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new InvalidParameterError(`invalid --log-level ${logLevel}`);
  const kernel = (v.kernel ?? 'netlink') as DaemonConfig['kernel'];
  if (!['netlink', 'iproute'].includes(kernel)) throw new InvalidParameterError(`invalid --kernel ${kernel}`);
  const nft = (v.nft ?? 'libnftables') as DaemonConfig['nft'];
  if (!['libnftables', 'cli'].includes(nft)) throw new InvalidParameterError(`invalid --nft ${nft}`);
  const mtu = v.mtu === undefined ? undefined : Number(v.mtu);
  if (mtu !== undefined && !(/^\d{1,5}$/.test(v.mtu!) && mtu >= 68 && mtu <= 65535)) {
    throw new InvalidParameterError(`invalid --mtu ${JSON.stringify(v.mtu)}: an integer from 68 to 65535`);
  }
  const interval = parseInterval(v['firewall-check-interval']);
  const bridgeName = v['bridge-name'] ?? 'cnm0';
  if (!isValidIfName(bridgeName)) {
    throw new InvalidParameterError(`invalid --bridge-name ${JSON.stringify(bridgeName)}: 1 to 15 characters of letters, digits and _ . - @ +`);
  }
  const servers = v.dns ?? [];
  for (const server of servers) {
    if (canonicalIp(server) === undefined) throw new InvalidParameterError(`invalid --dns ${JSON.stringify(server)}: not an IP address`);
  }
  if (v.group !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(v.group)) throw new InvalidParameterError(`invalid --group ${JSON.stringify(v.group)}`);
  // These go into every sandbox's resolv.conf: a newline or a space would add lines or words there.
  const search = v['dns-search'] ?? [];
  for (const domain of search) {
    const err = searchDomainError(domain);
    if (err) throw new InvalidParameterError(`invalid --dns-search ${JSON.stringify(domain)}: ${err}`);
  }
  const options = v['dns-option'] ?? [];
  for (const option of options) {
    const err = dnsOptionError(option);
    if (err) throw new InvalidParameterError(`invalid --dns-option ${JSON.stringify(option)}: ${err}`);
  }
  const pluginName = v['docker-plugin'];
  if (pluginName !== undefined && !PLUGIN_NAME_RE.test(pluginName)) {
    throw new InvalidParameterError(`invalid --docker-plugin ${JSON.stringify(pluginName)}: 1 to 64 letters, digits and _ . - (not starting with one of _ . -)`);
  }
  if (v['docker-plugin-dir'] !== undefined && pluginName === undefined) throw new InvalidParameterError('--docker-plugin-dir needs --docker-plugin');
  const pluginDir = v['docker-plugin-dir'] ?? DOCKER_PLUGIN_DIR;
  return {
    ...(pluginName === undefined ? {} : { dockerPlugin: { name: pluginName, socket: `${pluginDir.replace(/\/+$/, '')}/${pluginName}.sock` } }),
    root: v.root ?? '/var/lib/cnm',
    execRoot,
    socket: v.socket ?? `${execRoot}/cnm.sock`,
    defaultAddressPools: v['default-address-pool'] ?? [],
    logLevel,
    bridgeName,
    bip: v.bip,
    mtu,
    kernel,
    nft,
    firewallCheckInterval: interval,
    dns: { servers, search, options },
    group: v.group,
    maxConnections: boundedInt(v['max-connections'], 512, 16, 65536, '--max-connections'),
    maxQueuedChanges: boundedInt(v['max-queued-changes'], 256, 1, 65536, '--max-queued-changes'),
    cluster: parseClusterFlags({
      clusterStore: v['cluster-store'],
      advertiseAddr: v['advertise-addr'],
      hostTtl: v['host-ttl'],
      dataPathPort: v['data-path-port'],
      cacert: v['cluster-store-cacert'],
      cert: v['cluster-store-cert'],
      key: v['cluster-store-key'],
    }),
  };
}

/** `--docker-plugin` without a value (last, or followed by another flag) means the default name, cnm. */
function withPluginDefault(argv: string[]): string[] {
  const out: string[] = [];
  argv.forEach((arg, i) => {
    out.push(arg);
    const next = argv[i + 1];
    if (arg === '--docker-plugin' && (next === undefined || next.startsWith('-'))) out.push('cnm');
  });
  return out;
}

/** Seconds: 0 (off) or a plain decimal from 0.1 to 86400 (a day; setTimeout wraps beyond 24.8 days). */
function parseInterval(raw: string | undefined): number {
  if (raw === undefined) return 30;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n === 0 || (n >= 0.1 && n <= 86400))) {
    throw new InvalidParameterError(
      `invalid --firewall-check-interval ${JSON.stringify(raw)}: seconds, 0 (off) or from 0.1 to 86400`,
    );
  }
  return n;
}

function boundedInt(text: string | undefined, fallback: number, min: number, max: number, flag: string): number {
  if (text === undefined) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
    throw new InvalidParameterError(`invalid ${flag} ${JSON.stringify(text)}: must be an integer from ${min} to ${max}`);
  }
  return n;
}
