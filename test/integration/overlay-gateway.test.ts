/**
 * Outbound connectivity of overlay sandboxes through the gateway network (Docker's docker_gwbridge), in a
 * real daemon on a real etcd: an "outside" namespace routed from the daemon's namespace stands for the
 * internet. A sandbox on an overlay reaches it masqueraded; an internal overlay's cannot; two overlays and
 * a bridge network stay isolated from each other through the gateway bridge; the gateway endpoint goes
 * with the last overlay; kill -9 at either half of a change is put right by the next start.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { eventually } from '../conformance/kernel-support.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { serveDualStack } from '../helpers/port-servers.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { blocked, ping, reached, runCommand, tcpRead, type CommandRunner } from '../helpers/probe.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 240_000;
const VTEP = '10.199.0.1';
const OUTSIDE = '198.51.100.2';
const HOST_UPLINK = '198.51.100.1';

interface SandboxView {
  Id: string;
  NetnsPath: string;
  Networks: Record<string, { IPAddress: string; Gateway: string; EndpointID: string }>;
}

describe('overlay sandboxes reach outside through cnm_gwbridge', { skip }, () => {
  let cluster: EtcdCluster | undefined;
  let d: TestDaemon;
  let outside = '';
  let server: ChildProcess | undefined;

  const api = async (method: string, path: string, body?: unknown, status = 200) => {
    const r = await d.api(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
    return r;
  };
  const inSandbox = (name: string): CommandRunner => (argv) => d.exec(name, argv);
  const inHost: CommandRunner = (argv) => d.inHost(argv[0]!, argv.slice(1));
  const sandbox = async (name: string): Promise<SandboxView> => (await api('GET', `/cnm/v1/sandboxes/${name}`)).json();
  const create = async (name: string, ...networks: string[]) =>
    api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: networks.map((Network) => ({ Network })) }, 201);
  const overlay = (name: string, vni: number, subnet: string, internal = false) =>
    api('POST', '/networks/create', {
      Name: name, Driver: 'overlay', Internal: internal,
      Options: { 'com.docker.network.driver.overlay.vxlanid_list': String(vni) }, IPAM: { Config: [{ Subnet: subnet }] },
    }, 201);
  const gatewayEndpoints = async () => (await api('GET', '/networks/cnm_gwbridge')).json().Containers as Record<string, { Name: string; EndpointID: string; IPv4Address: string }>;
  const links = async (): Promise<string[]> => (await d.inHost('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean);

  before(async () => {
    cluster = await startEtcdCluster(1);
    const socket = cluster.endpoints[0]!.slice('unix:'.length);
    d = await startTestDaemon(['--cluster-store', `unix://${socket}`, '--advertise-addr', VTEP]);
    const host = (...args: string[]) => execFileSync('ip', ['-n', d.hostNs, ...args]);
    host('link', 'add', 'cnmtul0', 'type', 'veth', 'peer', 'name', 'cnmtul1');
    host('addr', 'add', `${VTEP}/24`, 'dev', 'cnmtul0');
    host('link', 'set', 'cnmtul0', 'up');
    // The "internet": a namespace one hop from the daemon's, with no route back to any sandbox subnet,
    // so only masqueraded traffic gets an answer.
    outside = createTestNetns('cnmt-out');
    host('link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside);
    host('addr', 'add', `${HOST_UPLINK}/30`, 'dev', 'cnmt-up0');
    host('link', 'set', 'cnmt-up0', 'up');
    execFileSync('ip', ['-n', outside, 'addr', 'add', `${OUTSIDE}/30`, 'dev', 'eth0']);
    execFileSync('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
    server = await serveDualStack(netnsPath(outside), 'outside', 'tcp', [8080]);
  });
  after(async () => {
    server?.kill();
    if (outside) deleteTestNetns(outside);
    await d?.cleanup();
    await cluster?.close();
  });

  it('a sandbox on an overlay reaches outside, masqueraded, through gateway_<id> on cnm_gwbridge', { timeout: TIMEOUT }, async () => {
    await overlay('ov1', 5101, '10.90.1.0/24');
    await create('s1', 'ov1');
    const s1 = await sandbox('s1');
    assert.deepEqual(Object.keys(s1.Networks).sort(), ['cnm_gwbridge', 'ov1']);
    const gw = s1.Networks['cnm_gwbridge']!;
    const net = (await api('GET', '/networks/cnm_gwbridge')).json();
    assert.deepEqual([net.Driver, net.Scope, net.Internal, net.EnableIPv6], ['bridge', 'local', false, false]);
    assert.equal(net.Options['com.docker.network.bridge.enable_icc'], 'false');
    assert.equal(net.Options['com.docker.network.bridge.name'], 'cnmgw0');
    assert.deepEqual(net.Containers[s1.Id], {
      Name: `gateway_${s1.Id.slice(0, 12)}`, EndpointID: gw.EndpointID, MacAddress: net.Containers[s1.Id].MacAddress,
      IPv4Address: `${gw.IPAddress}/24`, IPv6Address: '',
    });
    const route = await d.exec('s1', ['ip', '-4', 'route', 'show', 'default']);
    assert.equal(route.stdout.trim(), `default via ${gw.Gateway} dev eth1`);
    assert.equal(reached(await tcpRead(inSandbox('s1'), OUTSIDE, 8080), 's1 -> outside'), `outside ${HOST_UPLINK}`, 'seen from the daemon\'s address');
    // Names: the overlay's, not the gateway bridge's.
    const hosts = await d.exec('s1', ['cat', '/etc/hosts']);
    assert.ok(hosts.stdout.includes(s1.Networks['ov1']!.IPAddress) && !hosts.stdout.includes(gw.IPAddress), hosts.stdout);
  });

  it('an internal overlay has no way out (and the same probe from a non-internal one works)', { timeout: TIMEOUT }, async () => {
    await overlay('ovi', 5102, '10.90.2.0/24', true);
    await create('si', 'ovi');
    assert.deepEqual(Object.keys((await sandbox('si')).Networks), ['ovi']);
    reached(await ping(inSandbox('s1'), OUTSIDE), 's1 -> outside');
    blocked(await ping(inSandbox('si'), OUTSIDE), 'si -> outside');
    assert.equal((await d.exec('si', ['ip', '-4', 'route', 'show', 'default'])).stdout.trim(), '');
  });

  it('two overlays on one host do not meet through the gateway bridge; each talks on its own', { timeout: TIMEOUT }, async () => {
    await overlay('ov2', 5103, '10.90.3.0/24');
    await create('s2', 'ov2');
    await create('s3', 'ov1');
    const [s2, s3] = [await sandbox('s2'), await sandbox('s3')];
    reached(await ping(inSandbox('s1'), s3.Networks['ov1']!.IPAddress), 's1 -> s3 on ov1');
    reached(await ping(inSandbox('s1'), s3.Networks['cnm_gwbridge']!.Gateway), 's1 -> the gateway bridge');
    reached(await ping(inHost, s2.Networks['cnm_gwbridge']!.IPAddress), 'host -> s2 on the gateway bridge');
    blocked(await ping(inSandbox('s1'), s2.Networks['cnm_gwbridge']!.IPAddress), 's1 -> s2 through the gateway bridge');
    blocked(await ping(inSandbox('s1'), s2.Networks['ov2']!.IPAddress), 's1 -> s2 on ov2');
    blocked(await ping(inSandbox('s2'), s3.Networks['cnm_gwbridge']!.IPAddress), 's2 -> s3 through the gateway bridge');
    reached(await ping(inSandbox('s2'), OUTSIDE), 's2 -> outside');
  });

  it('an overlay sandbox and a bridge network sandbox stay apart', { timeout: TIMEOUT }, async () => {
    await api('POST', '/networks/create', { Name: 'br', IPAM: { Config: [{ Subnet: '10.91.5.0/24' }] } }, 201);
    await create('b1', 'br');
    const b1 = await sandbox('b1');
    const s1 = await sandbox('s1');
    reached(await ping(inHost, b1.Networks['br']!.IPAddress), 'host -> b1');
    reached(await ping(inSandbox('b1'), OUTSIDE), 'b1 -> outside');
    blocked(await ping(inSandbox('s1'), b1.Networks['br']!.IPAddress), 's1 -> b1');
    blocked(await ping(inSandbox('b1'), s1.Networks['cnm_gwbridge']!.IPAddress), 'b1 -> s1 on the gateway bridge');
    // A sandbox on both: the bridge network gives the gateway, no gateway endpoint.
    await api('POST', '/networks/ov1/connect', { Container: 'b1' });
    assert.deepEqual(Object.keys((await sandbox('b1')).Networks).sort(), ['br', 'ov1']);
    assert.equal((await d.exec('b1', ['ip', '-4', 'route', 'show', 'default'])).stdout.trim(), 'default via 10.91.5.1 dev eth0');
    reached(await ping(inSandbox('b1'), s1.Networks['ov1']!.IPAddress), 'b1 -> s1 on ov1');
  });

  it('the last overlay leaving takes the gateway endpoint; the network cannot be removed while in use', { timeout: TIMEOUT }, async () => {
    const s3 = await sandbox('s3');
    const gwIf = async () => (await d.exec('s3', ['ip', '-o', 'link', 'show'])).stdout.includes('eth1');
    assert.equal(await gwIf(), true);
    const refused = await d.api('DELETE', '/networks/cnm_gwbridge');
    assert.equal(refused.status, 403, refused.body);
    assert.match(refused.json().message, new RegExp(`network cnm_gwbridge id [0-9a-f]{64} has active endpoints \\(.*gateway_${s3.Id.slice(0, 12)}`));
    await api('POST', '/networks/ov1/disconnect', { Container: 's3' });
    assert.deepEqual((await sandbox('s3')).Networks, {});
    assert.equal((await gatewayEndpoints())[s3.Id], undefined, 'gone from network inspect');
    assert.equal(await gwIf(), false, 'its interface is gone');
    await api('DELETE', '/cnm/v1/sandboxes/s3', undefined, 204);
  });

  it('kill -9 + restart keeps the gateway endpoint; a kill at either half of a change is finished by the next start', { timeout: TIMEOUT }, async () => {
    const s1Before = await sandbox('s1');
    await d.stop('SIGKILL');
    await d.start();
    const s1After = await sandbox('s1');
    assert.equal(s1After.Networks['cnm_gwbridge']!.EndpointID, s1Before.Networks['cnm_gwbridge']!.EndpointID, 'the same endpoint');
    reached(await ping(inSandbox('s1'), OUTSIDE), 's1 -> outside after the restart');

    // The daemon's store write of the next gateway endpoint never returns (a trigger in this test's store
    // file spins inside that transaction): killed between the overlay's endpoint and its gateway endpoint.
    const gwNetId = (await api('GET', '/networks/cnm_gwbridge')).json().Id as string;
    const db = new Database(join(d.root, 'cnm.db'));
    const hold = (when: string) =>
      db.exec(`CREATE TABLE IF NOT EXISTS cnmt_spin (x INTEGER);
        DELETE FROM cnmt_spin; WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000) INSERT INTO cnmt_spin SELECT x FROM n;
        CREATE TRIGGER cnmt_hold ${when} BEGIN SELECT count(*) FROM cnmt_spin a, cnmt_spin b, cnmt_spin c, cnmt_spin e; END;`);
    const release = () => db.exec('DROP TRIGGER IF EXISTS cnmt_hold; DROP TABLE IF EXISTS cnmt_spin;');
    const gwRecords = () =>
      (db.prepare(`SELECT value FROM kv WHERE key LIKE 'cnm/v1/endpoints/%' AND value LIKE ?`).all(`%${gwNetId}%`) as Array<{ value: string }>).map(
        (r) => JSON.parse(r.value) as { name: string; sandboxId: string },
      );
    try {
      hold(`AFTER INSERT ON kv WHEN NEW.key LIKE 'cnm/v1/endpoints/%' AND NEW.value LIKE '%"outboundGateway":true%'`);
      const vethsBefore = (await links()).filter((l) => l.startsWith('cnmv')).length;
      const outcome = d.api('POST', '/cnm/v1/sandboxes', { Name: 'k1', Networks: [{ Network: 'ov2' }] }).then(
        (r) => `answered ${r.status}`,
        (err: NodeJS.ErrnoException) => err.code ?? err.message,
      );
      // The overlay's and the gateway network's veths exist: the daemon is inside the gateway endpoint's write.
      await eventually(async () => (await links()).filter((l) => l.startsWith('cnmv')).length >= vethsBefore + 2, 'both endpoints joined', 60_000);
      process.kill(d.pid(), 'SIGKILL');
      await d.stop('SIGKILL');
      assert.match(await outcome, /ECONNRESET|socket hang up/, 'the client got no answer');
      release();
      const k1Id = (db.prepare(`SELECT value FROM kv WHERE key LIKE 'cnm/v1/sandboxes/%'`).all() as Array<{ value: string }>)
        .map((r) => JSON.parse(r.value) as { id: string; name: string })
        .find((s) => s.name === 'k1')!.id;
      assert.equal(gwRecords().filter((e) => e.sandboxId === k1Id).length, 0, 'no gateway endpoint recorded at the kill');
    } finally {
      release();
    }
    await d.start();
    const k1 = await sandbox('k1');
    assert.deepEqual(Object.keys(k1.Networks).sort(), ['cnm_gwbridge', 'ov2'], 'the next start gave it its gateway endpoint');
    // The veth of the gateway endpoint the kill lost is gone (it carried the daemon's mark): one per endpoint.
    const all = (await api('GET', '/cnm/v1/sandboxes')).json() as SandboxView[];
    const endpointCount = all.reduce((n, sb) => n + Object.keys(sb.Networks).length, 0);
    assert.equal((await links()).filter((l) => l.startsWith('cnmv')).length, endpointCount, 'one host-side veth per endpoint');
    reached(await ping(inSandbox('k1'), OUTSIDE), 'k1 -> outside');

    // Killed between an overlay's disconnect and the removal of the gateway endpoint it no longer needs.
    try {
      hold(`AFTER DELETE ON kv WHEN OLD.key LIKE 'cnm/v1/endpoints/%' AND OLD.value LIKE '%"outboundGateway":true%'`);
      const outcome = d.api('POST', '/networks/ov2/disconnect', { Container: 'k1' }).then(
        (r) => `answered ${r.status}`,
        (err: NodeJS.ErrnoException) => err.code ?? err.message,
      );
      // Both interfaces gone: the overlay's endpoint is forgotten, the gateway endpoint's record is being deleted.
      // Looked at in k1's namespace directly: `cnm exec` asks the daemon, which is stuck in the held write
      // (it used to time out after 60 s with no output, which passed as "no interface").
      await eventually(async () => {
        const r = await runCommand('nsenter', [`--net=${k1.NetnsPath}`, 'ip', '-o', 'link', 'show']);
        assert.equal(r.code, 0, `ip link in k1: ${r.stderr}`);
        assert.match(r.stdout, /\blo\b/, 'the listing has the loopback device');
        return !/eth[01]/.test(r.stdout);
      }, 'both interfaces gone', 60_000);
      process.kill(d.pid(), 'SIGKILL');
      await d.stop('SIGKILL');
      assert.match(await outcome, /ECONNRESET|socket hang up/, 'the client got no answer');
      release();
      assert.equal(gwRecords().filter((e) => e.sandboxId === k1.Id).length, 1, 'the gateway endpoint was still recorded at the kill');
    } finally {
      release();
      db.close();
    }
    await d.start();
    assert.deepEqual((await sandbox('k1')).Networks, {}, 'the next start removed the gateway endpoint');
    assert.equal((await gatewayEndpoints())[k1.Id], undefined);
    assert.equal((await d.exec('k1', ['ip', '-o', 'link', 'show'])).stdout.includes('eth1'), false, 'and its interface');

    // Everything removed: the gateway bridge goes with `network rm`, nothing marked is left.
    for (const s of (await api('GET', '/cnm/v1/sandboxes')).json() as Array<{ Name: string }>) {
      await api('DELETE', `/cnm/v1/sandboxes/${s.Name}?force=1`, undefined, 204);
    }
    await api('DELETE', '/networks/cnm_gwbridge', undefined, 204);
    await eventually(async () => !(await links()).some((l) => /^cnm(v|z|gw0|o-|x-)/.test(l)), 'no veth, bridge or device left', 30_000);
  });
});
