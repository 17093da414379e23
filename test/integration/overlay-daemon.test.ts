/**
 * The overlay driver inside a real daemon. Without --cluster-store the daemon has no overlay driver and
 * answers as it always did; with one (a real etcd) it has: the network's bridge and VXLAN device come with
 * the first sandbox (MTU from the link holding the advertise address), survive kill -9 + restart untouched,
 * go with the last sandbox; at start-up a leftover carrying the daemon's mark is removed, a look-alike
 * without it is kept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 180_000;
const VTEP = '10.199.0.1';

interface IpLink {
  ifname: string;
  ifindex: number;
  group: string;
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean; proxy?: boolean } };
}

async function links(d: TestDaemon): Promise<IpLink[]> {
  const r = await d.inHost('ip', ['-N', '-d', '-j', 'link', 'show']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as IpLink[];
}

async function host(d: TestDaemon, ...args: string[]): Promise<void> {
  const r = await d.inHost(args[0]!, args.slice(1));
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
}

async function cli(d: TestDaemon, ...args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function ping(d: TestDaemon, from: string, ip: string): Promise<number> {
  const r = await d.exec(from, ['ping', '-c1', '-W2', ip]);
  assert.ok(r.code === 0 || r.code === 1, `ping could not run: ${r.code} ${r.stderr}`);
  return r.code;
}

const overlayCreate = {
  Name: 'ov', Driver: 'overlay', Scope: 'global',
  Options: { 'com.docker.network.driver.overlay.vxlanid_list': '5001' },
  IPAM: { Config: [{ Subnet: '10.90.0.0/24' }] },
};

describe('the overlay driver in the daemon', { skip }, () => {
  let cluster: EtcdCluster | undefined;
  const daemons: TestDaemon[] = [];
  before(async () => {
    cluster = await startEtcdCluster(1);
  });
  after(async () => {
    for (const d of daemons) await d.cleanup();
    await cluster?.close();
  });

  it('without --cluster-store there is no overlay driver: the same 404 as before, and nothing is made', { timeout: TIMEOUT }, async () => {
    const d = await startTestDaemon();
    daemons.push(d);
    const bridge = await d.api('POST', '/networks/create', { Name: 'br', Driver: 'bridge' });
    assert.equal(bridge.status, 201, bridge.body);
    for (const body of [{ Name: 'ov', Driver: 'overlay' }, overlayCreate]) {
      const r = await d.api('POST', '/networks/create', body);
      assert.equal(r.status, 404, r.body);
      assert.deepEqual(r.json(), { message: 'plugin "overlay" not found' });
    }
    const names = ((await d.api('GET', '/networks')).json() as Array<{ Name: string }>).map((n) => n.Name);
    assert.ok(names.includes('br') && !names.includes('ov'), names.join(','));
    assert.deepEqual((await links(d)).filter((l) => /^cnm[ox]-/.test(l.ifname)), []);
  });

  it('with --cluster-store: devices with the first sandbox, kept across kill -9, gone with the last; leftovers by the mark only', { timeout: TIMEOUT }, async () => {
    const socket = cluster!.endpoints[0]!.slice('unix:'.length);
    const d = await startTestDaemon(['--cluster-store', `unix://${socket}`, '--advertise-addr', VTEP]);
    daemons.push(d);
    // The underlay: the advertise address on a link with a small MTU, which the overlay's follows.
    await host(d, 'ip', 'link', 'add', 'cnmtul0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'cnmtul1', 'mtu', '1400');
    await host(d, 'ip', 'addr', 'add', `${VTEP}/24`, 'dev', 'cnmtul0');
    await host(d, 'ip', 'link', 'set', 'cnmtul0', 'up');

    const created = await d.api('POST', '/networks/create', overlayCreate);
    assert.equal(created.status, 201, created.body);
    const id = (created.json() as { Id: string }).Id;
    const [br, vx] = [`cnmo-${id.slice(0, 10)}`, `cnmx-${id.slice(0, 10)}`];
    assert.deepEqual((await links(d)).filter((l) => l.ifname === br || l.ifname === vx), [], 'nothing before the first sandbox');

    await cli(d, 'sandbox', 'create', 's1', '--network', 'ov');
    await cli(d, 'sandbox', 'create', 's2', '--network', 'ov');
    const before = await links(d);
    const bridge = before.find((l) => l.ifname === br);
    const vxlan = before.find((l) => l.ifname === vx);
    assert.equal(bridge?.linkinfo?.info_kind, 'bridge');
    assert.equal(vxlan?.master, br);
    assert.equal(vxlan?.group, bridge?.group, 'both carry the daemon\'s mark');
    assert.deepEqual(
      [vxlan?.mtu, vxlan?.linkinfo?.info_data?.id, vxlan?.linkinfo?.info_data?.local, vxlan?.linkinfo?.info_data?.port, vxlan?.linkinfo?.info_data?.learning, vxlan?.linkinfo?.info_data?.proxy],
      [1350, 5001, VTEP, 4789, false, true],
    );
    const [s2] = JSON.parse(await cli(d, 'sandbox', 'inspect', 's2')) as Array<{ Networks: Record<string, { IPAddress: string }> }>;
    const ip = s2!.Networks['ov']!.IPAddress;
    assert.match(ip, /^10\.90\.0\.\d+$/);
    assert.equal(await ping(d, 's1', ip), 0, 's1 → s2 over the overlay bridge');

    // Leftovers: one with the daemon's mark that no record explains, one look-alike without the mark.
    const mark = bridge!.group;
    await host(d, 'ip', 'link', 'add', 'cnmo-0000000000', 'group', mark, 'type', 'bridge');
    await host(d, 'ip', 'link', 'add', 'cnmo-1111111111', 'type', 'bridge');
    await d.stop('SIGKILL');
    await d.start();
    const afterRestart = await links(d);
    const index = (name: string) => afterRestart.find((l) => l.ifname === name)?.ifindex;
    assert.deepEqual([index(br), index(vx)], [bridge!.ifindex, vxlan!.ifindex], 'the devices were left alone');
    assert.equal(index('cnmo-0000000000'), undefined, 'a marked leftover is removed');
    assert.ok(index('cnmo-1111111111'), 'an unmarked look-alike is kept');
    assert.equal(await ping(d, 's1', ip), 0, 's1 → s2 after the restart');

    await cli(d, 'sandbox', 'rm', 's1');
    assert.ok((await links(d)).some((l) => l.ifname === vx), 's2 is still there: so are the devices');
    await cli(d, 'sandbox', 'rm', 's2');
    assert.deepEqual((await links(d)).filter((l) => l.ifname === br || l.ifname === vx), [], 'the last sandbox took them');
    assert.equal((await d.api('DELETE', '/networks/ov')).status, 204);
    await host(d, 'ip', 'link', 'del', 'cnmo-1111111111');
  });
});
