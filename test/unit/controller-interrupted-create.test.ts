/**
 * A sandbox create cut short by a crash (kill -9) after its record was stored: the client never got an
 * answer, so the next start rolls the create back — endpoints, address claims, namespace pin, files,
 * record — instead of keeping a sandbox without the networks it asked for. The crash is injected by a
 * store or kernel call that never returns (the process stops there), then a second controller starts on
 * the same store and kernel, as the restarted daemon would.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { keys } from '../../src/controller/repository.js';
import type { SandboxRecord } from '../../src/controller/records.js';
import { FakeKernel } from '../../src/kernel/fake.js';
import type { KernelOps } from '../../src/kernel/types.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { ExpectedRevision, KvEntry, Store, TxnOp, WatchEvent } from '../../src/store/types.js';

/** Where the process "dies": the first call matching stops forever, as a killed process would. */
interface CrashPoint {
  store?: (ops: TxnOp[]) => boolean;
  kernel?: keyof KernelOps;
}

class Crash {
  point: CrashPoint | undefined;
  hit = false;
  stop(): Promise<never> {
    this.hit = true;
    this.point = undefined; // the rest of the process is gone: nothing else of it runs
    return new Promise<never>(() => undefined);
  }
}

class CrashingStore implements Store {
  /** Every transaction that reached the store, in order. */
  readonly written: TxnOp[][] = [];
  constructor(private readonly inner: Store, private readonly crash: Crash) {}
  get(key: string): Promise<KvEntry | undefined> {
    return this.inner.get(key);
  }
  list(prefix: string): Promise<KvEntry[]> {
    return this.inner.list(prefix);
  }
  put(key: string, value: string, expectedRevision?: ExpectedRevision): Promise<number> {
    return this.txn([{ op: 'put', key, value, ...(expectedRevision === undefined ? {} : { expectedRevision }) }]);
  }
  async delete(key: string, expectedRevision?: ExpectedRevision): Promise<void> {
    await this.txn([{ op: 'delete', key, ...(expectedRevision === undefined ? {} : { expectedRevision }) }]);
  }
  txn(ops: TxnOp[]): Promise<number> {
    if (this.crash.point?.store?.(ops)) return this.crash.stop();
    this.written.push(ops);
    return this.inner.txn(ops);
  }
  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    return this.inner.watch(prefix, onEvent);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function crashingKernel(k: FakeKernel, crash: Crash): KernelOps {
  return new Proxy(k, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => (crash.point?.kernel === prop ? crash.stop() : value.apply(target, args));
    },
  });
}

const endpointTxn = (nth: number) => {
  let seen = 0;
  return (ops: TxnOp[]) => ops.some((o) => o.key.startsWith('cnm/v1/endpoints/')) && ++seen === nth;
};

async function storedSandboxes(store: Store): Promise<SandboxRecord[]> {
  return (await store.list(keys.sandbox(''))).map((e) => JSON.parse(e.value) as SandboxRecord);
}

async function hostLinks(h: Harness): Promise<string[]> {
  return (await h.kernel.linkList(null)).map((l) => l.name).filter((n) => n.startsWith('cnmv')).sort();
}

async function setUp(): Promise<{ h: Harness; store: MemoryStore; crash: Crash; crashing: CrashingStore }> {
  const store = new MemoryStore();
  const crash = new Crash();
  const crashing = new CrashingStore(store, crash);
  const execRoot = await mkdtemp(join(tmpdir(), 'cnmt-ctl-'));
  const h = await startHarness({ kernel: new FakeKernel(), store: crashing, execRoot }, (k) => crashingKernel(k, crash));
  await h.controller.createNetwork({ name: 'n1', ipam: { configs: [{ subnet: '10.31.0.0/24' }] } });
  await h.controller.createNetwork({ name: 'n2', ipam: { configs: [{ subnet: '10.32.0.0/24' }] } });
  // A sandbox that exists before the crash: left alone by the rollback.
  await h.controller.createSandbox({ name: 'bystander', networks: [{ network: 'n1' }, { network: 'n2' }] });
  return { h, store, crash, crashing };
}

/** The restarted daemon: same store (without the crash), kernel and exec root; the dead one's DNS is gone. */
function restart(h: Harness, store: Store): Promise<Harness> {
  return startHarness({ kernel: h.kernel, store, execRoot: h.execRoot, firewall: h.firewall });
}

describe('a sandbox create interrupted by a crash is rolled back on the next start', () => {
  const points: Array<[string, CrashPoint]> = [
    ['before its namespace exists', { kernel: 'createNetns' }],
    ['while joining its first network', { kernel: 'linkAdd' }],
    ['while storing its first endpoint', { store: endpointTxn(1) }],
    ['while storing its second endpoint (the first is stored and joined)', { store: endpointTxn(2) }],
  ];
  for (const [when, point] of points) {
    it(`killed ${when}`, async () => {
      const { h, store, crash } = await setUp();
      try {
        const linksBefore = await hostLinks(h);
        const claimsBefore = (await store.list('cnm/v1/ipam/addresses/')).map((e) => e.key).sort();
        crash.point = point;
        let answered = false;
        void h.controller.createSandbox({ name: 'victim', networks: [{ network: 'n1' }, { network: 'n2' }] }).finally(() => (answered = true));
        for (let i = 0; i < 100 && !crash.hit; i++) await new Promise((r) => setImmediate(r));
        assert.ok(crash.hit, 'the crash point was reached');
        assert.equal(answered, false, 'the client got no answer');
        // The window: the record is stored, marked as a create in progress.
        const victim = (await storedSandboxes(store)).find((s) => s.name === 'victim');
        assert.equal(victim?.creating, true, 'record stored with its marker before the crash');

        const h2 = await restart(h, store);
        assert.throws(() => h2.controller.getSandbox('victim'), /No such sandbox/);
        assert.deepEqual((await storedSandboxes(store)).map((s) => s.name), ['bystander']);
        assert.equal(await store.get(keys.sandboxName('victim')), undefined, 'name claim released');
        const endpoints = (await store.list(keys.endpoint(''))).map((e) => JSON.parse(e.value) as { sandboxId: string });
        assert.ok(endpoints.every((e) => e.sandboxId !== victim.id), 'no endpoint record of the victim');
        assert.deepEqual((await store.list('cnm/v1/ipam/addresses/')).map((e) => e.key).sort(), claimsBefore, 'address claims as before');
        assert.ok(!h2.kernel.netnsPaths().includes(victim.netnsPath), 'namespace pin removed');
        assert.deepEqual(await hostLinks(h2), linksBefore, 'no veth of the victim left');
        assert.equal(existsSync(join(h2.execRoot, 'sandboxes', victim.id)), false, 'files removed');
        // The bystander is intact, and the victim's name is free again.
        assert.deepEqual(h2.controller.getSandbox('bystander').endpoints.map((e) => e.endpoint.ipv4Address).sort(), ['10.31.0.2/24', '10.32.0.2/24']);
        const again = await h2.controller.createSandbox({ name: 'victim', networks: [{ network: 'n1' }, { network: 'n2' }] });
        assert.equal(again.endpoints.length, 2);
      } finally {
        await h.cleanup();
      }
    });
  }

  it('a completed create is stored without the marker (no extra write) and survives the restart whole', async () => {
    const { h, store, crashing } = await setUp();
    try {
      const before = crashing.written.length;
      const made = await h.controller.createSandbox({ name: 'whole', networks: [{ network: 'n1' }, { network: 'n2' }] });
      assert.equal(made.sandbox.creating, undefined, 'marker cleared in memory');
      const stored = (await storedSandboxes(store)).find((s) => s.name === 'whole');
      assert.ok(stored, 'stored');
      assert.equal(stored.creating, undefined, 'marker cleared in the store');
      const writes = crashing.written.slice(before);
      assert.equal(writes.length, 3, 'one write for the record, one per endpoint: clearing the marker costs none');
      assert.ok(writes[2]!.some((o) => o.key === keys.sandbox(stored.id)), "the last endpoint's transaction stores the record");
      const h2 = await restart(h, store);
      assert.deepEqual(h2.controller.getSandbox('whole').endpoints.map((e) => e.endpoint.ipv4Address).sort(), ['10.31.0.3/24', '10.32.0.3/24']);
      assert.ok(h2.kernel.netnsPaths().includes(stored.netnsPath));
    } finally {
      await h.cleanup();
    }
  });
});
