/**
 * Sockets that live in another network namespace. A socket belongs to the namespace its creating thread
 * was in, and Node creates its own sockets lazily on the event loop, so we create the file descriptors
 * ourselves through libc (koffi): setns into the target, socket()/setsockopt()/bind()/listen(), setns
 * back, all synchronously on the main thread before returning to the event loop. Node then adopts the
 * descriptors (dgram bind({fd}), net.Server listen({fd}), new net.Socket({fd})) and owns them from then on.
 *
 * Minimal on purpose: the kernel layer's netlink bindings (src/kernel/netlink, in progress) may replace it.
 */
import { constants as osConstants, endianness } from 'node:os';
import koffi from 'koffi';
import { KernelError } from '../errors.js';
import { closeQuietly, openNamespaceFile, ThreadNamespace } from '../kernel/netns.js';
import type { IpFamily } from '../util/ip.js';
import { addressBytes } from './message.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_RCVBUF = 8;
/** Like SO_RCVBUF but not capped by net.core.rmem_max (needs CAP_NET_ADMIN, which the daemon has). */
const SO_RCVBUFFORCE = 33;
/**
 * Receive buffer of our UDP sockets: a burst of queries (or of upstream answers) queues here while the
 * event loop is busy; the default (~200 KiB, a few hundred packets) drops them under load.
 */
export const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;
const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
/** Bind to an address not (yet) on an interface: a fresh namespace's lo may still be down. */
const IP_FREEBIND = 15;
const IPV6_FREEBIND = 78;
const LISTEN_BACKLOG = 4096;

interface LibcSockets {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  listen(fd: number, backlog: number): number;
  close(fd: number): number;
}

/** An open network namespace file: keeps the namespace reachable even if its pin is unmounted. */
export interface NamespaceHandle {
  readonly path: string;
  readonly fd: number;
}

export interface ListenerFds {
  udp: number;
  tcp: number;
}

export type SocketKind = 'udp' | 'tcp';

export class NetnsSockets {
  private readonly libc: LibcSockets;
  /** Entering sandbox namespaces (and coming home): the one primitive in kernel/netns.ts. */
  private readonly thread: ThreadNamespace;
  private closed = false;

  constructor() {
    const lib = koffi.load('libc.so.6');
    this.libc = {
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      setsockopt: lib.func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)'),
      bind: lib.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
      listen: lib.func('int listen(int fd, int backlog)'),
      close: lib.func('int close(int fd)'),
    };
    this.thread = new ThreadNamespace();
  }

  openNamespace(path: string): NamespaceHandle {
    return { path, fd: openNamespaceFile(path) };
  }

  closeNamespace(ns: NamespaceHandle): void {
    closeQuietly(ns.fd);
  }

  /**
   * A UDP socket and a listening TCP socket bound to address:port inside `ns`. TCP gets SO_REUSEADDR
   * (re-attach while old connections sit in TIME_WAIT); UDP does not, so a second resolver on the same
   * address fails loudly with EADDRINUSE instead of silently sharing the port.
   */
  listeners(ns: NamespaceHandle, address: string, port: number): ListenerFds {
    const bytes = addressBytes(address);
    const family: IpFamily = bytes.length === 4 ? 4 : 6;
    const sockaddr = socketAddress(bytes, port);
    return this.inNamespace(ns, () => {
      const udp = this.newSocket('udp', family);
      try {
        this.freebind(udp, family);
        this.receiveBuffer(udp);
        this.check(this.libc.bind(udp, sockaddr, sockaddr.length), `bind udp ${address}:${port} in ${ns.path}`);
        const tcp = this.newSocket('tcp', family);
        try {
          this.check(this.libc.setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, intOption(1), 4), 'setsockopt SO_REUSEADDR');
          this.freebind(tcp, family);
          this.check(this.libc.bind(tcp, sockaddr, sockaddr.length), `bind tcp ${address}:${port} in ${ns.path}`);
          this.check(this.libc.listen(tcp, LISTEN_BACKLOG), `listen tcp ${address}:${port} in ${ns.path}`);
          return { udp, tcp };
        } catch (err) {
          this.libc.close(tcp);
          throw err;
        }
      } catch (err) {
        this.libc.close(udp);
        throw err;
      }
    });
  }

  /** An unbound, non-blocking socket created in `ns` (for connecting to upstream servers). */
  socketIn(ns: NamespaceHandle, kind: SocketKind, family: IpFamily): number {
    return this.inNamespace(ns, () => {
      const fd = this.newSocket(kind, family);
      if (kind === 'udp') this.receiveBuffer(fd); // answers to a burst of forwarded queries arrive together
      return fd;
    });
  }

  /**
   * A UDP socket in `ns` already bound to the wildcard address and a port the kernel picked at random.
   * Bound here, before Node adopts it: adoption (uv_udp_open) sets SO_REUSEADDR, and sockets that
   * then autobind on connect() can be given the same port (measured: 153 of 3,000 shared one), so one
   * query's answer would reach another query's socket.
   */
  udpOnRandomPortIn(ns: NamespaceHandle, family: IpFamily): number {
    const wildcard = socketAddress(Buffer.alloc(family === 4 ? 4 : 16), 0);
    return this.inNamespace(ns, () => {
      const fd = this.newSocket('udp', family);
      try {
        this.check(this.libc.bind(fd, wildcard, wildcard.length), `bind udp${family} to a random port in ${ns.path}`);
        return fd;
      } catch (err) {
        this.libc.close(fd);
        throw err;
      }
    });
  }

  /** Close a descriptor Node has not adopted (after a failed hand-over). */
  closeFd(fd: number): void {
    this.libc.close(fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.thread.close();
  }

  private inNamespace<T>(ns: NamespaceHandle, fn: () => T): T {
    if (this.closed) throw new KernelError('netns socket factory is closed');
    return this.thread.withNetns(ns.fd, `netns socket in ${ns.path}`, fn);
  }

  private newSocket(kind: SocketKind, family: IpFamily): number {
    const type = (kind === 'udp' ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    const fd = this.libc.socket(family === 4 ? AF_INET : AF_INET6, type, 0);
    this.check(fd, `socket(${kind}${family})`);
    return fd;
  }

  /** Best effort: without CAP_NET_ADMIN fall back to the capped option, and to the default after that. */
  private receiveBuffer(fd: number): void {
    const size = intOption(UDP_RECEIVE_BUFFER);
    if (this.libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) === 0) return;
    this.libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
  }

  private freebind(fd: number, family: IpFamily): void {
    const [level, option] = family === 4 ? [IPPROTO_IP, IP_FREEBIND] : [IPPROTO_IPV6, IPV6_FREEBIND];
    this.check(this.libc.setsockopt(fd, level, option, intOption(1), 4), 'setsockopt FREEBIND');
  }

  private check(rc: number, what: string): void {
    if (rc < 0) {
      const name = errnoName();
      throw new KernelError(`${what} failed: ${name}`, name);
    }
  }
}

function intOption(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return buffer;
}

/** struct sockaddr_in / sockaddr_in6 in host byte order for the family, network order for port/address. */
function socketAddress(address: Buffer, port: number): Buffer {
  if (address.length === 4) {
    const sa = Buffer.alloc(16);
    writeFamily(sa, AF_INET);
    sa.writeUInt16BE(port, 2);
    address.copy(sa, 4);
    return sa;
  }
  const sa = Buffer.alloc(28);
  writeFamily(sa, AF_INET6);
  sa.writeUInt16BE(port, 2);
  address.copy(sa, 8);
  return sa;
}

/** sa_family is in host byte order. */
function writeFamily(sa: Buffer, family: number): void {
  if (endianness() === 'LE') sa.writeUInt16LE(family, 0);
  else sa.writeUInt16BE(family, 0);
}

function errnoName(): string {
  const errno = koffi.errno();
  return Object.entries(osConstants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
}
