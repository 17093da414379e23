/** Output rendering of the CLI: tabwriter tables, --format templates, JSON rows, inspect arrays. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatInspect, formatList, FormatError, goTimeString, naturalCompare, renderTemplate, tabwrite } from '../../src/cli/format.js';
import { NETWORK_LIST_FORMAT, networkRow } from '../../src/cli/network.js';
import { SANDBOX_LIST_FORMAT, sandboxRow } from '../../src/cli/sandbox.js';

const NET = {
  Id: '123454321'.padEnd(64, '0'),
  Name: 'network_1',
  Driver: '09.7.01',
  Scope: 'global',
  Created: '2024-01-02T03:04:05.120000000Z',
  EnableIPv4: true,
  EnableIPv6: false,
  Internal: false,
  Labels: { b: '2', a: '1' },
};

describe('tables', () => {
  it('pads like the docker CLI’s tabwriter (min width 10, padding 3, last column bare)', () => {
    // docker/cli cli/command/network/testdata/network-list.golden
    assert.equal(
      tabwrite('NETWORK ID\tNAME\tDRIVER\tSCOPE\n123454321\tnetwork_1\t09.7.01\tglobal'),
      'NETWORK ID   NAME        DRIVER    SCOPE\n123454321    network_1   09.7.01   global',
    );
  });

  it('renders the default network table, sorted by the caller in natural order', () => {
    const names = ['net10', 'net2', 'bridge', 'net1'];
    assert.deepEqual(names.sort(naturalCompare), ['bridge', 'net1', 'net2', 'net10']);
    const out = formatList([networkRow(NET, false)], NETWORK_LIST_FORMAT, undefined, false);
    assert.equal(out, 'NETWORK ID     NAME        DRIVER    SCOPE\n123454321000   network_1   09.7.01   global\n');
    assert.equal(formatList([networkRow(NET, false)], NETWORK_LIST_FORMAT, 'table', true), '123454321000\n');
    assert.equal(formatList([networkRow(NET, true)], NETWORK_LIST_FORMAT, undefined, true), `${NET.Id}\n`);
  });

  it('prints Docker’s JSON rows and custom templates', () => {
    const json = JSON.parse(formatList([networkRow(NET, false)], NETWORK_LIST_FORMAT, 'json', false));
    assert.deepEqual(json, {
      CreatedAt: '2024-01-02 03:04:05.12 +0000 UTC',
      Driver: '09.7.01',
      ID: '123454321000',
      IPv4: 'true',
      IPv6: 'false',
      Internal: 'false',
      Labels: 'a=1,b=2',
      Name: 'network_1',
      Scope: 'global',
    });
    assert.equal(formatList([networkRow(NET, false)], NETWORK_LIST_FORMAT, '{{.Name}}: {{.Labels}}', false), 'network_1: a=1,b=2\n');
    assert.equal(
      formatList([networkRow(NET, false)], NETWORK_LIST_FORMAT, 'table {{.Name}}\\t{{.Internal}}', false),
      'NAME        INTERNAL\nnetwork_1   false\n',
    );
  });

  it('lists sandboxes with their networks and addresses', () => {
    const row = sandboxRow(
      {
        Id: 'a'.repeat(64),
        Name: 'web',
        Hostname: 'h',
        Created: new Date(Date.UTC(2024, 0, 1)).toISOString(),
        NetnsPath: '/run/cnm/netns/x',
        HostNetwork: false,
        ResolvConfPath: '',
        HostsPath: '',
        HostnamePath: '',
        DaemonPid: 1,
        Networks: {
          net10: { IPAddress: '10.0.10.2', IPPrefixLen: 24, IPv6Address: '' },
          net2: { IPAddress: '10.0.2.2', IPPrefixLen: 24, IPv6Address: 'fd00::2' },
        },
      },
      false,
      Date.UTC(2024, 0, 1, 0, 5),
    );
    assert.deepEqual(row, {
      ID: 'aaaaaaaaaaaa',
      Name: 'web',
      Hostname: 'h',
      Networks: 'net2,net10',
      IPAddresses: '10.0.2.2,fd00::2,10.0.10.2',
      Ports: '',
      CreatedAt: '2024-01-01 00:00:00 +0000 UTC',
      RunningFor: '5 minutes ago',
    });
    assert.match(formatList([row], SANDBOX_LIST_FORMAT, undefined, false), /^SANDBOX ID\s+NAME\s+NETWORKS\s+IP ADDRESSES\s+PORTS\s+CREATED\n/);
  });
});

describe('templates and inspect output', () => {
  const data = { Name: 'n', IPAM: { Config: [{ Subnet: '10.0.0.0/24' }] }, Labels: { 'a.b': 'c' }, Nil: null };

  it('renders fields, json, index and case functions', () => {
    assert.equal(renderTemplate('{{.Name}} {{json .IPAM.Config}}', data), 'n [{"Subnet":"10.0.0.0/24"}]');
    assert.equal(renderTemplate('{{index .Labels "a.b"}}|{{upper .Name}}|{{.Labels}}|{{.Nil}}|{{.Missing}}', data), 'c|N|map[a.b:c]|<nil>|<no value>');
    assert.throws(() => renderTemplate('{{range .X}}', data), FormatError);
  });

  it('prints inspect results as Docker does', () => {
    assert.equal(formatInspect([], undefined), '[]\n');
    assert.equal(formatInspect([{ a: 1 }], undefined), '[\n    {\n        "a": 1\n    }\n]\n');
    assert.equal(formatInspect([data, data], '{{.Name}}'), 'n\nn\n');
  });

  it('renders Go’s time.Time.String()', () => {
    assert.equal(goTimeString('2024-01-02T03:04:05.123456789Z'), '2024-01-02 03:04:05.123456789 +0000 UTC');
    assert.equal(goTimeString('2024-01-02T03:04:05.000000000Z'), '2024-01-02 03:04:05 +0000 UTC');
    assert.equal(goTimeString('2024-01-02T03:04:05+02:00'), '2024-01-02 03:04:05 +0200 +0200');
  });
});
