/**
 * Services through a real daemon: a VIP service with three backend sandboxes, each running busybox
 * httpd that answers its own name, and a client sandbox that reaches the service by name (embedded DNS →
 * VIP → nftables). Then a backend leaves by disconnect and joins again by connect, the daemon is killed
 * and restarted, a backend's sandbox is removed, and a dnsrr service resolves to its backends.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { countLines, httpBurstArgv } from '../helpers/http-burst.js';
import { realKernelSkip } from '../helpers/privileges.js';

const SKIP = realKernelSkip();
const BACKENDS = ['b1', 'b2', 'b3'] as const;

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout.trim();
}

describe('services: VIP load balancing and DNS round robin (real kernel)', { skip: SKIP }, () => {
  let d: TestDaemon;
  let dir = '';
  const servers: ChildProcess[] = [];
  const ip: Record<string, string> = {};

  /** `count` requests to http://NAME/ from the client, each on a new connection; answering backend names (or FAIL) counted. */
  async function requests(count: number, name = 'web'): Promise<Map<string, number>> {
    const r = await d.exec('client', httpBurstArgv(`http://${name}/`, count));
    assert.equal(r.code, 0, r.stderr);
    const counts = countLines(r.stdout);
    assert.equal([...counts.values()].reduce((a, b) => a + b, 0), count, `one line per request: ${JSON.stringify([...counts])}`);
    return counts;
  }

  async function ahosts(name: string): Promise<string[]> {
    const r = await d.exec('client', ['sh', '-c', `getent ahostsv4 ${name} | awk '{print $1}' | sort -u`]);
    return r.stdout.split('\n').filter(Boolean);
  }

  before(async () => {
    d = await startTestDaemon();
    dir = await mkdtemp(join(tmpdir(), 'cnmt-svc-'));
    await ok(d, ['network', 'create', '--subnet', '10.61.0.0/24', 'svcnet']);
    await ok(d, ['service', 'create', 'web', '--network', 'svcnet']);
    for (const name of BACKENDS) {
      await ok(d, ['sandbox', 'create', name, '--network', 'svcnet', '--service', 'web']);
      const sb = (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
      ip[name] = sb.Networks.svcnet.IPAddress;
      const root = join(dir, name);
      await mkdir(root);
      await writeFile(join(root, 'index.html'), `${name}\n`);
      servers.push(spawn('nsenter', [`--net=${sb.NetnsPath}`, 'busybox', 'httpd', '-f', '-p', '80', '-h', root], { stdio: 'ignore' }));
    }
    await ok(d, ['sandbox', 'create', 'client', '--network', 'svcnet']);
    for (const name of BACKENDS) {
      const r = await d.exec('client', ['sh', '-c', `for i in $(seq 50); do curl -sf -m 1 -o /dev/null http://${ip[name]}/ && exit 0; sleep 0.1; done; exit 1`]);
      assert.equal(r.code, 0, `backend ${name} never answered directly`);
    }
  });

  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await d?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the name resolves to the VIP; 300 requests through it reach all three backends', async () => {
    const svc = (await d.api('GET', '/cnm/v1/services/web')).json();
    assert.equal(svc.Mode, 'vip');
    assert.match(svc.VirtualIP, /^10\.61\.0\.\d+$/);
    assert.deepEqual(svc.Backends.map((b: { SandboxName: string }) => b.SandboxName).sort(), [...BACKENDS]);
    assert.deepEqual(await ahosts('web'), [svc.VirtualIP]);
    assert.deepEqual(await ahosts('tasks.web'), Object.values(ip).sort());
    const counts = await requests(300);
    assert.equal(counts.get('FAIL'), undefined, JSON.stringify([...counts]));
    for (const name of BACKENDS) assert.ok((counts.get(name) ?? 0) > 30, `${name}: ${JSON.stringify([...counts])}`);
    const ls = await ok(d, ['service', 'ls']);
    assert.match(ls, /web\s+vip\s+svcnet\s+10\.61\.0\.\d+\s+all\s+3/);
  });

  it('a disconnected backend leaves the service at once and joins again by connect', async () => {
    await ok(d, ['network', 'disconnect', 'svcnet', 'b2']);
    assert.deepEqual(await ahosts('tasks.web'), [ip.b1!, ip.b3!].sort());
    const counts = await requests(100);
    assert.equal(counts.get('b2'), undefined, JSON.stringify([...counts]));
    assert.equal(counts.get('FAIL'), undefined, JSON.stringify([...counts]));
    assert.ok((counts.get('b1') ?? 0) > 10 && (counts.get('b3') ?? 0) > 10, JSON.stringify([...counts]));
    // The same address again, on a new interface with a new MAC: the leave dropped the host's neighbour
    // entry for it, so the VIP reaches the new interface at once.
    await ok(d, ['network', 'connect', '--service', 'web', '--ip', ip.b2!, 'svcnet', 'b2']);
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/b2')).json().Networks.svcnet.IPAddress, ip.b2);
    assert.deepEqual(await ahosts('tasks.web'), Object.values(ip).sort());
    const again = await requests(60);
    assert.equal(again.get('FAIL'), undefined, JSON.stringify([...again]));
    assert.ok((again.get('b2') ?? 0) > 0, JSON.stringify([...again]));
  });

  it('bad requests are refused with Docker-style statuses and change nothing', async () => {
    assert.equal((await d.api('POST', '/cnm/v1/services', { Name: 'web', Network: 'svcnet' })).status, 409);
    assert.equal((await d.api('POST', '/cnm/v1/services', { Name: 'x', Network: 'nosuchnet' })).status, 404);
    assert.equal((await d.api('POST', '/cnm/v1/services', { Name: 'x', Network: 'svcnet', Ports: ['99999'] })).status, 400);
    assert.equal((await d.api('POST', '/cnm/v1/services', { Name: 'x', Network: 'svcnet', Mode: 'rr' })).status, 400);
    const bad = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'x', Networks: [{ Network: 'svcnet', Services: ['nosuch'] }] });
    assert.equal(bad.status, 404, bad.body);
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/x')).status, 404);
    const rmNet = await d.api('DELETE', '/networks/svcnet');
    assert.equal(rmNet.status, 403, rmNet.body);
    assert.equal((await d.api('GET', '/cnm/v1/services')).json().length, 1);
  });

  it('after kill -9 and a restart the VIP still balances over the backends', async () => {
    await d.stop('SIGKILL');
    await d.start();
    const counts = await requests(60);
    assert.equal(counts.get('FAIL'), undefined, JSON.stringify([...counts]));
    assert.equal(new Set([...counts.keys()]).size, 3, JSON.stringify([...counts]));
  });

  it('a backend whose sandbox is removed leaves at once: the next 100 requests never reach it', async () => {
    await ok(d, ['sandbox', 'rm', '-f', 'b2']);
    const svc = (await d.api('GET', '/cnm/v1/services/web')).json();
    assert.deepEqual(svc.Backends.map((b: { SandboxName: string }) => b.SandboxName).sort(), ['b1', 'b3']);
    assert.deepEqual(await ahosts('tasks.web'), [ip.b1!, ip.b3!].sort());
    const counts = await requests(100);
    assert.equal(counts.get('b2'), undefined, JSON.stringify([...counts]));
    assert.equal(counts.get('FAIL'), undefined, JSON.stringify([...counts]));
    assert.ok((counts.get('b1') ?? 0) > 10 && (counts.get('b3') ?? 0) > 10, JSON.stringify([...counts]));
  });

  it('dnsrr: the name resolves to the backends; removing the service keeps them connected', async () => {
    await ok(d, ['service', 'create', 'db', '--network', 'svcnet', '--mode', 'dnsrr']);
    await ok(d, ['sandbox', 'create', 'd1', '--network', 'name=svcnet,service=db']);
    await ok(d, ['sandbox', 'create', 'd2', '--network', 'svcnet', '--service', 'db']);
    const d1 = (await d.api('GET', '/cnm/v1/sandboxes/d1')).json().Networks.svcnet.IPAddress;
    const d2 = (await d.api('GET', '/cnm/v1/sandboxes/d2')).json().Networks.svcnet.IPAddress;
    assert.deepEqual(await ahosts('db'), [d1, d2].sort());
    assert.equal((await d.api('GET', '/cnm/v1/services/db')).json().VirtualIP, '');
    await ok(d, ['service', 'rm', 'db', 'web']);
    assert.deepEqual(await ahosts('db'), []);
    assert.deepEqual(await ahosts('tasks.web'), []);
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/d1')).json().Networks.svcnet.IPAddress, d1);
    const nft = await d.inHost('nft', ['list', 'table', 'inet', 'cnm']);
    assert.doesNotMatch(nft.stdout, /svc_/);
  });
});
