/**
 * The HTTP API over a unix socket: Docker Engine API routes for networks (and sandboxes shown as
 * containers) plus cnm's /cnm/v1 extensions. Typed errors become their HTTP status and
 * {"message": "..."}; anything else is a logged 500.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import type { Controller } from '../controller/types.js';
import { CnmError, SystemError, errorMessage } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { ApiDeps, DaemonFacts } from './deps.js';
import { EventBroker } from './events.js';
import { BodyTooLargeError, sendErrorMessage } from './http-io.js';
import { gatherHostFacts } from './render-system.js';
import { API_VERSION, Router, splitVersion } from './router.js';
import { networkRoutes } from './routes-network.js';
import { sandboxRoutes } from './routes-sandbox.js';
import { serviceRoutes } from './routes-service.js';
import { systemRoutes } from './routes-system.js';

export interface ApiServerOptions {
  controller: Controller;
  socketPath: string;
  logger: Logger;
  version: string;
  daemon: DaemonFacts;
}

export interface ApiServer {
  close(): Promise<void>;
}

const SOCKET_MODE = 0o660;

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const events = new EventBroker(opts.controller);
  const deps: ApiDeps = {
    controller: opts.controller,
    version: opts.version,
    daemon: opts.daemon,
    host: gatherHostFacts(),
    events,
  };
  const router = new Router([...systemRoutes(deps), ...networkRoutes(deps), ...sandboxRoutes(deps), ...serviceRoutes(deps)]);
  const logger = opts.logger.child({ component: 'api' });
  const server = http.createServer((req, res) => {
    void handleRequest(req, res, router, logger, opts.version);
  });

  await prepareSocketPath(opts.socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(opts.socketPath, SOCKET_MODE);
  } catch (err) {
    events.close();
    server.close();
    throw new SystemError(`cannot listen on ${opts.socketPath}: ${errorMessage(err)}`, { cause: err });
  }
  logger.info('API listening', { socket: opts.socketPath });

  return {
    async close() {
      events.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await unlink(opts.socketPath).catch(() => {});
    },
  };
}

/** Create the socket's directory; remove a socket file nobody listens on (left by a crash). */
async function prepareSocketPath(socketPath: string): Promise<void> {
  await mkdir(dirname(socketPath), { recursive: true });
  const stat = await lstat(socketPath).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) throw new SystemError(`${socketPath} exists and is not a socket`);
  if (await isListening(socketPath)) throw new SystemError(`${socketPath} is in use by a running daemon`);
  await unlink(socketPath);
}

function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  router: Router,
  logger: Logger,
  version: string,
): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://cnm');
  res.on('close', () => {
    logger.debug('request', { method, path: url.pathname, status: res.statusCode, ms: +(performance.now() - started).toFixed(3) });
  });
  res.setHeader('Api-Version', API_VERSION);
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Ostype', 'linux');
  res.setHeader('Server', `cnm/${version} (linux)`);
  try {
    const { apiVersion, path } = splitVersion(url.pathname);
    const match = router.match(method, path);
    switch (match.kind) {
      case 'found':
        await match.handler({ req, res, params: match.params, query: url.searchParams, apiVersion });
        return;
      case 'method-not-allowed':
        sendErrorMessage(res, 405, `method ${method} not allowed on ${path}`);
        return;
      case 'not-found':
        if (path.startsWith('/containers/')) {
          sendErrorMessage(res, 501, `cnm runs no containers, only sandboxes: ${method} ${path} is not supported (use "cnm sandbox" or "cnm exec")`);
        } else {
          sendErrorMessage(res, 404, 'page not found');
        }
        return;
    }
  } catch (err) {
    respondWithError(res, err, logger, method, url.pathname);
  }
}

function respondWithError(res: ServerResponse, err: unknown, logger: Logger, method: string, path: string): void {
  const status = err instanceof CnmError ? err.status : 500;
  if (!(err instanceof CnmError)) logger.error('request failed', { method, path, err });
  else if (status >= 500) logger.warn('request failed', { method, path, err });
  if (res.headersSent) {
    // A stream already started: all we can do is cut it.
    res.destroy();
    return;
  }
  // The rest of an oversized body is being dropped; do not keep the connection for another request.
  if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
  sendErrorMessage(res, status, errorMessage(err));
}
