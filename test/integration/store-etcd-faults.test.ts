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
  /** Member indexes, a follower first. */
  const followerFirst = async () => {
    const leader = await cluster.leader();
    const followers = [0, 1, 2].filter((i) => i !== leader);
    return [followers[0]!, followers[1]!, leader];
  };

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
    // Freeze a follower: a frozen leader would stall writes until an election (another test).
    const [frozen, ...others] = await followerFirst();
    const watcher = await open(prefix, [frozen, ...others]); // watches through the follower
    const writer = await open(prefix, others);
    const w = record(watcher, 'w/');
    const expected = await writeRange(writer, 1, 8);
    await w.until(expected.length);
    cluster.pause(frozen);
    try {
      expected.push(...(await writeRange(writer, 9, 24))); // two members keep quorum
      await w.until(expected.length); // only after the watch left the frozen member
    } finally {
      cluster.resume(frozen);
    }
    expected.push(...(await writeRange(writer, 25, 28)));
    const end = await writer.put('w/zzz-end', 'end');
    expected.push({ type: 'put', key: 'w/zzz-end', value: 'end', modRevision: end });
    await w.until(expected.length);
    w.stop();
    assert.deepEqual(w.events, expected);
  });

  it('a watch that resumes into compacted history relists and reports the difference, then goes on', { timeout: TIMEOUT }, async () => {
    const prefix = newPrefix();
    const [frozen, ...others] = await followerFirst();
    const writer = await open(prefix, others);
    await writer.put('w/old', 'existed before the watch');
    const watcher = await open(prefix, [frozen, ...others]); // watches through a follower
    const w = record(watcher, 'w/');
    const r1 = await writer.put('w/a', 'A');
    await w.until(1);
    cluster.pause(frozen);
    let rb: number;
    let rc: number;
    try {
      rb = await writer.put('w/b', 'B');
      await writer.put('w/b', 'B2'); // only the latest state survives a relist
      rc = await writer.put('w/c', 'C');
      await writer.delete('w/old');
      const compactAt = await writer.put('w/a', 'A2');
      await cluster.etcdctl(['compaction', String(compactAt)], others);
      // The watch leaves the frozen member (keepalive), meets the compaction and relists.
      await w.until(5);
    } finally {
      cluster.resume(frozen);
    }
    const listed = w.events.slice(1);
    const relistRevision = listed[listed.length - 1]!.modRevision;
    const b = (await writer.get('w/b'))!;
    const a = (await writer.get('w/a'))!;
    assert.deepEqual(w.events, [
      { type: 'put', key: 'w/a', value: 'A', modRevision: r1 },
      // Current entries changed since the last delivered event, in revision order, then what vanished.
      { type: 'put', key: 'w/b', value: 'B2', modRevision: b.modRevision },
      { type: 'put', key: 'w/c', value: 'C', modRevision: rc },
      { type: 'put', key: 'w/a', value: 'A2', modRevision: a.modRevision },
      { type: 'delete', key: 'w/old', modRevision: relistRevision },
    ]);
    assert.ok(relistRevision >= a.modRevision && b.modRevision > rb);
    const end = await writer.put('w/zzz-end', 'end');
    await w.until(6);
    w.stop();
    assert.deepEqual(w.events[5], { type: 'put', key: 'w/zzz-end', value: 'end', modRevision: end });
    assert.equal(w.events.length, 6);
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
