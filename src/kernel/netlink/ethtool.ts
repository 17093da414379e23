/**
 * The one ethtool setting cnm needs, transmit checksum offload (`ethtool -K DEV tx on|off`), through the
 * SIOCETHTOOL ioctl's legacy ETHTOOL_GTXCSUM / ETHTOOL_STXCSUM commands (the kernel maps them onto the
 * device's checksum features). Called on a thread inside the link's namespace: the datagram socket the
 * ioctl goes through names the namespace.
 */
import { KernelError } from '../../errors.js';
import { type Libc, libcError } from './libc.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const ETHTOOL_GTXCSUM = 0x16;
const ETHTOOL_STXCSUM = 0x17;

function withDatagramSocket<T>(libc: Libc, what: string, fn: (fd: number) => T): T {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw libcError(`${what}: socket`);
  try {
    return fn(fd);
  } finally {
    libc.close(fd);
  }
}

function ethtool(libc: Libc, ifname: string, cmd: number, data: number, what: string): number {
  if (Buffer.byteLength(ifname) > 15) throw new KernelError(`${what}: invalid interface name "${ifname}"`, 'EINVAL');
  return withDatagramSocket(libc, what, (fd) => {
    const result = libc.ethtoolValue(fd, ifname, cmd, data);
    if (result.rc !== 0) throw libcError(`${what}: ethtool`, result.errno);
    return result.data;
  });
}

export function getTxChecksum(libc: Libc, ifname: string, what: string): boolean {
  return ethtool(libc, ifname, ETHTOOL_GTXCSUM, 0, what) !== 0;
}

export function setTxChecksum(libc: Libc, ifname: string, on: boolean, what: string): void {
  ethtool(libc, ifname, ETHTOOL_STXCSUM, on ? 1 : 0, what);
}
