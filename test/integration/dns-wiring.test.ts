/**
 * The embedded DNS wired into a real daemon: sandboxes on user-defined networks resolve through
 * 127.0.0.11 answered by cnm inside their own namespace; glibc (getent) and dig run in the sandboxes
 * through `cnm exec`. The daemon's --dns upstream is a fake DNS server on 127.0.0.1:53 of the daemon's
 * own throwaway namespace, so forwarded queries (and NXDOMAIN for unknown names) stay local.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeUpstream } from '../../src/dns/fake-upstream.js';
import { NetnsSockets } from '../../src/dns/netns-socket.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { realKernelSkip } from '../helpers/privileges.js';

const SKIP = realKernelSkip();

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout.trim();
}

/** `getent hosts NAME` for each name in one exec: name → first address, or undefined when not found. */
async function getentHosts(d: TestDaemon, sandbox: string, names: string[]): Promise<Record<string, string | undefined>> {
  const script = 'for n in "$@"; do printf "%s " "$n"; getent hosts "$n" | head -n1 | cut -d" " -f1 | grep . || echo MISSING; done';
  const r = await d.exec(sandbox, ['sh', '-c', script, 'sh', ...names]);
  assert.equal(r.code, 0, r.stderr);
  const out: Record<string, string | undefined> = {};
  for (const line of r.stdout.trim().split('\n')) {
    const [name, address] = line.trim().split(/\s+/) as [string, string];
    out[name] = address === 'MISSING' ? undefined : address;
  }
  return out;
}

async function digStatus(d: TestDaemon, sandbox: string, name: string): Promise<string> {
  const r = await d.exec(sandbox, ['dig', '@127.0.0.11', '+time=2', '+tries=1', '+noall', '+comments', name, 'A']);
  return /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (${r.code}): ${r.stdout}${r.stderr}`;
}

describe('embedded DNS wired into the daemon (real kernel)', { skip: SKIP }, () => {
  let d: TestDaemon;
  const netns = SKIP ? undefined : new NetnsSockets();
  const upstream = new FakeUpstream(new Map([['outside.test', ['192.0.2.7']]]));
  let upstreamRunning = false;
  const ip: Record<string, string> = {};

  before(async () => {
    d = await startTestDaemon(['--dns', '127.0.0.1']);
    const handle = netns!.openNamespace(d.hostNsPath);
    try {
      await upstream.start({ fds: netns!.listeners(handle, '127.0.0.1', 53) });
      upstreamRunning = true;
    } finally {
      netns!.closeNamespace(handle);
    }
    await ok(d, ['network', 'create', '--subnet', '10.60.0.0/24', 'front']);
    await ok(d, ['network', 'create', '--subnet', '10.61.0.0/24', 'back']);
    await ok(d, ['sandbox', 'create', 'web', '--network', 'front', '--alias', 'www']);
    await ok(d, ['sandbox', 'create', 'client', '--network', 'front']);
    await ok(d, ['sandbox', 'create', 'other', '--network', 'back']);
    await ok(d, ['sandbox', 'create', 'plain']);
    const web = (await d.api('GET', '/cnm/v1/sandboxes/web')).json();
    ip.web = web.Networks.front.IPAddress;
    ip.webShortId = web.Id.slice(0, 12);
  });

  after(async () => {
    if (upstreamRunning) await upstream.stop();
    netns?.close();
    await d?.cleanup();
  });

  it('resolves name, alias, name.network and short ID on a user-defined network; forwards the rest', async () => {
    const found = await getentHosts(d, 'client', ['web', 'www', 'web.front', ip.webShortId!, 'outside.test']);
    assert.deepEqual(found, { web: ip.web, www: ip.web, 'web.front': ip.web, [ip.webShortId!]: ip.web, 'outside.test': '192.0.2.7' });
    const conf = await d.exec('client', ['cat', '/etc/resolv.conf']);
    assert.match(conf.stdout, /^nameserver 127\.0\.0\.11$/m);
    assert.match(conf.stdout, /^options .*ndots:0/m);
  });

  it('keeps names to their network and the default bridge on the host resolv.conf', async () => {
    assert.deepEqual(await getentHosts(d, 'other', ['web', 'web.front']), { web: undefined, 'web.front': undefined });
    assert.equal(await digStatus(d, 'other', 'web'), 'NXDOMAIN');
    const conf = await d.exec('plain', ['cat', '/etc/resolv.conf']);
    assert.equal(conf.code, 0, conf.stderr);
    assert.doesNotMatch(conf.stdout, /127\.0\.0\.11/);
  });

  it('a disconnected sandbox is gone from DNS at once, and back on reconnect', async () => {
    await ok(d, ['network', 'disconnect', 'front', 'web']);
    assert.equal(await digStatus(d, 'client', 'web'), 'NXDOMAIN');
    assert.deepEqual(await getentHosts(d, 'client', ['www']), { www: undefined });
    // Off its last user-defined network, web keeps its resolver (as in Docker): it still answers, rather
    // than leaving web's processes without a server, though front's names are no longer web's to see and a
    // sandbox on no network has nowhere to forward to.
    assert.match((await d.exec('web', ['cat', '/etc/resolv.conf'])).stdout, /^nameserver 127\.0\.0\.11$/m);
    assert.equal(await digStatus(d, 'web', 'client'), 'SERVFAIL');
    await ok(d, ['network', 'connect', '--alias', 'www', 'front', 'web']);
    const web = (await d.api('GET', '/cnm/v1/sandboxes/web')).json();
    ip.web = web.Networks.front.IPAddress;
    assert.deepEqual(await getentHosts(d, 'client', ['www']), { www: ip.web });
  });

  it('after kill -9 and a restart, the server is attached again and names resolve', async () => {
    await d.stop('SIGKILL');
    await d.start();
    assert.deepEqual(await getentHosts(d, 'client', ['web', 'outside.test']), { web: ip.web, 'outside.test': '192.0.2.7' });
    assert.equal(await digStatus(d, 'other', 'web'), 'NXDOMAIN');
  });
});
