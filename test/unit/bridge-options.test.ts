import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseBridgeEndpointOptions, parseBridgeNetworkOptions } from '../../src/drivers/bridge/options.js';
import { httpStatusOf } from '../../src/errors.js';

function status400(fn: () => unknown, match: RegExp): void {
  assert.throws(fn, (err: unknown) => httpStatusOf(err) === 400 && match.test((err as Error).message));
}

describe('bridge network options', () => {
  it('applies Docker defaults', () => {
    const o = parseBridgeNetworkOptions({});
    assert.equal(o.enableIcc, true);
    assert.equal(o.enableIpMasquerade, true);
    assert.equal(o.gatewayModeIpv4, 'nat');
    assert.equal(o.containerIfacePrefix, 'eth');
    assert.equal(o.bridgeName, undefined);
    assert.equal(o.mtu, undefined);
  });

  it('parses every documented key', () => {
    const o = parseBridgeNetworkOptions({
      'com.docker.network.bridge.name': 'br-test',
      'com.docker.network.bridge.enable_ip_masquerade': 'false',
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.gateway_mode_ipv4': 'routed',
      'com.docker.network.bridge.gateway_mode_ipv6': 'nat-unprotected',
      'com.docker.network.bridge.inhibit_ipv4': 'true',
      'com.docker.network.driver.mtu': '1450',
      'com.docker.network.container_iface_prefix': 'net',
      'com.docker.network.host_ipv4': '192.0.2.10',
      'unrelated.key': 'ignored',
    });
    assert.deepEqual(
      [o.bridgeName, o.enableIpMasquerade, o.enableIcc, o.gatewayModeIpv4, o.gatewayModeIpv6],
      ['br-test', false, false, 'routed', 'nat-unprotected'],
    );
    assert.deepEqual([o.inhibitIpv4, o.mtu, o.containerIfacePrefix, o.hostIpv4], [
      true,
      1450,
      'net',
      '192.0.2.10',
    ]);
  });

  it('rejects bad values and unknown bridge keys with 400', () => {
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.bridge.enable_icc': 'sometimes' }), /boolean/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.driver.mtu': '67' }), /between 68 and 65535/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.driver.mtu': '1e3' }), /integer/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.bridge.name': 'a-name-far-too-long' }), /interface name/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.bridge.gateway_mode_ipv4': 'magic' }), /one of/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.bridge.enable_ipmasq': 'true' }), /unknown option/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.host_ipv4': '300.1.1.1' }), /IP address/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.driver.mtu': '99999999999999999999' }), /integer/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.driver.mtu': ' 1500' }), /integer/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.container_iface_prefix': 'eth.' }), /prefix/);
  });

  it("parses booleans exactly as Go's strconv.ParseBool", () => {
    const icc = (v: string) => parseBridgeNetworkOptions({ 'com.docker.network.bridge.enable_icc': v }).enableIcc;
    for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(icc(v), true, v);
    for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(icc(v), false, v);
    for (const v of ['true\n', ' true', 'yes', 'no', 'tRUE', 'on', '']) status400(() => icc(v), /boolean/);
  });

  it('takes MTU 0 as "not set", as Docker does', () => {
    assert.equal(parseBridgeNetworkOptions({ 'com.docker.network.driver.mtu': '0' }).mtu, undefined);
  });

  it('host_binding_ipv4 is an IPv4 address (0.0.0.0 = the default); trusted_host_interfaces is refused after checking', () => {
    // The defaults (as the predefined "bridge" network carries them).
    assert.equal(parseBridgeNetworkOptions({ 'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0' }).hostBindingIpv4, undefined);
    assert.equal(parseBridgeNetworkOptions({ 'com.docker.network.bridge.trusted_host_interfaces': '' }).trustedHostInterfaces, undefined);
    assert.equal(parseBridgeNetworkOptions({ 'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1' }).hostBindingIpv4, '127.0.0.1');
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.bridge.host_binding_ipv4': '::1' }), /IPv6 address; cnm publishes ports on IPv4 only/);
    status400(() => parseBridgeNetworkOptions({ 'com.docker.network.bridge.host_binding_ipv4': 'nope' }), /invalid IP address/);
    status400(
      () => parseBridgeNetworkOptions({ 'com.docker.network.bridge.trusted_host_interfaces': 'eth1:eth2' }),
      /trusted_host_interfaces is not supported by cnm yet/,
    );
    status400(
      () => parseBridgeNetworkOptions({ 'com.docker.network.bridge.trusted_host_interfaces': 'eth1:bad/name' }),
      /invalid interface name/,
    );
  });
});

describe('bridge endpoint options', () => {
  it('parses ifname, mac and per-interface sysctls', () => {
    const o = parseBridgeEndpointOptions({
      'com.docker.network.endpoint.ifname': 'data0',
      'com.docker.network.endpoint.macaddress': '02:42:AC:11:00:02',
      'com.docker.network.endpoint.sysctls': 'net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.IFNAME.accept_ra=0',
    });
    assert.equal(o.ifName, 'data0');
    assert.equal(o.macAddress, '02:42:ac:11:00:02');
    assert.deepEqual(o.sysctls, [
      { key: 'net.ipv4.conf.IFNAME.log_martians', value: '1' },
      { key: 'net.ipv6.conf.IFNAME.accept_ra', value: '0' },
    ]);
  });

  it('rejects global sysctls, multicast MACs and bad names', () => {
    status400(() => parseBridgeEndpointOptions({ 'com.docker.network.endpoint.sysctls': 'net.ipv4.ip_forward=1' }), /only/);
    status400(() => parseBridgeEndpointOptions({ 'com.docker.network.endpoint.macaddress': '01:00:5e:00:00:01' }), /multicast/);
    status400(() => parseBridgeEndpointOptions({ 'com.docker.network.endpoint.ifname': 'bad/name' }), /interface name/);
    for (const bad of ['eth0.5', 'a b', 'x:y', 'sixteen-chars-xx', '', 'tab\tx', 'nl\n']) {
      status400(() => parseBridgeEndpointOptions({ 'com.docker.network.endpoint.ifname': bad }), /interface name/);
    }
    status400(() => parseBridgeEndpointOptions({ 'com.docker.network.endpoint.ifname': 'eth0.5' }), /cannot contain '\.'/);
  });
});
