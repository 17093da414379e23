/**
 * Adopting a namespace (sandbox create --netns PATH) on a real daemon: only other network namespaces are
 * accepted, the one given is opened once and pinned, and it gets back exactly what it had.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns, inNetns, isRoot, netnsPath } from '../helpers/netns.js';

/** A namespace as another runtime would leave it: a link with addresses and default routes. */
function makeForeignNamespace(): string {
  const ns = createTestNetns();
  // No duplicate address detection: a link-local address must not change flags between two snapshots.
  const dad = '/proc/sys/net/ipv6/conf/%s/accept_dad';
  inNetns(ns, 'sh', ['-c', `echo 0 > ${dad.replace('%s', 'all')} && echo 0 > ${dad.replace('%s', 'default')}`]);
  // A veth pair inside the namespace (this kernel may lack the dummy module).
  inNetns(ns, 'ip', ['link', 'add', 'cnmd0', 'type', 'veth', 'peer', 'name', 'cnmd1']);
  inNetns(ns, 'ip', ['link', 'set', 'cnmd1', 'up']);
  inNetns(ns, 'ip', ['addr', 'add', '10.99.0.2/24', 'dev', 'cnmd0']);
  inNetns(ns, 'ip', ['addr', 'add', 'fd99::2/64', 'dev', 'cnmd0', 'nodad']);
  inNetns(ns, 'ip', ['link', 'set', 'cnmd0', 'up']);
  inNetns(ns, 'ip', ['route', 'add', 'default', 'via', '10.99.0.1', 'dev', 'cnmd0']);
  inNetns(ns, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd99::1', 'dev', 'cnmd0']);
  return ns;
}

/** Everything `ip` reports about a namespace's links, addresses and routes (both families). */
function snapshot(ns: string): Record<string, unknown> {
  const j = (...args: string[]) => JSON.parse(inNetns(ns, 'ip', ['-j', ...args])) as unknown;
  return { link: j('link'), addr: j('addr'), route4: j('-4', 'route'), route6: j('-6', 'route') };
}

function defaultVia(ns: string, family: '-4' | '-6'): string[] {
  return (JSON.parse(inNetns(ns, 'ip', ['-j', family, 'route', 'show', 'default'])) as Array<{ gateway?: string }>).map((r) => r.gateway ?? '');
}

async function pins(d: TestDaemon): Promise<string[]> {
  return (await readdir(join(d.execRoot, 'netns')).catch(() => [] as string[])).sort();
}

if (isRoot()) {
  describe('adopting a network namespace (real kernel)', () => {
    let d: TestDaemon;
    const foreign: string[] = [];
    const children: ChildProcess[] = [];
    before(async () => {
      d = await startTestDaemon();
      const created = await d.api('POST', '/networks/create', {
        Name: 'adopt-net', EnableIPv6: true,
        IPAM: { Config: [{ Subnet: '10.61.0.0/24', Gateway: '10.61.0.1' }, { Subnet: 'fd61::/64', Gateway: 'fd61::1' }] },
      });
      assert.equal(created.status, 201, created.body);
    });
    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      await d?.cleanup();
      for (const ns of foreign) deleteTestNetns(ns);
    });

    it('refuses what is not another network namespace with a 400 that changes nothing, and adopts one that is', async () => {
      const ns = makeForeignNamespace();
      foreign.push(ns);
      const refused: Array<[string, RegExp]> = [
        ['/proc/self/ns/net', /daemon's own network namespace/],
        ['/proc/self/ns/mnt', /not a network namespace/],
        ['/proc/self/ns/uts', /not a network namespace/],
        ['/etc/hostname', /not a network namespace/],
        [join(d.execRoot, 'no-such-namespace'), /no such file or directory/i],
        ['run/netns/relative', /must be absolute/],
        [d.hostNsPath, /daemon's own network namespace/],
      ];
      for (const [path, message] of refused) {
        const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'bad', NetnsPath: path, Networks: [{ Network: 'none' }] });
        assert.equal(r.status, 400, `${path}: ${r.body}`);
        assert.match(r.json().message, message, path);
        assert.deepEqual((await d.api('GET', '/cnm/v1/sandboxes')).json(), [], `${path}: no sandbox`);
        assert.deepEqual(await pins(d), [], `${path}: no pin left`);
      }
      const ok = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'good', NetnsPath: netnsPath(ns), Networks: [{ Network: 'none' }] });
      assert.equal(ok.status, 201, ok.body);
      const id = ok.json().Id as string;
      assert.deepEqual(await pins(d), [id], 'the adopted namespace is pinned under the exec root');
      assert.equal((await stat(join(d.execRoot, 'netns', id))).ino, (await stat(netnsPath(ns))).ino, 'the pin is that namespace');

      // The same namespace again, by another path, and an owned sandbox's pin: another sandbox has them.
      const owned = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'owned', Networks: [{ Network: 'none' }] });
      assert.equal(owned.status, 201, owned.body);
      const ownedId = owned.json().Id as string;
      for (const path of [netnsPath(ns), join(d.execRoot, 'netns', id), join(d.execRoot, 'netns', ownedId)]) {
        const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'again', NetnsPath: path, Networks: [{ Network: 'none' }] });
        assert.equal(r.status, 400, `${path}: ${r.body}`);
        assert.match(r.json().message, /network namespace of sandbox (good|owned)/);
        assert.deepEqual(await pins(d), [id, ownedId].sort(), `${path}: no pin added`);
      }
      for (const name of ['good', 'owned']) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${name}`)).status, 204);
      assert.deepEqual(await pins(d), [], 'rm unpins');
      assert.equal(inNetns(ns, 'ip', ['-br', 'link', 'show', 'cnmd0']).includes('cnmd0'), true, 'the namespace itself lives on');
    });

    it('pins a /proc/PID path at request time: the sandbox keeps that namespace after the process exits and a restart', async () => {
      const ns = makeForeignNamespace();
      foreign.push(ns);
      const holder = spawn('ip', ['netns', 'exec', ns, 'sleep', '600'], { stdio: 'ignore' });
      children.push(holder);
      // ip netns exec execs sleep in the same process once it has entered the namespace.
      const procPath = `/proc/${holder.pid}/ns/net`;
      const entered = async () => (await stat(procPath)).ino === (await stat(netnsPath(ns))).ino;
      for (let i = 0; i < 500 && !(await entered()); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(await entered(), 'the holder process is in the namespace');
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'bypid', NetnsPath: procPath, Networks: [{ Network: 'adopt-net' }] });
      assert.equal(r.status, 201, r.body);
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
      await d.stop();
      await d.start();
      const inspect = await d.api('GET', '/cnm/v1/sandboxes/bypid');
      assert.equal(inspect.status, 200, 'the adopted sandbox survives its process and a restart');
      // Leave and join again: the new eth0 can only go where the pin points.
      assert.equal((await d.api('POST', '/networks/adopt-net/disconnect', { Container: 'bypid' })).status, 200);
      assert.equal(inNetns(ns, 'ip', ['-br', 'link']).includes('eth0'), false);
      const conn = await d.api('POST', '/networks/adopt-net/connect', { Container: 'bypid' });
      assert.equal(conn.status, 200, conn.body);
      assert.match(inNetns(ns, 'ip', ['-br', 'addr', 'show', 'eth0']), /10\.61\.0\.\d+/, 'eth0 went into the namespace the PID had');
      assert.equal((await d.api('DELETE', '/cnm/v1/sandboxes/bypid')).status, 204);
      assert.deepEqual(await pins(d), []);
    });

    it('gives an adopted namespace back exactly what it had, on the last disconnect and on rm', async () => {
      const ns = makeForeignNamespace();
      foreign.push(ns);
      const before = snapshot(ns);
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'routes', NetnsPath: netnsPath(ns), Networks: [{ Network: 'adopt-net' }] });
      assert.equal(r.status, 201, r.body);
      assert.deepEqual(defaultVia(ns, '-4'), ['10.61.0.1'], "cnm's IPv4 default route wins");
      assert.deepEqual(defaultVia(ns, '-6'), ['fd61::1'], "cnm's IPv6 default route wins");

      const disc = await d.api('POST', '/networks/adopt-net/disconnect', { Container: 'routes' });
      assert.equal(disc.status, 200, disc.body);
      assert.deepEqual(snapshot(ns), before, 'the last disconnect restores links, addresses and routes (nothing of cnm left, not even a retired husk)');

      assert.equal((await d.api('POST', '/networks/adopt-net/connect', { Container: 'routes' })).status, 200);
      assert.deepEqual(defaultVia(ns, '-4'), ['10.61.0.1']);
      await d.stop();
      await d.start();
      assert.deepEqual(defaultVia(ns, '-4'), ['10.61.0.1'], 'a restart keeps the adopted sandbox connected');
      assert.equal((await d.api('DELETE', '/cnm/v1/sandboxes/routes')).status, 204);
      assert.deepEqual(snapshot(ns), before, 'rm restores links, addresses and routes');
      assert.deepEqual(await pins(d), [], d.logs());
    });
  });
} else {
  it('namespace adoption needs root', (t) => t.skip('not root'));
}
