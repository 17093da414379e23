/**
 * Real daemons with --cluster-store on a real etcd: two daemons (each in its own namespace, etcd
 * reached through its unix socket) register and see each other; a SIGKILLed one is reported gone by
 * the other when its lease (--host-ttl 3) expires, and seen again when it comes back; a daemon whose
 * etcd cannot be reached does not start and says why.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdStore } from '../../src/store/etcd.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 180_000;

interface LogLine {
  msg: string;
  hostId?: string;
  hosts?: string[];
}
const logLines = (d: TestDaemon): LogLine[] =>
  d.logs().split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

/** Polls the daemon's log until `test` matches a line (the case timeout catches a hang). */
async function waitForLog(d: TestDaemon, test: (l: LogLine) => boolean, from = 0): Promise<LogLine> {
  for (;;) {
    const hit = logLines(d).slice(from).find(test);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('daemons with --cluster-store on a real etcd', { skip }, () => {
  let cluster: EtcdCluster;
  const daemons: TestDaemon[] = [];
  before(async () => {
    cluster = await startEtcdCluster(1);
  });
  after(async () => {
    for (const d of daemons) await d.cleanup();
    await cluster?.close();
  });
  const flags = (addr: string) => ['--cluster-store', `unix://${cluster.endpoints[0]!.slice('unix:'.length)}`, '--advertise-addr', addr, '--host-ttl', '3'];

  it('two daemons see each other; a killed one leaves when its lease expires and returns on restart', { timeout: TIMEOUT }, async () => {
    const a = await startTestDaemon(flags('10.77.0.1'));
    daemons.push(a);
    const joinedA = await waitForLog(a, (l) => l.msg === 'joined the cluster');
    const b = await startTestDaemon(flags('10.77.0.2'));
    daemons.push(b);
    const joinedB = await waitForLog(b, (l) => l.msg === 'joined the cluster');
    const idA = joinedA.hostId!;
    const idB = joinedB.hostId!;
    assert.notEqual(idA, idB);
    // B found A registered; A was told of B.
    assert.deepEqual([...joinedB.hosts!].sort(), [`${idA}@10.77.0.1`, `${idB}@10.77.0.2`].sort());
    await waitForLog(a, (l) => l.msg === 'host joined' && l.hostId === idB);

    // What etcd holds, read by a third client.
    const reader = await EtcdStore.open({ endpoints: cluster.endpoints });
    try {
      const hosts = (await reader.list('hosts/')).map((e) => JSON.parse(e.value) as { id: string; advertiseAddr: string });
      assert.deepEqual(hosts.map((h) => [h.id, h.advertiseAddr]).sort(), [[idA, '10.77.0.1'], [idB, '10.77.0.2']].sort());
    } finally {
      await reader.close();
    }

    const mark = logLines(a).length;
    await b.stop('SIGKILL');
    await waitForLog(a, (l) => l.msg === 'host left' && l.hostId === idB, mark);
    await b.start();
    const rejoined = await waitForLog(b, (l) => l.msg === 'joined the cluster');
    assert.equal(rejoined.hostId, idB, 'the same host id after a restart');
    await waitForLog(a, (l) => l.msg === 'host joined' && l.hostId === idB, mark);

    // A clean stop exits 0 (revoking its lease) and A is told B left.
    const mark2 = logLines(a).length;
    assert.equal(await b.stop('SIGTERM'), 0);
    await waitForLog(a, (l) => l.msg === 'host left' && l.hostId === idB, mark2);
  });

  it('a daemon whose etcd is unreachable does not start, and says which endpoints it tried', { timeout: TIMEOUT }, async () => {
    const missing = `${cluster.endpoints[0]!.slice('unix:'.length)}.missing`;
    const starting = startTestDaemon(['--cluster-store', `unix://${missing}`, '--advertise-addr', '10.77.0.3']).then((d) => {
      daemons.push(d); // started after all: after() removes it
      return d;
    });
    await assert.rejects(starting, (err: Error) => {
      assert.match(err.message, /daemon exited with 1/);
      assert.match(err.message, /cluster store unreachable/);
      assert.ok(err.message.includes(missing), err.message);
      return true;
    });
  });
});
