/** The remote driver protocol's translation into controller requests and back (pure). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  createEndpointResponse,
  joinResponse,
  toAttach,
  toCreateNetwork,
  toExternalConnectivity,
} from '../../src/api/docker-plugin/protocol.js';

const ID = '0123456789abcdef'.repeat(4);
const EP = 'fedcba9876543210'.repeat(4);

describe('Docker plugin protocol', () => {
  it("CreateNetwork: Docker's ID, pools without prefix lengths on gateways, cnm's options taken out", () => {
    const req = toCreateNetwork(
      {
        networkid: ID, // Go's decoder matches field names case-insensitively
        Options: {
          'com.docker.network.generic': { 'cnm.driver': 'bridge', 'com.docker.network.driver.mtu': '1400' },
          'com.docker.network.enable_ipv6': true,
          'com.docker.network.internal': true,
        },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '172.30.0.0/16', Gateway: '172.30.0.1/16', AuxAddresses: { a: '172.30.0.5/16' } }],
        IPv6Data: [{ AddressSpace: 'LocalDefault', Pool: 'fd00:1::/64', Gateway: 'fd00:1::1/64' }],
      },
      'cnm',
    );
    assert.deepEqual(req, {
      id: ID,
      name: `cnm-${ID.slice(0, 12)}`,
      driver: 'bridge',
      forHandoff: true,
      internal: true,
      enableIPv4: true,
      enableIPv6: true,
      ipam: {
        configs: [
          { subnet: '172.30.0.0/16', ipRange: '172.30.128.0/17', gateway: '172.30.0.1', auxAddresses: { a: '172.30.0.5' } },
          { subnet: 'fd00:1::/64', ipRange: 'fd00:1:0:0:8000::/65', gateway: 'fd00:1::1' },
        ],
      },
      options: { 'com.docker.network.driver.mtu': '1400' },
      labels: { 'cnm.docker-plugin': 'cnm' },
    });
  });

  it('CreateNetwork: only the families Docker gave pools for; tiny subnets keep no separate range', () => {
    const req = toCreateNetwork({ NetworkID: ID, Options: null, IPv4Data: [{ Pool: '10.0.0.0/30', Gateway: '10.0.0.1/30' }], IPv6Data: null }, 'p');
    assert.equal(req.enableIPv4, true);
    assert.equal(req.enableIPv6, false);
    assert.equal(req.internal, false);
    assert.deepEqual(req.ipam?.configs, [{ subnet: '10.0.0.0/30', gateway: '10.0.0.1' }]);
  });

  it('CreateNetwork refuses what it cannot read, naming the field', () => {
    assert.throws(() => toCreateNetwork({ NetworkID: ID.toUpperCase() }, 'p'), /NetworkID: must be 64 lowercase hex digits/);
    assert.throws(() => toCreateNetwork({ NetworkID: ID, Options: { 'com.docker.network.internal': 'yes' } }, 'p'), /com\.docker\.network\.internal/);
    assert.throws(() => toCreateNetwork({ NetworkID: ID, Options: { 'com.docker.network.generic': { 'cnm.typo': 'x' } } }, 'p'), /unknown option cnm\.typo/);
    assert.throws(() => toCreateNetwork({ NetworkID: ID, Options: { 'com.docker.network.generic': { k: 'a\nb' } } }, 'p'), /control character/);
    assert.throws(() => toCreateNetwork({ NetworkID: ID, IPv4Data: [{ Gateway: '10.0.0.1/24' }] }, 'p'), /IPv4Data\[0\]\.Pool/);
  });

  it("CreateEndpoint: Docker's address and MAC; only a MAC cnm chose goes back", () => {
    const req = toAttach({ NetworkID: ID, EndpointID: EP, Interface: { Address: '172.30.0.2/16', AddressIPv6: '', MacAddress: '' } });
    assert.deepEqual(req, { networkId: ID, endpointId: EP, owner: 'docker', ipv4Address: '172.30.0.2/16' });
    assert.deepEqual(createEndpointResponse(req, '02:00:00:00:00:01'), { Interface: { MacAddress: '02:00:00:00:00:01' } });
    const given = toAttach({ NetworkID: ID, EndpointID: EP, Interface: { MacAddress: '02:42:00:00:00:02' } });
    assert.deepEqual(createEndpointResponse(given, '02:42:00:00:00:02'), {});
  });

  it('Join: the interface to move and the gateway; no gateway means no docker_gwbridge either, unless the driver asks for a way out', () => {
    assert.deepEqual(joinResponse({ srcName: 'cnmcx', gatewayIpv4: '172.30.0.1' }), {
      InterfaceName: { SrcName: 'cnmcx', DstPrefix: 'eth' },
      Gateway: '172.30.0.1',
    });
    assert.deepEqual(joinResponse({ srcName: 'cnmcx' }), { InterfaceName: { SrcName: 'cnmcx', DstPrefix: 'eth' }, DisableGatewayService: true });
    // A non-internal overlay: no gateway of its own, and Docker's docker_gwbridge gives the way out.
    assert.deepEqual(joinResponse({ srcName: 'cnmcx', requiresDefaultGateway: true }), { InterfaceName: { SrcName: 'cnmcx', DstPrefix: 'eth' } });
  });

  it("ProgramExternalConnectivity: Docker's port bindings (protocol numbers, HostPort 0 = any) as cnm's port requests", () => {
    assert.deepEqual(toExternalConnectivity({ NetworkID: ID, EndpointID: EP, Options: { 'com.docker.network.portmap': [] } }).ports, []);
    assert.deepEqual(toExternalConnectivity({ NetworkID: ID, EndpointID: EP }).ports, []);
    const r = toExternalConnectivity({
      NetworkID: ID,
      EndpointID: EP,
      Options: {
        'com.docker.network.portmap': [
          { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
          { Proto: 17, IP: '', Port: 53, HostIP: '127.0.0.1', HostPort: 0, HostPortEnd: 0 },
          { Proto: 132, IP: '', Port: 9, HostIP: '', HostPort: 9000, HostPortEnd: 9010 },
          { Proto: 6, Port: 81, HostPort: 8081 },
        ],
        'com.docker.network.exposedports': [{ Proto: 6, Port: 80 }],
      },
    });
    assert.deepEqual(r, {
      networkId: ID,
      endpointId: EP,
      ports: [
        { protocol: 'tcp', containerPort: 80, hostIp: '', hostPortStart: 8080, hostPortEnd: 8080 },
        { protocol: 'udp', containerPort: 53, hostIp: '127.0.0.1', hostPortStart: 0, hostPortEnd: 0 },
        { protocol: 'sctp', containerPort: 9, hostIp: '', hostPortStart: 9000, hostPortEnd: 9010 },
        { protocol: 'tcp', containerPort: 81, hostIp: '', hostPortStart: 8081, hostPortEnd: 8081 },
      ],
    });
    assert.throws(() => toExternalConnectivity({ NetworkID: ID, EndpointID: EP, Options: { 'com.docker.network.portmap': [{ Proto: 1, Port: 80 }] } }), /protocol number 1/);
    assert.throws(() => toExternalConnectivity({ NetworkID: ID, EndpointID: EP, Options: { 'com.docker.network.portmap': 'x' } }));
  });
});
