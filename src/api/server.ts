/**
 * The HTTP API over a unix socket: Docker Engine API routes for networks (and sandboxes shown as
 * containers) plus cnm's /cnm/v1 extensions. Typed errors become their HTTP status and
 * {"message": "..."}; anything else is a logged 500. Nothing a client sends can end the process:
 * malformed requests are answered 4xx by the parser's error hook or the request handler, and every
 * handler runs inside one catch.
 */
import { unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Controller } from '../controller/types.js';
import { CnmError, errorMessage } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { ApiDeps, DaemonFacts } from './deps.js';
import { EventBroker } from './events.js';
import { BodyTooLargeError, sendErrorMessage } from './http-io.js';
import { DEFAULT_API_LIMITS, httpServerOptions, type ApiLimits } from './limits.js';
import { gatherHostFacts } from './render-system.js';
import { parseRequestTarget } from './request-target.js';
import { API_VERSION, Router, splitVersion } from './router.js';
import { networkRoutes } from './routes-network.js';
import { sandboxRoutes } from './routes-sandbox.js';
import { serviceRoutes } from './routes-service.js';
import { systemRoutes } from './routes-system.js';
import { listenUnixSocket } from './socket.js';

export interface ApiServerOptions {
  controller: Controller;
  socketPath: string;
  logger: Logger;
  version: string;
  daemon: DaemonFacts;
  /** Group owning the socket (mode 0660); default 0 (root). */
  socketGid?: number;
  limits?: Partial<ApiLimits>;
}

export interface ApiServer {
  close(): Promise<void>;
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...opts.limits };
  const logger = opts.logger.child({ component: 'api' });
  const events = new EventBroker(opts.controller, { maxBacklogBytes: limits.maxEventBacklogBytes, logger });
  const deps: ApiDeps = {
    controller: opts.controller,
    version: opts.version,
    daemon: opts.daemon,
    host: gatherHostFacts(),
    events,
  };
  const router = new Router([...systemRoutes(deps), ...networkRoutes(deps), ...sandboxRoutes(deps), ...serviceRoutes(deps)]);
  // Responses in progress per connection, so a parse error on a keep-alive connection never writes
  // an error into the middle of a response already being sent.
  const inFlight = new WeakMap<Socket | Duplex, ServerResponse>();
  const server = http.createServer(
    httpServerOptions(limits),
    (req, res) => {
      inFlight.set(req.socket, res);
      res.once('close', () => {
        if (inFlight.get(req.socket) === res) inFlight.delete(req.socket);
      });
      handleRequest(req, res, router, logger, opts.version).catch((err) => {
        // handleRequest answers every error itself; reaching here is a bug, never a reason to stop.
        logger.error('request handler failed', { err });
        res.destroy();
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    answerClientError(err, socket, inFlight.get(socket), logger);
  });
  let dropped = 0;
  let lastDropLog = 0;
  server.on('drop', () => {
    dropped++;
    // One line a second at most: a flood of connections must not become a flood of log lines.
    if (Date.now() - lastDropLog < 1000) return;
    lastDropLog = Date.now();
    logger.warn('connection refused: too many open connections', { maxConnections: limits.maxConnections, refused: dropped });
  });

  try {
    await listenUnixSocket(server, opts.socketPath, opts.socketGid ?? 0);
  } catch (err) {
    events.close();
    throw err;
  }
  // After listen: an accept() failure (EMFILE) must be logged, not thrown as an unhandled 'error'.
  server.on('error', (err) => logger.error('API socket error', { err }));
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

/**
 * The parser refused the request (bad request line, header, chunk, too large, too slow). Answer with a
 * status and Docker's {"message"} when nothing of a response has been written on this connection yet,
 * then close it: the rest of the byte stream cannot be trusted.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, res: ServerResponse | undefined, logger: Logger): void {
  const [status, reason, message] = describeClientError(err);
  logger.debug('malformed request', { code: err.code, error: err.message });
  if (!socket.writable || res?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ message }) + '\n';
  const head = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  socket.end(`${head}Connection: close\r\n\r\n${body}`, () => socket.destroy());
}

export function describeClientError(err: NodeJS.ErrnoException): [number, string, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large', 'request header fields too large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout', 'request timeout: the request was not received in time'];
    default:
      return [400, 'Bad Request', `malformed HTTP request: ${err.code ?? 'parse error'}`];
  }
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
  let path = req.url ?? '/';
  res.on('close', () => {
    logger.debug('request', { method, path, status: res.statusCode, ms: +(performance.now() - started).toFixed(3) });
  });
  res.setHeader('Api-Version', API_VERSION);
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Ostype', 'linux');
  res.setHeader('Server', `cnm/${version} (linux)`);
  try {
    const target = parseRequestTarget(req.url);
    path = target.path;
    const { apiVersion, path: route } = splitVersion(target.path);
    const match = router.match(method, route);
    switch (match.kind) {
      case 'found':
        await match.handler({ req, res, params: match.params, query: target.query, apiVersion });
        return;
      case 'method-not-allowed':
        sendErrorMessage(res, 405, `method ${method} not allowed on ${route}`);
        return;
      case 'not-found':
        if (route.startsWith('/containers/')) {
          sendErrorMessage(res, 501, `cnm runs no containers, only sandboxes: ${method} ${route} is not supported (use "cnm sandbox" or "cnm exec")`);
        } else {
          sendErrorMessage(res, 404, 'page not found');
        }
        return;
    }
  } catch (err) {
    respondWithError(res, err, logger, method, path);
  }
}

function respondWithError(res: ServerResponse, err: unknown, logger: Logger, method: string, path: string): void {
  const status = err instanceof CnmError ? err.status : 500;
  if (!(err instanceof CnmError)) logger.error('request failed', { method, path, err });
  else if (status >= 500) logger.warn('request failed', { method, path, err });
  if (res.headersSent || res.destroyed) {
    // A stream already started (or the client is gone): all we can do is cut it.
    res.destroy();
    return;
  }
  // The rest of an oversized body is being dropped; do not keep the connection for another request.
  if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
  sendErrorMessage(res, status, errorMessage(err));
}
