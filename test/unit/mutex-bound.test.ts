/** The controller's FIFO mutex with a bound on waiting callers (503 instead of an endless queue). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Mutex } from '../../src/util/mutex.js';
import { UnavailableError } from '../../src/errors.js';

describe('bounded Mutex', () => {
  it('refuses a caller that would find maxWaiting others waiting, and serves the rest in order', async () => {
    const m = new Mutex(2, (n) => new UnavailableError(`${n} waiting`));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: number[] = [];
    const first = m.run(async () => {
      await gate;
      order.push(1);
    });
    const second = m.run(async () => void order.push(2));
    const third = m.run(async () => void order.push(3));
    assert.equal(m.queued, 2);
    await assert.rejects(m.run(async () => order.push(4)), (err: Error) => err instanceof UnavailableError && err.message === '2 waiting');
    // runAlways (startup, shutdown, upkeep) is never refused.
    const always = m.runAlways(async () => void order.push(5));
    release();
    await Promise.all([first, second, third, always]);
    assert.deepEqual(order, [1, 2, 3, 5]);
    assert.equal(m.queued, 0);
    // With the queue drained, callers are accepted again.
    assert.equal(await m.run(async () => 'ok'), 'ok');
  });

  it('is unbounded by default and still one at a time', async () => {
    const m = new Mutex();
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 500 }, () =>
        m.run(async () => {
          running++;
          most = Math.max(most, running);
          await new Promise((r) => setImmediate(r));
          running--;
        }),
      ),
    );
    assert.equal(most, 1);
  });

  it('releases the lock when a caller fails', async () => {
    const m = new Mutex(1);
    await assert.rejects(m.run(async () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await m.run(async () => 7), 7);
  });
});
