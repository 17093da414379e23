/**
 * A tiny upstream DNS server for tests and benchmarks (never a real internet resolver): answers A records
 * from a fixed table, NXDOMAIN otherwise, over UDP and TCP. Its behaviour can be switched to model
 * broken upstreams: silent (timeouts), SERVFAIL, or truncating every UDP answer (forcing TCP).
 * Listens on a given address, or on descriptors created elsewhere (inside a test namespace).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { encodeAnswer, encodeError, encodeRejection, parseQuery, Rcode, RecordType, responseLimit } from './codec.js';
import { addressBytes } from './message.js';

export type FakeUpstreamMode = 'answer' | 'silent' | 'servfail' | 'truncate-udp';

export interface FakeUpstreamListen {
  /** Bind here (port 0 = any free port)... */
  address?: string;
  port?: number;
  /** ...or adopt these descriptors (already bound; TCP already listening). */
  fds?: { udp: number; tcp: number };
}

export class FakeUpstream {
  mode: FakeUpstreamMode = 'answer';
  /** Queries seen, as "name/type/transport" (name in lowercase). */
  readonly seen: string[] = [];
  /** Source ports of the UDP queries seen, in order. */
  readonly udpSourcePorts: number[] = [];
  /** Answer UDP queries this much later (a slow upstream: the window a forger races against). */
  delayMs = 0;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();

  constructor(private readonly records: ReadonlyMap<string, readonly string[]>) {}

  async start(listen: FakeUpstreamListen): Promise<{ address: string; port: number }> {
    const family = listen.address?.includes(':') ? 'udp6' : 'udp4';
    const udp = dgram.createSocket({ type: family, recvBufferSize: 1 << 20 });
    this.udp = udp;
    udp.on('message', (msg, peer) => {
      this.udpSourcePorts.push(peer.port);
      const reply = this.reply(msg, 'udp');
      if (!reply) return;
      if (this.delayMs > 0) setTimeout(() => this.udp?.send(reply, peer.port, peer.address), this.delayMs);
      else udp.send(reply, peer.port, peer.address);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      const done = () => {
        udp.off('error', reject);
        resolve();
      };
      if (listen.fds) udp.bind({ fd: listen.fds.udp }, done);
      else udp.bind({ address: listen.address ?? '127.0.0.1', port: listen.port ?? 0 }, done);
    });
    const bound = udp.address();
    const tcp = net.createServer((connection) => this.serveTcp(connection));
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      if (listen.fds) tcp.listen({ fd: listen.fds.tcp }, resolve);
      else tcp.listen({ host: bound.address, port: bound.port }, resolve);
    });
    return { address: bound.address, port: bound.port };
  }

  async stop(): Promise<void> {
    for (const connection of this.connections) connection.destroy();
    await Promise.all([
      new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }

  private serveTcp(connection: net.Socket): void {
    this.connections.add(connection);
    connection.on('close', () => this.connections.delete(connection));
    connection.on('error', () => connection.destroy());
    let buffered = Buffer.alloc(0);
    connection.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        const reply = this.reply(message, 'tcp');
        if (!reply) continue;
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        connection.write(framed);
      }
    });
  }

  /** Built on the hot-path codec, so a benchmark's upstream is not its bottleneck. */
  private reply(raw: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    const parsed = parseQuery(raw);
    if (!parsed) return undefined;
    if (!parsed.ok) return encodeRejection(parsed.rejection);
    const query = parsed.query;
    this.seen.push(`${query.name}/${query.type}/${transport}`);
    if (this.mode === 'silent') return undefined;
    if (this.mode === 'servfail') return encodeError(raw, query, Rcode.SERVFAIL);
    if (this.mode === 'truncate-udp' && transport === 'udp') {
      const truncated = encodeError(raw, query, Rcode.NOERROR);
      truncated.writeUInt16BE(truncated.readUInt16BE(2) | 0x0200, 2);
      return truncated;
    }
    const addresses = this.records.get(query.name);
    if (!addresses) return encodeError(raw, query, Rcode.NXDOMAIN);
    const records = query.type === RecordType.A ? addresses.map((a) => ({ type: RecordType.A, rdata: addressBytes(a) })) : [];
    return encodeAnswer(raw, query, { rcode: Rcode.NOERROR, authoritative: true, ttl: 30, records }, responseLimit(query, transport === 'tcp'));
  }
}
