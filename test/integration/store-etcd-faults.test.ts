/**
 * EtcdStore under faults, on a real three-member etcd: watches resume across a member restart and a
 * frozen member without missing or repeating an event (exact sequences), compare-and-swap from two
 * clients on different members, one member down changes nothing, all down fails with a 503-class
 * error naming the endpoints and everything works again when etcd is back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { StoreConflictError, UnavailableError } from '../../src/errors.js';
import { EtcdStore } from '../../src/store/etcd.js';
import type { WatchEvent } from '../../src/store/types.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 120_000;

interface Recorder {
  events: WatchEvent[];
  until(count: number): Promise<void>;
  stop(): void;
}

function record(store: EtcdStore, prefix: string): Recorder {
  const events: WatchEvent[] = [];
  let waiters: Array<{ count: number; resolve: () => void }> = [];
  const stop = store.watch(prefix, (e) => {
    events.push(e);
    waiters = waiters.filter((w) => (events.length >= w.count ? (w.resolve(), false) : true));
  });
  return {
    events,
    stop,
    until: (count) => (events.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

describe('EtcdStore on a real three-member etcd, under faults', { skip }, () => {
  let cluster: EtcdCluster;
  const opened: EtcdStore[] = [];
  /** A store whose endpoint list starts at member `first` (the member it talks to while it is up). */
  const open = async (prefix: string, members: number[]) => {
    const store = await EtcdStore.open({ endpoints: members.map((i) => cluster.endpoints[i]!), prefix, callTimeoutMs: 2000 });
    opened.push(store);
    return store;
  };
  const newPrefix = () => `/cnmt/${randomBytes(4).toString('hex')}/`;

  before(async () => {
    cluster = await startEtcdCluster(3);
  });
  after(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await cluster?.close();
  });

  /** Writes keys `w/<from..to>` through `writer`, returning the expected events. */
  const writeRange = async (writer: EtcdStore, from: number, to: number): Promise<WatchEvent[]> => {
    const expected: WatchEvent[] = [];
    for (let i = from; i <= to; i++) {
      const key = `w/${String(i).padStart(3, '0')}`;
      if (i % 4 === 0) {
        const modRevision = await writer.txn([{ op: 'delete', key: `w/${String(i - 1).padStart(3, '0')}` }, { op: 'put', key, value: `v${i}` }]);
        expected.push({ type: 'delete', key: `w/${String(i - 1).padStart(3, '0')}`, modRevision }, { type: 'put', key, value: `v${i}`, modRevision });
      } else {
        const modRevision = await writer.put(key, `v${i}`);
        expected.push({ type: 'put', key, value: `v${i}`, modRevision });
      }
    }
    return expected;
  };

  it('a watch resumes across a restart of the member it is connected to: no event missed or repeated', { timeout: TIMEOUT }, async () => {
    const prefix = newPrefix();
    const watcher = await open(prefix, [0, 1, 2]); // watches through member 0
    const writer = await open(prefix, [2, 1]); // never talks to member 0
    const w = record(watcher, 'w/');
    const expected = await writeRange(writer, 1, 10);
    await w.until(expected.length);

    await cluster.stop(0);
    expected.push(...(await writeRange(writer, 11, 20))); // while the watched member is down
    await cluster.restart(0);
    expected.push(...(await writeRange(writer, 21, 30)));
    await w.until(expected.length);
    // Anything repeated or late would be here now: a marker written last must be the next event.
    const end = await writer.put('w/zzz-end', 'end');
    expected.push({ type: 'put', key: 'w/zzz-end', value: 'end', modRevision: end });
    await w.until(expected.length);
    w.stop();
    assert.deepEqual(w.events, expected);
  });

  it('a watch resumes after its member freezes (dropped connection, found by keepalive): exact sequence', { timeout: TIMEOUT }, async () => {
    const prefix = newPrefix();
    const watcher = await open(prefix, [1, 0, 2]); // watches through member 1
    const writer = await open(prefix, [0, 2]);
    const w = record(watcher, 'w/');
    const expected = await writeRange(writer, 1, 8);
    await w.until(expected.length);
    cluster.pause(1);
    try {
      expected.push(...(await writeRange(writer, 9, 24))); // two members keep quorum
      await w.until(expected.length); // only after the watch left the frozen member
    } finally {
      cluster.resume(1);
    }
    expected.push(...(await writeRange(writer, 25, 28)));
    const end = await writer.put('w/zzz-end', 'end');
    expected.push({ type: 'put', key: 'w/zzz-end', value: 'end', modRevision: end });
    await w.until(expected.length);
    w.stop();
    assert.deepEqual(w.events, expected);
  });

  it('compare-and-swap from two clients on different members: no lost update', { timeout: TIMEOUT }, async () => {
    const prefix = newPrefix();
    const a = await open(prefix, [0]);
    const b = await open(prefix, [1]);
    await a.put('counter', '0');
    const INCREMENTS = 60;
    let conflicts = 0;
    const worker = async (store: EtcdStore) => {
      const revisions: number[] = [];
      for (let done = 0; done < INCREMENTS; ) {
        const entry = (await store.get('counter'))!;
        try {
          revisions.push(await store.put('counter', String(Number(entry.value) + 1), entry.modRevision));
          done++;
        } catch (err) {
          assert.ok(err instanceof StoreConflictError && err.key === 'counter', String(err));
          conflicts++;
        }
      }
      return revisions;
    };
    const [ra, rb] = await Promise.all([worker(a), worker(b)]);
    assert.equal((await a.get('counter'))?.value, String(2 * INCREMENTS));
    assert.equal(new Set([...ra, ...rb]).size, 2 * INCREMENTS, 'every successful swap has its own revision');
    assert.ok(conflicts > 0, 'the two clients did race (else this proves nothing)');
  });

  it('one member of three stopped: reads, writes, transactions and watches still work', { timeout: TIMEOUT }, async () => {
    const prefix = newPrefix();
    const store = await open(prefix, [0, 1, 2]); // talks to member 0 first
    // The watch has a store of its own: its stream breaking must not be what moves `store` on.
    const watching = await open(prefix, [0, 1, 2]);
    const before = await store.put('k', 'before');
    await watching.get('k'); // the watch starts after `before`
    const w = record(watching, '');
    await cluster.stop(0);
    try {
      assert.deepEqual(await store.get('k'), { key: 'k', value: 'before', modRevision: before });
      const r1 = await store.put('k', 'during', before);
      const r2 = await store.txn([{ op: 'put', key: 'n', value: 'new', expectedRevision: 0 }, { op: 'check', key: 'k', expectedRevision: r1 }]);
      assert.deepEqual((await store.list('')).map((e) => [e.key, e.value]), [['k', 'during'], ['n', 'new']]);
      await w.until(2);
      assert.deepEqual(w.events.map((e) => [e.key, e.modRevision]), [['k', r1], ['n', r2]]);
    } finally {
      w.stop();
      await cluster.restart(0);
    }
  });

  it('all members stopped: calls fail with UnavailableError naming the endpoints, and work again when etcd is back', { timeout: TIMEOUT }, async () => {
    const prefix = newPrefix();
    const store = await open(prefix, [0, 1, 2]);
    await store.put('k', 'before');
    const w = record(store, '');
    await Promise.all([0, 1, 2].map((i) => cluster.stop(i)));
    try {
      for (const call of [() => store.get('k'), () => store.put('k', 'down'), () => store.list(''), () => store.txn([{ op: 'delete', key: 'k' }])]) {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(err instanceof UnavailableError, String(err));
          assert.equal(err.status, 503);
          assert.match(err.message, /cluster store unreachable/);
          assert.ok(err.message.includes(cluster.endpoints[2]!), err.message);
          return true;
        });
      }
    } finally {
      await Promise.all([0, 1, 2].map((i) => cluster.restart(i)));
    }
    const revision = await store.put('k', 'after');
    assert.deepEqual(await store.get('k'), { key: 'k', value: 'after', modRevision: revision });
    // The watch opened before the outage delivers the write made after it, once.
    await w.until(1);
    const end = await store.put('end', 'x');
    await w.until(2);
    w.stop();
    assert.deepEqual(w.events.map((e) => [e.key, e.modRevision]), [['k', revision], ['end', end]]);
  });
});
