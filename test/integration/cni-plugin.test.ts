/**
 * cnm as a CNI plugin, executed as a runtime executes it (CNI_* environment, configuration on stdin, inside
 * the daemon's namespace: runtime and daemon share the host namespace) against a real daemon in a
 * throwaway namespace. Container namespaces are throwaway cnmt-* namespaces. The daemon runs without its
 * periodic checks (--firewall-check-interval 0), so a namespace that dies without a DEL can only be
 * released from kernel link events.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI_PLUGINS, runPluginIn, type PluginRun } from '../helpers/cni-plugins.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns, inNetns, isRoot, netnsPath } from '../helpers/netns.js';
import { inNamespace, ping, reached, runCommand, tcpRead } from '../helpers/probe.js';

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`not within ${ms / 1000} s: ${what}`);
}

function addrsOf(ns: string, dev: string): string[] {
  const j = JSON.parse(inNetns(ns, 'ip', ['-j', 'addr', 'show', 'dev', dev])) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  return j.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

function linkNames(ns: string): string[] {
  return (JSON.parse(inNetns(ns, 'ip', ['-j', 'link'])) as Array<{ ifname: string }>).map((l) => l.ifname);
}

if (isRoot()) {
  describe('cnm as a CNI plugin (real daemon, plugin executed as a runtime does)', () => {
    let d: TestDaemon;
    let binDir: string;
    let binary: string;
    const namespaces: string[] = [];
    const conf = (extra: Record<string, unknown> = {}) =>
      JSON.stringify({ cniVersion: '1.1.0', name: 'cnmt-cni', type: 'cnm', network: 'cninet', socket: d.socket, ...extra });
    const plugin = (env: Record<string, string>, stdin: string) => runPluginIn(d.hostNsPath, binary, { CNI_PATH: binDir, ...env }, stdin);
    const add = (id: string, ns: string, ifname = 'eth0', stdin = conf()) =>
      plugin({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: netnsPath(ns), CNI_IFNAME: ifname }, stdin);
    const newNs = () => {
      const ns = createTestNetns();
      namespaces.push(ns);
      return ns;
    };
    const sandboxStatus = async (name: string) => (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).status;

    before(async () => {
      d = await startTestDaemon(['--firewall-check-interval', '0']);
      const created = await d.api('POST', '/networks/create', {
        Name: 'cninet', IPAM: { Config: [{ Subnet: '10.62.0.0/24', Gateway: '10.62.0.1' }] }, Options: { 'com.docker.network.driver.mtu': '1400', 'com.docker.network.bridge.name': 'cnmcni0' },
      });
      assert.equal(created.status, 201, created.body);
      binDir = await mkdtemp(join(tmpdir(), 'cnmt-cnibin-'));
      const installed = await d.cli(['cni', 'install', '--bin-dir', binDir]);
      assert.equal(installed.code, 0, installed.stderr);
      binary = join(binDir, 'cnm');
      assert.equal(installed.stdout.trim(), binary);
      assert.ok(((await stat(binary)).mode & 0o111) !== 0, 'the plugin is executable');
    });
    after(async () => {
      await d?.cleanup();
      for (const ns of namespaces) deleteTestNetns(ns);
      if (binDir) await rm(binDir, { recursive: true, force: true });
    });

    it('VERSION lists 1.0.0 and 1.1.0; STATUS is ready, and 50 when the daemon is unreachable', async () => {
      const v = await plugin({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.1.0' }));
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.deepEqual(v.json(), { cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] });
      const ready = await plugin({ CNI_COMMAND: 'STATUS' }, conf());
      assert.equal(ready.code, 0, ready.stdout + ready.stderr);
      assert.equal(ready.stdout, '');
      const down = await plugin({ CNI_COMMAND: 'STATUS' }, conf({ socket: join(binDir, 'no-daemon.sock') }));
      assert.equal(down.code, 1);
      assert.equal(down.json().code, 50, down.stdout);
    });

    it('ADD honours CNI_IFNAME and returns interfaces, ips, routes and dns; a cnm sandbox and the container reach each other', async () => {
      const ns = newNs();
      const r = await add('ctr-add-1', ns, 'net7', conf({ dns: { nameservers: ['192.0.2.53'], search: ['cni.test'] } }));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const result = r.json();
      assert.equal(result.cniVersion, '1.1.0');
      // The bridge plugin's layout: the bridge, the veth's host end, the container's interface.
      assert.equal(result.interfaces.length, 3);
      assert.deepEqual(result.interfaces[0], { name: 'cnmcni0', mtu: 1400 }, 'the network\'s bridge first');
      assert.equal(result.interfaces[2].name, 'net7');
      assert.equal(result.interfaces[2].sandbox, netnsPath(ns));
      assert.equal(result.interfaces[2].mtu, 1400, '1.1.0 results carry the network MTU');
      assert.match(result.interfaces[2].mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      // The host-side end, no sandbox: the kernel's veth peer of net7, in the daemon's namespace, with that MAC.
      const host = result.interfaces[1];
      assert.equal(host.sandbox, undefined);
      assert.equal(host.mtu, 1400);
      const peerIndex = (JSON.parse(inNetns(ns, 'ip', ['-j', 'link', 'show', 'net7'])) as Array<{ link_index: number }>)[0]!.link_index;
      const hostLink = (JSON.parse(inNetns(d.hostNs, 'ip', ['-j', 'link', 'show'])) as Array<{ ifindex: number; ifname: string; address: string; master?: string }>)
        .find((l) => l.ifindex === peerIndex);
      assert.deepEqual([host.name, host.mac, 'cnmcni0'], [hostLink?.ifname, hostLink?.address, hostLink?.master]);
      assert.equal(result.ips.length, 1);
      assert.match(result.ips[0].address, /^10\.62\.0\.\d+\/24$/);
      assert.equal(result.ips[0].gateway, '10.62.0.1');
      assert.equal(result.ips[0].interface, 2, 'the container interface');
      assert.deepEqual(result.routes, [{ dst: '0.0.0.0/0', gw: '10.62.0.1' }]);
      assert.deepEqual(result.dns, { nameservers: ['192.0.2.53'], search: ['cni.test'] });
      // The kernel: the interface under that name, with that address and MAC, and the default route.
      assert.ok(linkNames(ns).includes('net7'));
      assert.deepEqual(addrsOf(ns, 'net7'), [result.ips[0].address]);
      assert.match(inNetns(ns, 'ip', ['route', 'show', 'default']), /default via 10\.62\.0\.1 dev net7/);
      // `cnm sandbox ls / inspect` show the attachment.
      const ls = await d.cli(['sandbox', 'ls']);
      assert.match(ls.stdout, /cni-ctr-add-1-net7/);
      const inspect = (await d.api('GET', '/cnm/v1/sandboxes/cni-ctr-add-1-net7')).json();
      assert.equal(inspect.NetnsPath, netnsPath(ns));
      assert.equal(inspect.NetnsFollow, true);
      assert.deepEqual(inspect.Labels, { 'cni.network': 'cnmt-cni', 'cni.containerid': 'ctr-add-1', 'cni.ifname': 'net7' });
      // A cnm sandbox on the same network and the container, both ways.
      const sb = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'cni-peer', Networks: [{ Network: 'cninet' }] });
      assert.equal(sb.status, 201, sb.body);
      const peerIp = sb.json().Networks.cninet.IPAddress as string;
      const containerIp = result.ips[0].address.split('/')[0] as string;
      reached(await ping((argv) => d.exec('cni-peer', argv), containerIp), 'the cnm sandbox reaches the CNI container');
      reached(await ping(inNamespace(ns), peerIp), 'the CNI container reaches the cnm sandbox');
      // cnm's DNS gives the sandboxes the attachment's name.
      const dig = await d.exec('cni-peer', ['getent', 'hosts', 'cni-ctr-add-1-net7']);
      assert.equal(dig.code, 0, dig.stderr);
      assert.match(dig.stdout, new RegExp(`^${containerIp.replace(/\./g, '\\.')}\\s`));
      assert.equal((await d.api('DELETE', '/cnm/v1/sandboxes/cni-peer')).status, 204);
    });

    it('CHECK passes against the ADD result and fails on a wrong prevResult or a broken interface', async () => {
      const ns = newNs();
      const r = await add('ctr-check', ns);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const prev = r.json();
      const env = { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'ctr-check', CNI_NETNS: netnsPath(ns), CNI_IFNAME: 'eth0' };
      const good = await plugin(env, conf({ prevResult: prev }));
      assert.equal(good.code, 0, good.stdout + good.stderr);
      assert.equal(good.stdout, '');
      const noPrev = await plugin(env, conf());
      assert.equal(noPrev.json().code, 7, noPrev.stdout);
      const wrong = await plugin(env, conf({ prevResult: { ...prev, ips: [{ address: '10.62.0.250/24', interface: 2 }] } }));
      assert.equal(wrong.code, 1);
      assert.match(wrong.json().msg, /10\.62\.0\.250\/24/);
      // A prevResult without the host-side interface (what cnm returned before it listed it) fails too.
      const noHost = await plugin(env, conf({ prevResult: { ...prev, interfaces: [prev.interfaces[0], prev.interfaces[2]], ips: prev.ips.map((ip: object) => ({ ...ip, interface: 1 })) } }));
      assert.equal(noHost.code, 1, noHost.stdout);
      assert.match(noHost.json().msg, new RegExp(`no host interface ${prev.interfaces[1].name}`));
      const unknown = await plugin({ ...env, CNI_CONTAINERID: 'ctr-never' }, conf({ prevResult: prev }));
      assert.equal(unknown.json().code, 3, unknown.stdout);
      // Someone removes the address inside the container: the kernel no longer matches.
      inNetns(ns, 'ip', ['addr', 'del', prev.ips[0].address, 'dev', 'eth0']);
      const broken = await plugin(env, conf({ prevResult: prev }));
      assert.equal(broken.code, 1, broken.stdout);
      assert.match(broken.json().msg, /interface eth0 on network cninet/);
    });

    it('results of version 1.0.0; other versions, bad configuration and environment get the spec codes', async () => {
      const ns = newNs();
      const v1 = await add('ctr-v100', ns, 'eth0', conf({ cniVersion: '1.0.0' }));
      assert.equal(v1.code, 0, v1.stdout + v1.stderr);
      assert.equal(v1.json().cniVersion, '1.0.0');
      assert.deepEqual(v1.json().interfaces.map((i: { mtu?: number }) => i.mtu), [undefined, undefined, undefined], 'mtu is a 1.1.0 field');
      assert.deepEqual(v1.json().interfaces.map((i: { sandbox?: string }) => i.sandbox), [undefined, undefined, netnsPath(ns)], 'the bridge, the host end, then the container\'s');
      assert.equal(v1.json().ips[0].interface, 2);
      const cases: Array<[string, Promise<PluginRun>, number]> = [
        ['an old version', add('ctr-e1', ns, 'eth1', conf({ cniVersion: '0.4.0' })), 1],
        ['not JSON', add('ctr-e2', ns, 'eth1', '{"cniVersion":'), 6],
        ['no network', add('ctr-e3', ns, 'eth1', JSON.stringify({ cniVersion: '1.1.0', name: 'x', type: 'cnm' })), 7],
        ['a network the daemon does not have', add('ctr-e4', ns, 'eth1', conf({ network: 'nonesuch' })), 7],
        ['a relative socket', add('ctr-e5', ns, 'eth1', conf({ socket: 'cnm.sock' })), 7],
        ['no CNI_NETNS', plugin({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-e6', CNI_IFNAME: 'eth1' }, conf()), 4],
        ['a bad CNI_IFNAME', add('ctr-e7', ns, 'has space'), 4],
        ['an unknown command', plugin({ CNI_COMMAND: 'FROB' }, conf()), 4],
        ['the daemon unreachable', add('ctr-e8', ns, 'eth1', conf({ socket: join(binDir, 'no-daemon.sock') })), 11],
        ['ADD twice for one attachment', add('ctr-v100', ns, 'eth0', conf({ cniVersion: '1.0.0' })), 100],
        ['a second attachment in one namespace', add('ctr-e9', ns, 'eth1'), 100],
      ];
      for (const [what, run, code] of cases) {
        const r = await run;
        assert.equal(r.code, 1, `${what}: ${r.stdout}`);
        const err = r.json();
        assert.equal(err.code, code, `${what}: ${r.stdout}`);
        assert.equal(typeof err.msg, 'string');
      }
      // Nothing of the refused ones exists; the namespace has only the first interface.
      assert.deepEqual(linkNames(ns).sort(), ['eth0', 'lo']);
      for (const id of ['ctr-e1', 'ctr-e3', 'ctr-e4', 'ctr-e5', 'ctr-e8', 'ctr-e9']) assert.equal(await sandboxStatus(`cni-${id}-eth1`), 404);
    });

    it('DEL removes the attachment and is idempotent: repeated, never added, no CNI_NETNS, unknown network', async () => {
      const ns = newNs();
      const r = await add('ctr-del', ns);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const address = r.json().ips[0].address as string;
      const env = { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'ctr-del', CNI_NETNS: netnsPath(ns), CNI_IFNAME: 'eth0' };
      const del = await plugin(env, conf({ prevResult: r.json() }));
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(del.stdout, '');
      assert.deepEqual(linkNames(ns), ['lo']);
      assert.equal(inNetns(ns, 'ip', ['route', 'show', 'default']).trim(), '', 'no default route left behind');
      assert.equal(await sandboxStatus('cni-ctr-del-eth0'), 404);
      for (const [what, e, c] of [
        ['repeated', env, conf()],
        ['never added', { ...env, CNI_CONTAINERID: 'ctr-never-added' }, conf()],
        ['without CNI_NETNS', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'ctr-del', CNI_IFNAME: 'eth0' }, conf()],
        ['a network the daemon does not have', env, conf({ network: 'nonesuch' })],
      ] as Array<[string, Record<string, string>, string]>) {
        const again = await plugin(e, c);
        assert.equal(again.code, 0, `${what}: ${again.stdout}${again.stderr}`);
      }
      // A DEL of another CNI network's name leaves this attachment alone.
      const ns2 = newNs();
      assert.equal((await add('ctr-del2', ns2)).code, 0);
      const other = await plugin({ ...env, CNI_CONTAINERID: 'ctr-del2', CNI_NETNS: netnsPath(ns2) }, conf({ name: 'cnmt-other' }));
      assert.equal(other.code, 0);
      assert.equal(await sandboxStatus('cni-ctr-del2-eth0'), 200);
      // The released address is free again: a static sandbox can take it.
      const taken = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'cni-static', Networks: [{ Network: 'cninet', IPv4Address: address.split('/')[0] }] });
      assert.equal(taken.status, 201, taken.body);
      assert.equal((await d.api('DELETE', '/cnm/v1/sandboxes/cni-static')).status, 204);
    });

    it('DEL after the namespace is gone still releases the attachment', async () => {
      const ns = createTestNetns();
      const r = await add('ctr-gone', ns);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      deleteTestNetns(ns);
      const del = await plugin({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'ctr-gone', CNI_NETNS: netnsPath(ns), CNI_IFNAME: 'eth0' }, conf());
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(await sandboxStatus('cni-ctr-gone-eth0'), 404);
    });

    it('GC removes the attachments of its network that the runtime does not list, and only those', async () => {
      const [ns1, ns2, ns3] = [newNs(), newNs(), newNs()];
      assert.equal((await add('ctr-gc-keep', ns1)).code, 0);
      assert.equal((await add('ctr-gc-drop', ns2)).code, 0);
      assert.equal((await add('ctr-gc-othernet', ns3, 'eth0', conf({ name: 'cnmt-cni-b' }))).code, 0);
      const gc = await plugin({ CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [{ containerID: 'ctr-gc-keep', ifname: 'eth0' }] }));
      assert.equal(gc.code, 0, gc.stdout + gc.stderr);
      assert.equal(gc.stdout, '');
      assert.equal(await sandboxStatus('cni-ctr-gc-keep-eth0'), 200);
      assert.equal(await sandboxStatus('cni-ctr-gc-drop-eth0'), 404);
      assert.deepEqual(linkNames(ns2), ['lo']);
      assert.equal(await sandboxStatus('cni-ctr-gc-othernet-eth0'), 200, 'another CNI network is not this GC\'s');
    });

    it('chains: portmap (containernetworking-plugins) after cnm publishes a port to the container; DEL in reverse order removes both', async () => {
      const ns = newNs();
      const list = { cniVersion: '1.0.0', name: 'cnmt-chain' }; // plugins 1.1.1 speak CNI up to 1.0.0
      const env = { CNI_CONTAINERID: 'ctr-chain', CNI_NETNS: netnsPath(ns), CNI_IFNAME: 'eth0', CNI_PATH: `${binDir}:${CNI_PLUGINS}` };
      const cnmConf = (extra: object = {}) => JSON.stringify({ ...list, type: 'cnm', network: 'cninet', socket: d.socket, ...extra });
      const portmapConf = (prevResult: object) =>
        JSON.stringify({ ...list, type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }] }, prevResult });
      const first = await plugin({ ...env, CNI_COMMAND: 'ADD' }, cnmConf());
      assert.equal(first.code, 0, first.stdout + first.stderr);
      const second = await runPluginIn(d.hostNsPath, join(CNI_PLUGINS, 'portmap'), { ...env, CNI_COMMAND: 'ADD' }, portmapConf(first.json()));
      assert.equal(second.code, 0, second.stdout + second.stderr);
      const final = second.json();
      assert.deepEqual(final.ips, first.json().ips, 'portmap passed cnm\'s result on');
      // A server in the container; the host connects to its own address (the bridge's) on the published port.
      const server = spawn('ip', ['netns', 'exec', ns, 'python3', '-c',
        "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8080)); s.listen(4); print('ready', flush=True)\nwhile True:\n  c, a = s.accept(); c.sendall(('from ' + a[0] + '\\n').encode()); c.close()"],
        { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          server.stdout!.once('data', () => resolve());
          server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
        });
        const r = reached(await tcpRead((argv) => runCommand('nsenter', [`--net=${d.hostNsPath}`, ...argv]), '10.62.0.1', 18080), 'the published port reaches the container');
        assert.match(r, /^from /);
      } finally {
        server.kill('SIGKILL');
      }
      const nat = async () => (await runCommand('nsenter', [`--net=${d.hostNsPath}`, 'iptables', '-t', 'nat', '-S'])).stdout;
      assert.match(await nat(), /18080/);
      const delPortmap = await runPluginIn(d.hostNsPath, join(CNI_PLUGINS, 'portmap'), { ...env, CNI_COMMAND: 'DEL' }, portmapConf(final));
      assert.equal(delPortmap.code, 0, delPortmap.stdout + delPortmap.stderr);
      const delCnm = await plugin({ ...env, CNI_COMMAND: 'DEL' }, cnmConf({ prevResult: final }));
      assert.equal(delCnm.code, 0, delCnm.stdout + delCnm.stderr);
      assert.doesNotMatch(await nat(), /18080/);
      assert.equal(await sandboxStatus('cni-ctr-chain-eth0'), 404);
    });

    it('chains: the firewall plugin (containernetworking-plugins, iptables) after cnm accepts the container\'s address and isolates the network\'s bridge (same-bridge); CHECK passes; DEL removes its rules', async () => {
      const ns = newNs();
      const list = { cniVersion: '1.0.0', name: 'cnmt-fw' };
      const env = { CNI_CONTAINERID: 'ctr-fw', CNI_NETNS: netnsPath(ns), CNI_IFNAME: 'eth0', CNI_PATH: `${binDir}:${CNI_PLUGINS}` };
      const cnmConf = (extra: object = {}) => JSON.stringify({ ...list, type: 'cnm', network: 'cninet', socket: d.socket, ...extra });
      const fwConf = (prevResult: object) => JSON.stringify({ ...list, type: 'firewall', backend: 'iptables', ingressPolicy: 'same-bridge', prevResult });
      const firewall = (command: string, prevResult: object) => runPluginIn(d.hostNsPath, join(CNI_PLUGINS, 'firewall'), { ...env, CNI_COMMAND: command }, fwConf(prevResult));
      const rules = async () => (await runCommand('nsenter', [`--net=${d.hostNsPath}`, 'iptables', '-S'])).stdout;
      // The same-bridge policy takes the result's first interface for the bridge: cnm lists its network's.
      const isolated = /-A CNI-ISOLATION-STAGE-1 -i cnmcni0 ! -o cnmcni0 .*-j CNI-ISOLATION-STAGE-2/;
      const dropped = /-A CNI-ISOLATION-STAGE-2 -o cnmcni0 .*-j DROP/;
      const first = await plugin({ ...env, CNI_COMMAND: 'ADD' }, cnmConf());
      assert.equal(first.code, 0, first.stdout + first.stderr);
      const ip = (first.json().ips[0].address as string).split('/')[0]!;
      const accepted = new RegExp(`-A CNI-FORWARD -s ${ip.replace(/\./g, '\\.')}/32 -j ACCEPT`);
      assert.doesNotMatch(await rules(), accepted);
      assert.doesNotMatch(await rules(), isolated);
      const added = await firewall('ADD', first.json());
      assert.equal(added.code, 0, added.stdout + added.stderr);
      const final = added.json();
      assert.deepEqual([final.interfaces, final.ips], [first.json().interfaces, first.json().ips], 'firewall passed cnm\'s result on');
      assert.deepEqual(final.interfaces.filter((i: { sandbox?: string }) => !i.sandbox).map((i: { name: string }) => i.name).slice(0, 1), ['cnmcni0'], 'the bridge, then the host end');
      assert.equal(final.interfaces.filter((i: { sandbox?: string }) => !i.sandbox).length, 2);
      const after = await rules();
      assert.match(after, accepted);
      assert.match(after, isolated);
      assert.match(after, dropped);
      for (const [what, run] of [['cnm', plugin({ ...env, CNI_COMMAND: 'CHECK' }, cnmConf({ prevResult: final }))], ['firewall', firewall('CHECK', final)]] as const) {
        const r = await run;
        assert.equal(r.code, 0, `CHECK ${what}: ${r.stdout}${r.stderr}`);
      }
      const delFw = await firewall('DEL', final);
      assert.equal(delFw.code, 0, delFw.stdout + delFw.stderr);
      const delCnm = await plugin({ ...env, CNI_COMMAND: 'DEL' }, cnmConf({ prevResult: final }));
      assert.equal(delCnm.code, 0, delCnm.stdout + delCnm.stderr);
      assert.doesNotMatch(await rules(), accepted);
      assert.equal(await sandboxStatus('cni-ctr-fw-eth0'), 404);
    });

    it('a namespace deleted without DEL is released from link events; one that dies while the daemon is down, at start', async () => {
      const ns = createTestNetns();
      const r = await add('ctr-killed', ns);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const hostVeths = async () => (JSON.parse((await runCommand('ip', ['-n', d.hostNs, '-j', 'link', 'show', 'master', 'cnmcni0'])).stdout) as unknown[]).length;
      const before = await hostVeths();
      deleteTestNetns(ns);
      await waitFor('the sandbox of the dead namespace is released', async () => (await sandboxStatus('cni-ctr-killed-eth0')) === 404);
      assert.equal(await hostVeths(), before - 1, 'its veth is gone from the bridge');
      assert.match(d.logs(), /released sandboxes whose namespace died/);
      // The same while the daemon is down, and its path now names another namespace (as a reused
      // /proc/PID path would): the start-up reconcile releases it and leaves the newcomer alone.
      const ns2 = newNs();
      assert.equal((await add('ctr-offline', ns2)).code, 0);
      await d.stop('SIGKILL');
      execFileSync('ip', ['netns', 'del', ns2]);
      execFileSync('ip', ['netns', 'add', ns2]);
      await d.start();
      assert.equal(await sandboxStatus('cni-ctr-offline-eth0'), 404);
      assert.deepEqual(linkNames(ns2), ['lo'], 'nothing of cnm entered the namespace now at that path');
    });
  });
}
