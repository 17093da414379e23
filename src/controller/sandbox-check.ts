/**
 * Is a sandbox's networking still what cnm made it? (The CNI front door's CHECK.) Each endpoint's kernel
 * objects are asked of its driver (endpointIntact); a followed namespace must still be the adopted one.
 * Returns what is wrong, empty when all is well. Reads only.
 */
import { followedNamespaceAlive } from './adopted-netns.js';
import { runtimeOf, toDriverEndpoint, toDriverNetwork, toDriverSandbox, type Ctx } from './context.js';
import type { SandboxRecord } from './records.js';

export async function sandboxProblems(ctx: Ctx, sb: SandboxRecord): Promise<string[]> {
  if (sb.followsNetns !== undefined && !(await followedNamespaceAlive(ctx, sb))) {
    return [`the network namespace ${sb.netnsPath} is gone`];
  }
  const problems: string[] = [];
  for (const ep of ctx.state.endpointsOfSandbox(sb.id)) {
    const net = ctx.state.networks.get(ep.networkId)!;
    const rt = runtimeOf(ctx, net);
    if (rt.error !== undefined) {
      problems.push(`network ${net.name} is out of service: ${rt.error}`);
      continue;
    }
    const dep = toDriverEndpoint(ep, rt.driver.parseEndpointOptions(ep.driverOpts));
    if (!(await rt.driver.endpointIntact(toDriverNetwork(net, rt.options), dep, toDriverSandbox(sb)))) {
      problems.push(`interface ${ep.ifName} on network ${net.name} is missing or not as cnm configured it`);
    }
  }
  return problems;
}
