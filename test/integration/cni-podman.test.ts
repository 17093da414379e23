/**
 * cnm's CNI plugin under Podman 4 (Debian `podman` 4.3.1) with its CNI backend (network_backend = "cni",
 * test/helpers/podman.ts), run in the cnm daemon's throwaway namespace (runtime and daemon share the host
 * namespace, as on a real host). `podman run --network NAME`, where NAME is a conflist whose plugin is
 * cnm's: the container gets its address from cnm, `cnm network inspect` shows its endpoint, a cnm sandbox
 * on the same network and the container reach each other, the `bandwidth` plugin chained after cnm
 * shapes the host veth cnm reported, and `podman rm -f` releases the endpoint (podman's DEL of the whole
 * chain), leaving no namespace of podman's, no libcni cache file and no ifb device of bandwidth's.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { PODMAN_IMAGE, startPodman, type Podman } from '../helpers/podman.js';
import { realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { CNI_PLUGINS } from '../helpers/cni-plugins.js';
import { ping, reached, runCommand } from '../helpers/probe.js';

const skip = realKernelSkip() || realClientSkip('podman') || (existsSync('/bin/busybox') ? false : 'real client: no /bin/busybox (busybox-static)');

/** Podman's CNI network name (the conflist's `name`), and the cnm network behind it. */
const PODMAN_NETWORK = 'cnmt-pm';
/** bandwidth's static limits (bit/s, bits), chained after cnm. */
const SHAPING = { ingressRate: 8_000_000, ingressBurst: 800_000, egressRate: 4_000_000, egressBurst: 400_000 };

describe('cnm CNI plugin under Podman 4 (network_backend = "cni")', { skip }, () => {
  let hostNs: string;
  let d: TestDaemon;
  let pm: Podman;
  let dirs: string;
  let peerIp: string;

  before(async () => {
    hostNs = createTestNetns();
    d = await startTestDaemon(['--firewall-check-interval', '0'], { hostNs });
    const created = await d.api('POST', '/networks/create', { Name: 'pmnet', IPAM: { Config: [{ Subnet: '10.66.0.0/24', Gateway: '10.66.0.1' }] } });
    assert.equal(created.status, 201, created.body);
    const peer = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'pm-peer', Networks: [{ Network: 'pmnet' }] });
    assert.equal(peer.status, 201, peer.body);
    peerIp = peer.json().Networks.pmnet.IPAddress;
    dirs = await mkdtemp(join(tmpdir(), 'cnmt-pmcni-'));
    const cni = { binDir: join(dirs, 'bin'), confDir: join(dirs, 'net.d'), pluginDirs: [CNI_PLUGINS] };
    const installed = await d.cli(['cni', 'install', '--bin-dir', cni.binDir]);
    assert.equal(installed.code, 0, installed.stderr);
    await mkdir(cni.confDir, { recursive: true });
    // Podman 4.3's libcni speaks CNI up to 1.0.0.
    await writeFile(
      join(cni.confDir, `${PODMAN_NETWORK}.conflist`),
      JSON.stringify({ cniVersion: '1.0.0', name: PODMAN_NETWORK, plugins: [{ type: 'cnm', network: 'pmnet', socket: d.socket }, { type: 'bandwidth', ...SHAPING }] }),
    );
    pm = await startPodman(netnsPath(hostNs), cni);
  });
  after(async () => {
    await pm?.cleanup();
    await d?.cleanup();
    if (hostNs) deleteTestNetns(hostNs);
    if (dirs) await rm(dirs, { recursive: true, force: true });
  });

  it('podman run --network: the container gets its address from cnm, reaches a cnm sandbox and back; podman rm -f releases the endpoint', async () => {
    const hostJson = async (cmd: string, args: string[]) => {
      const r = await runCommand('nsenter', [`--net=${d.hostNsPath}`, cmd, ...args]);
      assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout || '[]') as Array<Record<string, any>>;
    };
    const ifbLinks = async () => (await hostJson('ip', ['-j', '-d', 'link', 'show', 'type', 'ifb'])).map((l) => l.ifname as string);
    assert.deepEqual(await ifbLinks(), [], 'no ifb device before');
    const ls = await pm.podman(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${PODMAN_NETWORK} cnm$`, 'm'), 'podman reads cnm\'s conflist');
    const name = `cnmt-${randomBytes(3).toString('hex')}`;
    // nofile / nproc: podman raises both to its defaults at start, which needs CAP_SYS_RESOURCE; lowering never does.
    const run = await pm.podman([
      'run', '-d', '--name', name, '--network', PODMAN_NETWORK, '--cgroup-parent', pm.cgroupParent,
      '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', PODMAN_IMAGE, 'sleep', '3600',
    ]);
    assert.equal(run.code, 0, `podman run: ${run.stdout}\n${run.stderr}\n${d.logs().slice(-2000)}`);
    const id = run.stdout.trim().split('\n').at(-1)!;
    assert.match(id, /^[0-9a-f]{64}$/);
    const inspect = await pm.podman(['inspect', name, '--format', '{{json .NetworkSettings}}']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const settings = JSON.parse(inspect.stdout) as { SandboxKey: string; Networks: Record<string, { IPAddress: string; MacAddress: string }> };
    const sandboxKey = settings.SandboxKey;
    assert.match(sandboxKey, /^\/run\/netns\/netns-/, 'podman\'s own namespace file');
    pm.track(sandboxKey);
    const cacheFile = `/var/lib/cni/results/${PODMAN_NETWORK}-${id}-eth0`;
    pm.track(cacheFile);
    const podmanIp = settings.Networks[PODMAN_NETWORK]?.IPAddress ?? '';
    assert.match(podmanIp, /^10\.66\.0\.\d+$/, JSON.stringify(settings.Networks));

    // cnm network inspect shows the container's endpoint: the address podman reports, and its MAC.
    const endpointOf = async () => {
      const r = await d.cli(['network', 'inspect', 'pmnet']);
      assert.equal(r.code, 0, r.stderr);
      const containers = JSON.parse(r.stdout)[0].Containers as Record<string, { Name: string; IPv4Address: string; MacAddress: string }>;
      return Object.values(containers).find((c) => c.Name === `cni-${id}-eth0`);
    };
    const ep = await endpointOf();
    assert.ok(ep, 'cnm network inspect lists the podman container\'s endpoint');
    assert.equal(ep.IPv4Address, `${podmanIp}/24`);
    assert.equal(ep.MacAddress, settings.Networks[PODMAN_NETWORK]!.MacAddress);
    const sb = (await d.api('GET', `/cnm/v1/sandboxes/cni-${id}-eth0`)).json();
    assert.equal(sb.NetnsPath, sandboxKey, 'the attachment follows podman\'s namespace');

    // bandwidth, run by podman after cnm, shaped the host veth cnm reported: a tbf at its root at the
    // ingress rate (bytes/s in tc's JSON), its ingress redirected to an ifb device shaped at the egress rate.
    const hostVeth = sb.Networks.pmnet.HostInterfaceName as string;
    assert.match(hostVeth, /^cnm/);
    const tbf = (await hostJson('tc', ['-j', 'qdisc', 'show', 'dev', hostVeth])).find((q) => q.kind === 'tbf' && q.root);
    assert.equal(tbf?.options?.rate, SHAPING.ingressRate / 8, 'the host veth is shaped');
    const [ifb] = await ifbLinks();
    assert.ok(ifb, 'bandwidth made its ifb device');
    const ifbTbf = (await hostJson('tc', ['-j', 'qdisc', 'show', 'dev', ifb])).find((q) => q.kind === 'tbf');
    assert.equal(ifbTbf?.options?.rate, SHAPING.egressRate / 8, 'the ifb device is shaped');

    // Both ways: a cnm sandbox reaches the container, the container (podman exec) reaches the sandbox.
    reached(await ping((argv) => d.exec('pm-peer', argv), podmanIp), 'the cnm sandbox reaches the podman container');
    const back = await pm.podman(['exec', name, 'ping', '-c1', '-W3', peerIp]); // busybox's ping
    assert.equal(back.code, 0, `the podman container reaches the cnm sandbox: ${back.stdout}${back.stderr}`);
    assert.match(back.stdout, /1 packets transmitted, 1 packets received/);

    // podman rm -f: its DEL releases the endpoint; podman's namespace and libcni's cache file go too.
    const removed = await pm.podman(['rm', '--force', '--time', '0', name]);
    assert.equal(removed.code, 0, removed.stderr);
    // Through the plugin's DEL (the daemon's log of the request), not only because the namespace died
    // (that path would release it too, from link events).
    const requests = d.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; method?: string; path?: string; status?: number });
    assert.ok(
      requests.some((r) => r.msg === 'request' && r.method === 'DELETE' && r.path?.startsWith(`/cnm/v1/sandboxes/${sb.Id}`) && r.status === 204),
      'podman ran the plugin\'s DEL: the daemon removed the sandbox on request',
    );
    assert.equal(await endpointOf(), undefined, 'the endpoint is released');
    assert.equal((await d.api('GET', `/cnm/v1/sandboxes/cni-${id}-eth0`)).status, 404);
    assert.equal(existsSync(sandboxKey), false, 'podman removed its namespace file');
    assert.equal(existsSync(cacheFile), false, 'the cached result is gone');
    assert.deepEqual(await ifbLinks(), [], 'bandwidth\'s DEL removed its ifb device');
    // The address is free again: a cnm sandbox can take exactly it.
    const again = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'pm-reuse', Networks: [{ Network: 'pmnet', IPv4Address: podmanIp }] });
    assert.equal(again.status, 201, again.body);
  });
});
