/**
 * Upstream exchanges against a hand-driven "upstream" socket on 127.0.0.1 (the test's own namespace,
 * loopback only): the test sees every query the pool sends (its source port and ID) and decides what
 * comes back, from where, and when, to play a forger and a dead server.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { CLASS_IN, parseQuery, Rcode, RecordType } from '../../src/dns/codec.js';
import { decodeMessage, encodeMessage, encodeQuery, type DnsQuestion } from '../../src/dns/message.js';
import type { UpstreamServer } from '../../src/dns/resolv-conf.js';
import { answerMismatch, CurrentNamespaceSockets, UpstreamPool, type ExchangeResult, type MismatchReason } from '../../src/dns/upstream.js';

interface Received {
  id: number;
  port: number;
  question: DnsQuestion;
}

/** A UDP socket on 127.0.0.1 that records queries and answers only when told to. */
class ManualUpstream {
  readonly received: Received[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg, peer) => {
      const m = decodeMessage(msg);
      this.received.push({ id: m.id, port: peer.port, question: m.questions[0]! });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(port = 0): Promise<ManualUpstream> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve());
    });
    return new ManualUpstream(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  async nth(n: number): Promise<Received> {
    while (this.received.length <= n) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.received[n]!;
  }

  send(to: Received, spec: { id?: number; question?: DnsQuestion; address?: string; response?: boolean }, via = this.socket): Promise<void> {
    const msg = encodeMessage({
      id: spec.id ?? to.id,
      response: spec.response ?? true,
      rcode: Rcode.NOERROR,
      questions: [spec.question ?? to.question],
      answers: [{ name: (spec.question ?? to.question).name, type: RecordType.A, class: CLASS_IN, ttl: 30, data: spec.address ?? '192.0.2.1' }],
    });
    return new Promise((resolve, reject) => via.send(msg, to.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

function server(port: number): UpstreamServer {
  return { address: '127.0.0.1', port, family: 4, from: 'daemon' };
}

function ask(pool: UpstreamPool, port: number, name: string, clientId = 0x1234, timeoutMs = 5000): Promise<ExchangeResult> {
  const raw = encodeQuery(clientId, name, RecordType.A);
  const parsed = parseQuery(raw);
  assert.ok(parsed?.ok);
  return pool.udp(server(port), raw, parsed.query.questionEnd, timeoutMs);
}

function answerOf(result: ExchangeResult): { id: number; addresses: unknown[] } {
  assert.ok(result.ok, `expected an answer, got ${JSON.stringify(result)}`);
  const m = decodeMessage(result.response);
  return { id: m.id, addresses: m.answers.map((a) => a.data) };
}

describe('UpstreamPool over UDP', () => {
  const mismatches: MismatchReason[] = [];
  const pool = new UpstreamPool(new CurrentNamespaceSockets(), (_server, reason) => mismatches.push(reason));
  let upstream: ManualUpstream;

  before(async () => {
    upstream = await ManualUpstream.open();
  });

  afterEach(() => {
    mismatches.length = 0;
  });

  after(async () => {
    pool.close();
    await upstream.close();
  });

  it('drops answers with a wrong ID, a wrong question or no QR bit; the real answer still wins', async () => {
    const start = upstream.received.length;
    const pending = ask(pool, upstream.port, 'victim.example');
    const query = await upstream.nth(start);
    await upstream.send(query, { id: (query.id + 1) % 65536, address: '6.6.6.1' });
    await upstream.send(query, { question: { ...query.question, name: 'other.example' }, address: '6.6.6.2' });
    await upstream.send(query, { question: { ...query.question, type: RecordType.AAAA }, address: '6.6.6.3' });
    await upstream.send(query, { question: { ...query.question, class: 3 }, address: '6.6.6.4' });
    await upstream.send(query, { response: false, address: '6.6.6.5' });
    // A forger on another port of the right address: the connected socket never even sees it.
    const forger = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => forger.bind(0, '127.0.0.1', () => resolve()));
    await upstream.send(query, { address: '6.6.6.6' }, forger);
    forger.close();
    // The genuine answer, with the name in another case (0x20 randomisation): accepted.
    await upstream.send(query, { question: { ...query.question, name: 'ViCtIm.ExAmPlE' }, address: '192.0.2.53' });
    const answer = answerOf(await pending);
    assert.deepEqual(answer.addresses, ['192.0.2.53']);
    assert.equal(answer.id, 0x1234, "the client's ID is restored");
    assert.deepEqual(mismatches.sort(), ['id', 'not-response', 'question', 'question', 'question']);
    assert.equal(pool.stats().mismatched >= 5, true);
  });

  it('answerMismatch refuses a datagram from another address or port', () => {
    const raw = encodeMessage({ id: 7, response: true, questions: [{ name: 'a.example', type: RecordType.A, class: CLASS_IN }] });
    const question = raw.subarray(12);
    const s = server(53);
    assert.equal(answerMismatch(raw, { address: '127.0.0.1', port: 53 }, s, 7, question), undefined);
    assert.equal(answerMismatch(raw, { address: '127.0.0.1', port: 5353 }, s, 7, question), 'peer');
    assert.equal(answerMismatch(raw, { address: '127.0.0.2', port: 53 }, s, 7, question), 'peer');
    assert.equal(answerMismatch(raw, { address: '127.0.0.1', port: 53 }, s, 8, question), 'id');
  });

  it('gives every query its own source port', async () => {
    const start = upstream.received.length;
    for (let i = 0; i < 8; i++) {
      const pending = ask(pool, upstream.port, `p${i}.example`);
      await upstream.send(await upstream.nth(start + i), {});
      answerOf(await pending);
    }
    const ports = new Set(upstream.received.slice(start).map((r) => r.port));
    // The kernel picks each port at random: two of eight may collide by chance (p ≈ 0.1 %), not more.
    assert.ok(ports.size >= 7, `source ports ${[...ports].join(', ')}`);
  });

  it('draws IDs from a CSPRNG, not Math.random', async () => {
    const original = Math.random;
    Math.random = () => 0; // the old code sent ID 0 for every query sent alone
    try {
      const start = upstream.received.length;
      for (let i = 0; i < 16; i++) {
        const pending = ask(pool, upstream.port, `id${i}.example`);
        await upstream.send(await upstream.nth(start + i), {});
        answerOf(await pending);
      }
      const ids = new Set(upstream.received.slice(start).map((r) => r.id));
      assert.ok(ids.size >= 14, `IDs ${[...ids].join(', ')}`);
    } finally {
      Math.random = original;
    }
  });

  it('an ICMP error fails only the query it belongs to', async () => {
    const flaky = await ManualUpstream.open();
    const port = flaky.port;
    const waiting = ask(pool, port, 'waiting.example');
    const first = await flaky.nth(0);
    await flaky.close(); // nobody on the port now: the next query gets ICMP port unreachable
    const refused = await ask(pool, port, 'refused.example');
    assert.deepEqual(refused, { ok: false, reason: 'unreachable' });
    const back = await ManualUpstream.open(port); // the server is back and answers the first query
    try {
      await back.send(first, { address: '192.0.2.77' });
      assert.deepEqual(answerOf(await waiting).addresses, ['192.0.2.77']);
    } finally {
      await back.close();
    }
  });

  it('answers "closed" for queries in flight when the pool closes', async () => {
    const own = new UpstreamPool(new CurrentNamespaceSockets());
    const start = upstream.received.length;
    const pending = ask(own, upstream.port, 'closing.example');
    await upstream.nth(start);
    own.close();
    assert.deepEqual(await pending, { ok: false, reason: 'closed' });
    assert.deepEqual(await ask(own, upstream.port, 'after.example'), { ok: false, reason: 'closed' });
  });
});
