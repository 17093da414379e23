/** Docker Engine API network routes: parse → controller call → render. */
import { NotFoundError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { asDockerError } from './docker-errors.js';
import { FilterArgs } from './filters.js';
import { queryBool, readJsonBody, sendEmpty, sendJson } from './http-io.js';
import { networkListFilter, networkPruneFilter, renderNetworkInspect, renderNetworkSummary } from './render-network.js';
import type { Route } from './router.js';
import { toConnectRequest, toCreateNetworkRequest, toDisconnectRequest } from './validation.js';

export function networkRoutes({ controller }: ApiDeps): Route[] {
  return [
    {
      method: 'GET',
      pattern: '/networks',
      handler: ({ res, query }) => {
        const select = networkListFilter(FilterArgs.fromJson(query.get('filters')));
        sendJson(res, 200, controller.listNetworks().filter(select).map((d) => renderNetworkSummary(d.network)));
      },
    },
    {
      method: 'POST',
      pattern: '/networks/create',
      handler: async ({ req, res, apiVersion }) => {
        const request = toCreateNetworkRequest(await readJsonBody(req), apiVersion);
        const { id, warning } = await controller.createNetwork(request);
        sendJson(res, 201, { Id: id, Warning: warning });
      },
    },
    {
      method: 'POST',
      pattern: '/networks/prune',
      handler: async ({ res, query }) => {
        const select = networkPruneFilter(FilterArgs.fromJson(query.get('filters')));
        const deleted = await controller.pruneNetworks(select);
        sendJson(res, 200, { NetworksDeleted: deleted });
      },
    },
    {
      method: 'GET',
      pattern: '/networks/{id}',
      handler: ({ res, params, query }) => {
        queryBool(query, 'verbose'); // accepted for parity; cnm has no swarm services to add
        const detail = controller.getNetwork(params.id!);
        const scope = query.get('scope');
        if (scope && scope !== detail.network.scope) throw new NotFoundError(`network ${params.id} not found`);
        sendJson(res, 200, renderNetworkInspect(detail));
      },
    },
    {
      method: 'DELETE',
      pattern: '/networks/{id}',
      handler: async ({ res, params }) => {
        await controller.removeNetwork(params.id!);
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: '/networks/{id}/connect',
      handler: async ({ req, res, params }) => {
        const request = toConnectRequest(params.id!, await readJsonBody(req));
        await controller.connect(request).catch((err) => Promise.reject(asDockerError(err)));
        sendEmpty(res, 200);
      },
    },
    {
      method: 'POST',
      pattern: '/networks/{id}/disconnect',
      handler: async ({ req, res, params }) => {
        const { sandbox, force } = toDisconnectRequest(await readJsonBody(req));
        await controller.disconnect(params.id!, sandbox, force).catch((err) => Promise.reject(asDockerError(err)));
        sendEmpty(res, 200);
      },
    },
  ];
}
