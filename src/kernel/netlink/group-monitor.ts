/**
 * Events of one netlink multicast group (nftables changes, link changes), in the calling thread's network
 * namespace: a socket of the group's protocol bound and joined to the group.
 *
 * Reading never blocks the event loop and never spins: one poll(2) waits on a libuv pool thread (koffi
 * async) until the socket is readable, then the main thread drains every queued datagram with
 * non-blocking recv() calls, so errno (ENOBUFS: the kernel dropped events) is read on the thread that
 * made the call. Idle, the monitor costs one parked pool thread and no CPU. Measured alternatives:
 * net.Socket refuses a netlink fd (libuv only wraps TCP, UDP and unix sockets: ERR_INVALID_FD_TYPE),
 * fs.read on a non-blocking fd has no readiness notification (a timer poll: latency or wake-ups), and
 * a worker thread blocked in recv() costs its own V8 isolate (+8.4 MiB RSS measured). Measured idle:
 * 1 CPU tick (10 ms) in 10 s for the whole daemon.
 *
 * close() wakes the parked poll by sending the group's `wakeRequest` (a query the kernel answers at once):
 * the reply lands on this socket and makes it readable.
 */
import { KernelError } from '../../errors.js';
import { type NetlinkMessage, splitMessages } from './codec.js';
import { endianness } from 'node:os';
import { BPF_INSTRUCTION_SIZE, type Libc, lastErrno, libcError } from './libc.js';
import { AF_NETLINK, MSG_TRUNC, SOCK_CLOEXEC, SOCK_RAW, SOL_NETLINK, SOL_SOCKET } from './socket-constants.js';

const SO_RCVBUFFORCE = 33;
const NETLINK_ADD_MEMBERSHIP = 1;
const MSG_DONTWAIT = 0x40;
const POLLIN = 0x1;
/** Room for bursts (a large reconcile of cnm's own emits thousands of element events). */
const SOCKET_RECEIVE_BUFFER = 4 * 1024 * 1024;
const DATAGRAM_BUFFER = 64 * 1024;
/** Errors in a row (other than lost events) after which the monitor gives up instead of looping. */
const MAX_CONSECUTIVE_ERRORS = 5;

/** Which group to follow. */
export interface NetlinkGroup {
  /** For messages: "nftables monitor", "link monitor". */
  name: string;
  /** Netlink protocol (NETLINK_NETFILTER, NETLINK_ROUTE). */
  protocol: number;
  /** Multicast group number (NETLINK_ADD_MEMBERSHIP). */
  group: number;
  /**
   * A complete request the kernel answers on this socket at once (wakes the parked poll on close). With
   * `acceptTypes`, one of its answers must be of an accepted type (NLMSG_ERROR for an acknowledged request).
   */
  wakeRequest: Buffer;
  /**
   * Only messages of these types reach the socket: a socket filter drops the rest in the kernel, so events
   * nobody reads never wake the poll (the link monitor wants removals, not the five or so other messages
   * every connect makes). Absent: everything.
   */
  acceptTypes?: number[];
}

export interface NetlinkGroupHandlers {
  /** Messages of one or more datagrams, in the order the kernel sent them. */
  onMessages(messages: NetlinkMessage[]): void;
  /**
   * Events may have been missed: the kernel dropped some (ENOBUFS) or the socket failed. `fatal` means
   * the monitor stopped and nothing more will be reported.
   */
  onLoss(error: KernelError, fatal: boolean): void;
}

export class NetlinkGroupMonitor {
  private readonly buffer = Buffer.alloc(DATAGRAM_BUFFER);
  private readonly pollFd = Buffer.alloc(8);
  private closed = false;
  private readonly done: Promise<void>;
  /** Times the parked poll woke up with something to read (what a filter saves shows here). */
  wakeups = 0;

  private constructor(
    private readonly libc: Libc,
    private readonly fd: number,
    private readonly handlers: NetlinkGroupHandlers,
    private readonly spec: NetlinkGroup,
  ) {
    this.done = this.loop();
  }

  /** Subscribe in the calling thread's current network namespace. */
  static open(libc: Libc, spec: NetlinkGroup, handlers: NetlinkGroupHandlers): NetlinkGroupMonitor {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, spec.protocol);
    if (fd < 0) throw libcError(`${spec.name} socket`);
    try {
      const size = Buffer.alloc(4);
      size.writeInt32LE(SOCKET_RECEIVE_BUFFER, 0);
      // Best effort: without it the default buffer simply overflows sooner (ENOBUFS → a full check).
      libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4);
      // Bound (port ID assigned) before joining: the kernel skips port 0 when it multicasts.
      const address = Buffer.alloc(12);
      address.writeUInt16LE(AF_NETLINK, 0);
      if (libc.bind(fd, address, address.length) !== 0) throw libcError(`${spec.name} bind`);
      const group = Buffer.alloc(4);
      group.writeUInt32LE(spec.group, 0);
      // Filtered before joining, so no unwanted message is queued in between.
      if (spec.acceptTypes && libc.attachFilter(fd, messageTypeFilter(spec.acceptTypes)) !== 0) {
        throw libcError(`${spec.name}: socket filter`);
      }
      if (libc.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, 4) !== 0) {
        throw libcError(`${spec.name}: join group ${spec.group}`);
      }
    } catch (err) {
      libc.close(fd);
      throw err;
    }
    return new NetlinkGroupMonitor(libc, fd, handlers, spec);
  }

  /** Stop reading and close the socket; resolves once the parked poll has returned. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.wake();
    }
    await this.done;
  }

  private async loop(): Promise<void> {
    let errors = 0;
    try {
      while (!this.closed) {
        this.pollFd.writeInt32LE(this.fd, 0);
        this.pollFd.writeInt16LE(POLLIN, 4);
        this.pollFd.writeInt16LE(0, 6);
        const ready = await this.libc.pollAsync(this.pollFd, 1, -1);
        if (this.closed) break;
        if (ready < 0) {
          if (++errors >= MAX_CONSECUTIVE_ERRORS) throw new KernelError(`${this.spec.name}: poll keeps failing`, lastErrno());
          continue;
        }
        this.wakeups++;
        errors = this.drain() ? 0 : errors + 1;
        if (errors >= MAX_CONSECUTIVE_ERRORS) throw new KernelError(`${this.spec.name}: receive keeps failing`);
      }
    } catch (err) {
      this.closed = true;
      this.handlers.onLoss(err instanceof KernelError ? err : new KernelError(String(err)), true);
    } finally {
      this.libc.close(this.fd);
    }
  }

  /** Read every queued datagram; false when the socket reported an error other than lost events. */
  private drain(): boolean {
    const messages: NetlinkMessage[] = [];
    let healthy = true;
    for (;;) {
      const n = this.libc.recv(this.fd, this.buffer, this.buffer.length, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        const errno = lastErrno();
        if (errno === 'EAGAIN' || errno === 'EINTR') break;
        // ENOBUFS: the queue overflowed and events were dropped; reading goes on after it.
        if (errno !== 'ENOBUFS') healthy = false;
        this.handlers.onLoss(libcError(`${this.spec.name}: receive`, errno), false);
        if (!healthy) break;
        continue;
      }
      if (n > this.buffer.length) {
        this.handlers.onLoss(new KernelError(`${this.spec.name}: event of ${n} bytes truncated`, 'EMSGSIZE'), false);
        continue;
      }
      messages.push(...splitMessages(Buffer.from(this.buffer.subarray(0, n))));
    }
    if (messages.length > 0) this.handlers.onMessages(messages);
    return healthy;
  }

  /** Make the socket readable: the kernel answers the wake request on it at once. */
  private wake(): void {
    this.libc.send(this.fd, this.spec.wakeRequest, this.spec.wakeRequest.length, 0);
  }
}

const BPF_LD_H_ABS = 0x28;
const BPF_JMP_JEQ_K = 0x15;
const BPF_RET_K = 0x06;
/** Offset of nlmsg_type in struct nlmsghdr. */
const NLMSG_TYPE_OFFSET = 4;

/**
 * A classic BPF program accepting a netlink message whose nlmsg_type is one of `types` and dropping the rest.
 * BPF loads a half word in network byte order while nlmsg_type is in the host's, so on a little-endian
 * machine the constants are compared byte-swapped.
 */
export function messageTypeFilter(types: number[], littleEndian = endianness() === 'LE'): Buffer {
  if (types.length === 0 || types.length > 255) throw new RangeError('messageTypeFilter: 1 to 255 types');
  const asLoaded = (t: number) => (littleEndian ? ((t & 0xff) << 8) | (t >> 8) : t);
  const program: Array<[number, number, number, number]> = [[BPF_LD_H_ABS, 0, 0, NLMSG_TYPE_OFFSET]];
  // Instruction i (1-based among the tests) jumps to "accept" (the last instruction) when equal.
  types.forEach((t, i) => program.push([BPF_JMP_JEQ_K, types.length - i, 0, asLoaded(t)]));
  program.push([BPF_RET_K, 0, 0, 0], [BPF_RET_K, 0, 0, 0xffffffff]);
  const out = Buffer.alloc(program.length * BPF_INSTRUCTION_SIZE);
  program.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return out;
}
