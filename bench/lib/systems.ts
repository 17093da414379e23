/**
 * The systems under test behind one small interface, so every scenario runs the same steps against
 * cnm and dockerd through their own APIs.
 */
import { startTestDaemon, type TestDaemon } from '../../test/helpers/daemon.js';
import { startDockerd, type Dockerd } from './dockerd.js';
import { SocketClient } from './http.js';

export interface System {
  name: 'cnm' | 'docker';
  client: SocketClient;
  /** A long-running sandbox / container attached to `network`; returns its ID. */
  createWorkload(name: string, network: string): Promise<string>;
  removeWorkload(id: string): Promise<void>;
  daemonPid(): number;
  stop(): Promise<void>;
}

export async function startCnm(): Promise<System & { daemon: TestDaemon }> {
  const daemon = await startTestDaemon(['--log-level', 'warn']);
  const client = new SocketClient(daemon.socket);
  return {
    name: 'cnm',
    daemon,
    client,
    async createWorkload(name, network) {
      return (await client.ok('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: network }] })).json().Id;
    },
    async removeWorkload(id) {
      await client.ok('DELETE', `/cnm/v1/sandboxes/${id}?force=1`);
    },
    daemonPid: () => daemon.pid(),
    async stop() {
      client.close();
      await daemon.cleanup();
    },
  };
}

export async function startDocker(): Promise<System & { dockerd: Dockerd }> {
  const dockerd = await startDockerd();
  return {
    name: 'docker',
    dockerd,
    client: dockerd.client,
    createWorkload: (name, network) => dockerd.runContainer(name, network),
    async removeWorkload(id) {
      await dockerd.client.ok('DELETE', `/containers/${id}?force=1`);
    },
    daemonPid: () => dockerd.pid(),
    stop: () => dockerd.stop(),
  };
}
