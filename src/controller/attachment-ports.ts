/**
 * Published ports of another runtime's containers (Docker's `-p` through the remote driver protocol:
 * ProgramExternalConnectivity / RevokeExternalConnectivity). The same host-port allocation, conflict
 * checks and nftables map elements as a sandbox's ports (ports.ts); they lead to the attachment's
 * addresses, are stored with its record, and close on revoke, leave or removal.
 */
import { ForbiddenError, NotFoundError } from '../errors.js';
import type { Ctx } from './context.js';
import { handoffNetworkId } from './handoff-networks.js';
import { attachmentFirewallPorts, enableLocalnetFor, planPorts } from './ports.js';
import type { AttachmentRecord } from './records.js';
import type { PortBindingRequest } from './types.js';

/**
 * Publishes the container's ports (replacing any it had): planned and checked first (a taken host port is
 * a 409 and nothing changes), then stored, then opened in one firewall transaction.
 */
export async function programAttachmentPorts(ctx: Ctx, networkId: string, endpointId: string, requests: PortBindingRequest[]): Promise<void> {
  const att = ctx.state.attachments.get(endpointId);
  const net = ctx.state.networks.get(handoffNetworkId(ctx, networkId));
  if (!att || !net || att.networkId !== net.id) throw new NotFoundError(`endpoint ${endpointId} not found on network ${networkId}`);
  if (!att.joined) throw new ForbiddenError(`endpoint ${endpointId} is not joined to a container`);
  if (att.ports) await revokeAttachmentPorts(ctx, networkId, endpointId);
  const plan = planPorts(ctx, requests, [net], false);
  if (!plan) return;
  const current = ctx.state.attachments.get(att.id)!;
  const next: AttachmentRecord = { ...current, ports: plan.ports };
  await ctx.repo.updateAttachment(next);
  ctx.state.putAttachment(next);
  const fp = attachmentFirewallPorts(ctx, next);
  if (!fp) return;
  try {
    await enableLocalnetFor(ctx, fp.ports, net.id);
    await ctx.firewall.addPorts(fp);
  } catch (err) {
    await ctx.repo.updateAttachment(current).catch(() => undefined);
    ctx.state.putAttachment(current);
    throw err;
  }
}

/** Closes the container's ports (and forgets their flows). Idempotent. */
export async function revokeAttachmentPorts(ctx: Ctx, networkId: string, endpointId: string): Promise<void> {
  const att = ctx.state.attachments.get(endpointId);
  if (!att || att.networkId !== handoffNetworkId(ctx, networkId) || !att.ports) return;
  const fp = attachmentFirewallPorts(ctx, att);
  if (fp) await ctx.firewall.removePorts(fp);
  const next: AttachmentRecord = { ...att };
  delete next.ports;
  await ctx.repo.updateAttachment(next);
  ctx.state.putAttachment(next);
}
