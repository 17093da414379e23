/** NamespaceWatch: link removals trigger a release check, coalesced (one running, at most one more queued). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NamespaceWatch } from '../../src/daemon/namespace-watch.js';
import { createLogger } from '../../src/util/log.js';

describe('namespace watch', () => {
  it('runs one check per burst of link removals, and one more for removals seen while it ran', async () => {
    let onRemoved: () => void = () => assert.fail('not opened');
    let calls = 0;
    let finish: () => void = () => undefined;
    const watch = new NamespaceWatch({
      release: () => {
        calls++;
        return new Promise((resolve) => (finish = () => resolve(['x'])));
      },
      openLinkEvents: (removed) => {
        onRemoved = removed;
        return { close: async () => undefined };
      },
      backstopMs: 0,
      logger: createLogger('error', { component: 'test' }, () => undefined),
    });
    onRemoved();
    onRemoved();
    onRemoved();
    assert.equal(calls, 1, 'one check runs');
    finish();
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 2, 'one more for the removals seen meanwhile');
    finish();
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 2, 'and no more');
    onRemoved();
    assert.equal(calls, 3);
    finish();
    await watch.close();
  });

  it('keeps working from the backstop when link events cannot be opened', async () => {
    let calls = 0;
    const watch = new NamespaceWatch({
      release: async () => {
        calls++;
        return [];
      },
      openLinkEvents: () => {
        throw new Error('no netlink here');
      },
      backstopMs: 10,
      logger: createLogger('error', { component: 'test' }, () => undefined),
    });
    const deadline = Date.now() + 10_000;
    while (calls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await watch.close();
    assert.ok(calls >= 1, 'the backstop ran');
  });
});
