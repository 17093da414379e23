/**
 * Exchanging one query with one upstream server, over UDP or TCP, from a given network namespace.
 *
 * UDP: one *connected* socket per (namespace, server), shared by all queries in flight, which get fresh
 * random IDs so answers can be matched (and the client's own ID restored). Connected, because the kernel
 * then reports an ICMP "port unreachable" from a dead upstream as ECONNREFUSED on the socket: every query
 * waiting on that server fails over at once instead of waiting for its timeout.
 * TCP: one connection per query (RFC 7766 framing), as Docker does; used for TCP clients and when a UDP
 * answer comes back truncated.
 */
import dgram from 'node:dgram';
import { setMaxListeners } from 'node:events';
import net from 'node:net';
import type { IpFamily } from '../util/ip.js';
import { HEADER_SIZE, isResponse } from './codec.js';
import { UDP_RECEIVE_BUFFER, type NamespaceHandle, type NetnsSockets } from './netns-socket.js';
import type { UpstreamServer } from './resolv-conf.js';

export type ExchangeFailure = 'timeout' | 'unreachable' | 'busy' | 'closed';
export type ExchangeResult = { ok: true; response: Buffer } | { ok: false; reason: ExchangeFailure };

/** Where upstream sockets come from: the daemon's own namespace, or a sandbox's. */
export interface SocketFactory {
  udp(family: IpFamily): Promise<dgram.Socket>;
  tcp(family: IpFamily): net.Socket;
}

/** Sockets in the namespace the daemon runs in (and the unit tests). */
export class CurrentNamespaceSockets implements SocketFactory {
  async udp(family: IpFamily): Promise<dgram.Socket> {
    // The kernel caps this at net.core.rmem_max; the default (~200 KiB) drops answers to a burst.
    return dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', recvBufferSize: UDP_RECEIVE_BUFFER });
  }

  tcp(): net.Socket {
    return new net.Socket();
  }
}

/** Sockets created inside another namespace (a sandbox's) and adopted by Node. */
export class NamespaceSockets implements SocketFactory {
  constructor(
    private readonly netns: NetnsSockets,
    private readonly ns: NamespaceHandle,
  ) {}

  udp(family: IpFamily): Promise<dgram.Socket> {
    const fd = this.netns.socketIn(this.ns, 'udp', family);
    const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        resolve(socket);
      });
    });
  }

  tcp(family: IpFamily): net.Socket {
    return new net.Socket({ fd: this.netns.socketIn(this.ns, 'tcp', family), readable: true, writable: true });
  }
}

interface PendingQuery {
  readonly clientId: number;
  /** The question bytes we sent: an answer must echo them (guards against stray or spoofed packets). */
  readonly question: Buffer;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (result: ExchangeResult) => void;
}

const ID_SPACE = 65536;

class UdpChannel {
  private socket: Promise<dgram.Socket> | undefined;
  private readonly pending = new Map<number, PendingQuery>();

  constructor(
    private readonly factory: SocketFactory,
    private readonly server: UpstreamServer,
  ) {}

  exchange(query: Buffer, questionEnd: number, timeoutMs: number): Promise<ExchangeResult> {
    const id = this.freeId();
    if (id === undefined) return Promise.resolve({ ok: false, reason: 'busy' });
    const wire = Buffer.from(query);
    wire.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, { ok: false, reason: 'timeout' }), timeoutMs);
      this.pending.set(id, { clientId: query.readUInt16BE(0), question: wire.subarray(HEADER_SIZE, questionEnd), timer, resolve });
      const unreachable = (): void => this.settle(id, { ok: false, reason: 'unreachable' });
      this.connected().then((socket) => {
        try {
          socket.send(wire, 0, wire.length, (err) => err && unreachable());
        } catch {
          unreachable(); // closed meanwhile (pool closed while the socket was being opened)
        }
      }, unreachable);
    });
  }

  close(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, reason: 'closed' });
    const socket = this.socket;
    this.socket = undefined;
    socket?.then((s) => s.close(), () => {});
  }

  private connected(): Promise<dgram.Socket> {
    this.socket ??= this.open().catch((err: unknown) => {
      this.socket = undefined; // try a fresh socket next time (the namespace may have been busy or gone)
      throw err;
    });
    return this.socket;
  }

  private async open(): Promise<dgram.Socket> {
    const socket = await this.factory.udp(this.server.family);
    socket.on('message', (msg) => this.onMessage(msg));
    // Asynchronous errors on a connected socket are ICMP errors from the server: fail everything waiting.
    socket.on('error', () => this.failAll('unreachable'));
    await new Promise<void>((resolve, reject) => {
      socket.connect(this.server.port, this.server.address, (err?: Error) => (err ? reject(err) : resolve()));
    }).catch((err: unknown) => {
      socket.close();
      throw err;
    });
    return socket;
  }

  private onMessage(msg: Buffer): void {
    if (!isResponse(msg)) return;
    const id = msg.readUInt16BE(0);
    const pending = this.pending.get(id);
    if (!pending || !echoesQuestion(msg, pending.question)) return;
    msg.writeUInt16BE(pending.clientId, 0);
    this.settle(id, { ok: true, response: msg });
  }

  private settle(id: number, result: ExchangeResult): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  private failAll(reason: ExchangeFailure): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, reason });
  }

  /** A random ID not in flight on this channel (unpredictable IDs make off-path spoofing harder). */
  private freeId(): number | undefined {
    if (this.pending.size >= ID_SPACE) return undefined;
    let id = Math.floor(Math.random() * ID_SPACE);
    while (this.pending.has(id)) id = (id + 1) % ID_SPACE;
    return id;
  }
}

/** Servers answering FORMERR may drop the question; otherwise it must match (case-insensitively). */
function echoesQuestion(msg: Buffer, question: Buffer): boolean {
  if (msg.readUInt16BE(4) === 0) return (msg.readUInt16BE(2) & 0xf) !== 0;
  const end = HEADER_SIZE + question.length;
  if (msg.length < end) return false;
  if (msg.compare(question, 0, question.length, HEADER_SIZE, end) === 0) return true;
  return msg.toString('latin1', HEADER_SIZE, end).toLowerCase() === question.toString('latin1').toLowerCase();
}

/** One query over a fresh TCP connection: 2-byte length framing, first complete message wins. */
export function exchangeTcp(
  factory: SocketFactory,
  server: UpstreamServer,
  query: Buffer,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ExchangeResult> {
  if (signal?.aborted) return Promise.resolve({ ok: false, reason: 'closed' });
  let socket: net.Socket;
  try {
    socket = factory.tcp(server.family);
  } catch {
    return Promise.resolve({ ok: false, reason: 'unreachable' });
  }
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (result: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = (): void => finish({ ok: false, reason: 'closed' });
    signal?.addEventListener('abort', onAbort);
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), timeoutMs);
    socket.on('error', () => finish({ ok: false, reason: 'unreachable' }));
    socket.on('close', () => finish({ ok: false, reason: 'unreachable' }));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length < 2 + length) return;
      const response = Buffer.from(received.subarray(2, 2 + length));
      const matches = isResponse(response) && response.readUInt16BE(0) === query.readUInt16BE(0);
      finish(matches ? { ok: true, response } : { ok: false, reason: 'unreachable' });
    });
    socket.connect(server.port, server.address, () => {
      const framed = Buffer.allocUnsafe(2 + query.length);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
  });
}

/** All upstream traffic leaving one namespace: a UDP channel per server, TCP on demand. */
export class UpstreamPool {
  private readonly channels = new Map<string, UdpChannel>();
  /** Aborts the TCP exchanges in flight when the pool closes (a detached sandbox keeps no sockets). */
  private readonly tcpAbort = new AbortController();
  private closed = false;

  constructor(private readonly factory: SocketFactory) {
    setMaxListeners(0, this.tcpAbort.signal); // one listener per TCP exchange in flight, by design
  }

  udp(server: UpstreamServer, query: Buffer, questionEnd: number, timeoutMs: number): Promise<ExchangeResult> {
    if (this.closed) return Promise.resolve({ ok: false, reason: 'closed' });
    const key = `${server.address}#${server.port}`;
    let channel = this.channels.get(key);
    if (!channel) this.channels.set(key, (channel = new UdpChannel(this.factory, server)));
    return channel.exchange(query, questionEnd, timeoutMs);
  }

  tcp(server: UpstreamServer, query: Buffer, timeoutMs: number): Promise<ExchangeResult> {
    if (this.closed) return Promise.resolve({ ok: false, reason: 'closed' });
    return exchangeTcp(this.factory, server, query, timeoutMs, this.tcpAbort.signal);
  }

  /** Queries in flight are answered 'closed' at once (the forwarder turns that into SERVFAIL). */
  close(): void {
    this.closed = true;
    this.tcpAbort.abort();
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }
}
