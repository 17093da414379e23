/** Finding links through one rtnetlink socket: by name, by index, all of them. */
import { KernelError } from '../../errors.js';
import { IFLA, type NetlinkMessage, RTM, stringAttr, u32Attr } from './codec.js';
import { checkLinkName, decodeLink, decodeLinkRef, linkHeader, type RawLink } from './links.js';
import type { RtnlSocket } from './socket.js';

/**
 * Nothing here reads a link's counters: the kernel leaves them out of the reply (a smaller message to
 * fill and to parse; kernels without the flag ignore it).
 */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** One RTM_GETLINK; a missing link (ENODEV) is undefined. */
function getLinkBy<T>(s: RtnlSocket, body: Buffer[], what: string, decode: (msg: NetlinkMessage) => T): T | undefined {
  try {
    const [reply] = s.request(RTM.GETLINK, 0, [...body, u32Attr(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS)], what);
    return reply && decode(reply);
  } catch (err) {
    if (err instanceof KernelError && err.errno === 'ENODEV') return undefined;
    throw err;
  }
}

function byName(name: string, what: string): Buffer[] {
  checkLinkName(name, what);
  return [linkHeader(0, undefined), stringAttr(IFLA.IFNAME, name)];
}

/** The link called `name`, retired ones included (see retirement.ts). */
export function getAnyLink(s: RtnlSocket, name: string, what: string): RawLink | undefined {
  return getLinkBy(s, byName(name, what), what, decodeLink);
}

/** The live link called `name`: a retired one still holding the name counts as absent. */
export function getLink(s: RtnlSocket, name: string, what: string): RawLink | undefined {
  const link = getAnyLink(s, name, what);
  return link?.retired ? undefined : link;
}

/** Delete the link at `index`; one that is gone already (deleted with its veth peer or namespace) is fine. */
export function deleteLinkAt(s: RtnlSocket, index: number, what: string): void {
  try {
    s.request(RTM.DELLINK, 0, [linkHeader(index, undefined)], what);
  } catch (err) {
    if (!(err instanceof KernelError && err.errno === 'ENODEV')) throw err;
  }
}

export function getLinkByIndex(s: RtnlSocket, index: number, what: string): RawLink | undefined {
  return getLinkBy(s, [linkHeader(index, undefined)], what, decodeLink);
}

export function dumpLinks(s: RtnlSocket, what: string): RawLink[] {
  return s.dump(RTM.GETLINK, [linkHeader(0, undefined)], what).filter((m) => m.type === RTM.NEWLINK).map(decodeLink);
}

/**
 * The index of the live link called `name`: asked with SIOCGIFINDEX (a fifth of an RTM_GETLINK's time),
 * unless a retired link may still hold the name; then the link's tombstone mark is read too.
 */
export function findIndex(s: RtnlSocket, name: string, what: string): number | undefined {
  if (!s.mayHoldRetired(name)) {
    checkLinkName(name, what);
    return s.interfaceIndex(name, what);
  }
  const link = getLinkBy(s, byName(name, what), what, decodeLinkRef);
  return link === undefined || link.retired ? undefined : link.index;
}

export function indexOf(s: RtnlSocket, name: string, what: string): number {
  const index = findIndex(s, name, what);
  if (index === undefined) throw new KernelError(`${what}: ${name}: No such device`, 'ENODEV');
  return index;
}
