/**
 * cnm as a Docker remote network driver: the plugin protocol (POST /Plugin.Activate, /NetworkDriver.*)
 * on a unix socket where dockerd looks for plugins (/run/docker/plugins/NAME.sock). One more front door
 * onto the same controller as the Engine API; same limits (timeouts, header size, body size, connection
 * cap) and the same rule: nothing a client sends can end the process. Every error is {"Err": "..."} with
 * the status of the error (4xx for bad input, 403/404/409 as on the API), which dockerd shows its user as
 * "NetworkDriver.<Method>: <Err>".
 */
import { unlink } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AttachmentController } from '../../controller/types.js';
import { CnmError, errorMessage } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { BodyTooLargeError, MAX_BODY_BYTES, readJsonBody } from '../http-io.js';
import { DEFAULT_API_LIMITS, httpServerOptions, type ApiLimits } from '../limits.js';
import { describeClientError } from '../server.js';
import { listenUnixSocket } from '../socket.js';
import {
  PLUGIN_MIME,
  checkDiscovery,
  createEndpointResponse,
  joinResponse,
  toAttach,
  toCreateNetwork,
  toEndpointRef,
  toExternalConnectivity,
  toJoin,
  toNetworkId,
} from './protocol.js';

/** Request bodies are a few hundred bytes; 64 KiB leaves room for large option maps. */
const MAX_PLUGIN_BODY = Math.min(MAX_BODY_BYTES, 64 * 1024);
const ACCEPTED_MEDIA = ['application/json', PLUGIN_MIME, 'application/vnd.docker.plugins.v1.1+json', 'application/vnd.docker.plugins.v1+json'];

export interface DockerPluginOptions {
  controller: AttachmentController;
  /** The plugin's name: `docker network create -d NAME`. */
  name: string;
  socketPath: string;
  logger: Logger;
  limits?: Partial<ApiLimits>;
}

export interface DockerPluginServer {
  close(): Promise<void>;
}

type Handler = (body: unknown) => Promise<unknown>;

function handlers(controller: AttachmentController, name: string): Map<string, Handler> {
  const empty = {};
  return new Map<string, Handler>([
    ['/Plugin.Activate', async () => ({ Implements: ['NetworkDriver'] })],
    ['/NetworkDriver.GetCapabilities', async () => ({ Scope: 'local', ConnectivityScope: 'local' })],
    ['/NetworkDriver.CreateNetwork', async (b) => (await controller.createHandoffNetwork(toCreateNetwork(b, name)), empty)],
    ['/NetworkDriver.DeleteNetwork', async (b) => (await controller.removeNetworkById(toNetworkId(b)), empty)],
    // Swarm-scope calls: a local-scope driver has nothing to allocate cluster-wide.
    ['/NetworkDriver.AllocateNetwork', async (b) => (toNetworkId(b), { Options: {} })],
    ['/NetworkDriver.FreeNetwork', async (b) => (toNetworkId(b), empty)],
    [
      '/NetworkDriver.CreateEndpoint',
      async (b) => {
        const req = toAttach(b);
        const att = await controller.createAttachment(req);
        return createEndpointResponse(req, att.macAddress);
      },
    ],
    [
      '/NetworkDriver.EndpointOperInfo',
      async (b) => {
        const { networkId, endpointId } = toEndpointRef(b);
        const att = controller.getAttachment(networkId, endpointId);
        return { Value: { 'com.docker.network.endpoint.macaddress': att.macAddress, ...(att.joined ? { 'cnm.interface': att.joined.srcName } : {}) } };
      },
    ],
    [
      '/NetworkDriver.DeleteEndpoint',
      async (b) => {
        const { networkId, endpointId } = toEndpointRef(b);
        await controller.removeAttachment(networkId, endpointId);
        return empty;
      },
    ],
    [
      '/NetworkDriver.Join',
      async (b) => {
        const { networkId, endpointId, sandboxKey } = toJoin(b);
        return joinResponse(await controller.joinAttachment(networkId, endpointId, sandboxKey));
      },
    ],
    [
      '/NetworkDriver.Leave',
      async (b) => {
        const { networkId, endpointId } = toEndpointRef(b);
        await controller.leaveAttachment(networkId, endpointId);
        return empty;
      },
    ],
    ['/NetworkDriver.DiscoverNew', async (b) => (checkDiscovery(b), empty)],
    ['/NetworkDriver.DiscoverDelete', async (b) => (checkDiscovery(b), empty)],
    [
      '/NetworkDriver.ProgramExternalConnectivity',
      async (b) => {
        const { networkId, endpointId, ports } = toExternalConnectivity(b);
        await controller.programAttachmentPorts(networkId, endpointId, ports);
        return empty;
      },
    ],
    [
      '/NetworkDriver.RevokeExternalConnectivity',
      async (b) => {
        const { networkId, endpointId } = toEndpointRef(b);
        await controller.revokeAttachmentPorts(networkId, endpointId);
        return empty;
      },
    ],
  ]);
}

export async function startDockerPluginServer(opts: DockerPluginOptions): Promise<DockerPluginServer> {
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...opts.limits };
  const logger = opts.logger.child({ component: 'docker-plugin' });
  const routes = handlers(opts.controller, opts.name);
  const server = http.createServer(
    httpServerOptions(limits),
    (req, res) => {
      handle(req, res, routes, logger).catch((err) => {
        logger.error('plugin request handler failed', { err });
        res.destroy();
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, reason, message] = describeClientError(err);
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify({ Err: message }) + '\n';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${PLUGIN_MIME}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });
  await listenUnixSocket(server, opts.socketPath, 0);
  server.on('error', (err) => logger.error('plugin socket error', { err }));
  logger.info('Docker network plugin listening', { name: opts.name, socket: opts.socketPath });
  return {
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await unlink(opts.socketPath).catch(() => undefined);
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, routes: Map<string, Handler>, logger: Logger): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  try {
    const handler = routes.get(path);
    if (!handler) {
      req.resume();
      return send(res, 404, { Err: `cnm does not implement ${path.slice(0, 100)}` });
    }
    if (req.method !== 'POST') {
      req.resume();
      return send(res, 405, { Err: `method ${req.method} not allowed on ${path}: the plugin protocol is POST only` });
    }
    const body = await readJsonBody(req, MAX_PLUGIN_BODY, ACCEPTED_MEDIA);
    const answer = await handler(body);
    logger.debug('plugin call', { path });
    send(res, 200, answer);
  } catch (err) {
    const status = err instanceof CnmError ? err.status : 500;
    if (!(err instanceof CnmError)) logger.error('plugin call failed', { path, err });
    else logger.info('plugin call refused', { path, status, error: errorMessage(err) });
    if (res.headersSent || res.destroyed) return void res.destroy();
    if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
    send(res, status, { Err: errorMessage(err) });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': PLUGIN_MIME, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
