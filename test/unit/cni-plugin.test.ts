/** The CNI plugin's pure parts (environment, configuration, results, CHECK) and its error mapping, with a fake API. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError, DaemonError } from '../../src/cli/client.js';
import { runPlugin, type Api } from '../../src/cni/plugin.js';
import { buildResult, CniError, parseConf, parseEnv, prevResultProblems, sandboxName, type EndpointView } from '../../src/cni/spec.js';
import { launcherScript } from '../../src/cni/install.js';

const EP: EndpointView = {
  MacAddress: '02:42:0a:3e:00:05', IPAddress: '10.62.0.5', IPPrefixLen: 24, Gateway: '10.62.0.1',
  IPv6Address: 'fd62::5', GlobalIPv6PrefixLen: 64, IPv6Gateway: 'fd62::1', InterfaceName: 'eth0',
  HostInterfaceName: '', HostMacAddress: '', HostBridgeName: '',
};
/** The same endpoint of a driver with a host-side interface (a veth's host end on a bridge: bridge, overlay). */
const VETH_EP: EndpointView = { ...EP, HostInterfaceName: 'cnmv5e1a2b3c4d', HostMacAddress: '02:aa:bb:cc:dd:ee', HostBridgeName: 'cnmbr7' };
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as CniError).code;
  }
  return 0;
};

describe('CNI spec: environment and configuration', () => {
  it('checks the environment per command (code 4)', () => {
    assert.equal(codeOf(() => parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/proc/1/ns/net', CNI_IFNAME: 'eth0' })), 0);
    assert.equal(codeOf(() => parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' })), 0, 'DEL without CNI_NETNS');
    assert.equal(codeOf(() => parseEnv({ CNI_COMMAND: 'GC' })), 0);
    for (const env of [
      { CNI_COMMAND: 'add' },
      { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' },
      { CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-c1', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' },
      { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: 'rel/x', CNI_IFNAME: 'eth0' },
      { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'sixteen-chars-xx' },
      { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'a:b' },
      { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: '..' },
    ]) assert.equal(codeOf(() => parseEnv(env)), 4, JSON.stringify(env));
  });

  it('checks the configuration: 6 not JSON, 1 unsupported version, 7 invalid fields', () => {
    const ok = { cniVersion: '1.1.0', name: 'n', type: 'cnm', network: 'net' };
    assert.deepEqual(parseConf(JSON.stringify(ok), 'ADD'), ok);
    assert.equal(codeOf(() => parseConf('{', 'ADD')), 6);
    assert.equal(codeOf(() => parseConf('[]', 'ADD')), 6);
    assert.equal(codeOf(() => parseConf(JSON.stringify({ ...ok, cniVersion: '0.4.0' }), 'ADD')), 1);
    assert.equal(codeOf(() => parseConf(JSON.stringify({ cniVersion: '0.4.0' }), 'VERSION')), 0, 'VERSION answers any version');
    for (const bad of [{ network: undefined }, { network: '' }, { name: 'bad name' }, { socket: 'rel.sock' }, { dns: { nameservers: 'x' } }, { prevResult: 5 }]) {
      assert.equal(codeOf(() => parseConf(JSON.stringify({ ...ok, ...bad }), 'ADD')), 7, JSON.stringify(bad));
    }
    assert.deepEqual(parseConf(JSON.stringify({ ...ok, 'cni.dev/valid-attachments': [{ containerID: 'c', ifname: 'eth0' }] }), 'GC').validAttachments, [{ containerID: 'c', ifname: 'eth0' }]);
    assert.equal(codeOf(() => parseConf(JSON.stringify({ ...ok, 'cni.dev/valid-attachments': [{ containerID: 1 }] }), 'GC')), 7);
  });

  it('names the sandbox after the attachment, or a digest when that is no valid sandbox name', () => {
    assert.equal(sandboxName('abc', 'eth0'), 'cni-abc-eth0');
    assert.match(sandboxName('abc', 'e@1'), /^cni-[0-9a-f]{32}$/);
    assert.notEqual(sandboxName('abc', 'e@1'), sandboxName('abc', 'e@2'));
  });
});

describe('CNI spec: results and CHECK', () => {
  it('builds the result, appending to a previous plugin\'s; mtu only in 1.1.0', () => {
    const r = buildResult('1.1.0', EP, '/run/netns/x', { nameservers: ['192.0.2.53'] }, undefined, 1400);
    assert.deepEqual(r, {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mac: EP.MacAddress, sandbox: '/run/netns/x', mtu: 1400 }],
      ips: [{ address: '10.62.0.5/24', gateway: '10.62.0.1', interface: 0 }, { address: 'fd62::5/64', gateway: 'fd62::1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.62.0.1' }, { dst: '::/0', gw: 'fd62::1' }],
      dns: { nameservers: ['192.0.2.53'] },
    });
    const chained = buildResult('1.0.0', EP, '/n', undefined, { interfaces: [{ name: 'lo0' }], ips: [{ address: '192.0.2.1/32', interface: 0 }] }, 1400);
    assert.equal(chained.cniVersion, '1.0.0');
    assert.deepEqual(chained.interfaces, [{ name: 'lo0' }, { name: 'eth0', mac: EP.MacAddress, sandbox: '/n' }]);
    assert.equal(chained.ips![1]!.interface, 1);
  });

  it('lists the bridge and the host-side interface (no sandbox) before the container\'s, as the bridge plugin does; ips point at the container interface', () => {
    for (const version of ['1.0.0', '1.1.0']) {
      const r = buildResult(version, VETH_EP, '/run/netns/x', undefined, undefined, 1400);
      const mtu = version === '1.1.0' ? { mtu: 1400 } : {};
      assert.deepEqual(r.interfaces, [
        { name: 'cnmbr7', ...mtu },
        { name: 'cnmv5e1a2b3c4d', mac: '02:aa:bb:cc:dd:ee', ...mtu },
        { name: 'eth0', mac: EP.MacAddress, sandbox: '/run/netns/x', ...mtu },
      ], version);
      assert.deepEqual(r.ips!.map((ip) => ip.interface), [2, 2], version);
    }
    const chained = buildResult('1.0.0', VETH_EP, '/n', undefined, { interfaces: [{ name: 'lo0' }], ips: [{ address: '192.0.2.1/32', interface: 0 }] });
    assert.deepEqual(chained.interfaces!.map((i) => i.name), ['lo0', 'cnmbr7', 'cnmv5e1a2b3c4d', 'eth0']);
    assert.deepEqual(chained.ips!.map((ip) => ip.interface), [0, 3, 3]);
    // A daemon that does not name the bridge (an older cnm): the host end alone.
    const noBridge = buildResult('1.0.0', { ...VETH_EP, HostBridgeName: '' }, '/n', undefined, undefined);
    assert.deepEqual(noBridge.interfaces!.map((i) => i.name), ['cnmv5e1a2b3c4d', 'eth0']);
    assert.deepEqual(noBridge.ips!.map((ip) => ip.interface), [1, 1]);
  });

  it('CHECK expects the host-side interface with its MAC when the endpoint has one', () => {
    const prev = buildResult('1.0.0', VETH_EP, '/n', undefined, undefined);
    assert.deepEqual(prevResultProblems(prev, VETH_EP, '/n'), []);
    const [bridge, host, container] = prev.interfaces!;
    const withoutHost = { ...prev, interfaces: [bridge!, container!], ips: prev.ips!.map((ip) => ({ ...ip, interface: 1 })) };
    assert.deepEqual(prevResultProblems(withoutHost, VETH_EP, '/n'), ['prevResult lists no host interface cnmv5e1a2b3c4d']);
    const otherMac = { ...prev, interfaces: [bridge!, { ...host!, mac: '02:00:00:00:00:01' }, container!] };
    assert.deepEqual(prevResultProblems(otherMac, VETH_EP, '/n'), ['host interface cnmv5e1a2b3c4d has MAC 02:aa:bb:cc:dd:ee, prevResult says 02:00:00:00:00:01']);
    // An interface of that name inside a sandbox is not the host end.
    const inSandbox = { ...prev, interfaces: [bridge!, { ...host!, sandbox: '/n' }, container!] };
    assert.deepEqual(prevResultProblems(inSandbox, VETH_EP, '/n'), ['prevResult lists no host interface cnmv5e1a2b3c4d']);
    // A result of an older cnm, without the bridge, still passes.
    const older = { ...prev, interfaces: [host!, container!], ips: prev.ips!.map((ip) => ({ ...ip, interface: 1 })) };
    assert.deepEqual(prevResultProblems(older, VETH_EP, '/n'), []);
  });

  it('CHECK finds every difference between prevResult and the endpoint', () => {
    const prev = buildResult('1.1.0', EP, '/n', undefined, undefined);
    assert.deepEqual(prevResultProblems(prev, EP, '/n'), []);
    assert.match(prevResultProblems(prev, EP, '/other')[0]!, /no interface eth0 in \/other/);
    assert.match(prevResultProblems({ ...prev, interfaces: [{ ...prev.interfaces![0]!, mac: '02:00:00:00:00:01' }] }, EP, '/n')[0]!, /MAC/);
    const fewer = prevResultProblems({ ...prev, ips: prev.ips!.slice(0, 1) }, EP, '/n');
    assert.deepEqual(fewer, ["the endpoint's address fd62::5/64 is missing from prevResult"]);
  });
});

describe('CNI plugin: talking to the daemon', () => {
  const env = { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' };
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'cnm', network: 'net' });
  const api = (fn: Api['request']): (() => Api) => () => ({ request: fn });

  it('unreachable or busy daemon: 11 try again later; another refusal: 100 with the daemon\'s message', async () => {
    const unreachable = await runPlugin(env, conf, api(async () => Promise.reject(new ConnectionError('no socket'))));
    assert.equal(unreachable.exitCode, 1);
    assert.equal(JSON.parse(unreachable.stdout).code, 11);
    const busy = await runPlugin(env, conf, api(async () => Promise.reject(new DaemonError(503, 'the daemon is busy'))));
    assert.equal(JSON.parse(busy.stdout).code, 11);
    const refused = await runPlugin(env, conf, api(async () => Promise.reject(new DaemonError(403, 'nope'))));
    assert.deepEqual(JSON.parse(refused.stdout), { cniVersion: '1.1.0', code: 100, msg: 'nope', details: 'HTTP 403 from the cnm daemon' });
  });

  it('DEL of an unknown attachment, or of another network\'s, deletes nothing and succeeds', async () => {
    const calls: string[] = [];
    const missing = await runPlugin(env, conf, api(async (method, path) => {
      calls.push(`${method} ${path}`);
      throw new DaemonError(404, 'No such sandbox');
    }));
    assert.deepEqual(missing, { stdout: '', exitCode: 0 });
    const foreign = await runPlugin(env, conf, api(async (method, path) => {
      calls.push(`${method} ${path}`);
      return { status: 200, body: { Id: 'x', Name: 'cni-c1-eth0', Labels: { 'cni.network': 'other', 'cni.containerid': 'c1', 'cni.ifname': 'eth0' }, Networks: {} } };
    }));
    assert.deepEqual(foreign, { stdout: '', exitCode: 0 });
    assert.ok(!calls.some((c) => c.startsWith('DELETE')), calls.join(', '));
  });

  it('GC deletes only the unlisted attachments of its own CNI network', async () => {
    const deleted: string[] = [];
    const sandboxes = [
      { Id: 'a', Name: 'a', NetnsFollow: true, Labels: { 'cni.network': 'n', 'cni.containerid': 'keep', 'cni.ifname': 'eth0' }, Networks: {} },
      { Id: 'b', Name: 'b', NetnsFollow: true, Labels: { 'cni.network': 'n', 'cni.containerid': 'drop', 'cni.ifname': 'eth0' }, Networks: {} },
      { Id: 'c', Name: 'c', NetnsFollow: true, Labels: { 'cni.network': 'm', 'cni.containerid': 'drop', 'cni.ifname': 'eth0' }, Networks: {} },
      { Id: 'd', Name: 'd', Labels: {}, Networks: {} },
    ];
    const gcConf = JSON.stringify({ ...JSON.parse(conf), 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] });
    const out = await runPlugin({ CNI_COMMAND: 'GC' }, gcConf, api(async (method, path) => {
      if (method === 'DELETE') deleted.push(path);
      return { status: method === 'DELETE' ? 204 : 200, body: method === 'GET' ? sandboxes : undefined };
    }));
    assert.deepEqual(out, { stdout: '', exitCode: 0 });
    assert.deepEqual(deleted, ['/cnm/v1/sandboxes/b']);
  });

  it('VERSION needs no daemon', async () => {
    const out = await runPlugin({ CNI_COMMAND: 'VERSION' }, '', () => assert.fail('no daemon call'));
    assert.deepEqual(JSON.parse(out.stdout), { cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] });
  });

  it('the launcher runs the compiled entry when installed from dist, else the sources through tsx', () => {
    const compiled = launcherScript('/repo/dist/src/cni/install.js', '/usr/bin/node');
    assert.match(compiled, /exec "\/usr\/bin\/node" "\/repo\/dist\/src\/cni\/main\.js" "\$@"/);
    const source = launcherScript('/repo/src/cni/install.ts', '/usr/bin/node');
    assert.match(source, /exec "\/usr\/bin\/node" --import "file:\/\/\/repo\/node_modules\/tsx\/dist\/loader\.mjs" "\/repo\/src\/cni\/main\.ts" "\$@"/);
  });
});
