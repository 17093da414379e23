/**
 * The pure firewall compiler: desired state → nft script. No I/O; golden-file tested.
 *
 * Layout (two tables, both named `cnm`; see BASE_CHAINS for the rules):
 * - `table inet cnm`: routed traffic. Chains are fixed; each network only adds set elements, so adding or
 *   removing a network never rewrites a chain and endpoints need nothing at all.
 * - `table bridge cnm`: enable_icc=false, i.e. L2 traffic between ports of one bridge, which never reaches
 *   the inet hooks unless br_netfilter's bridge-nf-call-iptables is on. This kernel has no nft_meta_bridge
 *   (`meta ibrname` → EOPNOTSUPP), so the bridge cannot be matched by name: the chain matches frames
 *   forwarded port-to-port whose IP destination lies in a no-icc subnet. Frames to the gateway are local
 *   delivery (bridge input hook), so the gateway still answers; ARP is not IP and IPv6 neighbour
 *   discovery is accepted explicitly.
 *
 * Scaling (measured, nft 1.0.6): before any element add/delete, nft's userspace dumps every plain
 * interval set of the whole ruleset into its cache, so each network add/remove costs ~1.5 µs per
 * interval element on the host (≈4 ms at 1,000 dual-stack networks), any tool's sets included.
 * Concatenated interval sets (`subnet . 0.0.0.0/0`, kernel pipapo) are not dumped, but measured slower
 * overall: removal and bulk load cost more in the kernel (1,000 networks: add 2.2 ms vs 4.0, remove 11 ms
 * vs 4.3, reconcile 97 ms vs 59), and at ≤100 networks plain sets win everywhere. The real fix is a
 * direct netlink element writer (libnftnl), not another set layout.
 */
import { InvalidParameterError } from '../errors.js';
import { portElements } from './ports.js';
import { compileSetService, serviceKey } from './services.js';
import type { FirewallNetwork, FirewallPorts, FirewallService } from './types.js';
import { parseSubnet, validateIfname, validateIpv4Address, type Subnet } from './validate.js';

export const TABLE_NAME = 'cnm';
export type TableFamily = 'inet' | 'bridge';
export const TABLE_FAMILIES: readonly TableFamily[] = ['inet', 'bridge'];

export type SetName =
  | 'bridges'
  | 'same_bridge'
  | 'internal'
  | 'masq_v4'
  | 'masq_v6'
  | 'snat_v4'
  | 'no_icc_v4'
  | 'no_icc_v6'
  | 'vips'
  | 'vips6'
  | 'vip_any'
  | 'vip_any6'
  | 'vip_ports'
  | 'vip_ports6'
  | 'ports_keep'
  | 'ports_any'
  | 'ports_addr'
  | 'ports_keep6'
  | 'ports_any6'
  | 'ports_addr6';

export interface SetSpec {
  name: SetName;
  family: TableFamily;
  keyword: 'set' | 'map';
  type: string;
  interval: boolean;
  /** Why the set exists (becomes a comment in the base script). */
  purpose: string;
}

/** Declaration order is output order. */
export const SETS: readonly SetSpec[] = [
  { name: 'bridges', family: 'inet', keyword: 'set', type: 'ifname', interval: false, purpose: 'every cnm bridge' },
  {
    name: 'same_bridge',
    family: 'inet',
    keyword: 'set',
    type: 'ifname . ifname',
    interval: false,
    purpose: 'br . br for icc networks: routed between own subnets, or bridged when br_netfilter is on',
  },
  { name: 'internal', family: 'inet', keyword: 'set', type: 'ifname', interval: false, purpose: '--internal networks' },
  {
    name: 'masq_v4',
    family: 'inet',
    keyword: 'set',
    type: 'ipv4_addr',
    interval: true,
    purpose: 'subnets to masquerade',
  },
  {
    name: 'masq_v6',
    family: 'inet',
    keyword: 'set',
    type: 'ipv6_addr',
    interval: true,
    purpose: 'subnets to masquerade',
  },
  {
    name: 'snat_v4',
    family: 'inet',
    keyword: 'map',
    type: 'ipv4_addr : ipv4_addr',
    interval: true,
    purpose: 'subnet -> com.docker.network.host_ipv4',
  },
  { name: 'vips', family: 'inet', keyword: 'set', type: 'ipv4_addr', interval: false, purpose: 'service virtual IPs' },
  {
    name: 'vip_any',
    family: 'inet',
    keyword: 'map',
    type: 'ipv4_addr : verdict',
    interval: false,
    purpose: 'VIP of a service without ports -> its balancing chain',
  },
  {
    name: 'vip_ports',
    family: 'inet',
    keyword: 'map',
    type: 'ipv4_addr . inet_proto . inet_service : verdict',
    interval: false,
    purpose: 'VIP . protocol . port of a service with ports -> its balancing chain',
  },
  { name: 'vips6', family: 'inet', keyword: 'set', type: 'ipv6_addr', interval: false, purpose: 'service virtual IPv6 addresses' },
  {
    name: 'vip_any6',
    family: 'inet',
    keyword: 'map',
    type: 'ipv6_addr : verdict',
    interval: false,
    purpose: 'IPv6 VIP of a service without ports -> its balancing chain',
  },
  {
    name: 'vip_ports6',
    family: 'inet',
    keyword: 'map',
    type: 'ipv6_addr . inet_proto . inet_service : verdict',
    interval: false,
    purpose: 'IPv6 VIP . protocol . port of a service with ports -> its balancing chain',
  },
  {
    name: 'ports_keep',
    family: 'inet',
    keyword: 'map',
    type: 'ipv4_addr . inet_proto . inet_service : ipv4_addr',
    interval: true,
    purpose: 'published port ranges (host address . protocol . ports) -> container address, ports unchanged',
  },
  {
    name: 'ports_any',
    family: 'inet',
    keyword: 'map',
    type: 'inet_proto . inet_service : ipv4_addr . inet_service',
    interval: false,
    purpose: 'single ports published on every host address -> container address . port',
  },
  {
    name: 'ports_addr',
    family: 'inet',
    keyword: 'map',
    type: 'ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service',
    interval: false,
    purpose: 'single ports published on one host address -> container address . port',
  },
  {
    name: 'ports_keep6',
    family: 'inet',
    keyword: 'map',
    type: 'ipv6_addr . inet_proto . inet_service : ipv6_addr',
    interval: true,
    purpose: 'IPv6 published port ranges (host address . protocol . ports) -> container address, ports unchanged',
  },
  {
    name: 'ports_any6',
    family: 'inet',
    keyword: 'map',
    type: 'inet_proto . inet_service : ipv6_addr . inet_service',
    interval: false,
    purpose: 'single ports published on every IPv6 host address -> container address . port',
  },
  {
    name: 'ports_addr6',
    family: 'inet',
    keyword: 'map',
    type: 'ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service',
    interval: false,
    purpose: 'single ports published on one IPv6 host address -> container address . port',
  },
  {
    name: 'no_icc_v4',
    family: 'bridge',
    keyword: 'set',
    type: 'ipv4_addr',
    interval: true,
    purpose: 'enable_icc=false subnets',
  },
  {
    name: 'no_icc_v6',
    family: 'bridge',
    keyword: 'set',
    type: 'ipv6_addr',
    interval: true,
    purpose: 'enable_icc=false subnets',
  },
];

/**
 * Published ports: traffic to a host address is translated by one lookup in each port map; a port costs
 * a map element, never a rule. Single ports live in hash maps (O(1) to add whatever is published: nft
 * caches and the kernel's pipapo clone the whole of an interval set on every change); only ranges use
 * the interval map, where 0.0.0.0/0 stands for every host address, hence the fib checks.
 */
const PUBLISHED_PORT_RULES = [
  'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_keep',
  // The fib check here too: an address the host does not have (yet) must not capture traffic to it
  // that only passes through.
  'meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_addr',
  'meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to meta l4proto . th dport map @ports_any',
  // The same for IPv6 (its own maps: nft cannot translate between families, and a key or a target
  // of one family never matches a packet of the other).
  'fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports_keep6',
  'meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports_addr6',
  'meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip6 to meta l4proto . th dport map @ports_any6',
];

/** Service VIPs: one verdict map lookup per family, in prerouting and output. */
export const VIP_RULES = [
  'ip daddr . meta l4proto . th dport vmap @vip_ports',
  'ip daddr vmap @vip_any',
  'ip6 daddr . meta l4proto . th dport vmap @vip_ports6',
  'ip6 daddr vmap @vip_any6',
];

export interface ChainSpec {
  family: TableFamily;
  name: string;
  /** Exactly as `nft list chain` prints it, so isIntact can compare the kernel's listing line by line. */
  header: string;
  rules: readonly string[];
}

/** Rules are written in nft's canonical (listing) form for the same reason. */
export const BASE_CHAINS: readonly ChainSpec[] = [
  {
    family: 'inet',
    name: 'forward',
    header: 'type filter hook forward priority filter; policy accept;',
    rules: [
      'iifname . oifname @same_bridge accept',
      'iifname @internal drop',
      'oifname @internal drop',
      // A published port reached from another network through a host address (not a VIP: those stay
      // inside their network), replies included.
      'oifname @bridges ct status dnat ct original ip daddr != @vips accept',
      'oifname @bridges ct status dnat ct original ip6 daddr != @vips6 accept',
      'iifname @bridges oifname @bridges drop',
      'oifname @bridges ct state established,related accept',
      'oifname @bridges ct status dnat accept',
      'oifname @bridges drop',
    ],
  },
  {
    family: 'inet',
    name: 'postrouting',
    header: 'type nat hook postrouting priority srcnat; policy accept;',
    rules: [
      // Balanced traffic leaves through the bridge it came from: without this the backend would answer
      // the client directly and the client would drop a reply that does not come from the VIP.
      'ct status dnat ct original ip daddr @vips masquerade',
      'ct status dnat ct original ip6 daddr @vips6 masquerade',
      // Hairpin: a sandbox reaching a published port of its own bridge through a host address would get
      // the reply straight from the container; the host's own 127.0.0.1 cannot leave through a bridge.
      'ct status dnat iifname . oifname @same_bridge masquerade',
      'oifname @bridges ip saddr 127.0.0.0/8 masquerade',
      // Traffic into a bridge (also bridged traffic seen through br_netfilter) is never translated.
      'oifname @bridges return',
      'ip saddr @masq_v4 masquerade',
      'ip6 saddr @masq_v6 masquerade',
      'snat ip to ip saddr map @snat_v4',
    ],
  },
  {
    family: 'inet',
    name: 'prerouting',
    header: 'type nat hook prerouting priority dstnat; policy accept;',
    rules: [
      // 127.0.0.0/8 from anywhere but lo never reaches a published port (moby#45610), nor the host's
      // loopback services through a bridge where route_localnet is on.
      'iifname != "lo" ip daddr 127.0.0.0/8 drop',
      ...VIP_RULES,
      ...PUBLISHED_PORT_RULES,
    ],
  },
  {
    family: 'inet',
    name: 'output',
    // nft 1.0.6 lists (and only accepts) the number for the output hook.
    header: 'type nat hook output priority -100; policy accept;',
    rules: [...VIP_RULES, ...PUBLISHED_PORT_RULES],
  },
  {
    family: 'bridge',
    name: 'forward',
    header: 'type filter hook forward priority filter; policy accept;',
    rules: [
      'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
      'ip daddr @no_icc_v4 drop',
      'ip6 daddr @no_icc_v6 drop',
    ],
  },
];

/** One element as it appears in the script, plus its address range when the set is an interval set. */
export interface Element {
  text: string;
  range?: Subnet;
}

export type NetworkElements = Partial<Record<SetName, Element[]>>;

/** Large sets are split over several commands to keep each line (and error echo) readable. */
const ELEMENTS_PER_COMMAND = 1000;

const NETWORK_ID = /^[0-9a-f]{64}$/;

/** Validate one network and compute the set elements it contributes. */
export function networkElements(net: FirewallNetwork): NetworkElements {
  if (!NETWORK_ID.test(net.id)) throw new InvalidParameterError(`invalid network id ${JSON.stringify(net.id)}`);
  const bridge = quoteIfname(validateIfname(net.bridge));
  const v4 = net.ipv4Subnets.map((s) => parseSubnet(s, 4));
  const v6 = net.ipv6Subnets.map((s) => parseSubnet(s, 6));
  rejectOverlaps([...v4, ...v6].map((range) => ({ range, owner: net.id })), `network ${net.id}`);
  const hostIpv4 = net.hostIpv4 === undefined ? undefined : validateIpv4Address(net.hostIpv4);

  const out: NetworkElements = { bridges: [{ text: bridge }] };
  if (net.icc) out.same_bridge = [{ text: `${bridge} . ${bridge}` }];
  else {
    out.no_icc_v4 = v4.map(subnetElement);
    out.no_icc_v6 = v6.map(subnetElement);
  }
  if (net.internal) {
    // Nothing leaves an internal network, so there is nothing to translate either.
    out.internal = [{ text: bridge }];
  } else {
    if (net.masquerade) {
      if (hostIpv4 === undefined) out.masq_v4 = v4.map(subnetElement);
      else out.snat_v4 = v4.map((range) => ({ text: `${range.text} : ${hostIpv4}`, range }));
    }
    if (net.masqueradeIpv6 ?? net.masquerade) out.masq_v6 = v6.map(subnetElement);
  }
  return out;
}

/** Replace both tables with their empty base (or only the given ones): one transaction. */
export function compileBase(families: readonly TableFamily[] = TABLE_FAMILIES): string {
  const lines: string[] = [];
  for (const family of TABLE_FAMILIES.filter((f) => families.includes(f))) {
    // "add" first so that "delete" never fails on a missing table: an atomic create-or-replace.
    lines.push(`add table ${family} ${TABLE_NAME}`, `delete table ${family} ${TABLE_NAME}`);
    lines.push(`table ${family} ${TABLE_NAME} {`);
    for (const set of SETS.filter((s) => s.family === family)) {
      lines.push(`\t# ${set.purpose}`, `\t${set.keyword} ${set.name} {`, `\t\ttype ${set.type}`);
      if (set.interval) lines.push('\t\tflags interval');
      lines.push('\t}');
    }
    for (const chain of BASE_CHAINS.filter((c) => c.family === family)) {
      lines.push(`\tchain ${chain.name} {`, `\t\t${chain.header}`, ...chain.rules.map((r) => `\t\t${r}`), '\t}');
    }
    lines.push('}');
  }
  return lines.join('\n') + '\n';
}

/** Replace cnm's whole ruleset with exactly these networks, services and ports: one transaction. */
export function compileFull(
  networks: readonly FirewallNetwork[],
  services: readonly FirewallService[] = [],
  ports: readonly FirewallPorts[] = [],
): string {
  const perNetwork: Array<{ net: { id: string }; elements: NetworkElements }> = networks.map((net) => ({ net, elements: networkElements(net) }));
  rejectDuplicates(ports.map((p) => p.sandboxId), 'sandbox id');
  // Port elements are not checked for overlap here: the controller never publishes a port twice, and
  // nft refuses overlapping keys itself.
  perNetwork.push(...ports.map((p) => ({ net: { id: p.sandboxId }, elements: portElements(p) as NetworkElements })));
  rejectDuplicates(networks.map((n) => n.id), 'network id');
  rejectDuplicates(networks.map((n) => n.bridge), 'bridge');
  const lines: string[] = [];
  for (const set of SETS) {
    const owned = perNetwork.flatMap(({ net, elements }) => (elements[set.name] ?? []).map((e) => ({ e, owner: net.id })));
    if (set.interval && !set.name.startsWith('ports_keep')) {
      rejectOverlaps(
        owned.map(({ e, owner }) => ({ range: e.range!, owner })),
        `set ${set.name}`,
      );
    }
    const texts = owned.map(({ e }) => e.text);
    for (let i = 0; i < texts.length; i += ELEMENTS_PER_COMMAND) {
      lines.push(elementCommand('add', set, texts.slice(i, i + ELEMENTS_PER_COMMAND)));
    }
  }
  rejectDuplicates(services.map((svc) => svc.vip), 'service VIP');
  rejectDuplicates(services.map((svc) => serviceKey(svc)), 'service');
  return compileBase() + lines.map((l) => l + '\n').join('') + services.map((svc) => compileSetService(svc)).join('');
}

/** Add one network's elements; adding what is already there succeeds. */
export function compileAddNetwork(net: FirewallNetwork): string {
  return elementCommands('add', networkElements(net), TABLE_FAMILIES);
}

/**
 * Remove one network's elements, idempotently. nft 1.0.6 has no `destroy` and `delete element` fails on
 * a missing element, so each element is added and then deleted in the same transaction: the add is a
 * no-op when the element exists, and the delete then always finds it.
 * `families` restricts the script to tables that exist (removing from a missing table is a no-op).
 */
export function compileRemoveNetwork(net: FirewallNetwork, families: readonly TableFamily[] = TABLE_FAMILIES): string {
  const elements = networkElements(net);
  return elementCommands('add', elements, families) + elementCommands('delete', elements, families);
}

function elementCommands(verb: 'add' | 'delete', elements: NetworkElements, families: readonly TableFamily[]): string {
  let script = '';
  for (const set of SETS) {
    const list = elements[set.name];
    if (!families.includes(set.family) || !list || list.length === 0) continue;
    script += elementCommand(verb, set, list.map((e) => e.text)) + '\n';
  }
  return script;
}

export function elementCommand(verb: 'add' | 'delete', set: SetSpec, texts: readonly string[], table: string = TABLE_NAME): string {
  return `${verb} element ${set.family} ${table} ${set.name} { ${texts.join(', ')} }`;
}

function subnetElement(range: Subnet): Element {
  return { text: range.text, range };
}

function quoteIfname(name: string): string {
  return `"${name}"`;
}

function rejectDuplicates(values: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new InvalidParameterError(`duplicate ${what} ${JSON.stringify(v)} in firewall networks`);
    seen.add(v);
  }
}

/** nft rejects overlapping intervals in one set; say which networks collide instead. */
function rejectOverlaps(items: readonly { range: Subnet; owner: string }[], where: string): void {
  for (const family of [4, 6] as const) {
    const sorted = items
      .filter((i) => i.range.family === family)
      .sort((a, b) => (a.range.first < b.range.first ? -1 : a.range.first > b.range.first ? 1 : 0));
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      if (cur.range.first <= prev.range.last) {
        const owners = prev.owner === cur.owner ? `network ${cur.owner}` : `networks ${prev.owner} and ${cur.owner}`;
        throw new InvalidParameterError(
          `overlapping subnets ${prev.range.text} and ${cur.range.text} (${owners}) in ${where}`,
        );
      }
    }
  }
}
