/**
 * Host membership on a real etcd (TTL 3 s): hosts see each other, a clean leave is reported at
 * once, a host whose process is SIGKILLed is reported gone when its lease expires (and not before:
 * while it lives its keep-alive holds the record past several TTLs), a host whose lease is revoked
 * under it registers again by itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { EtcdStore } from '../../src/store/etcd.js';
import { Membership, type MembershipEvent } from '../../src/store/membership.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 120_000;
const TTL = 3; // short, yet a few seconds of a loaded machine's stall do not expire a live host
const SRC = (file: string) => pathToFileURL(join(import.meta.dirname, '../../src/store', file)).href;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(m: Membership) {
  const events: MembershipEvent[] = [];
  let waiters: Array<{ test: (e: MembershipEvent) => boolean; resolve: () => void }> = [];
  const stop = m.watch((e) => {
    events.push(e);
    waiters = waiters.filter((w) => (w.test(e) ? (w.resolve(), false) : true));
  });
  return {
    events,
    stop,
    next: (test: (e: MembershipEvent) => boolean) =>
      events.some(test) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ test, resolve })),
  };
}

describe('Membership on a real etcd', { skip }, () => {
  let cluster: EtcdCluster;
  const cleanups: Array<() => Promise<unknown>> = [];
  before(async () => {
    cluster = await startEtcdCluster(1);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await cluster?.close();
  });
  const prefix = () => `/cnmt/${randomBytes(4).toString('hex')}/`;
  const store = async (p: string) => {
    const s = await EtcdStore.open({ endpoints: cluster.endpoints, prefix: p });
    cleanups.push(() => s.close());
    return s;
  };
  const join_ = async (p: string, hostId: string, advertiseAddr: string) => {
    const m = await Membership.join({ store: await store(p), hostId, advertiseAddr, ttlSeconds: TTL });
    cleanups.push(() => m.close());
    return m;
  };

  it('hosts see each other; a clean leave is reported at once', { timeout: TIMEOUT }, async () => {
    const p = prefix();
    const a = await join_(p, 'host-a', '10.0.0.1');
    const b = await join_(p, 'host-b', '10.0.0.2');
    assert.deepEqual((await a.hosts()).map((h) => [h.id, h.advertiseAddr]), [['host-a', '10.0.0.1'], ['host-b', '10.0.0.2']]);
    assert.deepEqual((await b.hosts()).map((h) => h.id), ['host-a', 'host-b']);
    const seen = recorder(b);
    await a.close();
    // Revoked, not left to expire: the record is gone as soon as close() returns.
    assert.deepEqual((await b.hosts()).map((h) => h.id), ['host-b']);
    await seen.next((e) => e.type === 'leave' && e.id === 'host-a');
    seen.stop();
  });

  it('a SIGKILLed host stays while alive (keep-alive) and is reported gone when its lease expires', { timeout: TIMEOUT }, async () => {
    const p = prefix();
    const observer = await join_(p, 'observer', '10.0.0.9');
    const seen = recorder(observer);
    const code = `const { EtcdStore } = await import(${JSON.stringify(SRC('etcd.ts'))});
const { Membership } = await import(${JSON.stringify(SRC('membership.ts'))});
const store = await EtcdStore.open({ endpoints: ${JSON.stringify(cluster.endpoints)}, prefix: ${JSON.stringify(p)} });
await Membership.join({ store, hostId: 'doomed', advertiseAddr: '10.0.0.3', ttlSeconds: ${TTL} });
process.stdout.write('joined\\n');
setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(async () => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('joined') && resolve());
      child.on('close', () => reject(new Error(`child exited before joining: ${stderr}`)));
    });
    await seen.next((e) => e.type === 'join' && e.host.id === 'doomed');
    // Three TTLs: without its keep-alive the record would have expired twice over.
    await sleep(3 * TTL * 1000);
    assert.deepEqual((await observer.hosts()).map((h) => h.id), ['doomed', 'observer'], 'alive host kept by its keep-alive');
    assert.ok(!seen.events.some((e) => e.type === 'leave'), 'no departure while it lives');

    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    await seen.next((e) => e.type === 'leave' && e.id === 'doomed');
    seen.stop();
    assert.deepEqual((await observer.hosts()).map((h) => h.id), ['observer']);
  });

  it('a host whose lease is revoked under it registers again by itself', { timeout: TIMEOUT }, async () => {
    const p = prefix();
    const a = await join_(p, 'host-a', '10.0.0.1');
    const b = await join_(p, 'host-b', '10.0.0.2');
    const seen = recorder(b);
    const before = (await b.hosts()).find((h) => h.id === 'host-a')!;
    // What etcd does to a lease whose keep-alives stopped arriving: revoke it (the record goes with it).
    const leases = (await cluster.etcdctl(['lease', 'list'])).split('\n').filter((l) => /^[0-9a-f]+$/.test(l.trim()));
    const leaseOfA = [];
    for (const id of leases) {
      const keys = await cluster.etcdctl(['lease', 'timetolive', id.trim(), '--keys']);
      if (keys.includes(`${p}hosts/host-a`)) leaseOfA.push(id.trim());
    }
    assert.equal(leaseOfA.length, 1, 'found host-a lease');
    await cluster.etcdctl(['lease', 'revoke', leaseOfA[0]!]);
    await seen.next((e) => e.type === 'leave' && e.id === 'host-a');
    await seen.next((e) => e.type === 'join' && e.host.id === 'host-a');
    seen.stop();
    const again = (await b.hosts()).find((h) => h.id === 'host-a');
    assert.ok(again && again.registeredAt !== before.registeredAt, 'a new registration');
    assert.equal(again.advertiseAddr, '10.0.0.1');
    assert.equal(a.hostId, 'host-a');
  });
});
