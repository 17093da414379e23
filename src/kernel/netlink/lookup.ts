/** Finding links through one rtnetlink socket: by name, by index, all of them. */
import { KernelError } from '../../errors.js';
import { IFLA, RTM, stringAttr } from './codec.js';
import { checkLinkName, decodeLink, linkHeader, type RawLink } from './links.js';
import type { RtnlSocket } from './socket.js';

/** One RTM_GETLINK; a missing link (ENODEV) is undefined. */
function getLinkBy(s: RtnlSocket, body: Buffer[], what: string): RawLink | undefined {
  try {
    const [reply] = s.request(RTM.GETLINK, 0, body, what);
    return reply && decodeLink(reply);
  } catch (err) {
    if (err instanceof KernelError && err.errno === 'ENODEV') return undefined;
    throw err;
  }
}

/** The link called `name`, retired ones included (see retirement.ts). */
export function getAnyLink(s: RtnlSocket, name: string, what: string): RawLink | undefined {
  checkLinkName(name, what);
  return getLinkBy(s, [linkHeader(0, undefined), stringAttr(IFLA.IFNAME, name)], what);
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
  return getLinkBy(s, [linkHeader(index, undefined)], what);
}

export function dumpLinks(s: RtnlSocket, what: string): RawLink[] {
  return s.dump(RTM.GETLINK, [linkHeader(0, undefined)], what).filter((m) => m.type === RTM.NEWLINK).map(decodeLink);
}

export function findIndex(s: RtnlSocket, name: string, what: string): number | undefined {
  return getLink(s, name, what)?.index;
}

export function indexOf(s: RtnlSocket, name: string, what: string): number {
  const index = findIndex(s, name, what);
  if (index === undefined) throw new KernelError(`${what}: ${name}: No such device`, 'ENODEV');
  return index;
}
