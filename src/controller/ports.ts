/**
 * Published ports of sandboxes (Docker's `-p`): planned and checked before a sandbox is created,
 * stored with its record, opened in the firewall once its endpoint exists, closed when it goes. The
 * ports lead to the sandbox's endpoint on the first network of its create request that can publish
 * (a driver that gives a firewall program for a non-internal network with IPv4), and are open while
 * that endpoint exists.
 */
import { isIP, isIPv4 } from 'node:net';
import { InvalidParameterError } from '../errors.js';
import type { FirewallPorts } from '../firewall/types.js';
import type { HostPortFacts } from '../kernel/host-ports.js';
import { runtimeOf, type Ctx } from './context.js';
import { allocateHostPorts } from './port-allocation.js';
import type { EndpointRecord, NetworkRecord, PublishedPort, SandboxRecord } from './records.js';
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
      `ports cannot be published on network${nets.length === 1 ? '' : 's'} ${nets.map((n) => n.name).join(', ')}: publishing needs a non-internal bridge network with IPv4`,
    );
  }
  const defaultIp = runtimeOf(ctx, net).firewall?.hostBindingIpv4 ?? '0.0.0.0';
  const resolved = requests.map((r) => ({ ...r, hostIp: r.hostIp === '' ? defaultIp : r.hostIp }));
  const published = (protocol: string, port: number, hostIp: string) => ctx.state.publishedPorts.overlaps(protocol, port, hostIp);
  const facts = (ctx.hostPorts ?? (() => DEFAULT_FACTS))();
  const start = ctx.portSearchStart ?? ((span: number) => Math.floor(Math.random() * span));
  return { networkId: net.id, ports: allocateHostPorts(resolved, published, facts, start) };
}

function checkRequest(r: PortBindingRequest): void {
  const name = `${r.containerPort}/${r.protocol}`;
  if (!Number.isInteger(r.containerPort) || r.containerPort < 1 || r.containerPort > 65535) {
    throw new InvalidParameterError(`invalid containerPort: ${r.containerPort}`);
  }
  if (r.hostIp !== '' && isIP(r.hostIp) === 0) throw new InvalidParameterError(`invalid host IP address ${JSON.stringify(r.hostIp)} for port ${name}`);
  if (r.hostIp !== '' && !isIPv4(r.hostIp)) {
    throw new InvalidParameterError(`cannot publish port ${name} on ${r.hostIp}: cnm publishes ports on IPv4 addresses only so far`);
  }
  const okPort = (p: number) => Number.isInteger(p) && p >= 0 && p <= 65535;
  if (!okPort(r.hostPortStart) || !okPort(r.hostPortEnd) || r.hostPortEnd < r.hostPortStart || (r.hostPortStart === 0 && r.hostPortEnd !== 0)) {
    throw new InvalidParameterError(`invalid hostPort for port ${name}: ${r.hostPortStart}-${r.hostPortEnd}`);
  }
}

function canPublish(ctx: Ctx, net: NetworkRecord): boolean {
  const rt = runtimeOf(ctx, net);
  return rt.error === undefined && rt.firewall !== undefined && !rt.firewall.internal && rt.firewall.ipv4Subnets.length > 0;
}

/** What the firewall holds for a sandbox's ports; undefined when it has none open (no endpoint there). */
export function firewallPortsOf(ctx: Ctx, sb: SandboxRecord, endpoint?: EndpointRecord): FirewallPorts | undefined {
  if (!sb.ports || sb.ports.length === 0 || sb.portsNetworkId === undefined) return undefined;
  // An out-of-service network holds no firewall elements; its ports come back with it.
  if (ctx.networks.get(sb.portsNetworkId)?.error !== undefined) return undefined;
  const ep = endpoint ?? ctx.state.endpointOf(sb.portsNetworkId, sb.id);
  const address = ep?.ipv4Address?.split('/')[0];
  if (!address) return undefined;
  return {
    sandboxId: sb.id,
    ports: sb.ports.map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort, address, containerPort: p.containerPort })),
  };
}

/** Every sandbox's open ports (start-up, lost-rules recovery). */
export function firewallPorts(ctx: Ctx): FirewallPorts[] {
  return [...ctx.state.sandboxes.values()].flatMap((sb) => {
    const fp = firewallPortsOf(ctx, sb);
    return fp ? [fp] : [];
  });
}

/**
 * The host reaches a port published on a loopback (or every) address through 127.0.0.1; after DNAT that
 * connection leaves through the bridge with source 127.0.0.1, which the kernel routes only with
 * route_localnet on that bridge (the masquerade in postrouting then gives it the bridge's address).
 * Only bridges with such ports get it; prerouting drops 127.0.0.0/8 arriving on any interface but lo.
 */
export async function enableLocalnetFor(ctx: Ctx, sb: SandboxRecord): Promise<void> {
  if (!sb.ports?.some((p) => p.hostIp === '0.0.0.0' || p.hostIp.startsWith('127.'))) return;
  const net = sb.portsNetworkId === undefined ? undefined : ctx.state.networks.get(sb.portsNetworkId);
  const bridge = net ? ctx.networks.get(net.id)?.firewall?.bridge : undefined;
  if (bridge) await ctx.kernel.sysctlSet(null, `net.ipv4.conf.${bridge}.route_localnet`, '1');
}

/** Open a sandbox's ports (its endpoint on the ports network exists). */
export async function openPorts(ctx: Ctx, sb: SandboxRecord): Promise<void> {
  const fp = firewallPortsOf(ctx, sb);
  if (!fp) return;
  await enableLocalnetFor(ctx, sb);
  await ctx.firewall.addPorts(fp);
}

/** Close a sandbox's ports (before its endpoint on the ports network goes). Idempotent. */
export async function closePorts(ctx: Ctx, sb: SandboxRecord, endpoint?: EndpointRecord): Promise<void> {
  const fp = firewallPortsOf(ctx, sb, endpoint);
  if (fp) await ctx.firewall.removePorts(fp);
}
