/**
 * Published ports as nftables map elements (no rule per port; see PUBLISHED_PORT_RULES in compile.ts).
 * A run of two or more consecutive ports published on the same container ports (8000-8009:8000-8009) is
 * one interval element of `ports_keep` (host address . protocol . ports, 0.0.0.0 as 0.0.0.0/0), which
 * translates the address only. Every other port is one element of a hash map: `ports_any`
 * (protocol . port) for 0.0.0.0, `ports_addr` (host address . protocol . port) for one address, each
 * to container address . port. IPv6 ports (host address `::` or an IPv6 address, to the container's
 * IPv6 address) go to the same three maps suffixed `6`. Pure.
 */
import { InvalidParameterError } from '../errors.js';
import { elementCommand, SETS, type Element, type SetName } from './compile.js';
import type { FirewallPort, FirewallPorts } from './types.js';
import { validateAddress } from './validate.js';

const SANDBOX_ID = /^[0-9a-f]{64}$/;
export type PortSetName = Extract<SetName, 'ports_keep' | 'ports_any' | 'ports_addr' | 'ports_keep6' | 'ports_any6' | 'ports_addr6'>;
const PORT_SETS: readonly PortSetName[] = ['ports_keep', 'ports_any', 'ports_addr', 'ports_keep6', 'ports_any6', 'ports_addr6'];

interface CheckedPort extends FirewallPort {
  family: 4 | 6;
}

/** Validate one sandbox's ports and compute its map elements. */
export function portElements(p: FirewallPorts): Record<PortSetName, Element[]> {
  if (!SANDBOX_ID.test(p.sandboxId)) throw new InvalidParameterError(`invalid sandbox id ${JSON.stringify(p.sandboxId)}`);
  const ports = p.ports.map(checkPort);
  const sorted = [...ports].sort((a, b) => compareKeys(a, b) || a.hostPort - b.hostPort);
  const out: Record<PortSetName, Element[]> = { ports_keep: [], ports_any: [], ports_addr: [], ports_keep6: [], ports_any6: [], ports_addr6: [] };
  const suffix = (x: CheckedPort) => (x.family === 6 ? '6' : '') as '' | '6';
  const single = (x: CheckedPort) => {
    const target = `${x.address} . ${x.containerPort}`;
    if (isWildcard(x.hostIp)) out[`ports_any${suffix(x)}`].push({ text: `${x.protocol} . ${x.hostPort} : ${target}` });
    else out[`ports_addr${suffix(x)}`].push({ text: `${x.hostIp} . ${x.protocol} . ${x.hostPort} : ${target}` });
  };
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i]!;
    let j = i + 1;
    const kept = (x: FirewallPort) => x.hostPort === x.containerPort;
    while (kept(first) && j < sorted.length && compareKeys(sorted[j]!, first) === 0 && kept(sorted[j]!) && sorted[j]!.hostPort === sorted[j - 1]!.hostPort + 1) j++;
    if (j - i === 1) single(first);
    else out[`ports_keep${suffix(first)}`].push({ text: `${hostKey(first.hostIp)} . ${first.protocol} . ${first.hostPort}-${sorted[j - 1]!.hostPort} : ${first.address}` });
    i = j;
  }
  return out;
}

/** Publish: element adds only. */
export function compileAddPorts(p: FirewallPorts): string {
  return commands('add', portElements(p));
}

/**
 * Close, idempotently: nft 1.0.6 has no `destroy`, so each element is added then deleted in the same
 * transaction (the add is a no-op when it is there).
 */
export function compileRemovePorts(p: FirewallPorts): string {
  const elements = portElements(p);
  return commands('add', elements) + commands('delete', elements);
}

function commands(verb: 'add' | 'delete', elements: Record<PortSetName, Element[]>): string {
  let script = '';
  for (const name of PORT_SETS) {
    if (elements[name].length === 0) continue;
    script += elementCommand(verb, SETS.find((s) => s.name === name)!, elements[name].map((e) => e.text)) + '\n';
  }
  return script;
}

function isWildcard(hostIp: string): boolean {
  return hostIp === '0.0.0.0' || hostIp === '::';
}

function hostKey(hostIp: string): string {
  return isWildcard(hostIp) ? `${hostIp}/0` : hostIp;
}

function compareKeys(a: FirewallPort, b: FirewallPort): number {
  const ka = `${a.hostIp} ${a.protocol} ${a.address}`;
  const kb = `${b.hostIp} ${b.protocol} ${b.address}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function checkPort(x: FirewallPort): CheckedPort {
  if (x.protocol !== 'tcp' && x.protocol !== 'udp' && x.protocol !== 'sctp') {
    throw new InvalidParameterError(`invalid protocol ${JSON.stringify(x.protocol)}`);
  }
  for (const port of [x.hostPort, x.containerPort]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidParameterError(`invalid port ${port}`);
  }
  const host = validateAddress(x.hostIp);
  const address = validateAddress(x.address);
  if (host.family !== address.family) {
    throw new InvalidParameterError(`port ${x.hostPort}/${x.protocol}: host address ${host.text} and container address ${address.text} are of different families`);
  }
  return { ...x, hostIp: host.text, address: address.text, family: host.family };
}
