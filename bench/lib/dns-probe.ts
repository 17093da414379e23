/**
 * Asks a sandbox's embedded DNS (127.0.0.11 inside its namespace) from this process, over a UDP socket
 * made in that namespace (src/dns's NamespaceSockets): one query costs a round trip, not a process
 * spawn, so a bench can poll "does this host answer the name yet" every millisecond.
 */
import type dgram from 'node:dgram';
import { RecordType } from '../../src/dns/codec.js';
import { decodeMessage, encodeQuery } from '../../src/dns/message.js';
import { NetnsSockets, type NamespaceHandle } from '../../src/dns/netns-socket.js';
import { NamespaceSockets } from '../../src/dns/upstream.js';

export class SandboxDnsProbe {
  private nextId = 1;
  private waiting: { id: number; resolve: (addresses: string[]) => void } | undefined;

  private constructor(
    private readonly sockets: NetnsSockets,
    private readonly ns: NamespaceHandle,
    private readonly socket: dgram.Socket,
  ) {
    socket.on('message', (msg) => {
      const w = this.waiting;
      if (!w || msg.readUInt16BE(0) !== w.id) return;
      this.waiting = undefined;
      const answer = decodeMessage(msg);
      w.resolve(answer.answers.filter((r) => r.type === RecordType.A).map((r) => String(r.data)));
    });
  }

  /** A probe in the namespace at `netnsPath` (a sandbox's NetnsPath). */
  static async open(netnsPath: string): Promise<SandboxDnsProbe> {
    const sockets = new NetnsSockets();
    const ns = sockets.openNamespace(netnsPath);
    const socket = await new NamespaceSockets(sockets, ns).udp(4);
    return new SandboxDnsProbe(sockets, ns, socket);
  }

  /** The A records 127.0.0.11 answers for `name` (empty: not a name it has); rejects after `timeoutMs`. */
  addresses(name: string, timeoutMs = 1000): Promise<string[]> {
    if (this.waiting) return Promise.reject(new Error('one query at a time'));
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffff) + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no answer from 127.0.0.11 for ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        id,
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
      };
      this.socket.send(encodeQuery(id, name, RecordType.A), 53, '127.0.0.11');
    });
  }

  close(): void {
    this.socket.close();
    this.sockets.closeNamespace(this.ns);
    this.sockets.close();
  }
}
