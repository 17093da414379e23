/**
 * Published ports as nftables map elements (no rule per port; see PUBLISHED_PORT_RULES in compile.ts).
 * Key: host address . protocol . host port, where 0.0.0.0 (every host address) is the interval
 * 0.0.0.0/0. A run of consecutive ports published on the same container ports (8000-8009:8000-8009,
 * the usual range) is one interval element of `ports_keep`, which translates the address only; ports
 * moved to another container port are one `ports_shift` element each (address . port). Pure.
 */
import { InvalidParameterError } from '../errors.js';
import { elementCommand, SETS, type Element, type SetName } from './compile.js';
import type { FirewallPort, FirewallPorts } from './types.js';
import { validateIpv4Address } from './validate.js';

const SANDBOX_ID = /^[0-9a-f]{64}$/;
export type PortSetName = Extract<SetName, 'ports_keep' | 'ports_shift'>;

/** Validate one sandbox's ports and compute its map elements. */
export function portElements(p: FirewallPorts): Record<PortSetName, Element[]> {
  if (!SANDBOX_ID.test(p.sandboxId)) throw new InvalidParameterError(`invalid sandbox id ${JSON.stringify(p.sandboxId)}`);
  const ports = p.ports.map(checkPort);
  const keep = ports
    .filter((x) => x.hostPort === x.containerPort)
    .sort((a, b) => compareKeys(a, b) || a.hostPort - b.hostPort);
  const out: Record<PortSetName, Element[]> = { ports_keep: [], ports_shift: [] };
  for (let i = 0; i < keep.length; ) {
    const first = keep[i]!;
    let j = i + 1;
    while (j < keep.length && compareKeys(keep[j]!, first) === 0 && keep[j]!.hostPort === keep[j - 1]!.hostPort + 1) j++;
    const last = keep[j - 1]!;
    const range = first.hostPort === last.hostPort ? `${first.hostPort}` : `${first.hostPort}-${last.hostPort}`;
    out.ports_keep.push({ text: `${hostKey(first.hostIp)} . ${first.protocol} . ${range} : ${first.address}` });
    i = j;
  }
  for (const x of ports.filter((y) => y.hostPort !== y.containerPort)) {
    out.ports_shift.push({ text: `${hostKey(x.hostIp)} . ${x.protocol} . ${x.hostPort} : ${x.address} . ${x.containerPort}` });
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
  for (const name of ['ports_keep', 'ports_shift'] as const) {
    if (elements[name].length === 0) continue;
    script += elementCommand(verb, SETS.find((s) => s.name === name)!, elements[name].map((e) => e.text)) + '\n';
  }
  return script;
}

function hostKey(hostIp: string): string {
  return hostIp === '0.0.0.0' ? '0.0.0.0/0' : hostIp;
}

function compareKeys(a: FirewallPort, b: FirewallPort): number {
  const ka = `${a.hostIp} ${a.protocol} ${a.address}`;
  const kb = `${b.hostIp} ${b.protocol} ${b.address}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function checkPort(x: FirewallPort): FirewallPort {
  if (x.protocol !== 'tcp' && x.protocol !== 'udp' && x.protocol !== 'sctp') {
    throw new InvalidParameterError(`invalid protocol ${JSON.stringify(x.protocol)}`);
  }
  for (const port of [x.hostPort, x.containerPort]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidParameterError(`invalid port ${port}`);
  }
  return { ...x, hostIp: validateIpv4Address(x.hostIp), address: validateIpv4Address(x.address) };
}
