/**
 * Endpoint options (a network connect's DriverOpts) of the drivers that plug a veth into a sandbox: Docker's
 * `com.docker.network.endpoint.*` keys, which libnetwork gives every driver alike.
 */
import { InvalidParameterError } from '../errors.js';
import { macOption, parseOptions, sandboxIfNameOption, stringListOption, type OptionSchema } from './option-schema.js';

export interface EndpointOptions {
  ifName?: string;
  macAddress?: string;
  /** "net.ipv4.conf.IFNAME.x=1" entries; IFNAME is replaced by the interface's name, as Docker does. */
  sysctls: Array<{ key: string; value: string }>;
}

const ENDPOINT = 'com.docker.network.endpoint.';

const endpointSchema: OptionSchema<EndpointOptions> = {
  ifName: { key: `${ENDPOINT}ifname`, parse: sandboxIfNameOption },
  macAddress: { key: `${ENDPOINT}macaddress`, parse: macOption },
  sysctls: { key: `${ENDPOINT}sysctls`, parse: parseEndpointSysctls },
};

export function parseEndpointOptions(raw: Record<string, string>): EndpointOptions {
  const o = parseOptions(endpointSchema, raw, { strictPrefixes: [ENDPOINT] });
  return { ...o, sysctls: o.sysctls ?? [] };
}

/** Docker only allows per-interface sysctls here: net.ipv4.conf.IFNAME.*, net.ipv6.conf.IFNAME.*, net.mpls.conf.IFNAME.*. */
function parseEndpointSysctls(value: string, key: string): Array<{ key: string; value: string }> {
  return stringListOption(value, key).map((entry) => {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new InvalidParameterError(`invalid sysctl ${JSON.stringify(entry)} in ${key}: expected name=value`);
    const name = entry.slice(0, eq).trim();
    const val = entry.slice(eq + 1).trim();
    if (!/^net\.(ipv4|ipv6|mpls)\.conf\.IFNAME\.[A-Za-z0-9_]+$/.test(name)) {
      throw new InvalidParameterError(
        `invalid sysctl ${JSON.stringify(name)} in ${key}: only net.ipv4.conf.IFNAME.*, net.ipv6.conf.IFNAME.* and net.mpls.conf.IFNAME.* are allowed`,
      );
    }
    if (!/^[A-Za-z0-9_.\-]+$/.test(val)) throw new InvalidParameterError(`invalid sysctl value ${JSON.stringify(val)} in ${key}`);
    return { key: name, value: val };
  });
}
