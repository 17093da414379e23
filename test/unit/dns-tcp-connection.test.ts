/**
 * DNS-over-TCP framing and bounds on one connection, over loopback TCP in the test's own namespace:
 * byte-by-byte delivery, pipelining with bounded work in flight, the per-sandbox byte budget.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DEFAULT_TCP_OPTIONS, SandboxTcpState, serveDnsTcp, type DnsTcpOptions, type TcpAnswerer } from '../../src/dns/tcp-connection.js';

function frame(payload: Buffer): Buffer {
  const out = Buffer.alloc(2 + payload.length);
  out.writeUInt16BE(payload.length, 0);
  payload.copy(out, 2);
  return out;
}

/** A TCP server on 127.0.0.1 serving every connection with `answer` and one shared sandbox state. */
async function serve(options: Partial<DnsTcpOptions>, answer: TcpAnswerer) {
  const state = new SandboxTcpState();
  const server = net.createServer((c) => serveDnsTcp(c, state, { ...DEFAULT_TCP_OPTIONS, ...options }, answer));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    state,
    connect: async () => {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const frames: Buffer[] = [];
      let pending = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          frames.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
          pending = pending.subarray(2 + pending.readUInt16BE(0));
        }
      });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => {});
      return { socket, frames, closed };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

describe('DNS over TCP connection', () => {
  const echo: TcpAnswerer = (m) => Buffer.from(m);

  it('reassembles a message sent one byte at a time', async () => {
    const s = await serve({}, echo);
    try {
      const c = await s.connect();
      const payload = Buffer.from('0123456789abcdefghij'.repeat(50));
      for (const byte of frame(payload)) {
        c.socket.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
      await until(() => c.frames.length === 1);
      assert.deepEqual(c.frames[0], payload);
      c.socket.destroy();
    } finally {
      await s.close();
    }
  });

  it('answers pipelined queries with at most maxPipelined in flight, then all of them', async () => {
    const held: Array<() => void> = [];
    let started = 0;
    const s = await serve({ maxPipelined: 4 }, (m) => {
      started++;
      return new Promise((resolve) => held.push(() => resolve(Buffer.from(m))));
    });
    try {
      const c = await s.connect();
      c.socket.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(Buffer.from(`q${i}`)))));
      await until(() => started === 4);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(started, 4, 'no fifth query is taken on while four are unanswered');
      while (c.frames.length < 100) {
        held.shift()?.();
        await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(c.frames.map(String), Array.from({ length: 100 }, (_, i) => `q${i}`));
      c.socket.destroy();
    } finally {
      await s.close();
    }
  });

  it('closes a connection whose announced message would exceed the sandbox byte budget; others go on', async () => {
    const s = await serve({ maxBufferedBytes: 100_000 }, echo);
    try {
      const first = await s.connect();
      const head = Buffer.alloc(2);
      head.writeUInt16BE(60_000, 0);
      first.socket.write(Buffer.concat([head, Buffer.alloc(100)]));
      await until(() => s.state.bufferedQueries === 60_000);
      const second = await s.connect();
      second.socket.write(Buffer.concat([head, Buffer.alloc(100)]));
      await second.closed; // 60,000 + 60,000 > 100,000
      const third = await s.connect();
      third.socket.write(frame(Buffer.from('small')));
      await until(() => third.frames.length === 1);
      assert.equal(String(third.frames[0]), 'small', 'a small query of the same sandbox still fits');
      first.socket.destroy();
      await first.closed;
      await until(() => s.state.bufferedQueries === 0);
      third.socket.destroy();
    } finally {
      await s.close();
    }
  });
});
