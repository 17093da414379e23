/** The bridge driver's option schemas: Docker's exact keys (REFERENCE.md), typed. */
import { isIP } from 'node:net';
import { InvalidParameterError } from '../../errors.js';
import {
  enumOption,
  ifNameOption,
  ifPrefixOption,
  intOption,
  ipOption,
  parseBoolOption,
  parseOptions,
  type OptionSchema,
} from '../option-schema.js';

export const BRIDGE = 'com.docker.network.bridge.';

export type GatewayMode = 'nat' | 'nat-unprotected' | 'routed' | 'isolated';

export interface BridgeNetworkOptions {
  /** Bridge interface name; default cnm-<first 11 hex of the network ID>. */
  bridgeName?: string;
  enableIpMasquerade: boolean;
  enableIcc: boolean;
  gatewayModeIpv4: GatewayMode;
  gatewayModeIpv6: GatewayMode;
  /** Do not put the IPv4 gateway address on the bridge (it lives elsewhere). */
  inhibitIpv4: boolean;
  /** Default host address of the network's published ports (IPv4; absent = 0.0.0.0, every address). */
  hostBindingIpv4?: string;
  /** Only its default is accepted (see notYetWithoutPorts); declared so the key is recognised and checked. */
  trustedHostInterfaces?: undefined;
  mtu?: number;
  /** Interface name prefix inside sandboxes (eth → eth0, eth1, ...). */
  containerIfacePrefix: string;
  /** SNAT source for outbound traffic instead of masquerading. */
  hostIpv4?: string;
  /** Marks the predefined "bridge" network. */
  defaultBridge: boolean;
}


const gatewayMode = enumOption<GatewayMode>(['nat', 'nat-unprotected', 'routed', 'isolated']);

const networkSchema: OptionSchema<BridgeNetworkOptions> = {
  bridgeName: { key: `${BRIDGE}name`, parse: ifNameOption },
  enableIpMasquerade: { key: `${BRIDGE}enable_ip_masquerade`, parse: parseBoolOption },
  enableIcc: { key: `${BRIDGE}enable_icc`, parse: parseBoolOption },
  // 0.0.0.0 is Docker's default (every host address), what the predefined "bridge" network shows.
  hostBindingIpv4: { key: `${BRIDGE}host_binding_ipv4`, parse: hostBindingOption },
  gatewayModeIpv4: { key: `${BRIDGE}gateway_mode_ipv4`, parse: gatewayMode },
  gatewayModeIpv6: { key: `${BRIDGE}gateway_mode_ipv6`, parse: gatewayMode },
  inhibitIpv4: { key: `${BRIDGE}inhibit_ipv4`, parse: parseBoolOption },
  trustedHostInterfaces: {
    key: `${BRIDGE}trusted_host_interfaces`,
    parse: (v, k) => (v.split(':').filter(Boolean).map((name) => ifNameOption(name, k)).length === 0 ? undefined : notYetWithoutPorts(k)),
  },
  // Docker's default "0" means "not set" (the kernel's default).
  mtu: { key: 'com.docker.network.driver.mtu', parse: (v, k) => (v === '0' ? undefined : intOption(68, 65535)(v, k)) },
  containerIfacePrefix: { key: 'com.docker.network.container_iface_prefix', parse: ifPrefixOption },
  hostIpv4: { key: 'com.docker.network.host_ipv4', parse: ipOption },
  defaultBridge: { key: `${BRIDGE}default_bridge`, parse: parseBoolOption },
};

/** host_binding_ipv4: an IPv4 address (IPv6 published ports are not there yet); 0.0.0.0 is the default. */
function hostBindingOption(value: string, key: string): string | undefined {
  const ip = ipOption(value, key);
  if (isIP(ip) !== 4) {
    throw new InvalidParameterError(`option ${key}: ${ip} is an IPv6 address; cnm publishes ports on IPv4 only so far`);
  }
  return ip === '0.0.0.0' ? undefined : ip;
}

/**
 * trusted_host_interfaces (interfaces allowed to reach published ports directly on container addresses)
 * is not implemented: a value other than the default (no interfaces) is refused, after it is checked,
 * rather than accepted and ignored.
 */
function notYetWithoutPorts(key: string): never {
  throw new InvalidParameterError(`option ${key} is not supported by cnm yet`);
}

export function parseBridgeNetworkOptions(raw: Record<string, string>): BridgeNetworkOptions {
  const o = parseOptions(networkSchema, raw, { strictPrefixes: [BRIDGE] });
  return {
    ...o,
    enableIpMasquerade: o.enableIpMasquerade ?? true,
    enableIcc: o.enableIcc ?? true,
    gatewayModeIpv4: o.gatewayModeIpv4 ?? 'nat',
    gatewayModeIpv6: o.gatewayModeIpv6 ?? 'nat',
    inhibitIpv4: o.inhibitIpv4 ?? false,
    containerIfacePrefix: o.containerIfacePrefix ?? 'eth',
    defaultBridge: o.defaultBridge ?? false,
  };
}

// Endpoint options are the same for every driver that plugs a veth into a sandbox.
export { parseEndpointOptions as parseBridgeEndpointOptions, type EndpointOptions as BridgeEndpointOptions } from '../endpoint-options.js';
