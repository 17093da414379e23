/**
 * The embedded DNS server on the real kernel, resolved from inside "sandbox" namespaces with real
 * resolvers (glibc's getent through a bind-mounted resolv.conf, dig, Node's c-ares resolver):
 *
 *   sbA ── front ──┐                 sbA ══ veth ══ up (10.99.0.1: a fake upstream DNS server, port 53)
 *                  ├── sbC (web)
 *   sbB ── back ───┘  (back is internal)
 *
 * sbA forwards to its own --dns server in the "up" namespace (queried from sbA's namespace); the others
 * have no upstream at all. Everything lives in throwaway cnmt-* namespaces.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FakeUpstream } from '../../src/dns/fake-upstream.js';
import { decodeMessage, encodeQuery } from '../../src/dns/message.js';
import { NetnsSockets } from '../../src/dns/netns-socket.js';
import { DnsRegistry } from '../../src/dns/registry.js';
import { renderEmbeddedResolvConf } from '../../src/dns/resolv-conf.js';
import { EmbeddedDnsServer } from '../../src/dns/server.js';
import { Rcode, RecordType } from '../../src/dns/codec.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { silentLogger } from '../../src/util/log.js';
import { blocked, dig as digProbe, inNamespace, reached } from '../helpers/probe.js';

const SKIP = realKernelSkip();
const run = promisify(execFile);
const UPSTREAM_IP = '10.99.0.1';
const SANDBOX_A_UPLINK = '10.99.0.2';

describe('embedded DNS server in sandbox namespaces', { skip: SKIP }, () => {
  const ns = { a: '', b: '', c: '', up: '' };
  const registry = new DnsRegistry();
  const netns = SKIP ? undefined : new NetnsSockets();
  let server: EmbeddedDnsServer;
  const upstream = new FakeUpstream(new Map([['example.test', ['192.0.2.80']]]));
  let upstreamRunning = false;
  let scratch = '';
  let resolvConf = '';

  before(async () => {
    for (const key of ['a', 'b', 'c', 'up'] as const) ns[key] = createTestNetns();
    await run('ip', ['-n', ns.up, 'link', 'add', 'cnmdu0', 'type', 'veth', 'peer', 'name', 'cnmdu1', 'netns', ns.a]);
    await run('ip', ['-n', ns.up, 'addr', 'add', `${UPSTREAM_IP}/30`, 'dev', 'cnmdu0']);
    await run('ip', ['-n', ns.up, 'link', 'set', 'cnmdu0', 'up']);
    await run('ip', ['-n', ns.a, 'addr', 'add', `${SANDBOX_A_UPLINK}/30`, 'dev', 'cnmdu1']);
    await run('ip', ['-n', ns.a, 'link', 'set', 'cnmdu1', 'up']);
    // b reaches the upstream too (its own link, a host route): only the internal flag keeps it from forwarding.
    await run('ip', ['-n', ns.up, 'link', 'add', 'cnmdu2', 'type', 'veth', 'peer', 'name', 'cnmdu3', 'netns', ns.b]);
    await run('ip', ['-n', ns.up, 'addr', 'add', '10.99.1.1/30', 'dev', 'cnmdu2']);
    await run('ip', ['-n', ns.up, 'link', 'set', 'cnmdu2', 'up']);
    await run('ip', ['-n', ns.b, 'addr', 'add', '10.99.1.2/30', 'dev', 'cnmdu3']);
    await run('ip', ['-n', ns.b, 'link', 'set', 'cnmdu3', 'up']);
    await run('ip', ['-n', ns.b, 'route', 'add', `${UPSTREAM_IP}/32`, 'via', '10.99.1.1']);
    await startUpstream();

    registry.setNetwork({ id: 'net-front', name: 'front', internal: false });
    registry.setNetwork({ id: 'net-back', name: 'back', internal: true });
    const endpoint = (sandbox: 'a' | 'b' | 'c', name: string, networkId: string, ipv4: string, aliases: string[] = [], ipv6?: string) =>
      registry.addEndpoint({
        id: `${name}@${networkId}`,
        networkId,
        sandboxId: `sb-${sandbox}`,
        sandboxName: name,
        hostname: `${name}-host`,
        shortId: `${name.padEnd(12, 'f')}`.slice(0, 12),
        aliases,
        ipv4,
        ...(ipv6 ? { ipv6 } : {}),
      });
    endpoint('a', 'alpha', 'net-front', '10.1.0.2/24');
    endpoint('c', 'web', 'net-front', '10.1.0.3/24', ['www', 'pool'], 'fd01::3/64');
    endpoint('b', 'db', 'net-back', '10.2.0.2/24', ['pool']);
    endpoint('c', 'web', 'net-back', '10.2.0.3/24', ['pool']);
    registry.setSandboxDns('sb-a', { servers: [UPSTREAM_IP], search: [], options: [] });
    registry.setSandboxDns('sb-b', { servers: [UPSTREAM_IP], search: [], options: [] });

    server = new EmbeddedDnsServer(registry, silentLogger, { forwarder: { timeoutMs: 1000, maxInFlight: 1024 } });
    for (const key of ['a', 'b', 'c'] as const) await server.attach(`sb-${key}`, netnsPath(ns[key]));

    scratch = mkdtempSync(join(tmpdir(), 'cnmt-dns-'));
    resolvConf = join(scratch, 'resolv.conf');
    writeFileSync(resolvConf, renderEmbeddedResolvConf({ search: [], options: ['timeout:2', 'attempts:1'] }));
  });

  after(async () => {
    await server?.close();
    if (upstreamRunning) await upstream.stop();
    netns?.close();
    for (const name of Object.values(ns)) if (name) deleteTestNetns(name);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function startUpstream(): Promise<void> {
    const handle = netns!.openNamespace(netnsPath(ns.up));
    try {
      await upstream.start({ fds: netns!.listeners(handle, UPSTREAM_IP, 53) });
      upstreamRunning = true;
    } finally {
      netns!.closeNamespace(handle);
    }
  }

  /** glibc's resolver inside the namespace, with our resolv.conf bound over /etc/resolv.conf. */
  async function getent(sandbox: string, database: string, key: string): Promise<string[] | undefined> {
    const script = `mount --bind "$1" /etc/resolv.conf && exec getent "$2" "$3"`;
    try {
      const { stdout } = await run('nsenter', [`--net=${netnsPath(sandbox)}`, 'unshare', '--mount', 'sh', '-c', script, 'sh', resolvConf, database, key], { timeout: 15_000 });
      return stdout.trim().split('\n').map((line) => line.trim().split(/\s+/)[0]!);
    } catch (err) {
      if ((err as { code?: unknown }).code === 2) return undefined; // getent: key not found
      throw err;
    }
  }

  /** dig @127.0.0.11 in a sandbox; a server that does not answer fails the test unless `probe` is used instead. */
  async function dig(sandbox: string, ...args: string[]): Promise<{ status: string; answers: string[]; flags: string }> {
    const stdout = reached(await digProbe(inNamespace(sandbox), '127.0.0.11', args), `dig ${args.join(' ')} in ${sandbox}`);
    const status = /status: (\w+)/.exec(stdout)![1]!;
    const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '';
    const answers = stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).pop()!);
    return { status, answers, flags };
  }

  it('glibc resolves names of sandboxes on shared networks, and only those', async () => {
    assert.deepEqual(await getent(ns.a, 'hosts', 'web'), ['fd01::3'], 'getent hosts prefers AAAA');
    assert.deepEqual(await getent(ns.a, 'ahostsv4', 'web-host'), ['10.1.0.3', '10.1.0.3', '10.1.0.3'], 'hostname (one line per socket type)');
    assert.deepEqual(await getent(ns.b, 'hosts', 'web'), ['10.2.0.3'], 'db sees web on back (no AAAA there: NODATA, then A)');
    assert.equal(await getent(ns.a, 'hosts', 'db'), undefined, 'db is not on a network alpha shares');
    assert.deepEqual(await getent(ns.a, 'hosts', '10.1.0.3'), ['10.1.0.3'], 'reverse lookup through PTR');
  });

  it('dig: aliases, <name>.<network>, AAAA, PTR, TCP, case-insensitivity', async () => {
    assert.deepEqual((await dig(ns.a, 'WwW', 'A')).answers, ['10.1.0.3']);
    assert.deepEqual((await dig(ns.c, 'web.back', 'A')).answers, ['10.2.0.3']);
    assert.deepEqual((await dig(ns.a, 'www', 'AAAA')).answers, ['fd01::3']);
    assert.deepEqual((await dig(ns.a, '-x', '10.1.0.3')).answers, ['web.front.']);
    const tcp = await dig(ns.a, '+tcp', 'web.front', 'A');
    assert.deepEqual(tcp.answers, ['10.1.0.3']);
    assert.match(tcp.flags, /\baa\b/);
  });

  it('an alias shared by several sandboxes answers all addresses, in rotating order', async () => {
    const first = await dig(ns.b, 'pool', 'A');
    const second = await dig(ns.b, 'pool', 'A');
    assert.deepEqual(new Set(first.answers), new Set(['10.2.0.2', '10.2.0.3']));
    assert.deepEqual(second.answers, [...first.answers].reverse());
    assert.deepEqual((await dig(ns.a, 'pool', 'A')).answers, ['10.1.0.3'], 'on front only web has it');
  });

  it('forwards other names to the sandbox --dns server, from the sandbox namespace', async () => {
    upstream.seen.length = 0;
    assert.deepEqual((await dig(ns.a, 'example.test', 'A')).answers, ['192.0.2.80']);
    assert.equal((await dig(ns.a, 'missing.test', 'A')).status, 'NXDOMAIN');
    assert.deepEqual(await getent(ns.a, 'hosts', 'example.test'), ['192.0.2.80']);
    assert.ok(upstream.seen.includes('example.test/1/udp'));
  });

  it('Node\'s c-ares resolver inside the namespace resolves local and forwarded names', async () => {
    const program = `const r = new (require('node:dns').promises.Resolver)(); r.setServers(['127.0.0.11']);
      Promise.all([r.resolve4('web'), r.resolve4('example.test')]).then((a) => console.log(JSON.stringify(a)));`;
    const { stdout } = await run('ip', ['netns', 'exec', ns.a, process.execPath, '-e', program], { timeout: 15_000 });
    assert.deepEqual(JSON.parse(stdout), [['10.1.0.3'], ['192.0.2.80']]);
  });

  it('a sandbox on internal networks only never forwards', async () => {
    upstream.seen.length = 0;
    assert.deepEqual((await dig(ns.a, 'example.test', 'A')).answers, ['192.0.2.80'], 'forwarded for a sandbox with an upstream');
    assert.deepEqual(upstream.seen, ['example.test/1/udp'], 'the upstream records what it is asked');
    upstream.seen.length = 0;
    // b has an upstream it can reach: with its network not internal, the same query is forwarded.
    registry.setNetwork({ id: 'net-back', name: 'back', internal: false });
    try {
      assert.deepEqual((await dig(ns.b, 'example.test', 'A')).answers, ['192.0.2.80'], 'b forwards while back is not internal');
      assert.deepEqual(upstream.seen, ['example.test/1/udp']);
    } finally {
      registry.setNetwork({ id: 'net-back', name: 'back', internal: true });
    }
    upstream.seen.length = 0;
    assert.equal((await dig(ns.b, 'example.test', 'A')).status, 'SERVFAIL');
    assert.deepEqual((await dig(ns.b, 'db', 'A')).answers, ['10.2.0.2']);
    assert.deepEqual(upstream.seen, [], 'nothing reached the upstream from b on an internal network');
  });

  it('disconnect and reconnect: the name goes and comes back at once', async () => {
    registry.removeEndpoint('web@net-front');
    assert.equal(await getent(ns.a, 'hosts', 'web'), undefined);
    assert.deepEqual((await dig(ns.a, '-x', '10.1.0.3')).answers, []);
    registry.addEndpoint({
      id: 'web@net-front', networkId: 'net-front', sandboxId: 'sb-c', sandboxName: 'web', hostname: 'web-host',
      shortId: 'webfffffffff', aliases: ['www', 'pool'], ipv4: '10.1.0.3/24', ipv6: 'fd01::3/64',
    });
    assert.deepEqual(await getent(ns.a, 'hosts', 'web'), ['fd01::3']);
  });

  it('no query is lost while records change under load', async () => {
    const handle = netns!.openNamespace(netnsPath(ns.a));
    const fd = netns!.socketIn(handle, 'udp', 4);
    netns!.closeNamespace(handle);
    const client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client.bind({ fd }, resolve));
    const total = 3000;
    const answered = new Map<number, number>();
    client.on('message', (msg) => {
      const m = decodeMessage(msg);
      answered.set(m.id, m.rcode);
    });
    // Another sandbox joins and leaves the network all the time, sharing the alias "www" with web.
    let flips = 0;
    const churn = setInterval(() => {
      if (flips++ % 2 === 0) {
        registry.addEndpoint({ id: 'ghost@net-front', networkId: 'net-front', sandboxId: 'sb-ghost', sandboxName: 'ghost', hostname: 'ghost', shortId: 'ghostfffffff', aliases: ['www'], ipv4: '10.1.0.66/24' });
      } else {
        registry.removeEndpoint('ghost@net-front');
      }
    }, 1);
    try {
      for (let id = 0; id < total; id++) {
        client.send(encodeQuery(id, id % 2 ? 'web' : 'www', RecordType.A), 53, '127.0.0.11');
        if (id % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      for (let waited = 0; answered.size < total && waited < 100; waited++) await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      clearInterval(churn);
      registry.removeEndpoint('ghost@net-front');
      client.close();
    }
    assert.equal(answered.size, total, 'every query answered');
    assert.ok([...answered.values()].every((rcode) => rcode === Rcode.NOERROR));
    assert.ok(flips > 2, 'the records changed during the run');
  });

  it('upstream down: SERVFAIL for a silent and for an ICMP-unreachable server, answers again once it is back', async () => {
    upstream.mode = 'silent';
    assert.equal((await dig(ns.a, 'example.test', 'A')).status, 'SERVFAIL', 'answered before dig gives up (4 s)');
    upstream.mode = 'answer';
    await upstream.stop();
    upstreamRunning = false;
    assert.equal((await dig(ns.a, 'example.test', 'A')).status, 'SERVFAIL');
    assert.equal((await dig(ns.a, '+tcp', 'example.test', 'A')).status, 'SERVFAIL');
    await startUpstream();
    assert.deepEqual((await dig(ns.a, 'example.test', 'A')).answers, ['192.0.2.80'], 'recovers when it is back');
  });

  it('detach stops answering in that namespace only; attach again resumes', async () => {
    await server.detach('sb-b');
    assert.equal(server.isAttached('sb-b'), false);
    assert.deepEqual((await dig(ns.a, 'web', 'A')).answers, ['10.1.0.3'], 'the same probe answered in another namespace');
    blocked(await digProbe(inNamespace(ns.b), '127.0.0.11', ['db', 'A']), 'nobody listens on 127.0.0.11 in the detached namespace', ['refused']);
    await server.attach('sb-b', netnsPath(ns.b));
    await server.attach('sb-b', netnsPath(ns.b)); // idempotent
    assert.deepEqual((await dig(ns.b, 'db', 'A')).answers, ['10.2.0.2']);
  });
});
