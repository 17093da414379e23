/**
 * DNS over TCP on the real kernel: the embedded server answering at 127.0.0.11:53 inside two throwaway
 * "sandbox" namespaces (cnmt-*), clients connecting from inside those namespaces. A trickling client is
 * cut off although it never stays idle; one sandbox's connections beyond its cap are refused while
 * another sandbox (and the same one, once it closes one) is still answered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RecordType } from '../../src/dns/codec.js';
import { decodeMessage, encodeQuery } from '../../src/dns/message.js';
import { NetnsSockets } from '../../src/dns/netns-socket.js';
import { DnsRegistry } from '../../src/dns/registry.js';
import { EmbeddedDnsServer } from '../../src/dns/server.js';
import { DEFAULT_TCP_OPTIONS } from '../../src/dns/tcp-connection.js';
import { createTestNetns, deleteTestNetns, isRoot, netnsPath } from '../helpers/netns.js';
import { silentLogger } from '../../src/util/log.js';

const SKIP = isRoot() ? false : 'needs root';
const MAX_CONNECTIONS = 4;

interface Client {
  socket: net.Socket;
  /** Answers received, decoded: the first A record's address (or the rcode). */
  answers: string[];
  closed: Promise<void>;
  isClosed(): boolean;
  ask(name: string, id?: number): void;
}

function framed(name: string, id: number): Buffer {
  const query = encodeQuery(id, name, RecordType.A);
  const out = Buffer.alloc(2 + query.length);
  out.writeUInt16BE(query.length, 0);
  query.copy(out, 2);
  return out;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('embedded DNS over TCP: bounds per sandbox (real kernel)', { skip: SKIP }, () => {
  const ns = { a: '', b: '' };
  const registry = new DnsRegistry();
  const netns = SKIP ? undefined : new NetnsSockets();
  let server: EmbeddedDnsServer;
  const clients: net.Socket[] = [];

  before(async () => {
    ns.a = createTestNetns();
    ns.b = createTestNetns();
    registry.setNetwork({ id: 'n1', name: 'n1', internal: true });
    for (const [sb, ip] of [['a', '10.3.0.2'], ['b', '10.3.0.3']] as const) {
      registry.addEndpoint({ id: `${sb}@n1`, networkId: 'n1', sandboxId: `sb-${sb}`, sandboxName: `s${sb}`, hostname: `s${sb}`, shortId: `${sb}`.padEnd(12, '0'), aliases: [], ipv4: `${ip}/24` });
    }
    server = new EmbeddedDnsServer(registry, silentLogger, {
      tcp: { ...DEFAULT_TCP_OPTIONS, idleTimeoutMs: 3000, messageTimeoutMs: 1500, maxConnections: MAX_CONNECTIONS },
    });
    await server.attach('sb-a', netnsPath(ns.a));
    await server.attach('sb-b', netnsPath(ns.b));
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await server?.close();
    netns?.close();
    for (const name of Object.values(ns)) if (name) deleteTestNetns(name);
  });

  /** A TCP connection to 127.0.0.11:53 made inside the namespace. */
  async function connect(sandbox: string): Promise<Client> {
    const handle = netns!.openNamespace(netnsPath(sandbox));
    let fd: number;
    try {
      fd = netns!.socketIn(handle, 'tcp', 4);
    } finally {
      netns!.closeNamespace(handle);
    }
    const socket = new net.Socket({ fd, readable: true, writable: true });
    clients.push(socket);
    const answers: string[] = [];
    let closed = false;
    let pending = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const m = decodeMessage(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        answers.push(String(m.answers[0]?.data ?? `rcode ${m.rcode}`));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
    });
    socket.on('error', () => {});
    const closedPromise = new Promise<void>((resolve) => socket.once('close', () => ((closed = true), resolve())));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(53, '127.0.0.11', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return { socket, answers, closed: closedPromise, isClosed: () => closed, ask: (name, id = 1) => socket.write(framed(name, id)) };
  }

  it('cuts off a client trickling one byte at a time, though it is never idle long enough to time out', async () => {
    // The control: the same bytes one by one without pauses are answered.
    const quick = await connect(ns.a);
    for (const byte of framed('sb', 7)) {
      quick.socket.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    await until(() => quick.answers.length === 1, 'the quick client is answered');
    assert.deepEqual(quick.answers, ['10.3.0.3']);
    quick.socket.destroy();

    // A byte every 500 ms: well inside the 3 s idle timeout, but the message would take ~15 s.
    const slow = await connect(ns.a);
    const bytes = framed('sb', 8);
    let sent = 0;
    while (!slow.isClosed() && sent < bytes.length) {
      slow.socket.write(bytes.subarray(sent, sent + 1));
      sent++;
      await Promise.race([slow.closed, new Promise((r) => setTimeout(r, 500))]);
    }
    await Promise.race([slow.closed, new Promise((r) => setTimeout(r, 5000))]);
    assert.ok(slow.isClosed(), 'the server closed the trickling connection');
    assert.ok(sent < bytes.length, `closed before the whole query arrived (${sent} of ${bytes.length} bytes sent)`);
    assert.deepEqual(slow.answers, []);
  });

  it(`refuses a sandbox's connection beyond ${MAX_CONNECTIONS} while another sandbox is still answered`, async () => {
    const held: Client[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const c = await connect(ns.a);
      c.ask('sb', i);
      await until(() => c.answers.length === 1, `connection ${i} answered`);
      held.push(c);
    }
    const extra = await connect(ns.a); // the kernel accepts; the server closes it at once
    extra.ask('sb', 99);
    await Promise.race([extra.closed, until(() => extra.answers.length > 0, 'an answer or a close')]);
    assert.deepEqual(extra.answers, [], 'no answer on the connection over the cap');

    const other = await connect(ns.b);
    other.ask('sa', 5);
    await until(() => other.answers.length === 1, 'sandbox b answered');
    assert.deepEqual(other.answers, ['10.3.0.2']);

    for (const c of held) assert.equal(c.isClosed(), false, 'the connections within the cap stay open');
    held[0]!.socket.destroy();
    await held[0]!.closed;
    // The listener frees the slot once it has processed the close: retry until then (never forever).
    let answered: string[] = [];
    for (let attempt = 0; attempt < 50 && answered.length === 0; attempt++) {
      const again = await connect(ns.a);
      again.ask('sb', 6);
      await Promise.race([again.closed, until(() => again.answers.length > 0, 'an answer or a close')]);
      answered = again.answers;
      again.socket.destroy();
    }
    assert.deepEqual(answered, ['10.3.0.3'], 'sandbox a is answered again once one of its connections closed');
    for (const c of held) c.socket.destroy();
    other.socket.destroy();
  });
});
