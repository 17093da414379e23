/**
 * Which etcd client: cnm's own (grpc-js + etcd's protos, src/store/etcd) vs the `etcd3` npm package,
 * measured against one real etcd member (Debian's etcd-server) in a throwaway namespace, both over TCP
 * on that namespace's loopback: 1,000 sequential puts, compare-and-swap transactions and gets, and the
 * time from a put's start to its watch event, p50/p99 in ms.
 *
 *   node --import tsx bench/etcd-client.ts [--etcd3 DIR] [--ops N]
 *
 * DIR holds an `npm install etcd3` (node_modules/etcd3): etcd3 is not one of cnm's dependencies, so
 * the comparison installs it aside (mkdir /tmp/e && cd /tmp/e && npm install etcd3). Without it only
 * cnm's client is measured.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { EtcdStore } from '../src/store/etcd.js';
import { startEtcdCluster } from '../test/helpers/etcd.js';
import { summarize, timeMs, type Summary } from './lib/stats.js';

type Row = { client: string; op: string } & Summary;

async function measure(ops: number, name: string, op: string, fn: (i: number) => Promise<unknown>): Promise<Row> {
  for (let i = 0; i < Math.min(100, ops); i++) await fn(-1 - i); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < ops; i++) samples.push(await timeMs(() => fn(i)));
  return { client: name, op, ...summarize(samples) };
}

/** The put-to-event latency of a watch: `put` starts a write, `events` resolves on its event. */
async function watchLatency(ops: number, name: string, put: (i: number) => Promise<unknown>, next: () => Promise<void>): Promise<Row> {
  return measure(ops, name, 'watch event (put start → event)', async (i) => {
    const seen = next();
    await put(i);
    await seen;
  });
}

function eventQueue(): { push(): void; next(): Promise<void> } {
  let pending = 0;
  let waiter: (() => void) | undefined;
  return {
    push() {
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w();
      } else pending++;
    },
    next: () => (pending > 0 ? (pending--, Promise.resolve()) : new Promise<void>((r) => (waiter = r))),
  };
}

async function benchCnm(endpoint: string, ops: number): Promise<Row[]> {
  const store = await EtcdStore.open({ endpoints: [endpoint], prefix: '/bench/cnm/' });
  const rows: Row[] = [];
  const value = 'x'.repeat(256);
  rows.push(await measure(ops, 'cnm (grpc-js)', 'put', (i) => store.put(`k/${i}`, value)));
  let rev = await store.put('cas', '0');
  rows.push(await measure(ops, 'cnm (grpc-js)', 'CAS txn (mod_revision)', async (i) => (rev = await store.put('cas', String(i), rev))));
  rows.push(await measure(ops, 'cnm (grpc-js)', 'get (range)', (i) => store.get(`k/${Math.abs(i)}`)));
  const q = eventQueue();
  const stop = store.watch('w/', () => q.push());
  rows.push(await watchLatency(ops, 'cnm (grpc-js)', (i) => store.put(`w/${i}`, value), q.next));
  stop();
  await store.close();
  return rows;
}

async function benchEtcd3(dir: string, endpoint: string, ops: number): Promise<Row[]> {
  const { Etcd3 } = await import(pathToFileURL(join(dir, 'node_modules/etcd3/lib/index.js')).href);
  const client = new Etcd3({ hosts: `http://${endpoint}` });
  const ns = client.namespace('/bench/etcd3/');
  const rows: Row[] = [];
  const value = 'x'.repeat(256);
  rows.push(await measure(ops, 'etcd3', 'put', (i) => ns.put(`k/${i}`).value(value).exec()));
  await ns.put('cas').value('0').exec();
  let rev = (await ns.get('cas').exec()).kvs[0].mod_revision as string;
  rows.push(
    await measure(ops, 'etcd3', 'CAS txn (mod_revision)', async (i) => {
      const res = await ns.if('cas', 'Mod', '==', rev).then(ns.put('cas').value(String(i))).commit();
      if (!res.succeeded) throw new Error('etcd3 CAS lost');
      rev = res.header.revision;
    }),
  );
  rows.push(await measure(ops, 'etcd3', 'get (range)', (i) => ns.get(`k/${Math.abs(i)}`).exec()));
  const q = eventQueue();
  const watcher = await ns.watch().prefix('w/').create();
  watcher.on('put', () => q.push());
  rows.push(await watchLatency(ops, 'etcd3', (i) => ns.put(`w/${i}`).value(value).exec(), q.next));
  await watcher.cancel();
  client.close();
  return rows;
}

async function worker(endpoint: string, ops: number, etcd3: string | undefined): Promise<void> {
  const rows = await benchCnm(endpoint, ops);
  if (etcd3) rows.push(...(await benchEtcd3(etcd3, endpoint, ops)));
  process.stdout.write(JSON.stringify(rows) + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { worker: { type: 'string' }, etcd3: { type: 'string' }, ops: { type: 'string' } } });
  const ops = Number(values.ops ?? 1000);
  const etcd3 = values.etcd3 && resolve(values.etcd3);
  if (values.worker) return worker(values.worker, ops, etcd3);
  const cluster = await startEtcdCluster(1);
  try {
    // The clients run inside the etcd namespace, on its loopback (TCP, as between hosts).
    const args = [`--net=/run/netns/${cluster.ns}`, process.execPath, '--import', 'tsx', import.meta.filename, '--worker', cluster.tcpEndpoints[0]!, '--ops', String(ops)];
    if (etcd3) args.push('--etcd3', etcd3);
    const out = await new Promise<string>((res, rej) => {
      const child = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.on('close', (code) => (code === 0 ? res(text) : rej(new Error(`worker exited ${code}`))));
    });
    const rows = JSON.parse(out.trim().split('\n').pop()!) as Row[];
    console.log(`${(await cluster.etcdctl(['version'])).split('\n')[0]}; ${ops} sequential ops each, ms`);
    console.log('client          op                                 p50     p99    mean');
    for (const r of rows) console.log(`${r.client.padEnd(15)} ${r.op.padEnd(32)} ${r.p50.toFixed(3).padStart(7)} ${r.p99.toFixed(3).padStart(7)} ${r.mean.toFixed(3).padStart(7)}`);
  } finally {
    await cluster.close();
  }
}

await main();
