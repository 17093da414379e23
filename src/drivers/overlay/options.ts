/**
 * The overlay driver's network options. Docker's overlay driver reads three keys of a network's
 * DriverOpts and ignores every other one:
 * - `com.docker.network.driver.overlay.vxlanid_list`: the VNIs, a comma list (one per IPv4 subnet in
 *   Docker; cnm uses ONE VNI per network, all its subnets on one segment, so a second value is a 400);
 * - `com.docker.network.driver.mtu`: the MTU of the network's interfaces;
 * - `encrypted` (present with any value): IPsec between hosts. cnm does not encrypt: the key is refused
 *   (400) rather than ignored, so nobody believes traffic encrypted that is not.
 * cnm adds `cnm.overlay.tx_checksum_offload` (Go booleans): false turns transmit checksum offload off on
 * the network's VXLAN devices, the workaround for the kernel stall flannel, Calico and Docker users met
 * with VXLAN and offloaded checksums; absent, the kernel's default (on) is kept.
 * `com.docker.network.container_iface_prefix` (libnetwork's, for every driver) names sandbox interfaces.
 * Unknown keys under `com.docker.network.driver.overlay.` and `cnm.overlay.` are refused (typos); other
 * keys are ignored, as Docker does.
 */
import { InvalidParameterError } from '../../errors.js';
import { ifPrefixOption, intOption, parseBoolOption, parseOptions, type OptionSchema } from '../option-schema.js';

export const OVERLAY_OPTION_PREFIX = 'com.docker.network.driver.overlay.';
export const VXLANID_LIST_OPTION = `${OVERLAY_OPTION_PREFIX}vxlanid_list`;
export const TX_CHECKSUM_OPTION = 'cnm.overlay.tx_checksum_offload';
export const ENCRYPTED_OPTION = 'encrypted';
/**
 * VNIs cnm gives overlay networks: from 4096 (Docker's lowest automatic one: below it VNIs overlap the
 * 802.1Q VLAN IDs Windows hosts cannot tell apart) to 2^24 − 1, the largest VXLAN has (RFC 7348).
 */
export const VNI_MIN = 4096;
export const VNI_MAX = 0xffffff;

export interface OverlayNetworkOptions {
  /** The network's VXLAN network identifier; the controller allocates one when the user gives none. */
  vni?: number;
  /** Undefined: the underlay's MTU less the VXLAN overhead (see mtu.ts). */
  mtu?: number;
  /** Undefined: the kernel's default (on). */
  txChecksumOffload?: boolean;
  containerIfacePrefix: string;
}

/**
 * Docker's parse of the list (split on ",", each an integer, else `invalid vxlan id value "x" passed`),
 * then cnm's rules: exactly one value, within [VNI_MIN, VNI_MAX].
 */
export function parseVxlanIdList(value: string, key: string = VXLANID_LIST_OPTION): number {
  const items = value.split(',');
  const vnis = items.map((item) => {
    if (!/^\d{1,10}$/.test(item)) throw new InvalidParameterError(`invalid vxlan id value ${JSON.stringify(item)} passed`);
    return Number(item);
  });
  if (vnis.length > 1) {
    throw new InvalidParameterError(`invalid value ${JSON.stringify(value)} for option ${key}: cnm gives an overlay network one vxlan id, ${vnis.length} were passed`);
  }
  const vni = vnis[0]!;
  if (vni < VNI_MIN || vni > VNI_MAX) {
    throw new InvalidParameterError(`vxlan id ${vni} is out of range: option ${key} takes one value from ${VNI_MIN} to ${VNI_MAX}`);
  }
  return vni;
}

const schema: OptionSchema<OverlayNetworkOptions & { encrypted: never }> = {
  vni: { key: VXLANID_LIST_OPTION, parse: parseVxlanIdList },
  // Docker's default "0" means "not set", as on the bridge driver.
  mtu: { key: 'com.docker.network.driver.mtu', parse: (v, k) => (v === '0' ? undefined : intOption(68, 65535)(v, k)) },
  txChecksumOffload: { key: TX_CHECKSUM_OPTION, parse: parseBoolOption },
  containerIfacePrefix: { key: 'com.docker.network.container_iface_prefix', parse: ifPrefixOption },
  encrypted: {
    key: ENCRYPTED_OPTION,
    parse: () => {
      throw new InvalidParameterError('option encrypted: cnm does not encrypt overlay traffic (no IPsec between hosts); create the network without it');
    },
  },
};

export function parseOverlayNetworkOptions(raw: Record<string, string>): OverlayNetworkOptions {
  const { encrypted: _encrypted, ...o } = parseOptions(schema, raw, { strictPrefixes: [OVERLAY_OPTION_PREFIX, 'cnm.overlay.'] });
  return { ...o, containerIfacePrefix: o.containerIfacePrefix ?? 'eth' };
}
