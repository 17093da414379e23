/**
 * `network create`'s IPAM flags grouped into IPAM configs exactly as the docker CLI does
 * (cli/command/network/create.go createIPAMConfig): each --ip-range, --gateway and --aux-address
 * goes to the --subnet that contains it; overlapping subnets and two ranges or gateways for one
 * subnet are refused.
 */
import { isIP } from 'node:net';
import { splitCidr, subnetContains } from '../api/addresses.js';

/** A client-side validation failure, printed as is (exit 1), as the docker CLI does. */
export class CliError extends Error {}

export interface IpamFlags {
  driver: string;
  subnets: string[];
  ipRanges: string[];
  gateways: string[];
  auxAddresses: Record<string, string>;
  options: Record<string, string>;
}

export interface DockerIpam {
  Driver: string;
  Config: Array<{ Subnet: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }>;
  Options: Record<string, string>;
}

function checkCidr(value: string, flag: string): void {
  const { address, prefixLen } = splitCidr(value);
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  if (!value.includes('/') || family === 0 || !(prefixLen >= 0 && prefixLen <= max)) {
    throw new CliError(`invalid argument "${value}" for "${flag}" flag: invalid CIDR address: ${value}`);
  }
}

export function buildIpamConfig(flags: IpamFlags): DockerIpam {
  if (flags.subnets.length < flags.ipRanges.length || flags.subnets.length < flags.gateways.length) {
    throw new CliError('every ip-range or gateway must have a corresponding subnet');
  }
  for (const s of flags.subnets) checkCidr(s, '--subnet');
  for (const r of flags.ipRanges) checkCidr(r, '--ip-range');
  for (const g of flags.gateways) {
    if (isIP(g) === 0) throw new CliError(`invalid argument "${g}" for "--gateway" flag: invalid string being converted to IP address: ${g}`);
  }

  const configs: DockerIpam['Config'] = [];
  for (const s of flags.subnets) {
    for (const existing of configs) {
      if (subnetContains(s, splitCidr(existing.Subnet).address) || subnetContains(existing.Subnet, splitCidr(s).address)) {
        throw new CliError('multiple overlapping subnet configuration is not supported');
      }
    }
    configs.push({ Subnet: s });
  }
  const containing = (address: string) => configs.filter((c) => subnetContains(c.Subnet, address));

  for (const r of flags.ipRanges) {
    const matches = containing(splitCidr(r).address);
    if (matches.length === 0) throw new CliError(`no matching subnet for range ${r}`);
    for (const c of matches) {
      if (c.IPRange) throw new CliError(`cannot configure multiple ranges (${r}, ${c.IPRange}) on the same subnet (${c.Subnet})`);
      c.IPRange = r;
    }
  }
  for (const g of flags.gateways) {
    const matches = containing(g);
    if (matches.length === 0) throw new CliError(`no matching subnet for gateway ${g}`);
    for (const c of matches) {
      if (c.Gateway) throw new CliError(`cannot configure multiple gateways (${g}, ${c.Gateway}) for the same subnet (${c.Subnet})`);
      c.Gateway = g;
    }
  }
  for (const [name, address] of Object.entries(flags.auxAddresses)) {
    if (address === '') continue;
    if (isIP(address) === 0) throw new CliError(`ParseAddr("${address}"): unable to parse IP`);
    const matches = containing(address);
    if (matches.length === 0) throw new CliError(`no matching subnet for aux-address ${address}`);
    for (const c of matches) c.AuxiliaryAddresses = { ...c.AuxiliaryAddresses, [name]: address };
  }
  return { Driver: flags.driver, Config: configs, Options: flags.options };
}
