/**
 * The Store conformance suite: every implementation (memory, sqlite, etcd) calls storeConformance once
 * from its own *.test.ts file. Each case gets a fresh store and uses keys under its own random root,
 * so an implementation backed by a shared server (etcd) can pass it too. Revisions are only compared
 * with each other, never with absolute numbers.
 *
 * Rules checked beyond the doc comments in src/store/types.ts (all of which etcd also follows):
 * - `list(prefix)` is a plain string prefix: "a/b" matches "a/bc"; callers end directory-like prefixes
 *   with "/". Keys sort by code point, i.e. the byte order of their UTF-8 encoding.
 * - A transaction writes each key at most once (InvalidParameterError otherwise); all its writes share
 *   one revision; its conditions are evaluated against the state before it.
 * - Deleting an absent key is no change: no watch event.
 * - A throwing watch listener does not fail the write.
 * - close() may be called twice (fixtures clean up after the close case).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { InvalidParameterError, StoreConflictError } from '../../src/errors.js';
import type { Store, TxnOp, WatchEvent } from '../../src/store/types.js';

export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
}

type StoreCase = (store: Store, root: string) => Promise<void>;

/** Generous: a remote store may be slow; nothing is asserted about time. */
const CASE_TIMEOUT_MS = 60_000;

export function storeConformance(label: string, makeStore: () => Promise<StoreFixture>): void {
  const test = (name: string, body: StoreCase) =>
    it(name, { timeout: CASE_TIMEOUT_MS }, async () => {
      const fixture = await makeStore();
      try {
        await body(fixture.store, `cnmt-${randomBytes(6).toString('hex')}/`);
      } finally {
        await fixture.cleanup();
      }
    });

  describe(`Store conformance: ${label}`, () => {
    basicCases(test);
    conditionalCases(test);
    listCases(test);
    txnCases(test);
    watchCases(test);
    concurrencyAndLimitCases(test);
  });
}

type Register = (name: string, body: StoreCase) => void;

async function assertConflict(promise: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreConflictError, `expected StoreConflictError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.equal(err.status, 409);
    return true;
  });
}

async function keysUnder(store: Store, prefix: string): Promise<string[]> {
  return (await store.list(prefix)).map((e) => e.key);
}

function basicCases(test: Register): void {
  test('get returns undefined for a missing key', async (store, root) => {
    assert.equal(await store.get(`${root}missing`), undefined);
  });

  test('put then get returns the value and the revision of that write', async (store, root) => {
    const revision = await store.put(`${root}k`, 'v1');
    assert.ok(Number.isSafeInteger(revision) && revision > 0);
    assert.deepEqual(await store.get(`${root}k`), { key: `${root}k`, value: 'v1', modRevision: revision });
  });

  test('revisions strictly increase across puts, deletes and transactions', async (store, root) => {
    const r1 = await store.put(`${root}a`, '1');
    const r2 = await store.put(`${root}b`, '2');
    const r3 = await store.put(`${root}a`, '3');
    await store.delete(`${root}b`);
    const r4 = await store.txn([{ op: 'put', key: `${root}c`, value: '4' }]);
    const r5 = await store.put(`${root}b`, '5');
    assert.ok(r1 < r2 && r2 < r3 && r3 < r4 && r4 < r5, `${r1} ${r2} ${r3} ${r4} ${r5}`);
    assert.equal((await store.get(`${root}a`))?.modRevision, r3);
    assert.equal((await store.get(`${root}c`))?.modRevision, r4);
    assert.equal((await store.get(`${root}b`))?.modRevision, r5);
  });

  test('unconditional put overwrites; empty, unicode and JSON values round-trip', async (store, root) => {
    await store.put(`${root}k`, 'old');
    await store.put(`${root}k`, '');
    assert.equal((await store.get(`${root}k`))?.value, '');
    const tricky = '{"name":"ünïcødé 😀","nul":"a\u0000b","quote":"\\"","nl":"\n"}';
    await store.put(`${root}k`, tricky);
    assert.equal((await store.get(`${root}k`))?.value, tricky);
  });

  test('unconditional delete is idempotent', async (store, root) => {
    await store.delete(`${root}never-existed`);
    await store.delete(`${root}never-existed`);
    await store.put(`${root}k`, 'v');
    await store.delete(`${root}k`);
    await store.delete(`${root}k`);
    assert.equal(await store.get(`${root}k`), undefined);
    assert.deepEqual(await keysUnder(store, root), []);
  });
}

function conditionalCases(test: Register): void {
  test('put with expectedRevision 0 creates only when the key is absent', async (store, root) => {
    const first = await store.put(`${root}k`, 'first', 0);
    await assertConflict(store.put(`${root}k`, 'second', 0), `${root}k`);
    assert.deepEqual(await store.get(`${root}k`), { key: `${root}k`, value: 'first', modRevision: first });
  });

  test('put with expectedRevision n is compare-and-swap', async (store, root) => {
    const r1 = await store.put(`${root}k`, 'v1');
    const r2 = await store.put(`${root}k`, 'v2', r1);
    assert.ok(r2 > r1);
    await assertConflict(store.put(`${root}k`, 'stale', r1), `${root}k`);
    await assertConflict(store.put(`${root}absent`, 'v', r2), `${root}absent`);
    assert.equal(await store.get(`${root}absent`), undefined);
    assert.deepEqual(await store.get(`${root}k`), { key: `${root}k`, value: 'v2', modRevision: r2 });
  });

  test('conditional delete checks the revision and is not idempotent', async (store, root) => {
    const r1 = await store.put(`${root}k`, 'v1');
    const r2 = await store.put(`${root}k`, 'v2');
    await assertConflict(store.delete(`${root}k`, r1), `${root}k`);
    await assertConflict(store.delete(`${root}k`, 0), `${root}k`);
    assert.equal((await store.get(`${root}k`))?.value, 'v2');
    await store.delete(`${root}k`, r2);
    assert.equal(await store.get(`${root}k`), undefined);
    await assertConflict(store.delete(`${root}k`, r2), `${root}k`);
    // "must be absent" holds for an absent key: nothing to do, no error.
    await store.delete(`${root}k`, 0);
  });
}

function listCases(test: Register): void {
  test('list uses plain string prefixes and sorts by key', async (store, root) => {
    const names = ['a/bd', 'a/bc/x', 'a-x', 'a/b', 'a/bcd', 'a/b/c', 'a/bc', 'b'];
    const revisions = new Map<string, number>();
    for (const name of names) revisions.set(name, await store.put(`${root}${name}`, `value of ${name}`));
    const rel = async (prefix: string) => (await keysUnder(store, `${root}${prefix}`)).map((k) => k.slice(root.length));

    assert.deepEqual(await rel('a/bc'), ['a/bc', 'a/bc/x', 'a/bcd']);
    assert.deepEqual(await rel('a/b'), ['a/b', 'a/b/c', 'a/bc', 'a/bc/x', 'a/bcd', 'a/bd']);
    assert.deepEqual(await rel('a/b/'), ['a/b/c']);
    assert.deepEqual(await rel('a'), ['a-x', 'a/b', 'a/b/c', 'a/bc', 'a/bc/x', 'a/bcd', 'a/bd']);
    assert.deepEqual(await rel('zzz'), []);
    assert.deepEqual(await rel(''), [...names].sort());

    const entries = await store.list(`${root}a/bc/`);
    assert.deepEqual(entries, [{ key: `${root}a/bc/x`, value: 'value of a/bc/x', modRevision: revisions.get('a/bc/x') }]);
  });

  test('list sorts by code point (UTF-8 byte order), not UTF-16 units', async (store, root) => {
    for (const name of ['😀', '\uFFFD', 'é', 'a', 'Z', 'a😀', 'aé']) await store.put(`${root}${name}`, name);
    const order = (await keysUnder(store, root)).map((k) => k.slice(root.length));
    assert.deepEqual(order, ['Z', 'a', 'aé', 'a😀', 'é', '\uFFFD', '😀']);
  });

  test('list with the empty prefix includes every key', async (store, root) => {
    await store.put(`${root}x`, '1');
    await store.put(`${root}y/z`, '2');
    const all = await keysUnder(store, '');
    assert.ok(all.includes(`${root}x`) && all.includes(`${root}y/z`));
  });
}

function txnCases(test: Register): void {
  test('txn applies every operation at one revision', async (store, root) => {
    const before = await store.put(`${root}gone`, 'x');
    const revision = await store.txn([
      { op: 'put', key: `${root}a`, value: 'A', expectedRevision: 0 },
      { op: 'put', key: `${root}b`, value: 'B' },
      { op: 'delete', key: `${root}gone`, expectedRevision: before },
      { op: 'delete', key: `${root}never` },
    ]);
    assert.ok(revision > before);
    assert.deepEqual(await store.list(root), [
      { key: `${root}a`, value: 'A', modRevision: revision },
      { key: `${root}b`, value: 'B', modRevision: revision },
    ]);
  });

  test('a failing condition in the middle leaves nothing written', async (store, root) => {
    const rx = await store.put(`${root}x`, 'x');
    const ry = await store.put(`${root}y`, 'y');
    await assertConflict(
      store.txn([
        { op: 'put', key: `${root}new1`, value: '1', expectedRevision: 0 },
        { op: 'check', key: `${root}x`, expectedRevision: rx + 1000 },
        { op: 'put', key: `${root}new2`, value: '2' },
        { op: 'delete', key: `${root}y` },
        { op: 'put', key: `${root}x`, value: 'changed' },
      ]),
      `${root}x`,
    );
    assert.deepEqual(await store.list(root), [
      { key: `${root}x`, value: 'x', modRevision: rx },
      { key: `${root}y`, value: 'y', modRevision: ry },
    ]);
  });

  test('txn fails on a conditional put or delete and names the first failing key', async (store, root) => {
    const rp = await store.put(`${root}p`, 'p');
    await store.put(`${root}q`, 'q');
    await assertConflict(
      store.txn([
        { op: 'put', key: `${root}ok`, value: 'v' },
        { op: 'put', key: `${root}p`, value: 'p2', expectedRevision: 0 },
        { op: 'check', key: `${root}q`, expectedRevision: 0 },
      ]),
      `${root}p`,
    );
    await assertConflict(
      store.txn([
        { op: 'put', key: `${root}ok`, value: 'v' },
        { op: 'delete', key: `${root}missing`, expectedRevision: rp },
      ]),
      `${root}missing`,
    );
    assert.deepEqual(await keysUnder(store, root), [`${root}p`, `${root}q`]);
  });

  test("'check' passes for an absent key (0) or the exact revision, fails otherwise", async (store, root) => {
    const rk = await store.put(`${root}k`, 'v');
    const revision = await store.txn([
      { op: 'check', key: `${root}absent`, expectedRevision: 0 },
      { op: 'check', key: `${root}k`, expectedRevision: rk },
      { op: 'put', key: `${root}out`, value: 'ok' },
    ]);
    assert.equal((await store.get(`${root}out`))?.modRevision, revision);
    await assertConflict(store.txn([{ op: 'check', key: `${root}k`, expectedRevision: 0 }, { op: 'put', key: `${root}out2`, value: 'x' }]), `${root}k`);
    await assertConflict(store.txn([{ op: 'check', key: `${root}absent`, expectedRevision: rk }, { op: 'put', key: `${root}out2`, value: 'x' }]), `${root}absent`);
    await store.put(`${root}k`, 'changed');
    await assertConflict(store.txn([{ op: 'check', key: `${root}k`, expectedRevision: rk }, { op: 'put', key: `${root}out2`, value: 'x' }]), `${root}k`);
    assert.equal(await store.get(`${root}out2`), undefined);
  });

  test('txn conditions see the state before the transaction', async (store, root) => {
    const rk = await store.put(`${root}k`, 'v1');
    // Both conditions refer to the old revision, although the put changes k.
    const revision = await store.txn([
      { op: 'put', key: `${root}k`, value: 'v2', expectedRevision: rk },
      { op: 'check', key: `${root}k`, expectedRevision: rk },
      { op: 'put', key: `${root}n`, value: 'n', expectedRevision: 0 },
      { op: 'check', key: `${root}n`, expectedRevision: 0 },
    ]);
    assert.deepEqual(await store.get(`${root}k`), { key: `${root}k`, value: 'v2', modRevision: revision });
  });

  test('txn rejects writing one key twice and writes nothing', async (store, root) => {
    const twice: TxnOp[][] = [
      [{ op: 'put', key: `${root}a`, value: '1' }, { op: 'put', key: `${root}a`, value: '2' }],
      [{ op: 'put', key: `${root}a`, value: '1' }, { op: 'delete', key: `${root}a` }],
    ];
    for (const ops of twice) {
      await assert.rejects(store.txn(ops), (err: unknown) => err instanceof InvalidParameterError && err.status === 400);
    }
    assert.equal(await store.get(`${root}a`), undefined);
  });
}

interface Collector {
  events: WatchEvent[];
  stop(): void;
  /** Resolves once at least `count` events have arrived (the case timeout catches a hang). */
  until(count: number): Promise<void>;
}

function collect(store: Store, prefix: string): Collector {
  const events: WatchEvent[] = [];
  let waiters: Array<{ count: number; resolve: () => void }> = [];
  const stop = store.watch(prefix, (event) => {
    events.push(event);
    waiters = waiters.filter((w) => (events.length >= w.count ? (w.resolve(), false) : true));
  });
  return {
    events,
    stop,
    until: (count) =>
      events.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve })),
  };
}

function watchCases(test: Register): void {
  test('watch delivers puts and deletes under its prefix, in order, with their revisions', async (store, root) => {
    const w = collect(store, `${root}w/`);
    const r1 = await store.put(`${root}w/a`, 'A');
    await store.put(`${root}other`, 'not watched');
    await store.put(`${root}w`, 'not under w/ either');
    const r2 = await store.put(`${root}w/b`, 'B');
    await store.delete(`${root}w/a`);
    const r4 = await store.txn([
      { op: 'put', key: `${root}w/c`, value: 'C' },
      { op: 'delete', key: `${root}w/b` },
      { op: 'put', key: `${root}elsewhere`, value: 'x' },
    ]);
    await store.delete(`${root}w/missing`);
    const r5 = await store.put(`${root}w/end`, 'E');
    await w.until(6);
    w.stop();
    const deleteOfA = w.events[2]!;
    assert.ok(deleteOfA.modRevision > r2 && deleteOfA.modRevision < r4);
    assert.deepEqual(w.events, [
      { type: 'put', key: `${root}w/a`, value: 'A', modRevision: r1 },
      { type: 'put', key: `${root}w/b`, value: 'B', modRevision: r2 },
      { type: 'delete', key: `${root}w/a`, modRevision: deleteOfA.modRevision },
      { type: 'put', key: `${root}w/c`, value: 'C', modRevision: r4 },
      { type: 'delete', key: `${root}w/b`, modRevision: r4 },
      { type: 'put', key: `${root}w/end`, value: 'E', modRevision: r5 },
    ]);
  });

  test('watch sees only changes made after it was called', async (store, root) => {
    await store.put(`${root}old`, 'before');
    const w = collect(store, root);
    await store.put(`${root}new`, 'after');
    await w.until(1);
    w.stop();
    assert.deepEqual(w.events.map((e) => e.key), [`${root}new`]);
  });

  test('unsubscribing stops delivery to that listener only', async (store, root) => {
    const a = collect(store, root);
    const b = collect(store, root);
    await store.put(`${root}1`, 'one');
    await Promise.all([a.until(1), b.until(1)]);
    a.stop();
    await store.put(`${root}2`, 'two');
    await store.delete(`${root}1`);
    await b.until(3);
    b.stop();
    assert.deepEqual(a.events.map((e) => e.key), [`${root}1`]);
    assert.deepEqual(b.events.map((e) => `${e.type} ${e.key}`), [`put ${root}1`, `put ${root}2`, `delete ${root}1`]);
  });

  test('a throwing listener neither fails the write nor starves other listeners', async (store, root) => {
    const stopThrower = store.watch(root, () => {
      throw new Error('listener bug');
    });
    const w = collect(store, root);
    const revision = await store.put(`${root}k`, 'v');
    await w.until(1);
    stopThrower();
    w.stop();
    assert.equal(w.events[0]?.modRevision, revision);
    assert.equal((await store.get(`${root}k`))?.value, 'v');
  });
}

function concurrencyAndLimitCases(test: Register): void {
  const RACERS = 24;

  test('concurrent compare-and-swap transactions on one key: exactly one wins', async (store, root) => {
    const key = `${root}contended`;
    const base = await store.put(key, 'initial');
    const results = await Promise.allSettled(
      Array.from({ length: RACERS }, (_, i) =>
        store.txn([
          { op: 'put', key, value: `racer ${i}`, expectedRevision: base },
          { op: 'put', key: `${root}won-by/${i}`, value: String(i) },
        ]),
      ),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(winners.length, 1, `winners: ${winners.join(',')}`);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof StoreConflictError && r.reason.key === key);
    }
    assert.equal((await store.get(key))?.value, `racer ${winners[0]}`);
    assert.deepEqual(await keysUnder(store, `${root}won-by/`), [`${root}won-by/${winners[0]}`]);
  });

  test('concurrent create-only puts on one key: exactly one wins', async (store, root) => {
    const key = `${root}claim`;
    const results = await Promise.allSettled(Array.from({ length: RACERS }, (_, i) => store.put(key, `racer ${i}`, 0)));
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(winners.length, 1);
    assert.equal((await store.get(key))?.value, `racer ${winners[0]}`);
  });

  test('values up to 1 MiB round-trip through get, list and txn', async (store, root) => {
    const oneMiB = randomBytes(768 * 1024).toString('base64'); // exactly 1,048,576 ASCII characters
    assert.equal(oneMiB.length, 1024 * 1024);
    await store.put(`${root}big`, oneMiB);
    assert.equal((await store.get(`${root}big`))?.value, oneMiB);
    await store.txn([{ op: 'put', key: `${root}big2`, value: oneMiB.split('').reverse().join('') }]);
    const listed = await store.list(root);
    assert.equal(listed.length, 2);
    assert.equal(listed[0]!.value, oneMiB);
    assert.equal(listed[1]!.value.length, 1024 * 1024);
  });

  test('close resolves, may be repeated, and later calls reject', async (store, root) => {
    await store.put(`${root}k`, 'v');
    await store.close();
    await store.close();
    await assert.rejects(store.get(`${root}k`));
    await assert.rejects(store.put(`${root}k`, 'after close'));
  });
}
