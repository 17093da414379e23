/**
 * The multi-host flags of `cnm daemon`: --cluster-store, --advertise-addr, --host-ttl, --data-path-port
 * and the etcd TLS files, checked before anything starts. The spellings follow Docker's old --cluster-store /
 * --cluster-advertise and etcdctl's --cacert / --cert / --key.
 */
import { isIP } from 'node:net';
import { InvalidParameterError } from '../errors.js';
import { canonicalIp } from '../util/ip.js';

export interface ClusterConfig {
  /** `host:port` or `unix:/path` per etcd member. */
  endpoints: string[];
  /** The URL as given (logged, shown). */
  url: string;
  advertiseAddr: string;
  /** Seconds. */
  hostTtl: number;
  /** UDP port of the overlay's VXLAN traffic (Docker's `swarm init --data-path-port`); default 4789. */
  dataPathPort: number;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

export interface ClusterFlags {
  clusterStore?: string;
  advertiseAddr?: string;
  hostTtl?: string;
  dataPathPort?: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

export const DEFAULT_HOST_TTL = 30;
/** IANA's VXLAN port, Docker's default. */
export const DEFAULT_DATA_PATH_PORT = 4789;

export function parseClusterFlags(flags: ClusterFlags): ClusterConfig | undefined {
  const { clusterStore } = flags;
  if (clusterStore === undefined) {
    const stray = Object.entries({ 'advertise-addr': flags.advertiseAddr, 'host-ttl': flags.hostTtl, 'data-path-port': flags.dataPathPort, 'cluster-store-cacert': flags.cacert, 'cluster-store-cert': flags.cert, 'cluster-store-key': flags.key })
      .filter(([, value]) => value !== undefined)
      .map(([name]) => `--${name}`);
    if (stray.length > 0) throw new InvalidParameterError(`${stray.join(', ')} needs --cluster-store`);
    return undefined;
  }
  const endpoints = parseClusterStoreUrl(clusterStore);
  if (flags.advertiseAddr === undefined) throw new InvalidParameterError('--cluster-store needs --advertise-addr IP: the address other hosts reach this one at');
  const advertiseAddr = canonicalIp(flags.advertiseAddr);
  if (advertiseAddr === undefined || isUnspecified(advertiseAddr)) {
    throw new InvalidParameterError(`invalid --advertise-addr ${JSON.stringify(flags.advertiseAddr)}: a unicast IP address of this host`);
  }
  const hostTtl = parseTtl(flags.hostTtl);
  const dataPathPort = parseDataPathPort(flags.dataPathPort);
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new InvalidParameterError('--cluster-store-cert and --cluster-store-key go together');
  }
  for (const [flag, value] of [['--cluster-store-cacert', flags.cacert], ['--cluster-store-cert', flags.cert], ['--cluster-store-key', flags.key]] as const) {
    if (value !== undefined && !value.startsWith('/')) throw new InvalidParameterError(`invalid ${flag} ${JSON.stringify(value)}: an absolute path`);
  }
  const tls = flags.cacert || flags.cert ? { caFile: flags.cacert, certFile: flags.cert, keyFile: flags.key } : undefined;
  return { endpoints, url: clusterStore, advertiseAddr, hostTtl, dataPathPort, tls };
}

/** `etcd://h1:2379,h2:2379` → ['h1:2379', 'h2:2379']; `unix:///a.sock,/b.sock` → ['unix:/a.sock', 'unix:/b.sock']. */
export function parseClusterStoreUrl(url: string): string[] {
  const bad = (why: string) => new InvalidParameterError(`invalid --cluster-store ${JSON.stringify(url)}: ${why}`);
  const match = /^(etcd|unix):\/\/(.*)$/.exec(url);
  if (!match) throw bad('expected etcd://HOST:PORT[,HOST:PORT...] or unix:///PATH[,/PATH...]');
  const items = match[2]!.split(',');
  if (items.length > 16) throw bad('at most 16 endpoints');
  const seen = new Set<string>();
  const endpoints = items.map((item) => {
    const endpoint = match[1] === 'unix' ? unixEndpoint(item, bad) : tcpEndpoint(item, bad);
    if (seen.has(endpoint)) throw bad(`${item} is listed twice`);
    seen.add(endpoint);
    return endpoint;
  });
  return endpoints;
}

function tcpEndpoint(item: string, bad: (why: string) => Error): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
  if (!m) throw bad(`${JSON.stringify(item)} is not HOST:PORT (an IPv6 address goes in brackets)`);
  const host = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw bad(`port ${m[2]} is not from 1 to 65535`);
  if (host.startsWith('[')) {
    if (isIP(host.slice(1, -1)) !== 6) throw bad(`${host} is not an IPv6 address`);
  } else if (!/^\d+(\.\d+){3}$/.test(host)) {
    if (host.length > 253 || !host.split('.').every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))) throw bad(`${host} is not a host name`);
  } else if (isIP(host) !== 4) {
    throw bad(`${host} is not an IPv4 address`);
  }
  return `${host}:${port}`;
}

function unixEndpoint(item: string, bad: (why: string) => Error): string {
  if (!item.startsWith('/') || item.length > 107 || /[\0\n]/.test(item)) throw bad(`${JSON.stringify(item)} is not an absolute socket path`);
  return `unix:${item}`;
}

function parseTtl(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_HOST_TTL;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 2 && n <= 3600)) throw new InvalidParameterError(`invalid --host-ttl ${JSON.stringify(raw)}: whole seconds from 2 to 3600`);
  return n;
}

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

/** Docker's rule for `swarm init --data-path-port`: 1024 to 49151 (not in the ephemeral range). */
function parseDataPathPort(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_DATA_PATH_PORT;
  const n = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1024 && n <= 49151)) throw new InvalidParameterError(`invalid --data-path-port ${JSON.stringify(raw)}: a UDP port from 1024 to 49151`);
  return n;
}
