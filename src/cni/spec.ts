/**
 * The CNI 1.1 contract as pure functions: the environment and network configuration a runtime hands the
 * plugin, checked; the result and error documents it prints. No I/O here (plugin.ts talks to the daemon).
 */
import { createHash } from 'node:crypto';
import { isAbsolute } from 'node:path';
import type { CnmSandboxNetwork } from '../api/render-sandbox.js';

/** Result versions cnm writes; a configuration asking for another one is refused with code 1. */
export const SUPPORTED_VERSIONS = ['1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** Well-known error codes (SPEC.md "Well-known Error Codes"); 100+ are cnm's own. */
export const CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  ioFailure: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  /** cnm: the daemon refused the request (its message is the error's msg). */
  daemonRefused: 100,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
  ) {
    super(message);
  }
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'VERSION' | 'GC';
const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'VERSION', 'GC'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Absent for DEL when the namespace is already gone, and for STATUS / GC / VERSION. */
  netns?: string;
  ifname: string;
}

// SPEC.md, ADD parameters: the container ID and network names; the interface name rules.
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IFNAME_RE = /^[^/:\s]{1,15}$/;

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(command)) throw new CniError(CODE.invalidEnv, `unknown CNI_COMMAND ${JSON.stringify(command)}`, `one of ${COMMANDS.join(', ')}`);
  const out: CniEnv = { command: command as CniCommand, containerId: '', ifname: '' };
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    const id = env.CNI_CONTAINERID ?? '';
    if (!ID_RE.test(id)) throw new CniError(CODE.invalidEnv, `invalid CNI_CONTAINERID ${JSON.stringify(id)}`);
    const ifname = env.CNI_IFNAME ?? '';
    if (!IFNAME_RE.test(ifname) || ifname === '.' || ifname === '..') throw new CniError(CODE.invalidEnv, `invalid CNI_IFNAME ${JSON.stringify(ifname)}`);
    const netns = env.CNI_NETNS ?? '';
    if (netns === '' && command !== 'DEL') throw new CniError(CODE.invalidEnv, 'CNI_NETNS is required');
    if (netns !== '' && !isAbsolute(netns)) throw new CniError(CODE.invalidEnv, `invalid CNI_NETNS ${JSON.stringify(netns)}: must be an absolute path`);
    Object.assign(out, { containerId: id, ifname, ...(netns === '' ? {} : { netns }) });
  }
  return out;
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: string;
  /** The CNI network name (a label of every sandbox the plugin makes: GC is per name). */
  name: string;
  type: string;
  /** The cnm network: name or ID. */
  network: string;
  /** The daemon's socket; default /run/cnm/cnm.sock. */
  socket?: string;
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  prevResult?: CniResult;
  validAttachments?: Attachment[];
}

export function parseConf(stdin: string, command: CniCommand): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CODE.decode, 'network configuration is not JSON', (err as Error).message);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CniError(CODE.decode, 'network configuration is not a JSON object');
  const c = raw as Record<string, unknown>;
  const str = (key: string, required: boolean): string | undefined => {
    const v = c[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') throw new CniError(CODE.invalidConfig, `network configuration: "${key}" must be a non-empty string`);
    return v;
  };
  const cniVersion = str('cniVersion', true)!;
  if (command !== 'VERSION' && !(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new CniError(CODE.incompatibleVersion, `incompatible CNI version ${cniVersion}`, `cnm supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const conf: NetConf = { cniVersion, name: '', type: '', network: '' };
  if (command === 'VERSION') return conf;
  conf.name = str('name', true)!;
  if (!ID_RE.test(conf.name)) throw new CniError(CODE.invalidConfig, `network configuration: invalid name ${JSON.stringify(conf.name)}`);
  conf.type = str('type', true)!;
  conf.network = str('network', true)!;
  const socket = str('socket', false);
  if (socket !== undefined) {
    if (!isAbsolute(socket)) throw new CniError(CODE.invalidConfig, `network configuration: "socket" must be an absolute path, not ${JSON.stringify(socket)}`);
    conf.socket = socket;
  }
  if (c.dns !== undefined) conf.dns = parseDns(c.dns);
  if (c.prevResult !== undefined) {
    if (!c.prevResult || typeof c.prevResult !== 'object') throw new CniError(CODE.invalidConfig, 'network configuration: "prevResult" must be an object');
    conf.prevResult = c.prevResult as CniResult;
  }
  if (command === 'GC') conf.validAttachments = parseAttachments(c['cni.dev/valid-attachments'] ?? c['cni.dev/attachments'] ?? []);
  return conf;
}

function parseDns(v: unknown): NonNullable<NetConf['dns']> {
  const bad = () => new CniError(CODE.invalidConfig, 'network configuration: "dns" must be {nameservers, domain, search, options}');
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad();
  const d = v as Record<string, unknown>;
  const list = (key: string) => {
    const x = d[key];
    if (x === undefined) return undefined;
    if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) throw bad();
    return x as string[];
  };
  if (d.domain !== undefined && typeof d.domain !== 'string') throw bad();
  const out: NonNullable<NetConf['dns']> = {};
  const nameservers = list('nameservers');
  const search = list('search');
  const options = list('options');
  if (nameservers) out.nameservers = nameservers;
  if (typeof d.domain === 'string') out.domain = d.domain;
  if (search) out.search = search;
  if (options) out.options = options;
  return out;
}

function parseAttachments(v: unknown): Attachment[] {
  const bad = () => new CniError(CODE.invalidConfig, 'network configuration: "cni.dev/valid-attachments" must be a list of {containerID, ifname}');
  if (!Array.isArray(v)) throw bad();
  return v.map((a) => {
    if (!a || typeof a !== 'object' || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') throw bad();
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

/** Labels of a sandbox made by the plugin: the attachment's key (network name, container ID, ifname). */
export const LABEL = { network: 'cni.network', containerId: 'cni.containerid', ifname: 'cni.ifname' } as const;

/**
 * The cnm sandbox name of one attachment. Readable when the container ID and ifname make a valid
 * sandbox name; otherwise a digest of them. (The CNI network name is a label: one namespace cannot
 * hold two interfaces of one name, so container ID + ifname already single out the attachment.)
 */
export function sandboxName(containerId: string, ifname: string): string {
  const plain = `cni-${containerId}-${ifname}`;
  if (ID_RE.test(plain) && plain.length <= 200) return plain;
  return `cni-${createHash('sha256').update(`${containerId}\0${ifname}`).digest('hex').slice(0, 32)}`;
}

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  mtu?: number;
}

export interface CniResult {
  cniVersion?: string;
  interfaces?: CniInterface[];
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: NetConf['dns'];
}

/** What the daemon says about the sandbox's endpoint (the cnm sandbox view's network entry). */
export type EndpointView = Pick<
  CnmSandboxNetwork,
  | 'MacAddress' | 'IPAddress' | 'IPPrefixLen' | 'Gateway' | 'IPv6Address' | 'GlobalIPv6PrefixLen' | 'IPv6Gateway' | 'InterfaceName'
  | 'HostInterfaceName' | 'HostMacAddress' | 'HostBridgeName'
>;

/**
 * The ADD result: cnm's interfaces appended to the previous plugin's result (when cnm is not first in the
 * chain) — in the bridge plugin's order: the bridge, then the host-side end (neither has a `sandbox`:
 * what plugins chained after cnm act on — bandwidth shapes the host end, firewall's `same-bridge` ingress
 * policy takes the first interface for the bridge), when the endpoint's driver has them, then the
 * container's interface — the container
 * interface's addresses (`ips[].interface` is its index), default routes through its gateways and the
 * configuration's DNS. 1.1.0 results carry the interfaces' MTU when the network sets one.
 */
export function buildResult(version: string, ep: EndpointView, netns: string, dns: NetConf['dns'], prev: CniResult | undefined, mtu?: number): CniResult {
  const interfaces = [...(prev?.interfaces ?? [])];
  const withMtu = version === '1.1.0' && mtu ? { mtu } : {};
  if (ep.HostInterfaceName) {
    // An older daemon's view has no HostBridgeName.
    if (ep.HostBridgeName) interfaces.push({ name: ep.HostBridgeName, ...withMtu });
    interfaces.push({ name: ep.HostInterfaceName, ...(ep.HostMacAddress ? { mac: ep.HostMacAddress } : {}), ...withMtu });
  }
  const index = interfaces.length;
  interfaces.push({ name: ep.InterfaceName, mac: ep.MacAddress, sandbox: netns, ...withMtu });
  const ips = [...(prev?.ips ?? [])];
  const routes = [...(prev?.routes ?? [])];
  if (ep.IPAddress) {
    ips.push({ address: `${ep.IPAddress}/${ep.IPPrefixLen}`, ...(ep.Gateway ? { gateway: ep.Gateway } : {}), interface: index });
    if (ep.Gateway) routes.push({ dst: '0.0.0.0/0', gw: ep.Gateway });
  }
  if (ep.IPv6Address) {
    ips.push({ address: `${ep.IPv6Address}/${ep.GlobalIPv6PrefixLen}`, ...(ep.IPv6Gateway ? { gateway: ep.IPv6Gateway } : {}), interface: index });
    if (ep.IPv6Gateway) routes.push({ dst: '::/0', gw: ep.IPv6Gateway });
  }
  const out: CniResult = { cniVersion: version, interfaces, ips };
  if (routes.length > 0) out.routes = routes;
  const mergedDns = dns ?? prev?.dns;
  if (mergedDns && Object.keys(mergedDns).length > 0) out.dns = mergedDns;
  return out;
}

/**
 * CHECK against the previous result: it must list cnm's interface in this namespace with the endpoint's
 * MAC and every address the endpoint has, and the endpoint's host-side interface (no sandbox) with its
 * MAC when it has one. Returns what does not match.
 */
export function prevResultProblems(prev: CniResult, ep: EndpointView, netns: string): string[] {
  const problems: string[] = [];
  const interfaces = prev.interfaces ?? [];
  const index = interfaces.findIndex((i) => i.name === ep.InterfaceName && i.sandbox === netns);
  if (index < 0) return [`prevResult lists no interface ${ep.InterfaceName} in ${netns}`];
  const iface = interfaces[index]!;
  const macDiffers = (listed: string | undefined, actual: string) => listed !== undefined && listed.toLowerCase() !== actual.toLowerCase();
  if (macDiffers(iface.mac, ep.MacAddress)) {
    problems.push(`interface ${ep.InterfaceName} has MAC ${ep.MacAddress}, prevResult says ${iface.mac}`);
  }
  if (ep.HostInterfaceName) {
    const host = interfaces.find((i) => i.name === ep.HostInterfaceName && !i.sandbox);
    if (!host) problems.push(`prevResult lists no host interface ${ep.HostInterfaceName}`);
    else if (macDiffers(host.mac, ep.HostMacAddress)) {
      problems.push(`host interface ${ep.HostInterfaceName} has MAC ${ep.HostMacAddress}, prevResult says ${host.mac}`);
    }
  }
  const listed = new Set((prev.ips ?? []).filter((ip) => ip.interface === index).map((ip) => ip.address));
  const have = [ep.IPAddress ? `${ep.IPAddress}/${ep.IPPrefixLen}` : '', ep.IPv6Address ? `${ep.IPv6Address}/${ep.GlobalIPv6PrefixLen}` : ''].filter(Boolean);
  for (const a of listed) if (!have.includes(a)) problems.push(`address ${a} of prevResult is not the endpoint's (${have.join(', ') || 'none'})`);
  for (const a of have) if (!listed.has(a)) problems.push(`the endpoint's address ${a} is missing from prevResult`);
  return problems;
}

export function errorDocument(version: string, err: CniError): string {
  return JSON.stringify({ cniVersion: version, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) });
}
