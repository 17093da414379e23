/**
 * cnm as Docker's remote network driver, against a real dockerd (Debian docker.io) in a throwaway
 * namespace with its own data root, exec root and socket (`--bridge none --iptables=false`), and a cnm
 * daemon in the same namespace serving the plugin under a unique name in /run/docker/plugins (where
 * dockerd looks; removed by the daemon on stop, and by the test if that fails). Docker containers and
 * cnm sandboxes on one network reach each other; another cnm network stays isolated.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { BENCH_IMAGE, dockerAvailable, startDockerd, type Dockerd } from '../../bench/lib/dockerd.js';
import { dockerCli } from '../helpers/docker-cli.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { createTestNetns, deleteTestNetns } from '../helpers/netns.js';
import { tcpRefused } from '../helpers/port-servers.js';
import { assertReachedThenBlocked, inNamespace, inNetnsPath, ping, ProbeCouldNotRun, reached, type CommandRunner, type ProbeResult } from '../helpers/probe.js';

const PLUGIN_DIR = '/run/docker/plugins';

const { docker, dockerOk } = dockerCli(`/tmp/cnmt-docker-config-${process.pid}`);

/** GET http://ADDRESS:PORT/ with curl (3 s): the body, a timeout, or (refused, other errors) could not run. */
async function httpGet(run: CommandRunner, address: string, port: number): Promise<ProbeResult> {
  const r = await run(['curl', '-sS', '--max-time', '3', `http://${address}:${port}/`]);
  if (r.code === 0) return { outcome: 'reached', output: r.stdout.trim() };
  if (r.code === 28) return { outcome: 'blocked', how: 'timeout' };
  throw new ProbeCouldNotRun(`http ${address}:${port}`, r);
}

// As root a missing dockerd or busybox fails the run (the suite's rule for real clients), never skips quietly.
const dockerMissing = await dockerAvailable();
const skip = realKernelSkip() || realClientSkip('docker') || (dockerMissing ? `real client: ${dockerMissing}` : false);

describe('cnm as a Docker network plugin (real dockerd)', { skip }, () => {
  let dockerd: Dockerd;
  let cnm: TestDaemon;
  const plugin = `cnmt-${randomBytes(4).toString('hex')}`;
  const pluginSocket = `${PLUGIN_DIR}/${plugin}.sock`;
  let sock: string;

  before(async () => {
    dockerd = await startDockerd(['--bridge', 'none', '--iptables=false', '--ip6tables=false']);
    sock = dockerd.socket;
    cnm = await startTestDaemon(['--docker-plugin', plugin], { hostNs: basename(dockerd.hostNetnsPath) });
  });
  after(async () => {
    // Containers first (their interfaces are cnm's veths), then both daemons.
    if (dockerd) await docker(sock, ['rm', '-f', 'c1', 'c2']).catch(() => undefined);
    await cnm?.cleanup();
    await rm(pluginSocket, { force: true });
    await dockerd?.stop();
    await rm(`/tmp/cnmt-docker-config-${process.pid}`, { recursive: true, force: true });
  });

  it('activates, creates networks with Docker IDs and addresses, connects containers and sandboxes both ways', async () => {
    assert.ok(existsSync(pluginSocket), 'plugin socket made');
    const netId = await dockerOk(sock, ['network', 'create', '-d', plugin, '--subnet', '10.231.7.0/24', '-o', 'cnm.name=dnet', 'dnet']);
    // The cnm network has Docker's ID, Docker's subnet and gateway, and the bridge driver.
    const inspect = await cnm.api('GET', `/networks/${netId}`);
    assert.equal(inspect.status, 200, inspect.body);
    const net = inspect.json();
    assert.equal(net.Id, netId);
    assert.equal(net.Name, 'dnet');
    assert.equal(net.Driver, 'bridge');
    // cnm's own sandboxes take the upper half (Docker's IPAM hands out from the bottom).
    assert.deepEqual(net.IPAM.Config, [{ Subnet: '10.231.7.0/24', Gateway: '10.231.7.1', IPRange: '10.231.7.128/25' }]);

    // A cnm sandbox joins by ID; a Docker container joins by name on Docker's side.
    const sb = await cnm.api('POST', '/cnm/v1/sandboxes', { Name: 's1', Networks: [{ Network: netId }] });
    assert.equal(sb.status, 201, sb.body);
    const s1Addr: string = sb.json().Networks.dnet.IPAddress;
    assert.equal(s1Addr, '10.231.7.128');

    await dockerOk(sock, ['run', '-d', '--name', 'c1', '--network', 'dnet', BENCH_IMAGE, 'sleep', '600']);
    const c1 = JSON.parse(await dockerOk(sock, ['inspect', 'c1']))[0];
    const c1Net = c1.NetworkSettings.Networks.dnet;
    const c1Addr: string = c1Net.IPAddress;
    assert.match(c1Addr, /^10\.231\.7\.\d+$/);
    assert.notEqual(c1Addr, s1Addr, "Docker's address and the sandbox's differ");
    // The container's interface is cnm's veth with Docker's address, the gateway cnm gave.
    const c1Ns = inNetnsPath(`/proc/${c1.State.Pid}/ns/net`);
    const addr = await c1Ns(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addr.stdout, new RegExp(`inet ${c1Addr.replaceAll('.', '\\.')}/24`));
    const link = await c1Ns(['ip', '-d', '-o', 'link', 'show', 'dev', 'eth0']);
    assert.match(link.stdout, /veth/);
    assert.match(link.stdout, new RegExp(c1Net.MacAddress));
    const route = await c1Ns(['ip', '-4', 'route', 'show', 'default']);
    assert.match(route.stdout, /default via 10\.231\.7\.1 dev eth0/);

    // cnm lists Docker's endpoint next to its sandbox, under Docker's endpoint ID and address.
    const both = (await cnm.api('GET', `/networks/${netId}`)).json();
    assert.deepEqual(both.Containers[`ep-${c1Net.EndpointID}`], {
      Name: `docker-${c1Net.EndpointID.slice(0, 12)}`,
      EndpointID: c1Net.EndpointID,
      MacAddress: c1Net.MacAddress,
      IPv4Address: `${c1Addr}/24`,
      IPv6Address: '',
    });

    // Both ways across the one network.
    reached(await ping(c1Ns, s1Addr), 'Docker container → cnm sandbox');
    const s1Ns = inNetnsPath(`${cnm.execRoot}/netns/${sb.json().Id}`);
    reached(await ping(s1Ns, c1Addr), 'cnm sandbox → Docker container');

    // A second cnm network (cnm's own) with two sandboxes: they reach each other, the container does not reach them.
    assert.equal((await cnm.api('POST', '/networks/create', { Name: 'other', IPAM: { Config: [{ Subnet: '10.231.8.0/24' }] } })).status, 201);
    const o1 = (await cnm.api('POST', '/cnm/v1/sandboxes', { Name: 'o1', Networks: [{ Network: 'other' }] })).json();
    assert.equal((await cnm.api('POST', '/cnm/v1/sandboxes', { Name: 'o2', Networks: [{ Network: 'other' }] })).status, 201);
    const other = (await cnm.api('GET', '/networks/other')).json();
    const o2Addr = Object.values(other.Containers as Record<string, { Name: string; IPv4Address: string }>).find((c) => c.Name === 'o2')!.IPv4Address.split('/')[0]!;
    const o1Ns = inNetnsPath(`${cnm.execRoot}/netns/${o1.Id}`);
    reached(await ping(o1Ns, o2Addr), 'sandboxes on the other network');
    await assertReachedThenBlocked((target) => ping(c1Ns, target), s1Addr, o2Addr, 'Docker container → another cnm network');
    await assertReachedThenBlocked((target) => ping(o1Ns, target), o2Addr, c1Addr, 'other cnm network → Docker container');

    // Docker's embedded DNS still answers Docker's container names on a cnm network.
    await dockerOk(sock, ['run', '-d', '--name', 'c2', '--network', 'dnet', BENCH_IMAGE, 'sleep', '600']);
    const lookup = await docker(sock, ['exec', 'c2', 'nslookup', 'c1']);
    assert.match(lookup.stdout, new RegExp(`Address:\\s+${c1Addr.replaceAll('.', '\\.')}`), lookup.stdout + lookup.stderr);
    await dockerOk(sock, ['rm', '-f', 'c2']);
  });

  it("claims Docker's addresses: cnm's IPAM never gives a sandbox the container's address", async () => {
    const c1Addr = JSON.parse(await dockerOk(sock, ['inspect', 'c1']))[0].NetworkSettings.Networks.dnet.IPAddress;
    const r = await cnm.api('POST', '/cnm/v1/sandboxes', { Name: 'taker', Networks: [{ Network: 'dnet', IPv4Address: c1Addr }] });
    assert.equal(r.status, 403, r.body);
    assert.match(r.json().message, /Address already in use/);
    // And the reverse: a container asking for a sandbox's address is refused by cnm, as Docker prints it.
    const s1Addr = Object.values((await cnm.api('GET', '/networks/dnet')).json().Containers as Record<string, { Name: string; IPv4Address: string }>)
      .find((c) => c.Name === 's1')!.IPv4Address.split('/')[0]!;
    const clash = await docker(sock, ['run', '-d', '--name', 'c2', '--network', 'dnet', '--ip', s1Addr, BENCH_IMAGE, 'sleep', '600']);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /NetworkDriver\.CreateEndpoint: Address already in use/);
    await docker(sock, ['rm', '-f', 'c2']);
  });

  it('docker run -p 8080:80 publishes through cnm (nft map elements, no docker-proxy): reached from a neighbour, conflicts refused, gone after rm -f', async () => {
    // A neighbour namespace on a veth from the daemons' namespace: 198.51.100.1 there, .2 in the neighbour.
    const neighbour = createTestNetns('cnmt-nb');
    try {
      const ns = basename(dockerd.hostNetnsPath);
      execFileSync('ip', ['-n', ns, 'link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', neighbour]);
      execFileSync('ip', ['-n', ns, 'addr', 'add', '198.51.100.1/29', 'dev', 'cnmt-up0']);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'cnmt-up0', 'up']);
      execFileSync('ip', ['-n', neighbour, 'addr', 'add', '198.51.100.2/29', 'dev', 'eth0']);
      execFileSync('ip', ['-n', neighbour, 'link', 'set', 'eth0', 'up']);
      const outside = inNamespace(neighbour);
      // Nothing there before: the connection is refused (and the same probe reaches the port later).
      assert.equal(await tcpRefused(outside, '198.51.100.1', 8080), true, 'port 8080 closed before the container');

      await dockerOk(sock, ['run', '-d', '--name', 'web', '--network', 'dnet', '-p', '8080:80', BENCH_IMAGE,
        'sh', '-c', 'mkdir /www && echo web-in-docker > /www/index.html && exec httpd -f -p 80 -h /www']);
      const web = JSON.parse(await dockerOk(sock, ['inspect', 'web']))[0];
      const webAddr: string = web.NetworkSettings.Networks.dnet.IPAddress;
      const epId: string = web.NetworkSettings.Networks.dnet.EndpointID;
      assert.equal(reached(await httpGet(outside, '198.51.100.1', 8080), 'neighbour → daemon namespace:8080 → container:80'), 'web-in-docker');
      // cnm's map element leads there; nobody else made a rule or a proxy for it.
      const any = await cnm.inHost('nft', ['list', 'map', 'inet', 'cnm', 'ports_any']);
      assert.match(any.stdout, new RegExp(`tcp \\. 8080 : ${webAddr.replaceAll('.', '\\.')} \\. 80`), any.stdout);
      const ruleset = (await cnm.inHost('nft', ['list', 'ruleset'])).stdout;
      const tables = ruleset.split(/^table /m).filter((t) => /\b8080\b/.test(t)).map((t) => t.split(' {')[0]);
      assert.deepEqual(tables, ['inet cnm'], 'only cnm\'s table mentions 8080');
      const proxies = (await cnm.inHost('pgrep', ['-a', 'docker-proxy'])).stdout;
      assert.equal(proxies.trim(), '', 'no docker-proxy');
      // The endpoint in cnm carries the port.
      const att = (await cnm.api('GET', '/networks/dnet')).json().Containers[`ep-${epId}`];
      assert.ok(att, 'endpoint listed');

      // The same host port for a second container: Docker's words, through the plugin.
      const clash = await docker(sock, ['run', '-d', '--name', 'web2', '--network', 'dnet', '-p', '8080:80', BENCH_IMAGE, 'sleep', '600']);
      assert.notEqual(clash.code, 0);
      assert.match(clash.stderr, /NetworkDriver\.ProgramExternalConnectivity: Bind for 0\.0\.0\.0:8080 failed: port is already allocated/);
      await docker(sock, ['rm', '-f', 'web2']);
      assert.equal(reached(await httpGet(outside, '198.51.100.1', 8080), 'first container still reached'), 'web-in-docker');

      await dockerOk(sock, ['rm', '-f', 'web']);
      assert.equal(await tcpRefused(outside, '198.51.100.1', 8080), true, 'port 8080 closed after docker rm -f');
      assert.doesNotMatch((await cnm.inHost('nft', ['list', 'map', 'inet', 'cnm', 'ports_any'])).stdout, /8080/);
    } finally {
      await docker(sock, ['rm', '-f', 'web', 'web2']).catch(() => undefined);
      deleteTestNetns(neighbour);
    }
  });

  it("bad options and overlapping pools come back as Docker prints them, and change nothing", async () => {
    const before = (await cnm.api('GET', '/networks')).json().length;
    const overlap = await docker(sock, ['network', 'create', '-d', plugin, '--subnet', '10.231.8.0/24', 'clash']);
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /NetworkDriver\.CreateNetwork: Pool overlaps with other one on this address space/);
    const unknown = await docker(sock, ['network', 'create', '-d', plugin, '-o', 'cnm.bogus=1', 'bogus']);
    assert.match(unknown.stderr, /NetworkDriver\.CreateNetwork: unknown option cnm\.bogus/);
    const badOpt = await docker(sock, ['network', 'create', '-d', plugin, '-o', 'com.docker.network.bridge.enable_icc=maybe', 'badopt']);
    assert.notEqual(badOpt.code, 0);
    assert.match(badOpt.stderr, /NetworkDriver\.CreateNetwork: .*enable_icc/);
    assert.equal((await cnm.api('GET', '/networks')).json().length, before, 'no network added in cnm');
    const names = await dockerOk(sock, ['network', 'ls', '--format', '{{.Name}}']);
    assert.doesNotMatch(names, /clash|bogus|badopt/);
  });

  it('survives kill -9 of cnm: the container keeps its interface and connectivity, the endpoint stays recorded', async () => {
    const c1 = JSON.parse(await dockerOk(sock, ['inspect', 'c1']))[0];
    const epId = c1.NetworkSettings.Networks.dnet.EndpointID;
    await cnm.stop('SIGKILL');
    await cnm.start();
    const net = (await cnm.api('GET', '/networks/dnet')).json();
    assert.ok(net.Containers[`ep-${epId}`], 'endpoint still listed after restart');
    const c1Ns = inNetnsPath(`/proc/${c1.State.Pid}/ns/net`);
    const s1Addr = Object.values(net.Containers as Record<string, { Name: string; IPv4Address: string }>).find((c) => c.Name === 's1')!.IPv4Address.split('/')[0]!;
    reached(await ping(c1Ns, s1Addr), 'container → sandbox after the restart');
    assert.doesNotMatch(cnm.logs(), /"linksRemoved":\["[^\]]*cnmv/, 'the host end of the container veth was not removed as a leak');
  });

  it('a dockerd restart: its containers leave, and join again with new endpoints when started', async () => {
    const before = JSON.parse(await dockerOk(sock, ['inspect', 'c1']))[0].NetworkSettings.Networks.dnet.EndpointID;
    await dockerd.restart();
    const during = (await cnm.api('GET', '/networks/dnet')).json();
    assert.equal(during.Containers[`ep-${before}`], undefined, 'the stopped container left');
    await dockerOk(sock, ['start', 'c1']);
    const c1 = JSON.parse(await dockerOk(sock, ['inspect', 'c1']))[0];
    const after = c1.NetworkSettings.Networks.dnet.EndpointID;
    assert.notEqual(after, before);
    assert.ok((await cnm.api('GET', '/networks/dnet')).json().Containers[`ep-${after}`], 'the new endpoint is listed');
    const s1Addr = Object.values(during.Containers as Record<string, { Name: string; IPv4Address: string }>).find((c) => c.Name === 's1')!.IPv4Address.split('/')[0]!;
    reached(await ping(inNetnsPath(`/proc/${c1.State.Pid}/ns/net`), s1Addr), 'container → sandbox after the dockerd restart');
  });

  it('docker rm and docker network rm remove the endpoint and the network in cnm; stop removes the socket', async () => {
    const netId = (await cnm.api('GET', '/networks/dnet')).json().Id;
    const epId: string = JSON.parse(await dockerOk(sock, ['inspect', 'c1']))[0].NetworkSettings.Networks.dnet.EndpointID;
    const hostEnd = `cnmv${epId.slice(0, 11)}`;
    assert.equal((await cnm.inHost('ip', ['link', 'show', 'dev', hostEnd])).code, 0, 'host end of the container veth present');
    await dockerOk(sock, ['rm', '-f', 'c1']);
    const gone = await cnm.inHost('ip', ['link', 'show', 'dev', hostEnd]);
    assert.match(gone.stderr, /does not exist/, 'host end gone after docker rm');
    const after = (await cnm.api('GET', `/networks/${netId}`)).json();
    assert.deepEqual(Object.values(after.Containers as Record<string, { Name: string }>).map((c) => c.Name), ['s1']);
    // docker network rm while a cnm sandbox is on it: cnm refuses, dockerd 20.10 forgets its network
    // anyway; the cnm network stays, with its sandbox, until cnm network rm.
    await docker(sock, ['network', 'rm', 'dnet']);
    assert.equal((await cnm.api('GET', `/networks/${netId}`)).status, 200, 'still in cnm');
    assert.equal((await cnm.api('DELETE', '/cnm/v1/sandboxes/s1')).status, 204);
    assert.equal((await cnm.api('DELETE', `/networks/${netId}`)).status, 204);
    // Without sandboxes, docker network rm removes it in cnm.
    const second = await dockerOk(sock, ['network', 'create', '-d', plugin, '--subnet', '10.231.9.0/24', 'dnet2']);
    assert.equal((await cnm.api('GET', `/networks/${second}`)).status, 200);
    await dockerOk(sock, ['network', 'rm', 'dnet2']);
    assert.equal((await cnm.api('GET', `/networks/${second}`)).status, 404);
    assert.ok(existsSync(pluginSocket));
    await cnm.stop('SIGTERM');
    assert.equal(existsSync(pluginSocket), false, 'plugin socket removed on stop');
  });
});
