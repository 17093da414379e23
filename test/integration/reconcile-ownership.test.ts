/**
 * Ownership and resilience of the daemon's kernel objects on the real kernel, through a real daemon:
 * - only links carrying the daemon's mark (its interface group) are ever removed: an administrator's
 *   cnmz-named link, veth and bridge named like cnm's, a bridge adopted through bridge.name and a link with
 *   another daemon's mark all survive start, stop, kill -9 + restart and network rm; marked leftovers go;
 * - one network or sandbox that cannot be restored never stops the daemon, and says why;
 * - a lost sandbox namespace is re-created with the same addresses and MACs; intact bridges and veths are
 *   left alone across a restart (same ifindex, a TCP connection across it survives).
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventually } from '../conformance/kernel-support.js';
import { isRoot } from '../helpers/netns.js';

interface IpLink {
  ifname: string;
  master?: string;
  ifindex: number;
  group: string;
  linkinfo?: { info_kind?: string };
}

async function links(d: TestDaemon): Promise<IpLink[]> {
  const r = await d.inHost('ip', ['-N', '-d', '-j', 'link', 'show']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as IpLink[];
}

async function link(d: TestDaemon, name: string): Promise<IpLink | undefined> {
  return (await links(d)).find((l) => l.ifname === name);
}

async function host(d: TestDaemon, ...args: string[]): Promise<void> {
  const r = await d.inHost(args[0]!, args.slice(1));
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
}

async function ok(d: TestDaemon, method: string, path: string, body?: unknown): Promise<any> {
  const r = await d.api(method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.body}`);
  return r.body ? r.json() : undefined;
}

function bridgeOf(net: any): string {
  return net.Options['com.docker.network.bridge.name'] ?? `cnm-${net.Id.slice(0, 11)}`;
}

async function ping(d: TestDaemon, from: string, ip: string): Promise<number> {
  const r = await d.exec(from, ['ping', '-c1', '-W2', ip]);
  assert.notEqual(r.code, -1, 'ping could not run');
  return r.code;
}

async function events(d: TestDaemon): Promise<any[]> {
  const r = await d.api('GET', `/events?since=0&until=${Math.floor(Date.now() / 1000) + 1}`);
  assert.equal(r.status, 200);
  return r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

if (!isRoot()) {
  it('reconcile ownership needs root', (t) => t.skip('not root'));
} else {
  describe('kernel objects owned by a mark, not a name (real daemon)', () => {
    let d: TestDaemon;
    before(async () => {
      d = await startTestDaemon();
    });
    after(async () => d?.cleanup());
    // Each case starts with a running daemon, also when the one before failed with it stopped.
    beforeEach(async () => {
      if ((await d.api('GET', '/_ping').catch(() => undefined))?.status === 200) return;
      await d.stop('SIGKILL');
      await d.start();
    });

    it('unmarked links survive start, stop, kill -9 + restart and network rm; marked leftovers are removed', async () => {
      const mark = Number((await link(d, 'cnm0'))!.group);
      assert.ok(mark > 0, `cnm0 carries the daemon's mark (${mark})`);
      // An administrator's links, named like cnm's, and one carrying another daemon's mark (moved in).
      await host(d, 'ip', 'link', 'add', 'cnmzfoo', 'type', 'veth', 'peer', 'name', 'cnmzfoo1');
      await host(d, 'ip', 'link', 'add', 'cnmvadmin00000', 'type', 'veth', 'peer', 'name', 'cnmvadmin0000p');
      await host(d, 'ip', 'link', 'add', 'cnm-admin00000', 'type', 'bridge');
      await host(d, 'ip', 'link', 'add', 'cnmvother0', 'group', String(mark + 1), 'type', 'veth', 'peer', 'name', 'cnmvother1');
      // A bridge made by the administrator and adopted by a network.
      await host(d, 'ip', 'link', 'add', 'cnm-adopt0', 'type', 'bridge');
      const adopted = await ok(d, 'POST', '/networks/create', {
        Name: 'adopt', Options: { 'com.docker.network.bridge.name': 'cnm-adopt0' }, IPAM: { Config: [{ Subnet: '10.61.0.0/24' }] },
      });
      const own = await ok(d, 'POST', '/networks/create', { Name: 'own', IPAM: { Config: [{ Subnet: '10.62.0.0/24' }] } });
      const ownBridge = bridgeOf((await ok(d, 'GET', `/networks/${own.Id}`)));
      assert.equal(Number((await link(d, ownBridge))!.group), mark, 'a bridge cnm makes carries the mark');
      assert.equal((await link(d, 'cnm-adopt0'))!.group, '0', 'an adopted bridge is not marked');
      const admin = ['cnmzfoo', 'cnmzfoo1', 'cnmvadmin00000', 'cnmvadmin0000p', 'cnm-admin00000', 'cnmvother0', 'cnmvother1', 'cnm-adopt0'];
      const present = async (when: string) => {
        const names = (await links(d)).map((l) => l.ifname);
        for (const n of admin) assert.ok(names.includes(n), `${n} survives ${when}`);
      };

      assert.equal(await d.stop('SIGTERM'), 0);
      await present('a stop');
      // Marked leftovers, as a daemon killed between creating them and storing their records leaves them.
      await host(d, 'ip', 'link', 'add', 'cnmvleak0', 'group', String(mark), 'type', 'veth', 'peer', 'name', 'cnmvleak1');
      await host(d, 'ip', 'link', 'add', 'cnm-leak0', 'group', String(mark), 'type', 'bridge');
      await d.start();
      await present('a start');
      const names = (await links(d)).map((l) => l.ifname);
      assert.ok(!names.includes('cnmvleak0') && !names.includes('cnmvleak1'), 'a marked leftover veth is removed');
      assert.ok(!names.includes('cnm-leak0'), 'a marked leftover bridge is removed');
      assert.ok(names.includes(ownBridge), "the network's own bridge stays");

      await d.stop('SIGKILL');
      await d.start();
      await present('kill -9 and a restart');

      assert.equal((await d.api('DELETE', `/networks/${adopted.Id}`)).status, 204);
      assert.equal((await d.api('DELETE', `/networks/${own.Id}`)).status, 204);
      await eventually(async () => (await link(d, ownBridge)) === undefined, "the network's own bridge is deleted by rm");
      await present('network rm');
      const addrs = JSON.parse((await d.inHost('ip', ['-j', 'addr', 'show', 'dev', 'cnm-adopt0'])).stdout) as any[];
      assert.deepEqual(addrs[0].addr_info.filter((a: any) => a.family === 'inet'), [], 'the gateway cnm put on the adopted bridge is gone');
      assert.equal(await d.stop('SIGTERM'), 0);
      await d.start();
      await present('a start after rm');
      for (const n of ['cnmzfoo', 'cnmvadmin00000', 'cnm-admin00000', 'cnmvother0', 'cnm-adopt0']) await host(d, 'ip', 'link', 'del', n);
    });

    it('a network that cannot be restored does not stop the daemon: it says why until fixed, rm works', async () => {
      const good = await ok(d, 'POST', '/networks/create', { Name: 'good', IPAM: { Config: [{ Subnet: '10.63.0.0/24' }] } });
      const fixable = await ok(d, 'POST', '/networks/create', { Name: 'fixable', IPAM: { Config: [{ Subnet: '10.64.0.0/24' }] } });
      const doomed = await ok(d, 'POST', '/networks/create', { Name: 'doomed', IPAM: { Config: [{ Subnet: '10.65.0.0/24' }] } });
      for (const [name, net] of [['g1', 'good'], ['g2', 'good'], ['f1', 'fixable']]) {
        await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: net }] });
      }
      const g2ip = (await ok(d, 'GET', '/cnm/v1/sandboxes/g2')).Networks.good.IPAddress;
      const f1ip = (await ok(d, 'GET', '/cnm/v1/sandboxes/f1')).Networks.fixable.IPAddress;
      const fixableBridge = bridgeOf(await ok(d, 'GET', `/networks/${fixable.Id}`));
      const doomedBridge = bridgeOf(await ok(d, 'GET', `/networks/${doomed.Id}`));
      assert.equal(await d.stop('SIGTERM'), 0);
      // Links that are not bridges now hold both bridges' names.
      for (const b of [fixableBridge, doomedBridge]) {
        await host(d, 'ip', 'link', 'del', b);
        await host(d, 'ip', 'link', 'add', b, 'type', 'veth', 'peer', 'name', `${b.slice(0, 12)}imp`);
      }
      await d.start();
      assert.equal(await ping(d, 'g1', g2ip), 0, 'the other networks work');
      for (const net of [fixable, doomed]) {
        const inspect = await ok(d, 'GET', `/networks/${net.Id}`);
        assert.match(inspect.CnmError ?? '', /is not a bridge/, 'inspect says why');
      }
      assert.equal((await ok(d, 'GET', `/networks/${good.Id}`)).CnmError, undefined);
      assert.match(d.logs(), /network could not be restored/);
      const errs = (await events(d)).filter((e) => e.Type === 'network' && e.Action === 'error');
      assert.deepEqual(errs.map((e) => e.Actor.ID).sort(), [fixable.Id, doomed.Id].sort(), 'an error event for each');

      // Still broken: a connect is refused with the reason.
      const refused = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'f2', Networks: [{ Network: 'fixable' }] });
      assert.equal(refused.status, 403, refused.body);
      assert.match(refused.json().message, /out of service.*not a bridge/);
      // rm of a broken network works and leaves the link holding the name alone.
      assert.equal((await d.api('DELETE', `/networks/${doomed.Id}`)).status, 204);
      assert.equal((await link(d, doomedBridge))?.linkinfo?.info_kind, 'veth', "the impostor is not cnm's to delete");
      // Fixed by hand: the next operation on the network retries and brings it back with its endpoint.
      await host(d, 'ip', 'link', 'del', fixableBridge);
      await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: 'f2', Networks: [{ Network: 'fixable' }] });
      assert.equal((await ok(d, 'GET', `/networks/${fixable.Id}`)).CnmError, undefined, 'the error is gone once fixed');
      assert.equal(await ping(d, 'f2', f1ip), 0, 'the restored network carries traffic to its old endpoint');
      for (const s of ['g1', 'g2', 'f1', 'f2']) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${s}?force=1`)).status, 204);
      for (const n of [good, fixable]) assert.equal((await d.api('DELETE', `/networks/${n.Id}`)).status, 204);
      await host(d, 'ip', 'link', 'del', doomedBridge);
    });

    it('a sandbox that cannot be restored does not stop the daemon: logged and reported', async () => {
      await ok(d, 'POST', '/networks/create', { Name: 'sbnet', IPAM: { Config: [{ Subnet: '10.66.0.0/24' }] } });
      const bad = await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: 'bad', Networks: [{ Network: 'sbnet' }] });
      for (const name of ['h1', 'h2']) await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: 'sbnet' }] });
      const h2ip = (await ok(d, 'GET', '/cnm/v1/sandboxes/h2')).Networks.sbnet.IPAddress;
      assert.equal(await d.stop('SIGTERM'), 0);
      // Its namespace is lost and a directory now sits where its pin must go: it cannot be re-created.
      const pin = join(d.execRoot, 'netns', bad.Id);
      await host(d, 'umount', pin);
      await host(d, 'rm', '-f', pin);
      await mkdir(join(pin, 'blocker'), { recursive: true });
      await d.start();
      assert.equal(await ping(d, 'h1', h2ip), 0, 'the other sandboxes work');
      assert.match(d.logs(), /sandbox could not be restored/, d.logs().split('\n').filter((l) => /bad|error|warn/.test(l)).join('\n'));
      const errs = (await events(d)).filter((e) => e.Type === 'container' && e.Action === 'error');
      assert.deepEqual(errs.map((e) => e.Actor.ID), [bad.Id]);
      await host(d, 'rm', '-rf', pin);
      for (const s of ['bad', 'h1', 'h2']) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${s}?force=1`)).status, 204);
      assert.equal((await d.api('DELETE', '/networks/sbnet')).status, 204);
    });

    it('a lost sandbox namespace is re-created on start with the same addresses and MACs, reachable', async () => {
      await ok(d, 'POST', '/networks/create', { Name: 'lost', IPAM: { Config: [{ Subnet: '10.67.0.0/24' }] } });
      const gone = await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: 'gone', Networks: [{ Network: 'lost' }] });
      await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: 'peer', Networks: [{ Network: 'lost' }] });
      const before = (await ok(d, 'GET', '/cnm/v1/sandboxes/gone')).Networks.lost;
      const macIn = async () => {
        const r = await d.exec('gone', ['ip', '-j', 'link', 'show', 'dev', 'eth0']);
        assert.equal(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as Array<{ address: string }>)[0]!.address;
      };
      assert.equal(await macIn(), before.MacAddress);
      assert.equal(await d.stop('SIGTERM'), 0);
      // As after a reboot: the namespace and its pin are gone.
      const pin = join(d.execRoot, 'netns', gone.Id);
      await host(d, 'umount', pin);
      await host(d, 'rm', '-f', pin);
      await d.start();
      const after = (await ok(d, 'GET', '/cnm/v1/sandboxes/gone')).Networks.lost;
      assert.equal(after.IPAddress, before.IPAddress);
      assert.equal(after.MacAddress, before.MacAddress);
      assert.equal(await macIn(), before.MacAddress, 'the MAC in the re-created namespace');
      const addr = await d.exec('gone', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      assert.match(addr.stdout, new RegExp(` ${before.IPAddress.replace(/\./g, '\\.')}/`));
      assert.equal(await ping(d, 'peer', before.IPAddress), 0, 'reachable');
      for (const s of ['gone', 'peer']) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${s}?force=1`)).status, 204);
      assert.equal((await d.api('DELETE', '/networks/lost')).status, 204);
    });

    it('intact bridges and veths are left alone across a restart: same ifindex, a TCP connection survives', async () => {
      const net = await ok(d, 'POST', '/networks/create', { Name: 'keep', IPAM: { Config: [{ Subnet: '10.68.0.0/24' }] } });
      for (const s of ['srv', 'cli']) await ok(d, 'POST', '/cnm/v1/sandboxes', { Name: s, Networks: [{ Network: 'keep' }] });
      const srvIp = ((await ok(d, 'GET', '/cnm/v1/sandboxes/srv')).Networks.keep.IPAddress as string).split('/')[0]!;
      const bridge = bridgeOf(await ok(d, 'GET', `/networks/${net.Id}`));
      const cnmLinks = async () =>
        new Map((await links(d)).filter((l) => l.ifname === bridge || l.master === bridge).map((l) => [l.ifname, l.ifindex]));
      const before = await cnmLinks();
      assert.equal(before.size, 3, 'the bridge and two host veths');
      // A TCP connection held open across the restart (both ends run straight in the sandboxes' namespaces,
      // not through the daemon): the server prints what it receives.
      const pinOf = async (s: string) => join(d.execRoot, 'netns', (await ok(d, 'GET', `/cnm/v1/sandboxes/${s}`)).Id);
      const server = spawn(
        'nsenter',
        [`--net=${await pinOf('srv')}`, process.execPath, '-e', "require('net').createServer((s) => s.pipe(process.stdout)).listen(7070, () => console.error('listening'))"],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let listening = false;
      server.stderr.on('data', (b) => (listening ||= String(b).includes('listening')));
      let received = '';
      server.stdout.on('data', (b) => (received += b));
      try {
        await eventually(async () => listening, 'server listening');
        const client = spawn(
          'nsenter',
          [`--net=${await pinOf('cli')}`, process.execPath, '-e', `process.stdin.pipe(require('net').connect(7070, '${srvIp}'))`],
          { stdio: ['pipe', 'ignore', 'pipe'] },
        );
        try {
          client.stdin.write('before\n');
          await eventually(async () => received.includes('before'), 'first line through');
          await d.stop('SIGKILL');
          await d.start();
          assert.deepEqual(await cnmLinks(), before, 'no link was deleted and re-created');
          client.stdin.write('after\n');
          await eventually(async () => received.includes('after'), 'the same connection carries data after the restart');
          assert.equal(client.exitCode, null, 'the connection is still open');
        } finally {
          client.kill('SIGKILL');
        }
      } finally {
        server.kill('SIGKILL');
      }
      for (const s of ['srv', 'cli']) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${s}?force=1`)).status, 204);
      assert.equal((await d.api('DELETE', '/networks/keep')).status, 204);
    });
  });
}
