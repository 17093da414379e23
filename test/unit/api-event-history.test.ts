/** The event broker replays the last 1,000 events (as Docker keeps), in order, however many came before. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBroker } from '../../src/api/events.js';
import type { Controller, ControllerEvent } from '../../src/controller/types.js';

test('replay holds exactly the last 1,000 events, oldest first, across batch trims', () => {
  let emit: (event: ControllerEvent) => void = () => undefined;
  const controller = { subscribe: (listener: (event: ControllerEvent) => void) => ((emit = listener), () => undefined) } as unknown as Controller;
  const event = (i: number) => ({ type: 'network', action: 'create', id: `n${i}`, attributes: { name: `n${i}` }, timeNano: BigInt(i) }) as ControllerEvent;
  for (const total of [10, 1000, 1999, 2000, 2001, 4321]) {
    const b = new EventBroker(controller);
    for (let i = 0; i < total; i++) emit(event(i));
    const ids = b.replay(0n, undefined).map((e) => e.id);
    const first = Math.max(0, total - 1000);
    assert.equal(ids.length, Math.min(total, 1000), `after ${total}`);
    assert.equal(ids[0], `n${first}`, `after ${total}`);
    assert.equal(ids.at(-1), `n${total - 1}`, `after ${total}`);
    // since / until still select by time within what is kept.
    assert.deepEqual(b.replay(BigInt(total - 3), BigInt(total - 2)).map((e) => e.id), [`n${total - 3}`, `n${total - 2}`]);
    b.close();
  }
});
