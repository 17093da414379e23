/**
 * cnm as a CNI plugin: a thin client of the daemon's API, a third front door onto the same controller.
 * Each attachment (network name, container ID, ifname) is a cnm sandbox that follows the runtime's
 * namespace (POST /cnm/v1/sandboxes with NetnsPath + NetnsFollow: adopted without a pin, released when
 * the namespace dies) with one endpoint named CNI_IFNAME on the configured cnm network.
 */
import { ApiClient, ConnectionError, DaemonError, DEFAULT_SOCKET } from '../cli/client.js';
import {
  buildResult, CniError, CODE, type CniEnv, type EndpointView, errorDocument, LABEL, type NetConf,
  parseConf, parseEnv, prevResultProblems, sandboxName, SUPPORTED_VERSIONS,
} from './spec.js';

/** The part of ApiClient the plugin uses (tests give a fake). */
export interface Api {
  request(method: string, path: string, opts?: { query?: Record<string, string | undefined>; body?: unknown }): Promise<{ status: number; body: unknown }>;
}

export interface PluginOutput {
  stdout: string;
  exitCode: number;
}

interface SandboxView {
  Id: string;
  Name: string;
  Labels: Record<string, string>;
  NetnsPath: string;
  NetnsFollow?: boolean;
  Networks: Record<string, EndpointView & { NetworkID: string }>;
}

interface NetworkView {
  Id: string;
  Name: string;
  Options?: Record<string, string>;
}

const IFNAME_OPTION = 'com.docker.network.endpoint.ifname';

/** Run one plugin invocation: environment + stdin in, stdout + exit code out (errors as the spec's JSON). */
export async function runPlugin(env: NodeJS.ProcessEnv, stdin: string, connect: (socket: string) => Api = (s) => new ApiClient(s)): Promise<PluginOutput> {
  let version = '1.1.0';
  try {
    const cni = parseEnv(env);
    if (cni.command === 'VERSION') {
      const requested = stdin.trim() === '' ? undefined : parseConf(stdin, 'VERSION').cniVersion;
      return ok(JSON.stringify({ cniVersion: requested ?? '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] }));
    }
    const conf = parseConf(stdin, cni.command);
    version = conf.cniVersion;
    const api = connect(conf.socket ?? DEFAULT_SOCKET);
    switch (cni.command) {
      case 'ADD':
        return ok(JSON.stringify(await add(api, cni, conf)));
      case 'DEL':
        await del(api, cni, conf);
        return ok('');
      case 'CHECK':
        await check(api, cni, conf);
        return ok('');
      case 'STATUS':
        await status(api, conf);
        return ok('');
      case 'GC':
        await gc(api, conf);
        return ok('');
    }
  } catch (err) {
    return { stdout: errorDocument(version, asCniError(err)), exitCode: 1 };
  }
}

function ok(stdout: string): PluginOutput {
  return { stdout, exitCode: 0 };
}

/** Daemon unreachable or busy (503): try again later (11); any other refusal carries the daemon's message. */
function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof ConnectionError) return new CniError(CODE.tryAgainLater, 'the cnm daemon is unreachable; try again later', err.message);
  if (err instanceof DaemonError) {
    if (err.status === 503) return new CniError(CODE.tryAgainLater, err.message, 'HTTP 503 from the cnm daemon');
    return new CniError(CODE.daemonRefused, err.message, `HTTP ${err.status} from the cnm daemon`);
  }
  return new CniError(CODE.ioFailure, err instanceof Error ? err.message : String(err));
}

async function add(api: Api, cni: CniEnv, conf: NetConf): Promise<object> {
  const network = await networkOf(api, conf, CODE.invalidConfig);
  const name = sandboxName(cni.containerId, cni.ifname);
  const dns = conf.dns ?? {};
  const created = (
    await api.request('POST', '/cnm/v1/sandboxes', {
      body: {
        Name: name,
        NetnsPath: cni.netns,
        NetnsFollow: true,
        Networks: [{ Network: network.Id, DriverOpts: { [IFNAME_OPTION]: cni.ifname } }],
        Labels: { [LABEL.network]: conf.name, [LABEL.containerId]: cni.containerId, [LABEL.ifname]: cni.ifname },
        Dns: dns.nameservers ?? [],
        DnsSearch: dns.search ?? (dns.domain ? [dns.domain] : []),
        DnsOptions: dns.options ?? [],
      },
    })
  ).body as SandboxView;
  const ep = endpointOf(created, network.Id);
  if (!ep) throw new CniError(CODE.ioFailure, `sandbox ${name} was created without an endpoint on ${network.Name}`);
  const mtu = Number(network.Options?.['com.docker.network.driver.mtu'] ?? 0) || undefined;
  return buildResult(conf.cniVersion, ep, cni.netns!, conf.dns, conf.prevResult, mtu);
}

/**
 * Idempotent: no daemon record of the attachment (ADD never happened or failed, DEL repeated, the network
 * is unknown), or a record of another CNI network or container, is success. The daemon releases it without
 * touching the namespace when that is already gone.
 */
async function del(api: Api, cni: CniEnv, conf: NetConf): Promise<void> {
  const sb = await attachmentOf(api, cni, conf);
  if (!sb) return;
  await api.request('DELETE', `/cnm/v1/sandboxes/${encodeURIComponent(sb.Id)}`, { query: { force: '1' } }).catch((err) => {
    if (err instanceof DaemonError && err.status === 404) return undefined;
    throw err;
  });
}

async function check(api: Api, cni: CniEnv, conf: NetConf): Promise<void> {
  if (!conf.prevResult) throw new CniError(CODE.invalidConfig, 'CHECK needs the prevResult of the ADD');
  const network = await networkOf(api, conf, CODE.invalidConfig);
  const sb = await attachmentOf(api, cni, conf);
  if (!sb) throw new CniError(CODE.unknownContainer, `cnm has no attachment of container ${cni.containerId} (${cni.ifname}) on ${conf.name}`);
  if (sb.NetnsPath !== cni.netns) throw new CniError(CODE.daemonRefused, `the attachment is in ${sb.NetnsPath}, not ${cni.netns}`);
  const ep = endpointOf(sb, network.Id);
  if (!ep) throw new CniError(CODE.daemonRefused, `sandbox ${sb.Name} has no endpoint on network ${network.Name}`);
  const problems = prevResultProblems(conf.prevResult, ep, cni.netns!);
  const kernel = (await api.request('GET', `/cnm/v1/sandboxes/${encodeURIComponent(sb.Id)}/check`)).body as { Problems: string[] };
  problems.push(...kernel.Problems);
  if (problems.length > 0) throw new CniError(CODE.daemonRefused, problems[0]!, problems.join('; '));
}

/** Ready when the daemon answers and has the network (50: plugin not available). */
async function status(api: Api, conf: NetConf): Promise<void> {
  try {
    await api.request('GET', '/_ping');
  } catch (err) {
    throw new CniError(CODE.pluginNotAvailable, 'the cnm daemon is not available', asCniError(err).details ?? (err as Error).message);
  }
  await networkOf(api, conf, CODE.pluginNotAvailable);
}

/** Every attachment of this CNI network the runtime does not list is removed; errors are reported after trying all. */
async function gc(api: Api, conf: NetConf): Promise<void> {
  const valid = new Set((conf.validAttachments ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
  const all = (await api.request('GET', '/cnm/v1/sandboxes')).body as SandboxView[];
  const failures: string[] = [];
  for (const sb of all) {
    if (sb.Labels[LABEL.network] !== conf.name || !sb.NetnsFollow) continue;
    if (valid.has(`${sb.Labels[LABEL.containerId]}\0${sb.Labels[LABEL.ifname]}`)) continue;
    await api.request('DELETE', `/cnm/v1/sandboxes/${encodeURIComponent(sb.Id)}`, { query: { force: '1' } }).catch((err) => {
      if (!(err instanceof DaemonError && err.status === 404)) failures.push(`${sb.Name}: ${(err as Error).message}`);
    });
  }
  if (failures.length > 0) throw new CniError(CODE.daemonRefused, `GC could not remove ${failures.length} attachment(s)`, failures.join('; '));
}

async function networkOf(api: Api, conf: NetConf, missingCode: number): Promise<NetworkView> {
  try {
    return (await api.request('GET', `/networks/${encodeURIComponent(conf.network)}`)).body as NetworkView;
  } catch (err) {
    if (err instanceof DaemonError && err.status === 404) {
      throw new CniError(missingCode, `the cnm daemon has no network ${JSON.stringify(conf.network)}`, err.message);
    }
    throw err;
  }
}

/** The plugin's sandbox of this attachment, or undefined (unknown, or not this network's / container's). */
async function attachmentOf(api: Api, cni: CniEnv, conf: NetConf): Promise<SandboxView | undefined> {
  let sb: SandboxView;
  try {
    sb = (await api.request('GET', `/cnm/v1/sandboxes/${encodeURIComponent(sandboxName(cni.containerId, cni.ifname))}`)).body as SandboxView;
  } catch (err) {
    if (err instanceof DaemonError && err.status === 404) return undefined;
    throw err;
  }
  const l = sb.Labels;
  const ours = l[LABEL.network] === conf.name && l[LABEL.containerId] === cni.containerId && l[LABEL.ifname] === cni.ifname;
  return ours ? sb : undefined;
}

function endpointOf(sb: SandboxView, networkId: string): EndpointView | undefined {
  return Object.values(sb.Networks).find((n) => n.NetworkID === networkId);
}
