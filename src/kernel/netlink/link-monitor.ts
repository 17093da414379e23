/**
 * Link removals (RTM_DELLINK on the RTNLGRP_LINK group) in the calling thread's namespace: the host end of
 * a veth pair disappears this way when the namespace of its peer dies. A socket filter lets only removals
 * (and acknowledgements) through: the other link messages of every connect and disconnect never wake the
 * daemon. close() wakes the poll with an acknowledged RTM_GETLINK of the loopback device.
 */
import { header, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR } from './codec.js';
import { NetlinkGroupMonitor, type NetlinkGroupHandlers } from './group-monitor.js';
import type { Libc } from './libc.js';

const NETLINK_ROUTE = 0;
const RTNLGRP_LINK = 1;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;

export const LinkRemovalMonitor = {
  open(libc: Libc, onRemoved: () => void, onLoss: NetlinkGroupHandlers['onLoss']): NetlinkGroupMonitor {
    const body = Buffer.alloc(16); // struct ifinfomsg: AF_UNSPEC, index 1 (lo)
    body.writeInt32LE(1, 4);
    const wakeRequest = Buffer.concat([header(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 0, body.length), body]);
    return NetlinkGroupMonitor.open(libc, { name: 'link monitor', protocol: NETLINK_ROUTE, group: RTNLGRP_LINK, wakeRequest, acceptTypes: [RTM_DELLINK, NLMSG_ERROR] }, {
      onMessages: (messages) => {
        if (messages.some((m) => m.type === RTM_DELLINK)) onRemoved();
      },
      // Lost events may have been removals: look as if one was seen.
      onLoss: (error, fatal) => {
        onLoss(error, fatal);
        onRemoved();
      },
    });
  },
};
