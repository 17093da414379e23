/**
 * Request body shapes (zod) and their translation into controller requests. Shapes, sizes and the
 * text that ends up in files or DNS answers (aliases, resolver settings: see inputRules) are checked
 * here; what the values mean (addresses, options) is the controller's business.
 *
 * Decoding follows Go's encoding/json as the Docker daemon does: unknown fields are ignored, field
 * names match case-insensitively, and `null` means "not set".
 */
import { z } from 'zod';
import type {
  ConnectRequest,
  CreateNetworkRequest,
  CreateSandboxRequest,
  CreateServiceRequest,
  EndpointSettingsRequest,
  IpamConfigRequest,
} from '../controller/types.js';
import { InvalidParameterError } from '../errors.js';
import { aliasError, dnsOptionError, dnsServerError, searchDomainError } from '../util/dns-names.js';
import { toPortRequests } from './port-bindings.js';
import { compareVersions } from './router.js';

/** An object schema whose input keys match the shape's keys case-insensitively (as Go's decoder does). */
export function goStruct<Shape extends z.ZodRawShape>(shape: Shape) {
  const canonical = new Map(Object.keys(shape).map((k) => [k.toLowerCase(), k]));
  return z.preprocess((input) => {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
    const out: Record<string, unknown> = {};
    const entries = Object.entries(input as Record<string, unknown>);
    for (const [key, value] of entries) {
      if (Object.hasOwn(shape, key)) out[key] = value;
    }
    for (const [key, value] of entries) {
      const target = canonical.get(key.toLowerCase());
      if (target && !Object.hasOwn(out, target)) out[target] = value;
    }
    return out;
  }, z.object(shape));
}

/** Longest network, sandbox or service name: they are DNS names on the embedded server. */
export const MAX_NAME = 253;
/** Label and option maps: longest key, longest value, most entries. */
export const MAX_KEY = 255;
export const MAX_VALUE = 4096;
export const MAX_ENTRIES = 256;
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;

const str = z.string().nullish();
const name = z.string().max(MAX_NAME, `at most ${MAX_NAME} characters`).nullish();
const bool = z.boolean().nullish();
/** Go's int on the wire; beyond ±2^53 a JSON number is no longer exact. */
const int = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullish();
export const strMap = z
  .record(z.string(), z.string())
  .superRefine((m, ctx) => {
    const entries = Object.entries(m);
    const fail = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (entries.length > MAX_ENTRIES) return fail(`more than ${MAX_ENTRIES} entries`);
    for (const [k, v] of entries) {
      const shown = JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}...` : k);
      if (k.length === 0) return fail('empty key');
      if (k.length > MAX_KEY) return fail(`key ${shown} longer than ${MAX_KEY} characters`);
      if (!NO_CONTROL.test(k)) return fail(`control character in key ${shown}`);
      if (v.length > MAX_VALUE) return fail(`value of ${shown} longer than ${MAX_VALUE} characters`);
      if (!NO_CONTROL.test(v)) return fail(`control character in value of ${shown}`);
    }
  })
  .nullish();
const strList = z.array(z.string()).nullish();

/** A list whose every element passes `check` (an error text or undefined). */
function checkedList(check: (v: string) => string | undefined, what: string) {
  return z
    .array(
      z.string().superRefine((v, ctx) => {
        const err = check(v);
        if (err) ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(v)} ${err}` });
      }),
    )
    .max(MAX_ENTRIES, `more than ${MAX_ENTRIES} entries`)
    .nullish();
}
const aliasList = checkedList(aliasError, 'alias');

const ipamConfigSchema = goStruct({
  Subnet: str,
  IPRange: str,
  Gateway: str,
  AuxiliaryAddresses: strMap,
});

const networkCreateSchema = goStruct({
  Name: name,
  Driver: str,
  Scope: str,
  EnableIPv4: bool,
  EnableIPv6: bool,
  IPAM: goStruct({ Driver: str, Options: strMap, Config: z.array(ipamConfigSchema).nullish() }).nullish(),
  Internal: bool,
  Attachable: bool,
  Ingress: bool,
  ConfigOnly: bool,
  ConfigFrom: goStruct({ Network: str }).nullish(),
  Options: strMap,
  Labels: strMap,
});

const endpointConfigSchema = goStruct({
  IPAMConfig: goStruct({ IPv4Address: str, IPv6Address: str, LinkLocalIPs: strList }).nullish(),
  Links: strList,
  Aliases: aliasList,
  MacAddress: str,
  DriverOpts: strMap,
  GwPriority: int,
  /** cnm extension: services on this network the endpoint becomes a backend of. */
  CnmServices: strList,
});

const connectSchema = goStruct({ Container: str, EndpointConfig: endpointConfigSchema.nullish() });
const disconnectSchema = goStruct({ Container: str, Force: bool });

const sandboxNetworkSchema = goStruct({
  Network: z.string(),
  IPv4Address: str,
  IPv6Address: str,
  Aliases: aliasList,
  MacAddress: str,
  DriverOpts: strMap,
  GwPriority: int,
  Services: strList,
});

const sandboxCreateSchema = goStruct({
  Name: name,
  Hostname: str,
  Networks: z.array(sandboxNetworkSchema).nullish(),
  NetnsPath: str,
  NetnsFollow: bool,
  Labels: strMap,
  // Written into the sandbox's resolv.conf: a newline or a space would add lines or words there.
  Dns: checkedList(dnsServerError, 'DNS server'),
  DnsSearch: checkedList(searchDomainError, 'DNS search domain'),
  DnsOptions: checkedList(dnsOptionError, 'DNS option'),
  // HostConfig.PortBindings' shape: "80/tcp" → [{HostIp, HostPort}].
  PortBindings: z.record(z.string(), z.array(goStruct({ HostIp: str, HostPort: str })).nullish()).nullish(),
});

/** Parse `body` with `schema`; 400 naming the first offending field. An empty body is `{}`. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body === undefined ? {} : body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = formatPath(issue.path);
  throw new InvalidParameterError(
    field ? `invalid JSON: field ${field}: ${issue.message}` : `invalid JSON: ${issue.message}`,
  );
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  }
  return out;
}

/** Drop keys whose value is undefined so requests carry only what the client set. */
function defined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

const SCOPES = ['local', 'global', 'swarm'] as const;

export function toCreateNetworkRequest(body: unknown, apiVersion: string): CreateNetworkRequest {
  const b = parseBody(networkCreateSchema, body);
  const scope = b.Scope || undefined;
  if (scope !== undefined && !(SCOPES as readonly string[]).includes(scope)) {
    throw new InvalidParameterError(`invalid scope "${scope}": must be one of local, global, swarm`);
  }
  return defined({
    name: b.Name ?? '',
    driver: b.Driver || undefined,
    scope: scope as CreateNetworkRequest['scope'],
    internal: b.Internal ?? false,
    attachable: b.Attachable ?? false,
    ingress: b.Ingress ?? false,
    configOnly: b.ConfigOnly ?? false,
    configFrom: b.ConfigFrom?.Network || undefined,
    // EnableIPv4 was introduced in API 1.48; older clients cannot mean anything by it.
    enableIPv4: compareVersions(apiVersion, '1.48') < 0 ? undefined : (b.EnableIPv4 ?? undefined),
    enableIPv6: b.EnableIPv6 ?? undefined,
    ipam: b.IPAM
      ? defined({
          driver: b.IPAM.Driver || undefined,
          configs: b.IPAM.Config?.map((c) =>
            defined<IpamConfigRequest>({
              subnet: c.Subnet || undefined,
              ipRange: c.IPRange || undefined,
              gateway: c.Gateway || undefined,
              auxAddresses: c.AuxiliaryAddresses ?? undefined,
            }),
          ),
          options: b.IPAM.Options ?? undefined,
        })
      : undefined,
    options: b.Options ?? undefined,
    labels: b.Labels ?? undefined,
  });
}

export function toConnectRequest(networkRef: string, body: unknown): ConnectRequest {
  const b = parseBody(connectSchema, body);
  if (!b.Container) throw new InvalidParameterError('invalid JSON: field Container: a container name or ID is required');
  const ep = b.EndpointConfig;
  return {
    network: networkRef,
    sandbox: b.Container,
    ...endpointSettings({
      ipv4: ep?.IPAMConfig?.IPv4Address,
      ipv6: ep?.IPAMConfig?.IPv6Address,
      aliases: ep?.Aliases,
      mac: ep?.MacAddress,
      driverOpts: ep?.DriverOpts,
      gwPriority: ep?.GwPriority,
      services: ep?.CnmServices,
    }),
  };
}

export function toDisconnectRequest(body: unknown): { sandbox: string; force: boolean } {
  const b = parseBody(disconnectSchema, body);
  if (!b.Container) throw new InvalidParameterError('invalid JSON: field Container: a container name or ID is required');
  return { sandbox: b.Container, force: b.Force ?? false };
}

const serviceCreateSchema = goStruct({
  Name: name,
  Network: str,
  Mode: str,
  Ports: strList,
  VipSubnet: str,
  Labels: strMap,
});

export function toCreateServiceRequest(body: unknown): CreateServiceRequest {
  const b = parseBody(serviceCreateSchema, body);
  if (!b.Name) throw new InvalidParameterError('invalid JSON: field Name: a service name is required');
  if (!b.Network) throw new InvalidParameterError('invalid JSON: field Network: a network name or ID is required');
  if (b.Mode && b.Mode !== 'vip' && b.Mode !== 'dnsrr') throw new InvalidParameterError(`invalid JSON: field Mode: vip or dnsrr, not ${JSON.stringify(b.Mode)}`);
  return defined({
    name: b.Name,
    network: b.Network,
    mode: (b.Mode || undefined) as CreateServiceRequest['mode'],
    ports: b.Ports ?? undefined,
    vipSubnet: b.VipSubnet || undefined,
    labels: b.Labels ?? undefined,
  });
}

export function toCreateSandboxRequest(body: unknown): CreateSandboxRequest {
  const b = parseBody(sandboxCreateSchema, body);
  return defined({
    name: b.Name || undefined,
    hostname: b.Hostname || undefined,
    networks: b.Networks?.map((n) => ({
      network: n.Network,
      ...endpointSettings({
        ipv4: n.IPv4Address,
        ipv6: n.IPv6Address,
        aliases: n.Aliases,
        mac: n.MacAddress,
        driverOpts: n.DriverOpts,
        gwPriority: n.GwPriority,
        services: n.Services,
      }),
    })),
    netnsPath: b.NetnsPath || undefined,
    netnsFollow: b.NetnsFollow || undefined,
    labels: b.Labels ?? undefined,
    dns: b.Dns ?? undefined,
    dnsSearch: b.DnsSearch ?? undefined,
    dnsOptions: b.DnsOptions ?? undefined,
    ports: toPortRequests(b.PortBindings),
  });
}

function endpointSettings(raw: {
  ipv4: string | null | undefined;
  ipv6: string | null | undefined;
  aliases: string[] | null | undefined;
  mac: string | null | undefined;
  driverOpts: Record<string, string> | null | undefined;
  gwPriority: number | null | undefined;
  services: string[] | null | undefined;
}): EndpointSettingsRequest {
  return defined({
    ipv4Address: raw.ipv4 || undefined,
    ipv6Address: raw.ipv6 || undefined,
    aliases: raw.aliases && raw.aliases.length > 0 ? raw.aliases : undefined,
    macAddress: raw.mac || undefined,
    driverOpts: raw.driverOpts && Object.keys(raw.driverOpts).length > 0 ? raw.driverOpts : undefined,
    gwPriority: raw.gwPriority ?? undefined,
    services: raw.services && raw.services.length > 0 ? raw.services : undefined,
  });
}
