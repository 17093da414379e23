/**
 * Published ports of sandboxes (Docker's `-p`): planned and checked before a sandbox is created,
 * stored with its record, opened in the firewall once its endpoint exists, closed when it goes. The
 * ports lead to the sandbox's endpoint on the first network of its create request that can publish
 * (a driver that gives a firewall program for a non-internal network with IPv4 or IPv6), and are open
 * while that endpoint exists. IPv4 host addresses lead to the endpoint's IPv4 address, IPv6 ones to its
 * IPv6 address; a binding without a host address is published on every family the network has, on
 * the same host port (Docker's 0.0.0.0 and ::).
 */
import { canonicalIp } from '../util/ip.js';
import { InvalidParameterError } from '../errors.js';
import type { FirewallPorts } from '../firewall/types.js';
import type { HostPortFacts } from '../kernel/host-ports.js';
import { runtimeOf, type Ctx } from './context.js';
import { allocateHostPorts, type ResolvedPortRequest } from './port-allocation.js';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, PublishedPort, SandboxRecord } from './records.js';
import type { PortBindingRequest } from './types.js';

/** The kernel's default ephemeral range, for controllers wired without a host-port reader (tests). */
const DEFAULT_FACTS: HostPortFacts = { ephemeral: { start: 32768, end: 60999 }, reserved: [], listeners: [] };

/** Validate the requests and choose host ports: nothing is changed. Undefined when none are asked for. */
export function planPorts(
  ctx: Ctx,
  requests: readonly PortBindingRequest[] | undefined,
  nets: readonly NetworkRecord[],
  hostNetwork: boolean,
): { networkId: string; ports: PublishedPort[] } | undefined {
  if (!requests || requests.length === 0) return undefined;
  if (hostNetwork) throw new InvalidParameterError('ports cannot be published for a sandbox on the host network: it uses the host\'s ports directly');
  for (const r of requests) checkRequest(r);
  const net = nets.find((n) => canPublish(ctx, n));
  if (!net) {
    throw new InvalidParameterError(
      `ports cannot be published on network${nets.length === 1 ? '' : 's'} ${nets.map((n) => n.name).join(', ')}: publishing needs a non-internal bridge network`,
    );
  }
  const fw = runtimeOf(ctx, net).firewall!;
  const families = { v4: fw.ipv4Subnets.length > 0, v6: fw.ipv6Subnets.length > 0 };
  const resolved = requests.map((r) => resolveHostIps(r, net.name, families, fw.hostBindingIpv4));
  const published = (protocol: string, port: number, hostIp: string) => ctx.state.publishedPorts.overlaps(protocol, port, hostIp);
  const facts = (ctx.hostPorts ?? (() => DEFAULT_FACTS))();
  const start = ctx.portSearchStart ?? ((span: number) => Math.floor(Math.random() * span));
  return { networkId: net.id, ports: allocateHostPorts(resolved, published, facts, start) };
}

/**
 * The host addresses of one request, canonical: its own, else the network's host_binding_ipv4, else
 * 0.0.0.0 and :: for the families the network has. An address of a family the network lacks is a 400
 * (there is no proxy to carry IPv6 to an IPv4-only container or back).
 */
function resolveHostIps(
  r: PortBindingRequest,
  network: string,
  families: { v4: boolean; v6: boolean },
  hostBindingIpv4: string | undefined,
): ResolvedPortRequest {
  const { hostIp, ...rest } = r;
  let hostIps: string[];
  if (hostIp !== '') hostIps = [canonicalIp(hostIp)!];
  else if (hostBindingIpv4 !== undefined && hostBindingIpv4 !== '0.0.0.0' && families.v4) hostIps = [hostBindingIpv4];
  else hostIps = [...(families.v4 ? ['0.0.0.0'] : []), ...(families.v6 ? ['::'] : [])];
  for (const ip of hostIps) {
    const v6 = ip.includes(':');
    if (v6 ? !families.v6 : !families.v4) {
      throw new InvalidParameterError(
        `cannot publish port ${r.containerPort}/${r.protocol} on ${ip}: network ${network} has no IPv${v6 ? 6 : 4} (enable it on the network, or publish on an IPv${v6 ? 4 : 6} address)`,
      );
    }
  }
  return { ...rest, hostIps };
}

function checkRequest(r: PortBindingRequest): void {
  const name = `${r.containerPort}/${r.protocol}`;
  if (!Number.isInteger(r.containerPort) || r.containerPort < 1 || r.containerPort > 65535) {
    throw new InvalidParameterError(`invalid containerPort: ${r.containerPort}`);
  }
  const canonical = r.hostIp === '' ? '' : canonicalIp(r.hostIp);
  if (canonical === undefined || canonical.startsWith('::ffff:')) {
    throw new InvalidParameterError(`invalid host IP address ${JSON.stringify(r.hostIp)} for port ${name}`);
  }
  // The reply to a host client of [::1]:PORT comes back from the bridge un-translated to ::1, and the
  // kernel never routes ::1 in from an interface other than lo (no route_localnet for IPv6): without a
  // proxy process such a port could be published but never reached (netavark#790).
  if (canonical === '::1') {
    throw new InvalidParameterError(
      `cannot publish port ${name} on ::1: the kernel does not route IPv6 loopback traffic to a container without a proxy; publish on 127.0.0.1 for a host-only port`,
    );
  }
  const okPort = (p: number) => Number.isInteger(p) && p >= 0 && p <= 65535;
  if (!okPort(r.hostPortStart) || !okPort(r.hostPortEnd) || r.hostPortEnd < r.hostPortStart || (r.hostPortStart === 0 && r.hostPortEnd !== 0)) {
    throw new InvalidParameterError(`invalid hostPort for port ${name}: ${r.hostPortStart}-${r.hostPortEnd}`);
  }
}

function canPublish(ctx: Ctx, net: NetworkRecord): boolean {
  const rt = runtimeOf(ctx, net);
  const fw = rt.firewall;
  return rt.error === undefined && fw !== undefined && !fw.internal && fw.ipv4Subnets.length + fw.ipv6Subnets.length > 0;
}

/** What the firewall holds for a sandbox's ports; undefined when it has none open (no endpoint there). */
export function firewallPortsOf(ctx: Ctx, sb: SandboxRecord, endpoint?: EndpointRecord): FirewallPorts | undefined {
  if (!sb.ports || sb.ports.length === 0 || sb.portsNetworkId === undefined) return undefined;
  // An out-of-service network holds no firewall elements; its ports come back with it.
  if (ctx.networks.get(sb.portsNetworkId)?.error !== undefined) return undefined;
  return leadingTo(sb.id, sb.ports, endpoint ?? ctx.state.endpointOf(sb.portsNetworkId, sb.id));
}

/** What the firewall holds for an attachment's ports; undefined when it has none (or its network is out of service). */
export function attachmentFirewallPorts(ctx: Ctx, att: AttachmentRecord): FirewallPorts | undefined {
  if (!att.ports || att.ports.length === 0 || ctx.networks.get(att.networkId)?.error !== undefined) return undefined;
  return leadingTo(att.id, att.ports, att);
}

/** Published ports as the firewall holds them: each to the owner's address of its family (none: left out). */
function leadingTo(id: string, ports: readonly PublishedPort[], addresses: { ipv4Address?: string; ipv6Address?: string } | undefined): FirewallPorts | undefined {
  const v4 = addresses?.ipv4Address?.split('/')[0];
  const v6 = addresses?.ipv6Address?.split('/')[0];
  const open = ports.flatMap((p) => {
    const address = p.hostIp.includes(':') ? v6 : v4;
    return address ? [{ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort, address, containerPort: p.containerPort }] : [];
  });
  return open.length > 0 ? { sandboxId: id, ports: open } : undefined;
}

/** Every sandbox's and attachment's open ports (start-up, lost-rules recovery). */
export function firewallPorts(ctx: Ctx): FirewallPorts[] {
  const of = (fp: FirewallPorts | undefined) => (fp ? [fp] : []);
  return [
    ...[...ctx.state.sandboxes.values()].flatMap((sb) => of(firewallPortsOf(ctx, sb))),
    ...[...ctx.state.attachments.values()].flatMap((att) => of(attachmentFirewallPorts(ctx, att))),
  ];
}

/**
 * The host reaches a port published on a loopback (or every) address through 127.0.0.1; after DNAT that
 * connection leaves through the bridge with source 127.0.0.1, which the kernel routes only with
 * route_localnet on that bridge (the masquerade in postrouting then gives it the bridge's address).
 * Only bridges with such ports get it; prerouting drops 127.0.0.0/8 arriving on any interface but lo.
 */
export async function enableLocalnetFor(ctx: Ctx, ports: readonly PublishedPort[] | undefined, networkId: string | undefined): Promise<void> {
  if (!ports?.some((p) => p.hostIp === '0.0.0.0' || p.hostIp.startsWith('127.'))) return;
  const bridge = networkId === undefined ? undefined : ctx.networks.get(networkId)?.firewall?.bridge;
  if (bridge) await ctx.kernel.sysctlSet(null, `net.ipv4.conf.${bridge}.route_localnet`, '1');
}

/** Open a sandbox's ports (its endpoint on the ports network exists). */
export async function openPorts(ctx: Ctx, sb: SandboxRecord): Promise<void> {
  const fp = firewallPortsOf(ctx, sb);
  if (!fp) return;
  await enableLocalnetFor(ctx, sb.ports, sb.portsNetworkId);
  await ctx.firewall.addPorts(fp);
}

/** Close a sandbox's ports (before its endpoint on the ports network goes). Idempotent. */
export async function closePorts(ctx: Ctx, sb: SandboxRecord, endpoint?: EndpointRecord): Promise<void> {
  const fp = firewallPortsOf(ctx, sb, endpoint);
  if (fp) await ctx.firewall.removePorts(fp);
}
