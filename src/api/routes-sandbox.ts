/**
 * Sandboxes: the cnm extension routes (/cnm/v1/sandboxes) and their Docker container views
 * (/containers/json, /containers/{id}/json).
 */
import type { SandboxDetail } from '../controller/types.js';
import type { ApiDeps } from './deps.js';
import { asDockerError } from './docker-errors.js';
import { FilterArgs } from './filters.js';
import { queryBool, readJsonBody, sendEmpty, sendJson } from './http-io.js';
import { containerListFilter, renderContainerInspect, renderContainerSummary } from './render-container.js';
import { renderCnmSandbox } from './render-sandbox.js';
import type { Route } from './router.js';
import { toCreateSandboxRequest } from './validation.js';

export function sandboxRoutes({ controller, daemon }: ApiDeps): Route[] {
  const cnmView = (detail: SandboxDetail) =>
    renderCnmSandbox(detail, controller.sandboxFiles(detail.sandbox.id), daemon.pid);
  return [
    { method: 'GET', pattern: '/cnm/v1/sandboxes', handler: ({ res }) => sendJson(res, 200, controller.listSandboxes().map(cnmView)) },
    {
      method: 'POST',
      pattern: '/cnm/v1/sandboxes',
      handler: async ({ req, res }) => {
        const detail = await controller.createSandbox(toCreateSandboxRequest(await readJsonBody(req)));
        sendJson(res, 201, cnmView(detail));
      },
    },
    {
      method: 'GET',
      pattern: '/cnm/v1/sandboxes/{ref}',
      handler: ({ res, params }) => sendJson(res, 200, cnmView(controller.getSandbox(params.ref!))),
    },
    {
      method: 'GET',
      pattern: '/cnm/v1/sandboxes/{ref}/check',
      handler: async ({ res, params }) => {
        const problems = await controller.checkSandbox(params.ref!);
        sendJson(res, 200, { Intact: problems.length === 0, Problems: problems });
      },
    },
    {
      method: 'DELETE',
      pattern: '/cnm/v1/sandboxes/{ref}',
      handler: async ({ res, params, query }) => {
        await controller.removeSandbox(params.ref!, queryBool(query, 'force'));
        sendEmpty(res, 204);
      },
    },
    {
      method: 'GET',
      pattern: '/containers/json',
      handler: ({ res, query }) => {
        queryBool(query, 'all'); // sandboxes are always running: "all" changes nothing
        const select = containerListFilter(FilterArgs.fromJson(query.get('filters')));
        const limit = Number.parseInt(query.get('limit') ?? '', 10);
        // Docker lists the newest first.
        let list = controller
          .listSandboxes()
          .filter(select)
          .sort((a, b) => b.sandbox.created.localeCompare(a.sandbox.created));
        if (limit > 0) list = list.slice(0, limit);
        const now = Date.now();
        sendJson(res, 200, list.map((d) => renderContainerSummary(d, now)));
      },
    },
    {
      method: 'GET',
      pattern: '/containers/{ref}/json',
      handler: ({ res, params }) => {
        const detail = asContainer(() => controller.getSandbox(params.ref!));
        sendJson(res, 200, renderContainerInspect(detail, controller.sandboxFiles(detail.sandbox.id), daemon.pid));
      },
    },
  ];
}

/** Docker's wording for a missing container, which clients such as `docker inspect` rely on. */
function asContainer(lookup: () => SandboxDetail): SandboxDetail {
  try {
    return lookup();
  } catch (err) {
    throw asDockerError(err);
  }
}
