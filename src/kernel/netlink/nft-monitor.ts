/**
 * nftables change events, as `nft monitor` sees them: a NETLINK_NETFILTER socket bound to the
 * NFNLGRP_NFTABLES multicast group (see NetlinkGroupMonitor). close() wakes the parked poll by asking the
 * kernel for the current generation (NFT_MSG_GETGEN).
 */
import { header, NLM_F_REQUEST } from './codec.js';
import { NetlinkGroupMonitor, type NetlinkGroupHandlers } from './group-monitor.js';
import type { Libc } from './libc.js';

const NETLINK_NETFILTER = 12;
export const NFNLGRP_NFTABLES = 7;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFT_MSG_GETGEN = 16;

export type NftMonitorHandlers = NetlinkGroupHandlers;

function getGenRequest(): Buffer {
  const body = Buffer.alloc(4); // struct nfgenmsg: family AF_UNSPEC, version 0, res_id 0
  return Buffer.concat([header((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, NLM_F_REQUEST, 0, body.length), body]);
}

export const NftEventMonitor = {
  /** Subscribe in the calling thread's current network namespace. */
  open(libc: Libc, handlers: NftMonitorHandlers): NetlinkGroupMonitor {
    return NetlinkGroupMonitor.open(libc, { name: 'nftables monitor', protocol: NETLINK_NETFILTER, group: NFNLGRP_NFTABLES, wakeRequest: getGenRequest() }, handlers);
  },
};
