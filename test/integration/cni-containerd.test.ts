/**
 * cnm's CNI plugin under a real runtime: containerd (Debian `containerd`) and `ctr run --cni`, started in
 * the cnm daemon's throwaway namespace (runtime and daemon share the host namespace, as on a real host),
 * with a busybox image the test builds. A container gets its interface from cnm and reaches a cnm
 * sandbox on the same network and back; `ctr run --rm` removes it again through DEL; a container killed
 * with no runtime call (SIGKILL from outside, the runtime's DEL never comes) is released from link events.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContainerd, TEST_IMAGE, type Containerd } from '../helpers/containerd.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { ping, reached } from '../helpers/probe.js';

const skip =
  realKernelSkip() || realClientSkip('containerd') || realClientSkip('ctr') || (existsSync('/bin/busybox') ? false : 'real client: no /bin/busybox (busybox-static)');

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`not within ${ms / 1000} s: ${what}`);
}

describe('cnm CNI plugin under containerd (ctr run --cni)', { skip }, () => {
  let hostNs: string;
  let d: TestDaemon;
  let ctd: Containerd;
  let dirs: string;
  let cni: { binDir: string; confDir: string };
  let peerIp: string;

  before(async () => {
    hostNs = createTestNetns();
    d = await startTestDaemon(['--firewall-check-interval', '0'], { hostNs });
    const created = await d.api('POST', '/networks/create', { Name: 'ctrnet', IPAM: { Config: [{ Subnet: '10.63.0.0/24', Gateway: '10.63.0.1' }] } });
    assert.equal(created.status, 201, created.body);
    const peer = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'ctr-peer', Networks: [{ Network: 'ctrnet' }] });
    assert.equal(peer.status, 201, peer.body);
    peerIp = peer.json().Networks.ctrnet.IPAddress;
    dirs = await mkdtemp(join(tmpdir(), 'cnmt-cnidirs-'));
    cni = { binDir: join(dirs, 'bin'), confDir: join(dirs, 'net.d') };
    const installed = await d.cli(['cni', 'install', '--bin-dir', cni.binDir]);
    assert.equal(installed.code, 0, installed.stderr);
    await (await import('node:fs/promises')).mkdir(cni.confDir, { recursive: true });
    // libcni in containerd 1.6 speaks CNI up to 1.0.0: the runtime's version decides the result's.
    await writeFile(
      join(cni.confDir, '10-cnmt.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'cnmt-ctr', plugins: [{ type: 'cnm', network: 'ctrnet', socket: d.socket }] }),
    );
    ctd = await startContainerd(netnsPath(hostNs));
  });
  after(async () => {
    await ctd?.cleanup();
    await d?.cleanup();
    if (hostNs) deleteTestNetns(hostNs);
    if (dirs) await rm(dirs, { recursive: true, force: true });
  });

  const sandboxOf = async (id: string) => d.api('GET', `/cnm/v1/sandboxes/cni-${ctd.namespace}-${id}-eth0`);

  it('ctr run --cni --rm: the container gets eth0 from cnm, pings a cnm sandbox, and DEL removes the attachment', async () => {
    const id = `c${randomBytes(3).toString('hex')}`;
    const run = await ctd.ctr(['run', '--cni', '--rm', TEST_IMAGE, id, 'sh', '-c', `ip -o -4 addr show dev eth0 && ping -c1 -W5 ${peerIp}`], { cni, timeoutMs: 120_000 });
    assert.equal(run.code, 0, `ctr run: ${run.stdout}\n${run.stderr}\n${d.logs().slice(-2000)}`);
    assert.match(run.stdout, /eth0\s+inet 10\.63\.0\.\d+\/24/);
    assert.match(run.stdout, /1 packets received/);
    // ctr's DEL (after the task exited) removed the attachment.
    assert.equal((await sandboxOf(id)).status, 404);
  });

  it('a detached container is reachable from a cnm sandbox; killed without DEL, its attachment is released', async () => {
    const id = `c${randomBytes(3).toString('hex')}`;
    const run = await ctd.ctr(['run', '--cni', '-d', TEST_IMAGE, id, 'sleep', '3600'], { cni, timeoutMs: 120_000 });
    assert.equal(run.code, 0, `ctr run -d: ${run.stdout}\n${run.stderr}`);
    const sb = await sandboxOf(id);
    assert.equal(sb.status, 200, sb.body);
    const view = sb.json();
    assert.equal(view.NetnsFollow, true);
    assert.match(view.NetnsPath, /^\/proc\/\d+\/ns\/net$/);
    const containerIp = view.Networks.ctrnet.IPAddress as string;
    reached(await ping((argv) => d.exec('ctr-peer', argv), containerIp), 'the cnm sandbox reaches the container');
    const ls = await d.cli(['sandbox', 'ls']);
    assert.match(ls.stdout, new RegExp(`cni-${ctd.namespace}-${id}-eth0`));
    // Killed from outside: no runtime call, no DEL. The namespace dies with its last process.
    const pid = Number(/^\/proc\/(\d+)\//.exec(view.NetnsPath)![1]);
    process.kill(pid, 'SIGKILL');
    await waitFor('the killed container\'s attachment is released', async () => (await sandboxOf(id)).status === 404);
    // Its address is free again: a sandbox can take exactly it.
    const again = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'ctr-reuse', Networks: [{ Network: 'ctrnet', IPv4Address: containerIp }] });
    assert.equal(again.status, 201, again.body);
    await ctd.ctr(['tasks', 'delete', '-f', id], { cni });
    await ctd.ctr(['containers', 'delete', id], { cni });
  });
});
