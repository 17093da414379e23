/**
 * The embedded DNS server: one object in the daemon serving every sandbox at 127.0.0.11:53 (UDP and TCP)
 * inside the sandbox's own network namespace. lo owns all of 127/8, so no DNAT is needed, and the
 * listening sockets are created in the namespace (see netns-socket.ts), so the queries never leave it.
 * The socket a query arrives on tells which sandbox asked.
 *
 * Record changes go to the DnsRegistry and apply to the next query: sockets are never reopened, so no
 * query is dropped on a change (aardvark-dns reloads and drops packets).
 */
import dgram from 'node:dgram';
import { fstatSync, statSync } from 'node:fs';
import net from 'node:net';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { DEFAULT_FORWARDER_OPTIONS, Forwarder, InFlightBudget, type ForwarderOptions, type ForwarderStats } from './forwarder.js';
import { NetnsSockets, type NamespaceHandle } from './netns-socket.js';
import { LOCAL_TTL, QueryHandler, type HandlerStats, type QueryOrigin } from './query-handler.js';
import type { DnsRegistry } from './registry.js';
import { EMBEDDED_DNS_ADDRESS } from './resolv-conf.js';
import { DEFAULT_TCP_OPTIONS, SandboxTcpState, serveDnsTcp, type DnsTcpOptions } from './tcp-connection.js';
import { CurrentNamespaceSockets, NamespaceSockets, UpstreamPool, type MismatchListener } from './upstream.js';

export interface EmbeddedDnsServerOptions {
  /** Where the server listens inside each sandbox. Default 127.0.0.11, port 53. */
  listenAddress: string;
  port: number;
  /** TTL of local answers; Docker uses 600. */
  ttl: number;
  forwarder: ForwarderOptions;
  /** Bounds on DNS over TCP (see tcp-connection.ts). */
  tcp: DnsTcpOptions;
}

export const DEFAULT_SERVER_OPTIONS: EmbeddedDnsServerOptions = {
  listenAddress: EMBEDDED_DNS_ADDRESS,
  port: 53,
  ttl: LOCAL_TTL,
  forwarder: DEFAULT_FORWARDER_OPTIONS,
  tcp: DEFAULT_TCP_OPTIONS,
};

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

function literalLookup(address: string, _options: unknown, callback: LookupCallback): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** The namespace the daemon's own sockets live in (its main thread's). */
const DAEMON_NAMESPACE = '/proc/thread-self/ns/net';

/** Whether the open namespace `fd` is the one at `path` (same nsfs inode). */
function sameNamespace(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = statSync(path);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

class SandboxListener implements QueryOrigin {
  readonly tcpState = new SandboxTcpState();
  readonly budget: InFlightBudget;
  udp: dgram.Socket | undefined;
  tcp: net.Server | undefined;
  closed = false;
  inDaemonNamespace = false;
  private pool: UpstreamPool | undefined;

  constructor(
    readonly sandboxId: string,
    readonly netnsPath: string,
    readonly ns: NamespaceHandle,
    private readonly netns: NetnsSockets,
    maxInFlight: number,
    private readonly onMismatch: MismatchListener,
  ) {
    this.budget = new InFlightBudget(maxInFlight);
  }

  sandboxPool(): UpstreamPool {
    this.pool ??= new UpstreamPool(new NamespaceSockets(this.netns, this.ns), this.onMismatch);
    return this.pool;
  }

  /** Answers the sandbox's own upstream sockets dropped (wrong peer, ID or question). */
  mismatched(): number {
    return this.pool?.stats().mismatched ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pool?.close();
    for (const connection of this.tcpState.connections) connection.destroy();
    await Promise.all([
      new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve())),
    ]);
    this.netns.closeNamespace(this.ns);
  }
}

export interface EmbeddedDnsStats {
  sandboxes: number;
  queries: HandlerStats;
  forwarding: ForwarderStats & {
    /** Upstream datagrams dropped: wrong source, ID or question (stray, late or forged answers). */
    mismatchedAnswers: number;
  };
}

export class EmbeddedDnsServer {
  readonly options: EmbeddedDnsServerOptions;
  private readonly listeners = new Map<string, SandboxListener>();
  /** Attach / detach per sandbox run one at a time (a second attach waits for the first). */
  private readonly transitions = new Map<string, Promise<void>>();
  private readonly daemonPool: UpstreamPool;
  private readonly onMismatch: MismatchListener;
  private readonly forwarder: Forwarder;
  private readonly handler: QueryHandler;
  private netnsSockets: NetnsSockets | undefined;
  private closed = false;

  constructor(
    registry: DnsRegistry,
    private readonly logger: Logger,
    options: Partial<EmbeddedDnsServerOptions> = {},
    netns?: NetnsSockets,
  ) {
    this.options = { ...DEFAULT_SERVER_OPTIONS, ...options };
    this.netnsSockets = netns;
    this.onMismatch = (server, reason) =>
      this.logger.debug('dns: dropped an upstream datagram that is not our answer', { upstream: server.address, port: server.port, reason });
    this.daemonPool = new UpstreamPool(new CurrentNamespaceSockets(), this.onMismatch);
    this.forwarder = new Forwarder(this.options.forwarder, logger);
    this.handler = new QueryHandler(registry, this.forwarder, this.daemonPool, logger, this.options.ttl);
  }

  /**
   * Start answering inside the namespace at `netnsPath` for `sandboxId`. Idempotent for the same path;
   * a different path replaces the old listeners. Throws KernelError when the namespace cannot be entered
   * or the address is taken there.
   */
  attach(sandboxId: string, netnsPath: string): Promise<void> {
    return this.serialise(sandboxId, async () => {
      if (this.closed) throw new UnavailableError('the embedded DNS server is shut down');
      const current = this.listeners.get(sandboxId);
      if (current && current.netnsPath === netnsPath) return;
      if (current) await this.closeListener(current);
      await this.open(sandboxId, netnsPath);
    });
  }

  /** Stop answering for the sandbox; its forwarded queries in flight are dropped. No-op when not attached. */
  detach(sandboxId: string): Promise<void> {
    return this.serialise(sandboxId, async () => {
      const current = this.listeners.get(sandboxId);
      if (current) await this.closeListener(current);
    });
  }

  isAttached(sandboxId: string): boolean {
    return this.listeners.has(sandboxId);
  }

  attachedSandboxes(): string[] {
    return [...this.listeners.keys()];
  }

  stats(): EmbeddedDnsStats {
    let mismatchedAnswers = this.daemonPool.stats().mismatched;
    for (const listener of this.listeners.values()) mismatchedAnswers += listener.mismatched();
    return { sandboxes: this.listeners.size, queries: this.handler.stats(), forwarding: { ...this.forwarder.stats(), mismatchedAnswers } };
  }

  /** Detach every sandbox (after any attach in progress) and release the upstream sockets. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.transitions.values()]);
    await Promise.all([...this.listeners.keys()].map((id) => this.detach(id)));
    this.daemonPool.close();
    this.netnsSockets?.close();
    this.netnsSockets = undefined;
  }

  private async open(sandboxId: string, netnsPath: string): Promise<void> {
    const netns = (this.netnsSockets ??= new NetnsSockets());
    const ns = netns.openNamespace(netnsPath);
    let fds;
    try {
      fds = netns.listeners(ns, this.options.listenAddress, this.options.port);
    } catch (err) {
      netns.closeNamespace(ns);
      throw err;
    }
    const listener = new SandboxListener(sandboxId, netnsPath, ns, netns, this.options.forwarder.maxInFlight, this.onMismatch);
    listener.inDaemonNamespace = sameNamespace(ns.fd, DAEMON_NAMESPACE);
    try {
      listener.udp = await this.adoptUdp(listener, fds.udp);
    } catch (err) {
      netns.closeFd(fds.tcp);
      await listener.close();
      throw err;
    }
    try {
      listener.tcp = await this.adoptTcp(listener, fds.tcp);
    } catch (err) {
      await listener.close();
      throw err;
    }
    this.listeners.set(sandboxId, listener);
    this.logger.debug('dns: attached', { sandbox: sandboxId, netns: netnsPath });
  }

  private async closeListener(listener: SandboxListener): Promise<void> {
    this.listeners.delete(listener.sandboxId);
    await listener.close();
    this.logger.debug('dns: detached', { sandbox: listener.sandboxId });
  }

  private adoptUdp(listener: SandboxListener, fd: number): Promise<dgram.Socket> {
    const family = this.options.listenAddress.includes(':') ? 'udp6' : 'udp4';
    // Replies go to the address a query came from, always an IP literal: skip dns.lookup and its tick.
    const socket = dgram.createSocket({ type: family, lookup: literalLookup });
    socket.on('message', (msg, peer) => this.onDatagram(listener, socket, msg, peer));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        // A failed send (client gone) must not kill the process; nothing else to do about it.
        socket.on('error', (err) => this.logger.debug('dns: udp error', { sandbox: listener.sandboxId, err }));
        resolve(socket);
      });
    });
  }

  private onDatagram(listener: SandboxListener, socket: dgram.Socket, msg: Buffer, peer: dgram.RemoteInfo): void {
    const reply = this.safeHandle(listener, msg, false);
    if (reply === undefined) return;
    if (Buffer.isBuffer(reply)) {
      socket.send(reply, peer.port, peer.address);
      return;
    }
    reply.then(
      (response) => {
        if (!listener.closed) socket.send(response, peer.port, peer.address);
      },
      (err: unknown) => this.logger.error('dns: forwarding failed', { sandbox: listener.sandboxId, err }),
    );
  }

  private adoptTcp(listener: SandboxListener, fd: number): Promise<net.Server> {
    const server = net.createServer((connection) => this.onConnection(listener, connection));
    server.maxConnections = this.options.tcp.maxConnections; // beyond: accepted and closed at once
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.logger.warn('dns: tcp listener error', { sandbox: listener.sandboxId, err }));
        resolve(server);
      });
    });
  }

  /** RFC 7766 framing; pipelined queries are answered as they complete, a bounded number at a time. */
  private onConnection(listener: SandboxListener, connection: net.Socket): void {
    if (listener.closed) {
      connection.destroy();
      return;
    }
    serveDnsTcp(connection, listener.tcpState, this.options.tcp, (message) => {
      const reply = this.safeHandle(listener, message, true);
      if (reply === undefined || Buffer.isBuffer(reply)) return reply;
      return reply.catch((err: unknown) => {
        this.logger.error('dns: forwarding failed', { sandbox: listener.sandboxId, err });
        return undefined;
      });
    });
  }

  private safeHandle(listener: SandboxListener, msg: Buffer, overTcp: boolean): Buffer | Promise<Buffer> | undefined {
    try {
      return this.handler.handle(listener, msg, overTcp);
    } catch (err) {
      // A bug, not bad input (the codec never throws on bytes): log it and keep serving.
      this.logger.error('dns: query handling failed', { sandbox: listener.sandboxId, err });
      return undefined;
    }
  }

  private serialise(sandboxId: string, step: () => Promise<void>): Promise<void> {
    const previous = this.transitions.get(sandboxId) ?? Promise.resolve();
    const next = previous.then(step);
    const tail = next.catch(() => {}); // the stored chain never rejects; the caller gets the error
    this.transitions.set(sandboxId, tail);
    void tail.then(() => {
      if (this.transitions.get(sandboxId) === tail) this.transitions.delete(sandboxId);
    });
    return next;
  }
}
