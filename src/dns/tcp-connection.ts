/**
 * One DNS-over-TCP client connection (RFC 7766 framing: a 2-byte length, then the message), bounded so
 * that no client can make the daemon hold more than a little for it:
 * - per sandbox: at most `maxConnections` connections (the listener's maxConnections) and at most
 *   `maxBufferedBytes` of partial queries plus at most `maxBufferedBytes` of answers the clients have
 *   not read, over all its connections; a connection that would go beyond is closed;
 * - time: `idleTimeoutMs` without any traffic closes the connection, and a message must be complete
 *   within `messageTimeoutMs` of its first byte, so a trickle (a byte every few seconds) that keeps
 *   resetting the idle timer is cut off all the same;
 * - memory: a message is copied once into a buffer of its announced size (no concatenation per chunk,
 *   which made a 64 KiB message sent byte by byte copy about 2 GB);
 * - work: at most `maxPipelined` queries of one connection are answered at a time; beyond that the
 *   connection is paused (TCP backpressure) until an answer goes out.
 */
import type net from 'node:net';

export interface DnsTcpOptions {
  /** A connection without traffic this long is closed. */
  idleTimeoutMs: number;
  /** A message must be complete this long after its first byte arrived. */
  messageTimeoutMs: number;
  /** Connections per sandbox. */
  maxConnections: number;
  /** Per sandbox: partial queries held, and (separately) answers written but not yet read. */
  maxBufferedBytes: number;
  /** Queries of one connection being answered at once. */
  maxPipelined: number;
}

export const DEFAULT_TCP_OPTIONS: DnsTcpOptions = {
  idleTimeoutMs: 10_000,
  messageTimeoutMs: 5_000,
  maxConnections: 256,
  maxBufferedBytes: 1024 * 1024,
  maxPipelined: 32,
};

/** What one sandbox's TCP clients hold in the daemon. */
export class SandboxTcpState {
  readonly connections = new Set<net.Socket>();
  /** Bytes reserved for partial queries (their announced sizes) over all connections. */
  bufferedQueries = 0;

  /** Answers written but not read by the clients yet, over all connections. */
  unreadAnswers(): number {
    let total = 0;
    for (const connection of this.connections) total += connection.writableLength;
    return total;
  }
}

/** The answer to one query: bytes now, later, or nothing (not DNS: the connection is closed). */
export type TcpAnswerer = (message: Buffer) => Buffer | Promise<Buffer | undefined> | undefined;

export function serveDnsTcp(connection: net.Socket, state: SandboxTcpState, options: DnsTcpOptions, answer: TcpAnswerer): void {
  new DnsTcpConnection(connection, state, options, answer).start();
}

class DnsTcpConnection {
  /** Bytes received and not yet parsed (at most one read's worth, while paused). */
  private input: Buffer[] = [];
  private header: number[] = [];
  private body: Buffer | undefined;
  private filled = 0;
  private inFlight = 0;
  private deadline: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly connection: net.Socket,
    private readonly state: SandboxTcpState,
    private readonly options: DnsTcpOptions,
    private readonly answer: TcpAnswerer,
  ) {}

  start(): void {
    const { connection, state } = this;
    state.connections.add(connection);
    connection.setNoDelay(true);
    connection.setTimeout(this.options.idleTimeoutMs, () => connection.destroy());
    connection.on('close', () => this.onClose());
    connection.on('error', () => connection.destroy());
    connection.on('data', (chunk: Buffer) => {
      this.input.push(chunk);
      this.parse();
    });
  }

  private onClose(): void {
    this.closed = true;
    this.state.connections.delete(this.connection);
    this.release();
    clearTimeout(this.deadline);
    this.input = [];
  }

  /** Parse what has arrived, as long as the connection may have queries answered. */
  private parse(): void {
    while (!this.closed && this.input.length > 0) {
      if (this.inFlight >= this.options.maxPipelined) {
        this.connection.pause(); // resumed when an answer goes out
        return;
      }
      const chunk = this.input.shift()!;
      const rest = this.consume(chunk);
      if (rest && rest.length > 0) this.input.unshift(rest);
    }
    if (!this.closed && this.connection.isPaused() && this.inFlight < this.options.maxPipelined) this.connection.resume();
  }

  /** Take bytes of `chunk` into the current message; returns what follows a completed message. */
  private consume(chunk: Buffer): Buffer | undefined {
    let offset = 0;
    if (this.body === undefined) {
      if (this.header.length === 0 && chunk.length > 0) this.startDeadline();
      while (this.header.length < 2 && offset < chunk.length) this.header.push(chunk[offset++]!);
      if (this.header.length < 2) return undefined;
      const length = (this.header[0]! << 8) | this.header[1]!;
      if (this.state.bufferedQueries + length > this.options.maxBufferedBytes) {
        this.connection.destroy(); // the sandbox holds too much half-sent data already
        return undefined;
      }
      this.state.bufferedQueries += length;
      this.body = Buffer.allocUnsafe(length);
      this.filled = 0;
    }
    const take = Math.min(this.body.length - this.filled, chunk.length - offset);
    chunk.copy(this.body, this.filled, offset, offset + take);
    this.filled += take;
    offset += take;
    if (this.filled < this.body.length) return undefined;
    const message = this.body;
    this.release();
    this.header = [];
    clearTimeout(this.deadline);
    this.deadline = undefined;
    if (offset < chunk.length) this.startDeadline(); // the next message has begun
    this.dispatch(message);
    return chunk.subarray(offset);
  }

  private startDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.connection.destroy(), this.options.messageTimeoutMs);
  }

  private release(): void {
    if (this.body) this.state.bufferedQueries -= this.body.length;
    this.body = undefined;
    this.filled = 0;
  }

  private dispatch(message: Buffer): void {
    const reply = this.answer(message);
    if (reply === undefined) {
      this.connection.destroy(); // not DNS: do not keep talking
      return;
    }
    if (Buffer.isBuffer(reply)) {
      this.write(reply);
      return;
    }
    this.inFlight++;
    const settle = (response: Buffer | undefined): void => {
      this.inFlight--;
      if (response) this.write(response);
      this.parse();
    };
    reply.then(settle, () => settle(undefined));
  }

  private write(response: Buffer): void {
    const { connection } = this;
    if (this.closed || connection.destroyed) return;
    if (this.state.unreadAnswers() + response.length + 2 > this.options.maxBufferedBytes) {
      connection.destroy(); // the clients send but do not read: stop buffering for them
      return;
    }
    const framed = Buffer.allocUnsafe(2 + response.length);
    framed.writeUInt16BE(response.length, 0);
    response.copy(framed, 2);
    connection.write(framed);
  }
}
