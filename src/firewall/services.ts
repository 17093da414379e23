/**
 * Service load balancing in nftables (this kernel has no IPVS). Per service: one map of 256 slots →
 * backend address and one chain `dnat ip to numgen random mod 256 map @svc_…`; the VIP (with its
 * protocol and port, or alone) points at that chain from the shared vip_ports / vip_any verdict maps.
 * Changing the backends rewrites only the service's own slot map — a constant 256 elements, whatever the
 * number of services or endpoints — and conntrack keeps every established connection on its backend.
 *
 * An IPv6 VIP is a service of its own in nftables (the controller gives a dual-stack service one per
 * family): its objects are named `svc6_…`, its map translates `ip6 daddr`, its VIP lives in vips6 /
 * vip_any6 / vip_ports6, and its backends are the IPv6 addresses.
 *
 * Slots are given out by rendezvous hashing: slot s goes to the backend with the highest hash(s, backend),
 * so adding or removing one backend moves only the slots it gains or loses; new connections of the other
 * backends' slots keep going where they went.
 */
import { InvalidParameterError } from '../errors.js';
import { elementCommand, SETS, TABLE_NAME } from './compile.js';
import type { FirewallService } from './types.js';
import { validateAddress } from './validate.js';

export const SERVICE_SLOTS = 256;
const SERVICE_ID = /^[0-9a-f]{64}$/;

/** Name of a service's chain and slot map (an nft identifier; the ID prefix keeps it unique enough). */
export function serviceObjectName(id: string, family: 4 | 6 = 4): string {
  return `svc${family === 6 ? '6' : ''}_${id.slice(0, 16)}`;
}

/** The nft words of a family: address selector, map data type and the VIP sets' suffix. */
function familyWords(family: 4 | 6): { ip: string; suffix: string } {
  return family === 6 ? { ip: 'ip6', suffix: '6' } : { ip: 'ip', suffix: '' };
}

/** What identifies one family's half of a service in the firewall (its object name). */
export function serviceKey(svc: FirewallService): string {
  return checkService(svc).name;
}

/**
 * Create or update a service: idempotent, one transaction. `tableName`: the inet table holding the VIP
 * maps (cnm's own by default; a sandbox's balancing table, see sandbox-lb.ts).
 */
export function compileSetService(svc: FirewallService, tableName: string = TABLE_NAME): string {
  const { name, family, vip, backends } = checkService(svc);
  const { ip } = familyWords(family);
  const table = `inet ${tableName}`;
  const lines = [
    `add map ${table} ${name} { typeof numgen random mod ${SERVICE_SLOTS} : ${ip} daddr; }`,
    `add chain ${table} ${name}`,
    `flush chain ${table} ${name}`,
    `add rule ${table} ${name} dnat ${ip} to numgen random mod ${SERVICE_SLOTS} map @${name}`,
    `flush map ${table} ${name}`,
  ];
  const slots = assignSlots(backends);
  if (slots.length > 0) lines.push(`add element ${table} ${name} { ${slots.map((b, s) => `${s} : ${b}`).join(', ')} }`);
  lines.push(...vipElements({ ...svc, vip }, name, family).map(([set, texts]) => elementCommand('add', set, texts, tableName)));
  return lines.join('\n') + '\n';
}

/** Remove a service idempotently: everything is added first so each delete finds its object. */
export function compileRemoveService(svc: FirewallService, tableName: string = TABLE_NAME): string {
  const { name, family, vip } = checkService(svc);
  const table = `inet ${tableName}`;
  const elements = vipElements({ ...svc, vip }, name, family);
  return [
    `add map ${table} ${name} { typeof numgen random mod ${SERVICE_SLOTS} : ${familyWords(family).ip} daddr; }`,
    `add chain ${table} ${name}`,
    ...elements.map(([set, texts]) => elementCommand('add', set, texts, tableName)),
    ...elements.map(([set, texts]) => elementCommand('delete', set, texts, tableName)),
    `flush chain ${table} ${name}`,
    `delete chain ${table} ${name}`,
    `delete map ${table} ${name}`,
  ].join('\n') + '\n';
}

/** Slot → backend address, SERVICE_SLOTS long (empty without backends). */
export function assignSlots(backends: readonly string[]): string[] {
  const unique = [...new Set(backends)].sort();
  if (unique.length === 0) return [];
  const slots: string[] = [];
  for (let s = 0; s < SERVICE_SLOTS; s++) {
    let best = unique[0]!;
    let bestScore = -1;
    for (const b of unique) {
      const score = mix32(fnv1a(`${s}/${b}`));
      if (score > bestScore) {
        best = b;
        bestScore = score;
      }
    }
    slots.push(best);
  }
  return slots;
}

/**
 * What a service looks like in `nft list table inet cnm`: its slot map (declaration and elements), its
 * chain's rule, and its entries in the shared VIP sets. Used to check the kernel against the desired state.
 */
export interface ServiceListing {
  name: string;
  mapDeclaration: string;
  slots: string[];
  rule: string;
  sets: Array<{ set: string; elements: string[] }>;
}

export function serviceListing(svc: FirewallService): ServiceListing {
  const { name, family, vip, backends } = checkService(svc);
  const { ip } = familyWords(family);
  return {
    name,
    mapDeclaration: `typeof numgen random mod ${SERVICE_SLOTS} : ${ip} daddr`,
    slots: assignSlots(backends).map((b, s) => `${s} : ${b}`),
    rule: `dnat ${ip} to numgen random mod ${SERVICE_SLOTS} map @${name}`,
    sets: vipElements({ ...svc, vip }, name, family).map(([set, elements]) => ({ set: set.name, elements })),
  };
}

function vipElements(svc: FirewallService, name: string, family: 4 | 6): Array<[(typeof SETS)[number], string[]]> {
  const { suffix } = familyWords(family);
  const set = (n: string) => SETS.find((s) => s.name === `${n}${suffix}`)!;
  const out: Array<[(typeof SETS)[number], string[]]> = [[set('vips'), [svc.vip]]];
  if (svc.ports.length === 0) out.push([set('vip_any'), [`${svc.vip} : goto ${name}`]]);
  else out.push([set('vip_ports'), svc.ports.map((p) => `${svc.vip} . ${p.protocol} . ${p.port} : goto ${name}`)]);
  return out;
}

/** Validates a service; its VIP's family decides its backends' family and its objects' names. */
function checkService(svc: FirewallService): { name: string; family: 4 | 6; vip: string; backends: string[] } {
  if (!SERVICE_ID.test(svc.id)) throw new InvalidParameterError(`invalid service id ${JSON.stringify(svc.id)}`);
  const vip = validateAddress(svc.vip);
  const backends = svc.backends.map((b) => {
    const checked = validateAddress(b);
    if (checked.family !== vip.family) throw new InvalidParameterError(`backend ${checked.text} of service VIP ${vip.text}: another address family`);
    return checked.text;
  });
  for (const p of svc.ports) {
    if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new InvalidParameterError(`invalid protocol ${p.protocol}`);
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new InvalidParameterError(`invalid port ${p.port}`);
  }
  return { name: serviceObjectName(svc.id, vip.family), family: vip.family, vip: vip.text, backends };
}

/** murmur3's finaliser: FNV-1a alone scores near-identical keys alike, which skews rendezvous hashing. */
function mix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit FNV-1a: cheap, stable across runs and machines (slot ownership must not change on restart). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
