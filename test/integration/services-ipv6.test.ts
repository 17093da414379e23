/**
 * VIP services over IPv6 through a real daemon (issue 13, part 2): a service on a dual-stack network gets
 * an IPv4 and an IPv6 VIP, each balanced over the backends' addresses of its family; on an IPv6-only
 * network the IPv6 VIP alone. Backends run busybox httpd answering their own name; a client sandbox asks
 * by address (curl -6 / -4) and by name (the embedded DNS answers AAAA with the IPv6 VIP).
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

describe('services over IPv6: VIPs balanced per family (real kernel)', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  let dir = '';
  const servers: ChildProcess[] = [];

  async function ok(args: string[]): Promise<string> {
    const r = await d.cli(args);
    assert.equal(r.code, 0, `cnm ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
    return r.stdout.trim();
  }

  /** `count` requests from `client` to URL (FLAGS: -4 / -6, the family a name resolves to), each on a new connection; answering backend names (or FAIL) counted. */
  async function requests(client: string, flags: '-4' | '-6', url: string, count: number): Promise<Map<string, number>> {
    const r = await d.exec(client, httpBurstArgv(url, count, { family: flags === '-6' ? 6 : 4 }));
    assert.equal(r.code, 0, r.stderr);
    const counts = countLines(r.stdout);
    assert.equal([...counts.values()].reduce((a, b) => a + b, 0), count, `one line per request: ${JSON.stringify([...counts])}`);
    return counts;
  }

  async function backend(name: string, network: string, service: string): Promise<void> {
    await ok(['sandbox', 'create', name, '--network', network, '--service', service]);
    const sb = (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
    const root = join(dir, name);
    await mkdir(root);
    await writeFile(join(root, 'index.html'), `${name}\n`);
    servers.push(spawn('nsenter', [`--net=${sb.NetnsPath}`, 'busybox', 'httpd', '-f', '-p', '80', '-h', root], { stdio: 'ignore' }));
    // Up and answering on its own IPv6 address before any balancing is judged.
    const v6 = sb.Networks[network].IPv6Address;
    const r = await d.exec(network === 'dual' ? 'client' : 'client6', ['sh', '-c', `for i in $(seq 50); do curl -6 -sf -m 1 -o /dev/null http://[${v6}]/ && exit 0; sleep 0.1; done; exit 1`]);
    assert.equal(r.code, 0, `backend ${name} never answered on ${v6}`);
  }

  before(async () => {
    d = await startTestDaemon();
    dir = await mkdtemp(join(tmpdir(), 'cnmt-svc6-'));
    await ok(['network', 'create', '--ipv6', '--subnet', '10.62.0.0/24', '--subnet', 'fd00:62::/64', 'dual']);
    await ok(['network', 'create', '--ipv4=false', '--ipv6', '--subnet', 'fd00:63::/64', 'only6']);
    await ok(['service', 'create', 'web', '--network', 'dual']);
    await ok(['service', 'create', 'web6', '--network', 'only6']);
    await ok(['sandbox', 'create', 'client', '--network', 'dual']);
    await ok(['sandbox', 'create', 'client6', '--network', 'only6']);
    for (const name of ['b1', 'b2', 'b3']) await backend(name, 'dual', 'web');
    for (const name of ['c1', 'c2']) await backend(name, 'only6', 'web6');
  });

  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await d?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('dual-stack: an IPv4 and an IPv6 VIP; 90 requests to each reach all three backends', async () => {
    const svc = (await d.api('GET', '/cnm/v1/services/web')).json();
    assert.match(svc.VirtualIP, /^10\.62\.0\.\d+$/);
    assert.match(svc.VirtualIPv6, /^fd00:62::[0-9a-f:]+$/);
    for (const [flags, url] of [['-6', `http://[${svc.VirtualIPv6}]/`], ['-4', `http://${svc.VirtualIP}/`], ['-6', 'http://web/']] as const) {
      const counts = await requests('client', flags, url, 90);
      assert.equal(counts.get('FAIL'), undefined, `${url}: ${JSON.stringify([...counts])}`);
      for (const b of ['b1', 'b2', 'b3']) assert.ok((counts.get(b) ?? 0) > 10, `${url} ${b}: ${JSON.stringify([...counts])}`);
    }
    const aaaa = await d.exec('client', ['sh', '-c', 'getent ahostsv6 web | awk \'{print $1}\' | sort -u']);
    assert.deepEqual(aaaa.stdout.split('\n').filter(Boolean), [svc.VirtualIPv6]);
  });

  it('IPv6-only: the IPv6 VIP alone balances over both backends; a removed backend leaves at once', async () => {
    const svc = (await d.api('GET', '/cnm/v1/services/web6')).json();
    assert.equal(svc.VirtualIP, '');
    assert.match(svc.VirtualIPv6, /^fd00:63::[0-9a-f:]+$/);
    const counts = await requests('client6', '-6', 'http://web6/', 100);
    assert.equal(counts.get('FAIL'), undefined, JSON.stringify([...counts]));
    for (const b of ['c1', 'c2']) assert.ok((counts.get(b) ?? 0) > 10, `${b}: ${JSON.stringify([...counts])}`);
    await ok(['sandbox', 'rm', '-f', 'c2']);
    const after_ = await requests('client6', '-6', `http://[${svc.VirtualIPv6}]/`, 40);
    assert.deepEqual([...after_], [['c1', 40]]);
  });

  it('after kill -9 + restart and `nft flush ruleset` the IPv6 VIP still balances', async () => {
    await d.stop('SIGKILL');
    await d.start();
    const svc = (await d.api('GET', '/cnm/v1/services/web')).json();
    const counts = await requests('client', '-6', `http://[${svc.VirtualIPv6}]/`, 60);
    assert.equal(counts.get('FAIL'), undefined, JSON.stringify([...counts]));
    assert.equal(counts.size, 3, JSON.stringify([...counts]));
    assert.equal((await d.inHost('nft', ['flush', 'ruleset'])).code, 0);
    const deadline = Date.now() + 20_000;
    while (!/svc6_/.test((await d.inHost('nft', ['list', 'table', 'inet', 'cnm'])).stdout)) {
      assert.ok(Date.now() < deadline, 'the IPv6 service came back after the flush');
      await new Promise((r) => setTimeout(r, 50));
    }
    const again = await requests('client', '-6', `http://[${svc.VirtualIPv6}]/`, 30);
    assert.equal(again.get('FAIL'), undefined, JSON.stringify([...again]));
  });

  it('service rm takes the IPv6 VIP off the bridge and out of nftables', async () => {
    const svc = (await d.api('GET', '/cnm/v1/services/web6')).json();
    await ok(['service', 'rm', 'web6']);
    const addrs = await d.inHost('ip', ['-6', '-o', 'addr']);
    assert.doesNotMatch(addrs.stdout, new RegExp(`${svc.VirtualIPv6}/128`));
    const nft = await d.inHost('nft', ['list', 'table', 'inet', 'cnm']);
    assert.doesNotMatch(nft.stdout, new RegExp(svc.VirtualIPv6));
    assert.doesNotMatch(nft.stdout, new RegExp(`svc6_${svc.Id.slice(0, 16)}`));
  });
});
