/**
 * Adopted namespaces (sandbox create --netns PATH): what cnm takes from them and gives back.
 *
 * - Adoption opens PATH once and pins it under <exec-root>/netns/<id> (KernelOps.adoptNetns), refusing
 *   anything but a network namespace, the daemon's own, and a namespace another sandbox already has.
 * - The namespace's default routes are recorded with the sandbox. cnm's default route replaces them while
 *   one of its endpoints gives a gateway; when none does (last disconnect, rm), exactly the recorded ones
 *   come back. Links and addresses cnm did not create are never touched.
 */
import { isAbsolute } from 'node:path';
import { InvalidParameterError, KernelError } from '../errors.js';
import type { KernelOps, RouteInfo, RouteSpec } from '../kernel/types.js';
import type { Ctx } from './context.js';
import type { SandboxRecord } from './records.js';

/** Errors of adoptNetns that describe the client's path, not a daemon failure: 400. */
const CLIENT_ERRNOS = new Set(['EINVAL', 'ENOENT', 'ENOTDIR', 'EACCES', 'ELOOP']);

/**
 * Pin `source` at `pin` and return the namespace's default routes. Every refusal is a 400 and leaves
 * nothing behind (no pin, no placeholder).
 */
export async function adoptNamespace(ctx: Ctx, source: string, pin: string, sandboxId: string): Promise<RouteInfo[]> {
  if (!isAbsolute(source)) throw new InvalidParameterError(`invalid network namespace path ${JSON.stringify(source)}: must be absolute`);
  let identity: string;
  try {
    identity = await ctx.kernel.adoptNetns(source, pin);
  } catch (err) {
    if (err instanceof KernelError && err.errno !== undefined && CLIENT_ERRNOS.has(err.errno)) {
      throw new InvalidParameterError(err.message);
    }
    throw err;
  }
  try {
    for (const other of ctx.state.sandboxes.values()) {
      if (other.id === sandboxId || other.hostNetwork) continue;
      if ((await ctx.kernel.netnsIdentity(other.netnsPath)) === identity) {
        throw new InvalidParameterError(
          `cannot adopt ${source}: it is the network namespace of sandbox ${other.name} (${other.id.slice(0, 12)})`,
        );
      }
    }
    return [...(await defaultRoutes(ctx.kernel, pin, 4)), ...(await defaultRoutes(ctx.kernel, pin, 6))];
  } catch (err) {
    await ctx.kernel.deleteNetns(pin);
    throw err;
  }
}

/**
 * Adopt `source` without keeping it (SandboxRecord.followsNetns): the same checks as adoptNamespace through
 * a pin held only while they run, then the namespace's identity, which `source` must still name.
 */
export async function followNamespace(ctx: Ctx, source: string, pin: string, sandboxId: string): Promise<{ identity: string; routes: RouteInfo[] }> {
  const routes = await adoptNamespace(ctx, source, pin, sandboxId);
  const identity = await ctx.kernel.netnsIdentity(pin);
  await ctx.kernel.deleteNetns(pin);
  if (identity === undefined || (await ctx.kernel.netnsIdentity(source)) !== identity) {
    throw new InvalidParameterError(`cannot adopt ${source}: the namespace went away while it was being adopted`);
  }
  return { identity, routes };
}

/** A followed namespace is still there: its path names the namespace that was adopted. */
export async function followedNamespaceAlive(ctx: Ctx, sb: SandboxRecord): Promise<boolean> {
  return sb.followsNetns !== undefined && (await ctx.kernel.netnsIdentity(sb.netnsPath)) === sb.followsNetns;
}

async function defaultRoutes(kernel: KernelOps, ns: string, family: 4 | 6): Promise<RouteInfo[]> {
  return (await kernel.routeList(ns, family)).filter((r) => r.dst === 'default');
}

/**
 * An adopted sandbox's default route of one family: cnm's via `gateway`, or (none) the recorded ones.
 * Replace first, so cnm's route is in place before the adopted ones go; then remove what does not belong.
 */
export async function setAdoptedDefaultRoute(kernel: KernelOps, sb: SandboxRecord, family: 4 | 6, gateway: string | undefined): Promise<void> {
  const want: RouteSpec[] = gateway
    ? [{ dst: 'default', via: gateway, family }]
    : (sb.adoptedRoutes ?? []).filter((r) => r.family === family).map(toSpec);
  for (const route of want) await kernel.routeReplace(sb.netnsPath, route);
  const present = await defaultRoutes(kernel, sb.netnsPath, family);
  for (const route of present) {
    if (!want.some((w) => sameRoute(w, route, gateway !== undefined))) await kernel.routeDel(sb.netnsPath, toSpec(route));
  }
}

function toSpec(r: RouteInfo): RouteSpec {
  const spec: RouteSpec = { dst: r.dst, family: r.family };
  if (r.via !== undefined) spec.via = r.via;
  if (r.dev !== undefined) spec.dev = r.dev;
  if (r.metric !== undefined) spec.metric = r.metric;
  return spec;
}

/** cnm's own route is known by its gateway (its device and metric are the kernel's choice). */
function sameRoute(want: RouteSpec, have: RouteInfo, cnmRoute: boolean): boolean {
  if (cnmRoute) return want.via === have.via;
  return want.via === have.via && want.dev === have.dev && (want.metric ?? 0) === (have.metric ?? 0);
}
