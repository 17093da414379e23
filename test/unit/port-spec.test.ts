/**
 * `-p` specifications as the docker CLI parses them (go-connections nat.ParsePortSpec): the same
 * mappings and the same error words.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePortSpec, portBindingsOf, PortSpecError } from '../../src/util/port-spec.js';

const m = (port: string, hostIp = '', hostPort = '') => ({ port, hostIp, hostPort });

describe('port specs (nat.ParsePortSpec)', () => {
  it('container port only, with and without protocol', () => {
    assert.deepEqual(parsePortSpec('80'), [m('80/tcp')]);
    assert.deepEqual(parsePortSpec('53/udp'), [m('53/udp')]);
    assert.deepEqual(parsePortSpec('9/SCTP'), [m('9/sctp')]);
  });

  it('host port, host address, IPv6 in brackets and bare', () => {
    assert.deepEqual(parsePortSpec('8080:80'), [m('80/tcp', '', '8080')]);
    assert.deepEqual(parsePortSpec('127.0.0.1:8080:80/udp'), [m('80/udp', '127.0.0.1', '8080')]);
    assert.deepEqual(parsePortSpec('127.0.0.1::80'), [m('80/tcp', '127.0.0.1', '')]);
    assert.deepEqual(parsePortSpec('[::]:8080:80'), [m('80/tcp', '::', '8080')]);
    assert.deepEqual(parsePortSpec('[2001:db8::1]:8080:80'), [m('80/tcp', '2001:db8::1', '8080')]);
    // Docker joins every part but the last two: a bare IPv6 address works too.
    assert.deepEqual(parsePortSpec('::1:8080:80'), [m('80/tcp', '::1', '8080')]);
  });

  it('ranges of equal length map port to port; a host range for one port is where a free one is picked', () => {
    assert.deepEqual(parsePortSpec('8000-8002:80-82'), [m('80/tcp', '', '8000'), m('81/tcp', '', '8001'), m('82/tcp', '', '8002')]);
    assert.deepEqual(parsePortSpec('7000-7001'), [m('7000/tcp'), m('7001/tcp')]);
    assert.deepEqual(parsePortSpec('8000-8010:80'), [m('80/tcp', '', '8000-8010')]);
    assert.deepEqual(parsePortSpec('5000-5000:80'), [m('80/tcp', '', '5000')]);
  });

  it("errors in Docker's words", () => {
    const cases: Array<[string, string]> = [
      ['8000-8002:80-81', 'invalid ranges specified for container and host Ports: 80-81 and 8000-8002'],
      ['8080:', 'no port specified: 8080:<empty>'],
      ['80/icmp', 'invalid proto: icmp'],
      ['1.2.3:80:80', 'invalid IP address: 1.2.3'],
      ['80:abc', 'invalid containerPort: abc'],
      ['70000', 'invalid containerPort: 70000'],
      ['abc:80', 'invalid hostPort: abc'],
      ['90-80', 'invalid containerPort: 90-80'],
    ];
    for (const [spec, message] of cases) {
      assert.throws(() => parsePortSpec(spec), (err: unknown) => err instanceof PortSpecError && err.message === message, spec);
    }
  });

  it('several specs become one PortBindings map', () => {
    assert.deepEqual(portBindingsOf(['8080:80', '127.0.0.1:8081:80', '53/udp']), {
      '80/tcp': [
        { HostIp: '', HostPort: '8080' },
        { HostIp: '127.0.0.1', HostPort: '8081' },
      ],
      '53/udp': [{ HostIp: '', HostPort: '' }],
    });
  });
});
