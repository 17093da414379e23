/**
 * The real API server in front of the REAL controller (test/helpers/controller-harness.ts: recording
 * kernel fake, memory store, real IPAM and drivers). API and CLI tests run here, so the messages, paths
 * and shapes they assert are the ones cnm produces, not text a test double wrote. `controller.calls`
 * records the mutations the API layer asked for (what the API layer owns: how a request is translated).
 */
import type { CnmController } from '../../src/controller/controller.js';
import { serveApi, startHarness, type Harness } from './controller-harness.js';
import { httpRequest, type HttpResult } from './fake-controller.js';

const RECORDED = new Set([
  'createNetwork', 'removeNetwork', 'pruneNetworks', 'connect', 'disconnect',
  'createSandbox', 'removeSandbox', 'createService', 'removeService',
]);

export interface ControllerCall {
  method: string;
  args: unknown[];
}

export type RecordingController = CnmController & { calls: ControllerCall[] };

export interface RealApi {
  harness: Harness;
  controller: RecordingController;
  socketPath: string;
  /** A scratch directory removed by close() (HOME, docker config, ...). */
  dir: string;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  close(): Promise<void>;
}

function recording(controller: CnmController): RecordingController {
  const calls: ControllerCall[] = [];
  return new Proxy(controller, {
    get(target, prop, receiver) {
      if (prop === 'calls') return calls;
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (typeof prop === 'string' && RECORDED.has(prop)) calls.push({ method: prop, args });
        return value.apply(target, args);
      };
    },
  }) as RecordingController;
}

export async function startRealApi(): Promise<RealApi> {
  const harness = await startHarness();
  const controller = recording(harness.controller);
  harness.controller = controller;
  const { socketPath, server } = await serveApi(harness);
  return {
    harness,
    controller,
    socketPath,
    dir: harness.execRoot,
    request: (method, path, body, headers) => httpRequest(socketPath, method, path, body, headers),
    close: async () => {
      await server.close();
      await harness.cleanup();
    },
  };
}
