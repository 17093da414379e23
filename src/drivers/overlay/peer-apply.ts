/**
 * Carrying out a peer plan (peers.ts) on a VXLAN device through KernelOps: read the device's tables,
 * plan, apply. Every operation is tried even when one fails (the others still repair what they can);
 * the failures are returned, and the next reconcile tries them again.
 */
import type { KernelOps, NetnsRef } from '../../kernel/types.js';
import { type PeerDesired, type PeerOp, type PeerPlan, type PeerTables, planPeers } from './peers.js';

export async function readPeerTables(kernel: KernelOps, ns: NetnsRef, ifname: string): Promise<PeerTables> {
  const [fdb, neighbours] = await Promise.all([kernel.fdbList(ns, ifname), kernel.neighList(ns, ifname)]);
  return { fdb, neighbours };
}

export async function applyPeerOp(kernel: KernelOps, ns: NetnsRef, op: PeerOp): Promise<void> {
  switch (op.op) {
    case 'neighDel':
      return kernel.neighDel(ns, op.ifname, op.ip);
    case 'fdbDel':
      return kernel.fdbDel(ns, op.entry);
    case 'fdbAdd':
      return kernel.fdbAdd(ns, op.entry);
    case 'neighReplace':
      return kernel.neighReplace(ns, op.entry);
  }
}

export interface PeerReconcileResult {
  plan: PeerPlan;
  failed: Array<{ op: PeerOp; error: unknown }>;
}

/** Make the device's tables match `desired`: list, plan, apply in the plan's order. */
export async function reconcilePeers(kernel: KernelOps, ns: NetnsRef, desired: PeerDesired): Promise<PeerReconcileResult> {
  const plan = planPeers(desired, await readPeerTables(kernel, ns, desired.ifname));
  const failed: PeerReconcileResult['failed'] = [];
  for (const op of plan.ops) {
    try {
      await applyPeerOp(kernel, ns, op);
    } catch (error) {
      failed.push({ op, error });
    }
  }
  return { plan, failed };
}
