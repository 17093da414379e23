/** The CLI's flag parser and the request bodies built from Docker's flags (pure functions). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError, type FlagSpec } from '../../src/cli/args.js';
import { buildIpamConfig, CliError } from '../../src/cli/ipam-flags.js';
import { connectBody, createNetworkBody } from '../../src/cli/network.js';
import { createSandboxBody, parseNetworkFlag } from '../../src/cli/sandbox.js';

const SPECS: FlagSpec[] = [
  { long: 'force', short: 'f', kind: 'bool', description: '' },
  { long: 'quiet', short: 'q', kind: 'bool', description: '' },
  { long: 'driver', short: 'd', kind: 'string', description: '' },
  { long: 'label', kind: 'list', description: '' },
  { long: 'alias', kind: 'csv', description: '' },
];

describe('parseArgs', () => {
  it('reads long, short, attached and grouped forms', () => {
    const a = parseArgs(['-fq', '-dmacvlan', '--label', 'a=1', '--label=b=2', '--alias', 'x,y', '--alias=z', 'pos'], SPECS);
    assert.equal(a.bool('force'), true);
    assert.equal(a.bool('quiet'), true);
    assert.equal(a.string('driver'), 'macvlan');
    assert.deepEqual(a.list('label'), ['a=1', 'b=2']);
    assert.deepEqual(a.list('alias'), ['x', 'y', 'z']);
    assert.deepEqual(a.positionals, ['pos']);
    assert.equal(parseArgs(['-d', 'bridge'], SPECS).string('driver'), 'bridge');
    assert.equal(parseArgs(['-d=ipvlan'], SPECS).string('driver'), 'ipvlan');
  });

  it('takes --x=false for booleans and tells whether a flag was given', () => {
    const a = parseArgs(['--force=false'], SPECS);
    assert.equal(a.has('force'), true);
    assert.equal(a.bool('force'), false);
    assert.equal(parseArgs([], SPECS).has('force'), false);
    assert.throws(() => parseArgs(['--force=maybe'], SPECS), UsageError);
  });

  it('keeps flags interspersed with positionals, and stops at -- or (optionally) the first positional', () => {
    assert.deepEqual(parseArgs(['a', '-f', 'b'], SPECS).positionals, ['a', 'b']);
    assert.deepEqual(parseArgs(['a', '--', '-f', 'b'], SPECS).positionals, ['a', '-f', 'b']);
    const exec = parseArgs(['sb', 'ip', '-4', 'addr'], SPECS, { interspersed: false });
    assert.deepEqual(exec.positionals, ['sb', 'ip', '-4', 'addr']);
  });

  it('reports unknown flags and missing values as usage errors; knows --help', () => {
    assert.throws(() => parseArgs(['--nope'], SPECS), { message: 'unknown flag: --nope' });
    assert.throws(() => parseArgs(['-x'], SPECS), /unknown shorthand flag: 'x'/);
    assert.throws(() => parseArgs(['--driver'], SPECS), /flag needs an argument/);
    assert.equal(parseArgs(['--help'], SPECS).bool('help'), true);
    assert.equal(parseArgs(['-h'], SPECS).bool('help'), true);
  });
});

describe('network create flags → request body', () => {
  const body = (argv: string[]) => createNetworkBody(parseArgs(argv, [
    { long: 'driver', short: 'd', kind: 'string', description: '' },
    { long: 'subnet', kind: 'csv', description: '' },
    { long: 'ip-range', kind: 'csv', description: '' },
    { long: 'gateway', kind: 'csv', description: '' },
    { long: 'aux-address', kind: 'list', description: '' },
    { long: 'label', kind: 'list', description: '' },
    { long: 'opt', short: 'o', kind: 'list', description: '' },
    { long: 'ipv6', kind: 'bool', description: '' },
    { long: 'internal', kind: 'bool', description: '' },
    { long: 'config-from', kind: 'string', description: '' },
  ]));

  it('groups ranges, gateways and aux addresses with the subnet that contains them', () => {
    const b = body(['--subnet', '10.1.0.0/24', '--subnet', 'fd00:1::/64', '--gateway', 'fd00:1::fe,10.1.0.254', '--ip-range', '10.1.0.128/25', '--aux-address', 'r=10.1.0.3', '--aux-address', 's=fd00:1::3', 'n']);
    assert.deepEqual(b.IPAM, {
      Driver: 'default',
      Config: [
        { Subnet: '10.1.0.0/24', IPRange: '10.1.0.128/25', Gateway: '10.1.0.254', AuxiliaryAddresses: { r: '10.1.0.3' } },
        { Subnet: 'fd00:1::/64', Gateway: 'fd00:1::fe', AuxiliaryAddresses: { s: 'fd00:1::3' } },
      ],
      Options: {},
    });
  });

  it('sends Docker’s defaults and only the IP families that were asked for', () => {
    const b = body(['-o', 'com.docker.network.bridge.name=cnmx', '--label', 'k', '--internal', '--config-from', 'base', 'n']);
    assert.equal(b.Name, 'n');
    assert.equal(b.Driver, 'bridge');
    assert.equal(b.EnableIPv4, undefined);
    assert.equal(b.EnableIPv6, undefined);
    assert.equal(b.Internal, true);
    assert.deepEqual(b.ConfigFrom, { Network: 'base' });
    assert.deepEqual(b.Options, { 'com.docker.network.bridge.name': 'cnmx' });
    assert.deepEqual(b.Labels, { k: '' });
    assert.equal(body(['--ipv6', 'n']).EnableIPv6, true);
  });

  it('refuses what the docker CLI refuses', () => {
    assert.throws(() => buildIpamConfig({ driver: 'default', subnets: [], ipRanges: [], gateways: ['10.0.0.1'], auxAddresses: {}, options: {} }), {
      message: 'every ip-range or gateway must have a corresponding subnet',
    });
    const base = { driver: 'default', ipRanges: [], gateways: [], auxAddresses: {}, options: {} };
    assert.throws(() => buildIpamConfig({ ...base, subnets: ['10.0.0.0/16', '10.0.1.0/24'] }), /overlapping subnet/);
    assert.throws(() => buildIpamConfig({ ...base, subnets: ['10.0.0.0/24'], gateways: ['10.9.0.1'] }), { message: 'no matching subnet for gateway 10.9.0.1' });
    assert.throws(() => buildIpamConfig({ ...base, subnets: ['10.0.0.0/24', '10.1.0.0/24'], gateways: ['10.0.0.1', '10.0.0.2'] }), /multiple gateways/);
    assert.throws(() => buildIpamConfig({ ...base, subnets: ['10.0.0.0/24'], ipRanges: ['10.5.0.0/25'] }), /no matching subnet for range/);
    assert.throws(() => buildIpamConfig({ ...base, subnets: ['10.0.0.0/24'], auxAddresses: { a: '10.7.0.1' } }), /no matching subnet for aux-address/);
    assert.throws(() => buildIpamConfig({ ...base, subnets: ['banana'] }), CliError);
  });
});

describe('network connect and sandbox create flags → request bodies', () => {
  it('builds Docker’s EndpointConfig', () => {
    const a = parseArgs(['--ip', '10.0.0.5', '--alias', 'a,b', '--driver-opt', 'k = v', '--gw-priority', '-2', 'net', 'sb'], [
      { long: 'ip', kind: 'string', description: '' },
      { long: 'ip6', kind: 'string', description: '' },
      { long: 'alias', kind: 'csv', description: '' },
      { long: 'driver-opt', kind: 'csv', description: '' },
      { long: 'gw-priority', kind: 'string', description: '' },
      { long: 'link', kind: 'list', description: '' },
      { long: 'link-local-ip', kind: 'csv', description: '' },
      { long: 'mac-address', kind: 'string', description: '' },
    ]);
    assert.deepEqual(connectBody(a), {
      Container: 'sb',
      EndpointConfig: {
        IPAMConfig: { IPv4Address: '10.0.0.5', IPv6Address: undefined, LinkLocalIPs: undefined },
        Links: [],
        Aliases: ['a', 'b'],
        MacAddress: undefined,
        DriverOpts: { k: 'v' },
        GwPriority: -2,
        CnmServices: undefined,
      },
    });
    const joining = parseArgs(['--service', 'web', '--service', 'api', 'net', 'sb'], [{ long: 'service', kind: 'list', description: '' }]);
    assert.deepEqual((connectBody(joining).EndpointConfig as { CnmServices: string[] }).CnmServices, ['web', 'api']);
    const badIp = parseArgs(['--ip', 'x', 'n', 's'], [{ long: 'ip', kind: 'string', description: '' }]);
    assert.throws(() => connectBody(badIp), UsageError);
  });

  it('reads Docker’s advanced --network syntax and applies --ip/--alias to the first network', () => {
    assert.deepEqual(parseNetworkFlag('plain'), { Network: 'plain' });
    assert.deepEqual(parseNetworkFlag('name=n,ip=10.0.0.9,alias=a,alias=b,driver-opt=k=v,gw-priority=4'), {
      Network: 'n',
      IPv4Address: '10.0.0.9',
      Aliases: ['a', 'b'],
      DriverOpts: { k: 'v' },
      GwPriority: 4,
    });
    assert.throws(() => parseNetworkFlag('name=n,colour=red'), UsageError);
    const specs: FlagSpec[] = ['network', 'alias', 'label', 'dns', 'dns-search', 'dns-option'].map((long) => ({ long, kind: 'list' as const, description: '' }));
    specs.push(...['ip', 'ip6', 'mac-address', 'hostname', 'netns'].map((long) => ({ long, kind: 'string' as const, description: '' })));
    const b = createSandboxBody(parseArgs(['s1', '--network', 'a', '--network', 'b', '--ip', '10.0.0.3', '--alias', 'web', '--dns', '9.9.9.9', '--label', 'x=y'], specs));
    assert.deepEqual(b.Networks, [{ Network: 'a', IPv4Address: '10.0.0.3', Aliases: ['web'] }, { Network: 'b' }]);
    assert.equal(b.Name, 's1');
    assert.deepEqual(b.Dns, ['9.9.9.9']);
    assert.deepEqual(b.Labels, { x: 'y' });
    // No --network: the daemon's default; endpoint flags then name the default bridge.
    assert.equal(createSandboxBody(parseArgs([], specs)).Networks, undefined);
    assert.deepEqual(createSandboxBody(parseArgs(['--ip', '172.17.0.9'], specs)).Networks, [{ Network: 'bridge', IPv4Address: '172.17.0.9' }]);
  });
});
