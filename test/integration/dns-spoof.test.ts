/**
 * Forwarded DNS against a forger on the same host (real daemon, real kernel, throwaway cnmt-* namespaces):
 *
 *   sandbox a (forger) ──┐                         ┌── up: fake upstream 10.98.0.1:53 (slow: 1.5 s)
 *                        ├─ bridge ── daemon ns ───┤ veth
 *   sandbox b (victim) ──┘  10.97.0.1              └── (daemon's --dns 10.98.0.1)
 *
 * A process in a sends forged answers (source rewritten to the upstream's 10.98.0.1:53 by nft SNAT in a's
 * namespace, as a raw socket would) for every query ID to the daemon's address toward the upstream
 * (10.98.0.2: a connected UDP socket only takes datagrams for the address it sends from), at the source
 * port a real query of the daemon used — the port every query used while all sandboxes shared one socket per upstream.
 * b must get the upstream's real answer every time; and a socket waiting at that port in the daemon's
 * namespace, connected to the upstream as the old shared socket was, does receive the forgeries: the
 * forger was sending where it would have won.
 *
 * Also: a daemon whose resolv.conf names 127.0.0.11 (cnm inside a container with Docker's resolver)
 * forwards there, and a sandbox --dns of ::ffff:127.0.0.11 is never a loop to itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { promisify } from 'node:util';
import { CLASS_IN, RecordType } from '../../src/dns/codec.js';
import { FakeUpstream } from '../../src/dns/fake-upstream.js';
import { decodeMessage, encodeMessage } from '../../src/dns/message.js';
import { NetnsSockets } from '../../src/dns/netns-socket.js';
import { NamespaceSockets } from '../../src/dns/upstream.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns, isRoot, netnsPath } from '../helpers/netns.js';

const SKIP = isRoot() ? false : 'needs root';
const run = promisify(execFile);
const UPSTREAM = '10.98.0.1';
const DAEMON_SIDE = '10.98.0.2';
const GATEWAY = '10.97.0.1';
const REAL = '192.0.2.80';
const FORGED = '6.6.6.6';

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout.trim();
}

/** dig through the sandbox's 127.0.0.11: status and A records. A dig that could not run fails the test. */
async function dig(d: TestDaemon, sandbox: string, name: string): Promise<{ status: string; answers: string[] }> {
  const r = await d.exec(sandbox, ['dig', '@127.0.0.11', '+time=6', '+tries=1', '+noall', '+comments', '+answer', name, 'A']);
  const status = /status: (\w+)/.exec(r.stdout)?.[1];
  assert.ok(status, `dig in ${sandbox} gave no DNS answer (${r.code}): ${r.stdout}${r.stderr}`);
  const answers = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).pop()!);
  return { status, answers };
}

function forgedAnswer(id: number, name: string): Buffer {
  return encodeMessage({
    id,
    response: true,
    recursionDesired: true,
    recursionAvailable: true,
    questions: [{ name, type: RecordType.A, class: CLASS_IN }],
    answers: [{ name, type: RecordType.A, class: CLASS_IN, ttl: 3600, data: FORGED }],
  });
}

/** A UDP socket whose descriptor was made in the namespace at `path` (bound there if `port` is given). */
async function udpIn(netns: NetnsSockets, path: string, port?: number): Promise<dgram.Socket> {
  const handle = netns.openNamespace(path);
  let fd: number;
  try {
    if (port === undefined) fd = netns.socketIn(handle, 'udp', 4);
    else {
      const fds = netns.listeners(handle, '0.0.0.0', port);
      netns.closeFd(fds.tcp);
      fd = fds.udp;
    }
  } finally {
    netns.closeNamespace(handle);
  }
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ fd }, () => resolve());
  });
  socket.on('error', () => {});
  return socket;
}

describe('forwarded DNS cannot be spoofed from another sandbox (real kernel)', { skip: SKIP }, () => {
  let d: TestDaemon;
  let up = '';
  const netns = SKIP ? undefined : new NetnsSockets();
  const upstream = new FakeUpstream(new Map([['victim.test', [REAL]], ['warmup.test', ['192.0.2.1']]]));
  let upstreamRunning = false;
  const sockets: dgram.Socket[] = [];

  before(async () => {
    d = await startTestDaemon(['--dns', UPSTREAM]);
    // The worst case for the victim: no reverse-path filter in the daemon's namespace (common on hosts).
    for (const key of ['all', 'default']) await d.inHost('sysctl', ['-qw', `net.ipv4.conf.${key}.rp_filter=0`]);
    up = createTestNetns();
    await run('ip', ['-n', d.hostNs, 'link', 'add', 'cnmsp0', 'type', 'veth', 'peer', 'name', 'cnmsp1', 'netns', up]);
    await run('ip', ['-n', d.hostNs, 'addr', 'add', `${DAEMON_SIDE}/30`, 'dev', 'cnmsp0']);
    await run('ip', ['-n', d.hostNs, 'link', 'set', 'cnmsp0', 'up']);
    await run('ip', ['-n', up, 'addr', 'add', `${UPSTREAM}/30`, 'dev', 'cnmsp1']);
    await run('ip', ['-n', up, 'link', 'set', 'cnmsp1', 'up']);
    await run('ip', ['-n', up, 'route', 'add', 'default', 'via', DAEMON_SIDE]);
    const handle = netns!.openNamespace(netnsPath(up));
    try {
      await upstream.start({ fds: netns!.listeners(handle, UPSTREAM, 53) });
      upstreamRunning = true;
    } finally {
      netns!.closeNamespace(handle);
    }
    await ok(d, ['network', 'create', '--subnet', '10.97.0.0/24', '--gateway', GATEWAY, 'spoofnet']);
    await ok(d, ['sandbox', 'create', 'forger', '--network', 'spoofnet']);
    await ok(d, ['sandbox', 'create', 'victim', '--network', 'spoofnet']);
  });

  after(async () => {
    for (const s of sockets) s.close();
    if (upstreamRunning) await upstream.stop();
    netns?.close();
    if (up) deleteTestNetns(up);
    await d?.cleanup();
  });

  it('the victim gets the real answer every time while the forger floods every ID at the port a query used', { timeout: 180_000 }, async () => {
    // The port a real forwarded query left from (with one shared socket: the port of every query).
    const warm = await dig(d, 'victim', 'warmup.test');
    assert.deepEqual(warm.answers, ['192.0.2.1']);
    const learnedPort = upstream.udpSourcePorts.at(-1)!;

    // The forger: a socket in sandbox a; nft in a's namespace rewrites its source to the upstream's.
    const forgerNs = (await d.api('GET', '/cnm/v1/sandboxes/forger')).json().NetnsPath as string;
    for (const command of [
      'add table ip cnmtforge',
      'add chain ip cnmtforge post { type nat hook postrouting priority 100; }',
      `add rule ip cnmtforge post ip daddr ${DAEMON_SIDE} udp dport ${learnedPort} snat to ${UPSTREAM}:53`,
    ]) {
      await run('nsenter', [`--net=${forgerNs}`, 'nft', command]);
    }
    const forger = await udpIn(netns!, forgerNs);
    sockets.push(forger);
    const packets = Array.from({ length: 65536 }, (_, id) => forgedAnswer(id, 'victim.test'));
    let flooding = true;
    let sent = 0;
    const flood = (async () => {
      while (flooding) {
        for (let id = 0; id < 65536 && flooding; id++) {
          forger.send(packets[id]!, learnedPort, DAEMON_SIDE);
          sent++;
          if (id % 512 === 511) await new Promise((r) => setImmediate(r));
        }
      }
    })();

    try {
      upstream.delayMs = 1500; // a slow upstream: a long window for the forgeries
      const portsBefore = upstream.udpSourcePorts.length;
      for (let i = 0; i < 5; i++) {
        const answer = await dig(d, 'victim', 'victim.test');
        assert.deepEqual(answer, { status: 'NOERROR', answers: [REAL] }, `lookup ${i + 1}: the upstream's answer, not the forger's`);
      }
      const used = upstream.udpSourcePorts.slice(portsBefore);
      assert.ok(used.length >= 5 && !used.includes(learnedPort), `the victim's queries left from fresh ports: ${used.join(', ')}`);
      assert.equal(new Set(used).size, used.length, 'a different port for every query');

      // Proof that the forgeries arrive where the old shared socket sat: a socket in the daemon's
      // namespace at that port, connected to the upstream, receives forged answers for victim.test.
      const oldSocket = await udpIn(netns!, d.hostNsPath, learnedPort);
      sockets.push(oldSocket);
      await new Promise<void>((resolve, reject) => oldSocket.connect(53, UPSTREAM, (err?: Error) => (err ? reject(err) : resolve())));
      const forgery = await new Promise<Buffer>((resolve) => oldSocket.once('message', (msg) => resolve(msg)));
      const m = decodeMessage(forgery);
      assert.deepEqual([m.questions[0]?.name, m.answers[0]?.data], ['victim.test', FORGED]);
      assert.ok(sent > 65536, `the forger went through every ID at least once (${sent} datagrams)`);
    } finally {
      upstream.delayMs = 0;
      flooding = false;
      await flood;
    }
  });
});

describe('self-forwarding guard with a real daemon (real kernel)', { skip: SKIP }, () => {
  let d: TestDaemon;
  const netns = SKIP ? undefined : new NetnsSockets();
  // Docker's resolver, as cnm sees it when it runs inside a container: 127.0.0.11 in the daemon's namespace.
  const dockers = new FakeUpstream(new Map([['outer.test', ['192.0.2.11']]]));
  // A resolver the sandbox reaches on its gateway.
  const onGateway = new FakeUpstream(new Map([['loop.test', ['192.0.2.12']]]));
  const running: FakeUpstream[] = [];

  before(async () => {
    d = await startTestDaemon(['--dns', '127.0.0.11']);
    await ok(d, ['network', 'create', '--subnet', '10.96.0.0/24', '--gateway', '10.96.0.1', 'guardnet']);
    const handle = netns!.openNamespace(d.hostNsPath);
    try {
      await dockers.start({ fds: netns!.listeners(handle, '127.0.0.11', 53) });
      running.push(dockers);
      await onGateway.start({ fds: netns!.listeners(handle, '10.96.0.1', 53) });
      running.push(onGateway);
    } finally {
      netns!.closeNamespace(handle);
    }
    await ok(d, ['sandbox', 'create', 'inside', '--network', 'guardnet']);
    const created = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'looper', Networks: [{ Network: 'guardnet' }], Dns: ['::ffff:127.0.0.11', '10.96.0.1'] });
    assert.equal(created.status, 201, created.body);
  });

  after(async () => {
    for (const u of running) await u.stop();
    netns?.close();
    await d?.cleanup();
  });

  it("forwards to 127.0.0.11 of the daemon's namespace (another resolver there)", async () => {
    assert.deepEqual(await dig(d, 'inside', 'outer.test'), { status: 'NOERROR', answers: ['192.0.2.11'] });
    assert.ok(dockers.seen.includes('outer.test/1/udp'));
  });

  it("never forwards a sandbox's query to its own resolver written as ::ffff:127.0.0.11", async () => {
    assert.deepEqual(await dig(d, 'looper', 'loop.test'), { status: 'NOERROR', answers: ['192.0.2.12'] });
    assert.deepEqual(onGateway.seen.filter((q) => q.startsWith('loop.test/')), ['loop.test/1/udp'], 'asked exactly once');
    // Through a loop the query comes back to us, is forwarded again, and so on, until the sandbox's
    // 1,024 forwarded queries in flight are used up; only then does the innermost one go on to the
    // gateway's server and its answer bubbles up. The daemon says so in its log.
    assert.doesNotMatch(d.logs(), /too many queries in flight/);
    assert.match(d.logs(), /"msg":"dns: attached"/, 'the log is there to read');
  });
});

describe('per-query sockets made in a sandbox namespace (real kernel)', { skip: SKIP }, () => {
  it('each gets a port of its own, also when many are open at once', async () => {
    const name = createTestNetns();
    const netns = new NetnsSockets();
    const handle = netns.openNamespace(netnsPath(name));
    const sockets: dgram.Socket[] = [];
    try {
      const factory = new NamespaceSockets(netns, handle);
      for (let i = 0; i < 2000; i++) {
        const socket = await factory.udp(4);
        sockets.push(socket);
        await new Promise<void>((resolve, reject) => socket.connect(9, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve())));
      }
      const ports = new Set(sockets.map((s) => s.address().port));
      // Left to autobind on connect after Node's adoption (SO_REUSEADDR), about 5 % shared a port.
      assert.equal(ports.size, sockets.length, 'no two open query sockets share a source port');
    } finally {
      for (const s of sockets) s.close();
      netns.closeNamespace(handle);
      netns.close();
      deleteTestNetns(name);
    }
  });
});
