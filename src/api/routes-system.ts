/** _ping, version, info and events. */
import type { ApiDeps } from './deps.js';
import { streamEvents } from './events.js';
import { sendJson } from './http-io.js';
import { renderInfo, renderVersion } from './render-system.js';
import type { Route, RouteContext } from './router.js';

function ping({ req, res }: RouteContext): void {
  res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
  res.setHeader('Pragma', 'no-cache');
  res.setHeader('Builder-Version', '1');
  res.setHeader('Swarm', 'inactive');
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  if (req.method === 'HEAD') {
    res.setHeader('Content-Length', '0');
    res.writeHead(200);
    res.end();
    return;
  }
  res.setHeader('Content-Length', '2');
  res.writeHead(200);
  res.end('OK');
}

export function systemRoutes(deps: ApiDeps): Route[] {
  return [
    { method: 'GET', pattern: '/_ping', handler: ping },
    { method: 'HEAD', pattern: '/_ping', handler: ping },
    { method: 'GET', pattern: '/version', handler: ({ res }) => sendJson(res, 200, renderVersion(deps.version, deps.host)) },
    {
      method: 'GET',
      pattern: '/info',
      handler: ({ res }) =>
        sendJson(res, 200, renderInfo(deps.version, deps.host, deps.controller.info(), deps.events.listenerCount)),
    },
    { method: 'GET', pattern: '/events', handler: (ctx) => streamEvents(ctx, deps.events) },
  ];
}
