/**
 * Services: cnm extension routes (/cnm/v1/services). Docker has services only in swarm mode, with
 * another shape; these are cnm's own, named the way its sandboxes are.
 */
import type { ServiceDetail } from '../controller/types.js';
import type { ApiDeps } from './deps.js';
import { readJsonBody, sendEmpty, sendJson } from './http-io.js';
import type { Route } from './router.js';
import { toCreateServiceRequest } from './validation.js';

export interface CnmServiceView {
  Id: string;
  Name: string;
  Created: string;
  Network: { Id: string; Name: string };
  Mode: 'vip' | 'dnsrr';
  /** "10.0.0.5" in vip mode on a network with IPv4, "" otherwise. */
  VirtualIP: string;
  /** "fd00::5" in vip mode on a network with IPv6, "" otherwise. */
  VirtualIPv6: string;
  Ports: string[];
  Labels: Record<string, string>;
  /** `Host`: the host id of a backend on a global network (any host's, this one's included). */
  Backends: Array<{ SandboxId: string; SandboxName: string; EndpointId: string; IPv4Address: string; IPv6Address: string; Host?: string }>;
}

export function renderCnmService(detail: ServiceDetail): CnmServiceView {
  const s = detail.service;
  return {
    Id: s.id,
    Name: s.name,
    Created: s.created,
    Network: { Id: detail.network.id, Name: detail.network.name },
    Mode: s.mode,
    VirtualIP: s.vip?.split('/')[0] ?? '',
    VirtualIPv6: s.vip6?.split('/')[0] ?? '',
    Ports: s.ports.map((p) => `${p.port}/${p.protocol}`),
    Labels: { ...s.labels },
    Backends: detail.backends.map(({ endpoint, sandbox }) => ({
      SandboxId: sandbox.id,
      SandboxName: sandbox.name,
      EndpointId: endpoint.id,
      IPv4Address: endpoint.ipv4Address ?? '',
      IPv6Address: endpoint.ipv6Address ?? '',
      ...(endpoint.hostId === undefined ? {} : { Host: endpoint.hostId }),
    })),
  };
}

export function serviceRoutes({ controller }: ApiDeps): Route[] {
  return [
    { method: 'GET', pattern: '/cnm/v1/services', handler: ({ res }) => sendJson(res, 200, controller.listServices().map(renderCnmService)) },
    {
      method: 'POST',
      pattern: '/cnm/v1/services',
      handler: async ({ req, res }) => {
        const detail = await controller.createService(toCreateServiceRequest(await readJsonBody(req)));
        sendJson(res, 201, renderCnmService(detail));
      },
    },
    {
      method: 'GET',
      pattern: '/cnm/v1/services/{ref}',
      handler: ({ res, params }) => sendJson(res, 200, renderCnmService(controller.getService(params.ref!))),
    },
    {
      method: 'DELETE',
      pattern: '/cnm/v1/services/{ref}',
      handler: async ({ res, params }) => {
        await controller.removeService(params.ref!);
        sendEmpty(res, 204);
      },
    },
  ];
}
