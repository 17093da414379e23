/**
 * Exchanging one query with one upstream server, over UDP or TCP, from a given network namespace.
 *
 * UDP: a socket of its own per query (random source port, CSPRNG ID), connected to the server, and an
 * answer taken only from the server's address and port with our ID and our question; see exchangeUdp.
 * All sandboxes' queries leave the daemon's namespace side by side, so a shared socket (one fixed port)
 * would let a process in one sandbox race forged answers into another sandbox's lookups.
 * TCP: one connection per query (RFC 7766 framing), as Docker does; used for TCP clients and when a UDP
 * answer comes back truncated.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { setMaxListeners } from 'node:events';
import net from 'node:net';
import { canonicalIp, type IpFamily } from '../util/ip.js';
import { HEADER_SIZE, isResponse } from './codec.js';
import { type NamespaceHandle, type NetnsSockets } from './netns-socket.js';
import type { UpstreamServer } from './resolv-conf.js';

export type ExchangeFailure = 'timeout' | 'unreachable' | 'busy' | 'closed';
export type ExchangeResult = { ok: true; response: Buffer } | { ok: false; reason: ExchangeFailure };

/** Where upstream sockets come from: the daemon's own namespace, or a sandbox's. */
export interface SocketFactory {
  udp(family: IpFamily): Promise<dgram.Socket>;
  tcp(family: IpFamily): net.Socket;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/** Upstream servers (and bind addresses) are always IP literals: skip dns.lookup and its extra tick. */
function literalLookup(address: string, _options: unknown, callback: LookupCallback): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** Sockets in the namespace the daemon runs in (and the unit tests). */
export class CurrentNamespaceSockets implements SocketFactory {
  async udp(family: IpFamily): Promise<dgram.Socket> {
    // One answer per socket: the default receive buffer is plenty. The server is an IP literal: no lookup.
    return dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
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

  async udp(family: IpFamily): Promise<dgram.Socket> {
    const fd = this.netns.udpOnRandomPortIn(this.ns, family); // bound now: see udpOnRandomPortIn
    const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
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

/** Why an upstream datagram was dropped instead of taken as the answer. */
export type MismatchReason = 'peer' | 'not-response' | 'id' | 'question';

/** What the pool reports about answers it refused (possible spoofing attempts). */
export interface UpstreamPoolStats {
  mismatched: number;
}

export type MismatchListener = (server: UpstreamServer, reason: MismatchReason) => void;

const ID_SPACE = 65536;

/**
 * One query over UDP from a socket of its own: a fresh, kernel-chosen random source port (Linux picks
 * UDP ephemeral ports at random) and a CSPRNG ID, so an off-path forger must hit 32 unknown bits, and a
 * port it may have learned from one query is worthless for the next. The socket is connected, so the
 * kernel delivers only datagrams from the server's address and port, and an ICMP error ("port
 * unreachable" from a dead server) comes back as ECONNREFUSED on this query's socket alone. An answer
 * must also carry our ID and echo our question (name case-insensitively, type, class); anything else is
 * dropped and reported, and the real answer can still win.
 */
function exchangeUdp(
  factory: SocketFactory,
  server: UpstreamServer,
  query: Buffer,
  questionEnd: number,
  timeoutMs: number,
  inFlight: Set<() => void>,
  onMismatch: MismatchListener,
): Promise<ExchangeResult> {
  const id = randomInt(ID_SPACE);
  const clientId = query.readUInt16BE(0);
  const wire = Buffer.from(query);
  wire.writeUInt16BE(id, 0);
  const question = wire.subarray(HEADER_SIZE, questionEnd);
  return new Promise((resolve) => {
    let socket: dgram.Socket | undefined;
    let done = false;
    const finish = (result: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      inFlight.delete(abort);
      if (socket) closeQuietly(socket);
      resolve(result);
    };
    const abort = (): void => finish({ ok: false, reason: 'closed' });
    inFlight.add(abort);
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), timeoutMs);
    const unreachable = (): void => finish({ ok: false, reason: 'unreachable' });
    factory.udp(server.family).then((opened) => {
      if (done) {
        closeQuietly(opened);
        return;
      }
      socket = opened;
      opened.on('error', unreachable); // ICMP errors (ECONNREFUSED, EHOSTUNREACH) of this query only
      opened.on('message', (msg, peer) => {
        const mismatch = answerMismatch(msg, peer, server, id, question);
        if (mismatch) {
          onMismatch(server, mismatch);
          return;
        }
        msg.writeUInt16BE(clientId, 0);
        finish({ ok: true, response: msg });
      });
      opened.connect(server.port, server.address, (err?: Error) => {
        if (err) return unreachable();
        if (done) return;
        opened.send(wire, (sendErr) => sendErr && unreachable());
      });
    }, unreachable);
  });
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    /* already closed */
  }
}

/** Why `msg` is not the answer to our query, or undefined when it is. */
export function answerMismatch(
  msg: Buffer,
  peer: { address: string; port: number },
  server: Pick<UpstreamServer, 'address' | 'port'>,
  id: number,
  question: Buffer,
): MismatchReason | undefined {
  if (peer.port !== server.port || (peer.address !== server.address && canonicalIp(peer.address) !== server.address)) return 'peer';
  if (!isResponse(msg)) return 'not-response';
  if (msg.readUInt16BE(0) !== id) return 'id';
  return echoesQuestion(msg, question) ? undefined : 'question';
}

/** Exactly one question, equal to ours: name case-insensitively (0x20 randomisation), type and class. */
function echoesQuestion(msg: Buffer, question: Buffer): boolean {
  if (msg.readUInt16BE(4) !== 1) return false;
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
    // Chunks are kept and joined once the announced length is there (not concatenated per chunk).
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < 2) return;
      if (chunks[0]!.length < 2) chunks.splice(0, chunks.length, Buffer.concat(chunks, size));
      const length = chunks[0]!.readUInt16BE(0);
      if (size < 2 + length) return;
      const received = Buffer.concat(chunks, size);
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

/** All upstream traffic leaving one namespace: a socket per UDP query, a connection per TCP query. */
export class UpstreamPool {
  /** Aborts the UDP exchanges in flight when the pool closes (a detached sandbox keeps no sockets). */
  private readonly udpInFlight = new Set<() => void>();
  /** Aborts the TCP exchanges in flight when the pool closes. */
  private readonly tcpAbort = new AbortController();
  private readonly counters: UpstreamPoolStats = { mismatched: 0 };
  private readonly onMismatch: MismatchListener;
  private closed = false;

  constructor(
    private readonly factory: SocketFactory,
    onMismatch?: MismatchListener,
  ) {
    setMaxListeners(0, this.tcpAbort.signal); // one listener per TCP exchange in flight, by design
    this.onMismatch = (server, reason) => {
      this.counters.mismatched++;
      onMismatch?.(server, reason);
    };
  }

  udp(server: UpstreamServer, query: Buffer, questionEnd: number, timeoutMs: number): Promise<ExchangeResult> {
    if (this.closed) return Promise.resolve({ ok: false, reason: 'closed' });
    return exchangeUdp(this.factory, server, query, questionEnd, timeoutMs, this.udpInFlight, this.onMismatch);
  }

  tcp(server: UpstreamServer, query: Buffer, timeoutMs: number): Promise<ExchangeResult> {
    if (this.closed) return Promise.resolve({ ok: false, reason: 'closed' });
    return exchangeTcp(this.factory, server, query, timeoutMs, this.tcpAbort.signal);
  }

  stats(): UpstreamPoolStats {
    return { ...this.counters };
  }

  /** Queries in flight are answered 'closed' at once (the forwarder turns that into SERVFAIL). */
  close(): void {
    this.closed = true;
    this.tcpAbort.abort();
    for (const abort of [...this.udpInFlight]) abort();
  }
}
