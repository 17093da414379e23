/**
 * Sandboxes: a network namespace owned by the daemon (pinned under <exec-root>/netns) or adopted from
 * another runtime, plus its resolv.conf / hosts / hostname files. Creating one with networks is
 * all-or-nothing: a failure on the second network removes the whole sandbox again.
 */
import { readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, InvalidParameterError, TeardownErrors } from '../errors.js';
import { newId, randomHex, rfc3339Nano } from '../util/ids.js';
import { ownsNamespace, prepareOwnNamespace, type Ctx } from './context.js';
import { adoptNamespace, followedNamespaceAlive, followNamespace } from './adopted-netns.js';
import { connect, removeEndpoint } from './endpoints.js';
import { syncGatewayEndpoint } from './gateway.js';
import type { SandboxRecord } from './records.js';
import { openPorts, planPorts } from './ports.js';
import { hasNameResolution } from './sandbox-dns.js';
import type { CreateSandboxRequest } from './types.js';

// Docker demands two characters or more; the CNM walkthrough names sandboxes a, b and c, so one is enough.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export function netnsPathFor(ctx: Ctx, sandboxId: string): string {
  return join(ctx.execRoot, 'netns', sandboxId);
}

export async function createSandbox(ctx: Ctx, req: CreateSandboxRequest): Promise<SandboxRecord> {
  const name = (req.name ?? `sandbox-${randomHex(4)}`).replace(/^\//, '');
  if (!NAME_RE.test(name)) throw new InvalidParameterError(`Invalid container name (${name}), only ${NAME_RE.source} are allowed`);
  const taken = ctx.state.sandboxByName(name);
  if (taken) {
    throw new ConflictError(
      `Conflict. The container name "/${name}" is already in use by container "${taken.id}". You have to remove (or rename) that container to be able to reuse that name.`,
    );
  }
  const id = newId();
  const hostname = req.hostname || id.slice(0, 12);
  if (!HOSTNAME_RE.test(hostname) || hostname.length > 253) throw new InvalidParameterError(`invalid hostname ${JSON.stringify(hostname)}`);
  for (const s of req.dns ?? []) {
    if (!/^[0-9a-fA-F.:]+$/.test(s)) throw new InvalidParameterError(`invalid DNS server address ${JSON.stringify(s)}`);
  }

  const wanted = req.networks && req.networks.length > 0 ? req.networks : [{ network: 'bridge' }];
  const nets = wanted.map((w) => ({ settings: w, net: ctx.state.network(w.network) }));
  const ids = nets.map((n) => n.net.id);
  if (new Set(ids).size !== ids.length) throw new InvalidParameterError('a network is listed more than once');
  const hostNetwork = nets.some((n) => n.net.driver === 'host');
  if (hostNetwork && nets.length > 1) throw new InvalidParameterError('the host network cannot be combined with other networks');
  if (nets.some((n) => n.net.driver === 'null') && nets.length > 1) {
    throw new InvalidParameterError('the none network cannot be combined with other networks');
  }
  const adoptFrom = req.netnsPath;
  const adopted = adoptFrom !== undefined;
  if (adopted && hostNetwork) throw new InvalidParameterError('--netns cannot be combined with the host network');
  if (req.netnsFollow && !adopted) throw new InvalidParameterError('NetnsFollow needs NetnsPath: only an adopted namespace can be followed');
  // Host ports are chosen and checked (published by cnm, listened on) before anything exists.
  const ports = planPorts(ctx, req.ports, nets.map((n) => n.net), hostNetwork);

  const sb: SandboxRecord = {
    id,
    name,
    hostname,
    netnsPath: hostNetwork ? '' : netnsPathFor(ctx, id),
    adopted,
    hostNetwork,
    created: rfc3339Nano(),
    labels: req.labels ?? {},
    dns: { servers: req.dns ?? [], search: req.dnsSearch ?? [], options: req.dnsOptions ?? [] },
    creating: true,
    ...(ports ? { ports: ports.ports, portsNetworkId: ports.networkId, portRequests: req.ports!.map((r) => ({ ...r })) } : {}),
  };
  // Last of the checks: from here on the pin exists and every failure must unpin.
  if (adopted && req.netnsFollow) {
    const followed = await followNamespace(ctx, adoptFrom, sb.netnsPath, id);
    Object.assign(sb, { netnsPath: adoptFrom, adoptedFrom: adoptFrom, adoptedRoutes: followed.routes, followsNetns: followed.identity });
  } else if (adopted) {
    sb.adoptedFrom = adoptFrom;
    sb.adoptedRoutes = await adoptNamespace(ctx, adoptFrom, sb.netnsPath, id);
  }
  await ctx.repo.createSandbox(sb).catch(async (err) => {
    if (adopted && !sb.followsNetns) await ctx.kernel.deleteNetns(sb.netnsPath);
    throw err instanceof Error && err.name === 'StoreConflictError'
      ? new ConflictError(`Conflict. The container name "/${name}" is already in use`)
      : err;
  });
  ctx.state.putSandbox(sb);
  ctx.discovery.sandboxCreated(sb.id, sb.dns);
  // Written once with the resolver it will use: the connects below attach the embedded server if needed.
  const resolver = !hostNetwork && nets.some((n) => hasNameResolution(n.net)) ? 'embedded' : 'host';
  try {
    if (ownsNamespace(sb)) await prepareOwnNamespace(ctx, sb, true);
    await ctx.files.write(sb, [], resolver);
    // The last connect's transaction stores the record without its `creating` marker: no extra write.
    for (const [i, { net, settings }] of nets.entries()) {
      await connect(ctx, net, sb, settings, { creating: true, completesCreate: i === nets.length - 1 });
    }
    // Its way out when only overlays were asked for (a failure removes the sandbox like any other).
    await syncGatewayEndpoint(ctx, sb);
    // All of the sandbox's ports in one firewall transaction; a failure removes the sandbox again.
    await openPorts(ctx, sb);
  } catch (err) {
    await destroySandbox(ctx, sb, true).catch((undoErr) =>
      ctx.logger.error('rollback of sandbox create incomplete', { sandbox: id, error: undoErr }),
    );
    throw err;
  }
  ctx.emit({ type: 'sandbox', action: 'create', id, attributes: { name } });
  return sb;
}

export async function removeSandbox(ctx: Ctx, ref: string, force: boolean): Promise<void> {
  const sb = ctx.state.sandbox(ref);
  // Its path may name another namespace by now (a reused PID): nothing there is cnm's to change.
  if (sb.followsNetns !== undefined && !(await followedNamespaceAlive(ctx, sb))) return releaseLostSandbox(ctx, sb);
  if (!force && !sb.hostNetwork && !sb.adopted) {
    const pids = await processesInNetns(sb.netnsPath);
    if (pids.length > 0) {
      throw new ConflictError(
        `You cannot remove sandbox ${sb.name}: processes are still running in it (pids ${pids.slice(0, 5).join(', ')}${pids.length > 5 ? ', ...' : ''}). Stop them or use --force`,
      );
    }
  }
  await destroySandbox(ctx, sb, force);
}

/** Endpoints first (kernel then record), then the namespace and files, the record last. */
export async function destroySandbox(ctx: Ctx, sb: SandboxRecord, force: boolean): Promise<void> {
  const errors = new TeardownErrors();
  for (const ep of ctx.state.endpointsOfSandbox(sb.id)) {
    const net = ctx.state.networks.get(ep.networkId);
    if (net) await errors.attempt(`disconnect from ${net.name}`, () => removeEndpoint(ctx, net, sb, ep, force));
  }
  if (!force) errors.throwIfAny(`removing sandbox ${sb.name}`);
  // Before the namespace goes: the server's sockets and namespace handle would keep it alive.
  await errors.attempt('stop embedded DNS', () => ctx.discovery.sandboxRemoved(sb.id));
  // An adopted namespace is only unpinned (its own runtime keeps it); records from before pins hold the
  // adopted path itself, which is not cnm's to unmount.
  if (!sb.hostNetwork && !sb.followsNetns && (!sb.adopted || sb.adoptedFrom !== undefined)) {
    await errors.attempt(sb.adopted ? 'unpin namespace' : 'delete namespace', () => ctx.kernel.deleteNetns(sb.netnsPath));
  }
  await errors.attempt('remove files', () => ctx.files.remove(sb.id));
  if (!force) errors.throwIfAny(`removing sandbox ${sb.name}`);
  await ctx.repo.deleteSandbox(sb);
  ctx.state.deleteSandbox(sb.id);
  ctx.routes.delete(sb.id);
  ctx.emit({ type: 'sandbox', action: 'destroy', id: sb.id, attributes: { name: sb.name } });
}

/**
 * A followed namespace died (or its path names another one now): its veth pairs died with it. The endpoints,
 * their addresses and the record go without a step inside the namespace: cnm's routes there are gone too,
 * so the route state is set to none and the default-route restore has nothing to do.
 */
export async function releaseLostSandbox(ctx: Ctx, sb: SandboxRecord): Promise<void> {
  ctx.logger.warn('the namespace of a followed sandbox is gone: releasing it', { sandbox: sb.name, netns: sb.netnsPath });
  ctx.routes.set(sb.id, {});
  await destroySandbox(ctx, sb, true);
}

/** Every followed sandbox whose namespace is gone, released (kernel link events and start-up call this). */
export async function releaseLostSandboxes(ctx: Ctx): Promise<string[]> {
  const released: string[] = [];
  for (const sb of [...ctx.state.sandboxes.values()]) {
    if (sb.followsNetns === undefined || (await followedNamespaceAlive(ctx, sb))) continue;
    await releaseLostSandbox(ctx, sb);
    released.push(sb.name);
  }
  return released;
}

/** PIDs whose network namespace is the one pinned at `path` (same device and inode). */
export async function processesInNetns(path: string): Promise<number[]> {
  let target;
  try {
    target = await stat(path);
  } catch {
    return [];
  }
  const want = `net:[${target.ino}]`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/ns/net`)) === want) pids.push(Number(entry));
    } catch {
      /* process exited or not ours to read */
    }
  }
  return pids;
}
