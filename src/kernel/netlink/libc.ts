/**
 * The few libc calls the netlink kernel needs, loaded in-process with koffi. Entering namespaces (setns,
 * unshare, the pin mounts) and its one failure policy live in ../netns.ts, shared with the DNS server's
 * sockets and the libnftables runner; this file adds the socket calls on top of that one binding.
 */
import koffi from 'koffi';
import { SOL_SOCKET } from './socket-constants.js';
import { lastErrno, loadNetnsLibc, type NetnsLibc } from '../netns.js';

export {
  CLONE_NEWNET, closeQuietly, errnoName, lastErrno, libcError, openNamespaceFile, ThreadNamespace,
} from '../netns.js';

export interface Libc extends NetnsLibc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  send(fd: number, buffer: Buffer, length: number, flags: number): number;
  recv(fd: number, buffer: Buffer, length: number, flags: number): number;
  close(fd: number): number;
  /** send/recv on a libuv pool thread: for calls that may block (a link deletion waits for the kernel). */
  sendAsync(fd: number, buffer: Buffer, length: number, flags: number): Promise<number>;
  recvAsync(fd: number, buffer: Buffer, length: number, flags: number): Promise<number>;
  bind(fd: number, address: Buffer, length: number): number;
  /** poll(2) on a libuv pool thread: waits for a socket to become readable without blocking the event loop. */
  pollAsync(fds: Buffer, count: number, timeoutMs: number): Promise<number>;
  /**
   * One SIOCETHTOOL request carrying a struct ethtool_value {cmd, data} for `ifname`, on `fd` (any socket
   * of the link's namespace). Returns ioctl's result and the data the kernel left.
   */
  ethtoolValue(fd: number, ifname: string, cmd: number, data: number): { rc: number; data: number; errno?: string };
  /** SIOCGIFINDEX on `fd` (any socket of the namespace): the index of the link called `ifname`, or the errno (ENODEV: none). */
  interfaceIndex(fd: number, ifname: string): { index: number; errno?: string };
  /**
   * SO_ATTACH_FILTER: a classic BPF program (8-byte `struct sock_filter` instructions, packed in `program`)
   * the kernel runs on every message queued to `fd`; the kernel copies it, so `program` may go afterwards.
   */
  attachFilter(fd: number, program: Buffer): number;
}

const SIOCETHTOOL = 0x8946;
const SIOCGIFINDEX = 0x8933;
/** struct ifreq's ifr_ifindex, in the union after the name. */
const IFREQ_INDEX_OFFSET = 16;
/** struct ifreq on 64-bit Linux: a 16-byte name, then a union whose ifr_data pointer comes first. */
const IFREQ_SIZE = 40;
const IFREQ_DATA_OFFSET = 16;
const SO_ATTACH_FILTER = 26;
/** struct sock_fprog on 64-bit Linux: a 2-byte count, padding, then the pointer to the instructions. */
const SOCK_FPROG_SIZE = 16;
const SOCK_FPROG_FILTER_OFFSET = 8;
export const BPF_INSTRUCTION_SIZE = 8;

type AsyncCapable = ((...args: unknown[]) => unknown) & {
  async: (...args: unknown[]) => void;
};

function promisifyAsync(fn: AsyncCapable): (...args: unknown[]) => Promise<number> {
  return (...args) =>
    new Promise((resolve, reject) => fn.async(...args, (err: unknown, result: number) => (err ? reject(err) : resolve(result))));
}

export function loadLibc(): Libc {
  const lib = koffi.load('libc.so.6');
  const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)') as AsyncCapable;
  const recv = lib.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)') as AsyncCapable;
  const poll = lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)') as AsyncCapable;
  const ioctlArg = lib.func('int ioctl(int fd, unsigned long request, _Inout_ void *arg)');
  const ethtoolValueType = koffi.array('uint32_t', 2);
  const setsockopt = lib.func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)');
  return {
    ...loadNetnsLibc(),
    sendAsync: promisifyAsync(send),
    pollAsync: promisifyAsync(poll),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
    recvAsync: promisifyAsync(recv),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    setsockopt,
    send: send as Libc['send'],
    recv: recv as Libc['recv'],
    close: lib.func('int close(int fd)'),
    ethtoolValue(fd, ifname, cmd, data) {
      // ifr_data must point at the ethtool_value: memory koffi owns has an address to put there.
      const value = koffi.alloc('uint32_t', 2);
      try {
        koffi.encode(value, ethtoolValueType, [cmd, data]);
        const ifreq = Buffer.alloc(IFREQ_SIZE);
        ifreq.write(ifname, 0, 15, 'utf8');
        ifreq.writeBigUInt64LE(BigInt(koffi.address(value)), IFREQ_DATA_OFFSET);
        const rc = ioctlArg(fd, SIOCETHTOOL, ifreq) as number;
        const errno = rc === 0 ? undefined : lastErrno();
        return { rc, data: (koffi.decode(value, ethtoolValueType) as number[])[1]!, errno };
      } finally {
        koffi.free(value);
      }
    },
    interfaceIndex(fd, ifname) {
      const ifreq = Buffer.alloc(IFREQ_SIZE);
      ifreq.write(ifname, 0, 15, 'utf8');
      const rc = ioctlArg(fd, SIOCGIFINDEX, ifreq) as number;
      return rc === 0 ? { index: ifreq.readInt32LE(IFREQ_INDEX_OFFSET) } : { index: 0, errno: lastErrno() };
    },
    attachFilter(fd, program) {
      // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the pointer needs memory koffi owns.
      const instructions = koffi.alloc('uint8_t', program.length);
      try {
        koffi.encode(instructions, koffi.array('uint8_t', program.length), [...program]);
        const fprog = Buffer.alloc(SOCK_FPROG_SIZE);
        fprog.writeUInt16LE(program.length / BPF_INSTRUCTION_SIZE, 0);
        fprog.writeBigUInt64LE(BigInt(koffi.address(instructions)), SOCK_FPROG_FILTER_OFFSET);
        return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, SOCK_FPROG_SIZE) as number;
      } finally {
        koffi.free(instructions);
      }
    },
  };
}
