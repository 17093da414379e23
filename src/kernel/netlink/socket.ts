/**
 * One NETLINK_ROUTE socket and its request/reply discipline. Everything is synchronous: rtnetlink
 * handles a request inside the sender's sendmsg() call, so the acknowledgement (or the first part of a
 * dump) is already queued when send() returns and recv() does not wait. A receive timeout still bounds
 * every call so a kernel surprise can never hang the daemon.
 */
import { KernelError } from '../../errors.js';
import {
  header, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE,
  NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG, type NetlinkMessage, parseAttrs, readString, splitMessages,
} from './codec.js';
import { errnoName, type Libc, libcError } from './libc.js';
import { AF_NETLINK, MSG_TRUNC, SOCK_CLOEXEC, SOCK_RAW, SOL_NETLINK, SOL_SOCKET } from './socket-constants.js';

const NETLINK_ROUTE = 0;
const SO_RCVTIMEO = 20;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
/** Dump datagrams are at most ~32 KiB (the kernel caps them by the largest read it has seen). */
const RECEIVE_BUFFER = 64 * 1024;
const RECEIVE_TIMEOUT_SECONDS = 10;
/** A dump interrupted by concurrent changes (NLM_F_DUMP_INTR) is simply asked again. */
const DUMP_ATTEMPTS = 5;

export class RtnlSocket {
  private readonly buffer = Buffer.alloc(RECEIVE_BUFFER);
  private seq = 0;
  private closed = false;

  private constructor(private readonly libc: Libc, private readonly fd: number) {}

  /**
   * Whether a retired link (see retirement.ts) may still hold `name` in this socket's namespace: a lookup
   * by name must then read the link's group. Set for the daemon's own namespace; elsewhere never.
   */
  mayHoldRetired: (name: string) => boolean = () => false;

  /** The index of the link called `name` in this socket's namespace (SIOCGIFINDEX: no message built or parsed), undefined when none. */
  interfaceIndex(name: string, what: string): number | undefined {
    if (this.closed) throw new KernelError(`${what}: netlink socket closed`, 'EBADF');
    const { index, errno } = this.libc.interfaceIndex(this.fd, name);
    if (errno === undefined) return index;
    if (errno === 'ENODEV') return undefined;
    throw libcError(`${what}: interface index of ${name}`, errno);
  }

  /** A socket in the calling thread's current network namespace. */
  static open(libc: Libc): RtnlSocket {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw libcError('netlink socket');
    const socket = new RtnlSocket(libc, fd);
    try {
      const one = Buffer.alloc(4);
      one.writeUInt32LE(1, 0);
      // Errors carry the kernel's own explanation; the echoed request is cut to its header.
      libc.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
      libc.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
      const timeout = Buffer.alloc(16);
      timeout.writeBigInt64LE(BigInt(RECEIVE_TIMEOUT_SECONDS), 0);
      if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16) !== 0) throw libcError('netlink SO_RCVTIMEO');
    } catch (err) {
      socket.close();
      throw err;
    }
    return socket;
  }

  /** Send a request and wait for its acknowledgement; returns any replies that came before it (GET). */
  request(type: number, flags: number, body: Buffer[], what: string): NetlinkMessage[] {
    const seq = this.send(type, NLM_F_REQUEST | NLM_F_ACK | flags, body, what);
    const replies: NetlinkMessage[] = [];
    for (;;) {
      for (const msg of this.receive(what)) {
        if (msg.seq !== seq) continue;
        if (msg.type === NLMSG_ERROR) {
          throwIfError(msg, what);
          return replies;
        }
        replies.push(msg);
      }
    }
  }

  /** A full dump (NLM_F_DUMP) of one message type. */
  dump(type: number, body: Buffer[], what: string): NetlinkMessage[] {
    for (let attempt = 1; ; attempt++) {
      const seq = this.send(type, NLM_F_REQUEST | NLM_F_DUMP, body, what);
      const replies: NetlinkMessage[] = [];
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const msg of this.receive(what)) {
          if (msg.seq !== seq) continue;
          if (msg.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (msg.type === NLMSG_DONE) done = true;
          else if (msg.type === NLMSG_ERROR) throwIfError(msg, what);
          else replies.push(msg);
        }
      }
      if (!interrupted || attempt >= DUMP_ATTEMPTS) return replies;
    }
  }

  /**
   * A request whose handling may block (link deletion waits for RCU grace periods inside send()), run on a
   * libuv pool thread so the event loop goes on. Only for a socket that sees no synchronous traffic.
   */
  async requestAsync(type: number, flags: number, body: Buffer[], what: string): Promise<void> {
    if (this.closed) throw new KernelError(`${what}: netlink socket closed`, 'EBADF');
    this.seq = (this.seq + 1) >>> 0;
    const seq = this.seq;
    const payload = Buffer.concat(body);
    const message = Buffer.concat([header(type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, payload.length), payload]);
    if ((await this.libc.sendAsync(this.fd, message, message.length, 0)) !== message.length) {
      throw new KernelError(`${what}: netlink send failed`);
    }
    const buffer = Buffer.alloc(RECEIVE_BUFFER);
    for (;;) {
      const n = await this.libc.recvAsync(this.fd, buffer, buffer.length, 0);
      if (n < 0) throw new KernelError(`${what}: netlink receive failed`);
      for (const msg of splitMessages(buffer.subarray(0, n))) {
        if (msg.seq === seq && msg.type === NLMSG_ERROR) return throwIfError(msg, what);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.libc.close(this.fd);
  }

  private send(type: number, flags: number, body: Buffer[], what: string): number {
    if (this.closed) throw new KernelError(`${what}: netlink socket closed`, 'EBADF');
    this.seq = (this.seq + 1) >>> 0;
    const payload = Buffer.concat(body);
    const message = Buffer.concat([header(type, flags, this.seq, payload.length), payload]);
    const sent = this.libc.send(this.fd, message, message.length, 0);
    if (sent !== message.length) throw libcError(`${what}: netlink send`);
    return this.seq;
  }

  private receive(what: string): NetlinkMessage[] {
    const n = this.libc.recv(this.fd, this.buffer, this.buffer.length, MSG_TRUNC);
    if (n < 0) {
      const err = libcError(`${what}: netlink receive`);
      throw err.errno === 'EAGAIN' ? new KernelError(`${what}: no answer from the kernel`, 'ETIMEDOUT') : err;
    }
    if (n > this.buffer.length) throw new KernelError(`${what}: netlink reply of ${n} bytes truncated`, 'EMSGSIZE');
    // Copy: the receive buffer is reused by the next call while callers still hold these messages.
    return splitMessages(Buffer.from(this.buffer.subarray(0, n)));
  }
}

/** An NLMSG_ERROR with error 0 is the acknowledgement; anything else becomes a KernelError. */
function throwIfError(msg: NetlinkMessage, what: string): void {
  const code = msg.payload.readInt32LE(0);
  if (code === 0) return;
  const errno = errnoName(-code);
  let detail = '';
  if (msg.flags & NLM_F_ACK_TLVS) {
    // The echoed request follows the error code: just its header when capped, else the whole message.
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : msg.payload.readUInt32LE(4);
    detail = readString(parseAttrs(msg.payload, 4 + echoed).get(NLMSGERR_ATTR_MSG)) ?? '';
  }
  throw new KernelError(`${what}: ${errno ?? `errno ${-code}`}${detail ? ` (${detail})` : ''}`, errno);
}
