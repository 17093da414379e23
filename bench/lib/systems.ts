/**
 * The systems under test behind one small interface, so every scenario runs the same steps against
 * cnm and dockerd through their own APIs.
 */
import { startTestDaemon, type TestDaemon } from '../../test/helpers/daemon.js';
import { BENCH_IMAGE, startDockerd, type Dockerd, type RestartTiming } from './dockerd.js';
import { SocketClient } from './http.js';
import { rssKiB, totalRssMiB } from './procs.js';

export type SystemName = 'cnm' | 'docker';

export interface MemoryReading {
  /** VmRSS of the daemon process alone. */
  daemonMiB: number;
  /** The daemon with its helper processes (for Docker: containerd and every shim). */
  withHelpersMiB: number;
}

export interface WorkloadOptions {
  /** Docker: restart policy "always", so the container comes back after a daemon restart. */
  survivesRestart?: boolean;
}

export interface System {
  name: SystemName;
  client: SocketClient;
  /** The namespace the daemon runs in, where its bridges live: endpoints are pinged from here. */
  hostNetnsPath: string;
  /** A long-running sandbox / container attached to `network`; returns its ID. */
  createWorkload(name: string, network: string, options?: WorkloadOptions): Promise<string>;
  removeWorkload(id: string): Promise<void>;
  /** A path to the workload's network namespace, usable with nsenter --net. */
  workloadNetns(id: string): Promise<string>;
  /** PID of the daemon process itself (cnm's node process; dockerd). */
  daemonPid(): number;
  memory(): Promise<MemoryReading>;
  restart(): Promise<RestartTiming>;
  stop(): Promise<void>;
}

/** `nodeEntry`: how node runs the CLI (the bench passes the built dist, see build.ts). */
export async function startCnm(kernel: string | undefined, nodeEntry: string[]): Promise<System & { daemon: TestDaemon }> {
  const daemon = await startTestDaemon(['--log-level', 'warn', ...(kernel ? ['--kernel', kernel] : [])], { nodeEntry });
  const client = new SocketClient(daemon.socket);
  return {
    name: 'cnm',
    daemon,
    client,
    hostNetnsPath: daemon.hostNsPath,
    async createWorkload(name, network) {
      return (await client.ok('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: network }] })).json().Id;
    },
    async removeWorkload(id) {
      await client.ok('DELETE', `/cnm/v1/sandboxes/${id}?force=1`);
    },
    async workloadNetns(id) {
      return (await client.ok('GET', `/cnm/v1/sandboxes/${id}`)).json().NetnsPath;
    },
    daemonPid: () => daemon.pid(),
    async memory() {
      const mib = ((await rssKiB(daemon.pid())) ?? NaN) / 1024;
      return { daemonMiB: mib, withHelpersMiB: mib };
    },
    async restart() {
      const t0 = performance.now();
      await daemon.stop('SIGTERM');
      const stoppedMs = performance.now() - t0;
      await daemon.start();
      return { stoppedMs, apiUpMs: performance.now() - t0 };
    },
    async stop() {
      client.close();
      await daemon.cleanup();
    },
  };
}

/**
 * Containers run busybox `sh` that exits on SIGTERM the way a real service does (a bare `sleep` as
 * PID 1 ignores it, and every stop would wait out Docker's 10 s timeout).
 */
const CONTAINER_CMD = ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 86400 & wait'];

export async function startDocker(): Promise<System & { dockerd: Dockerd }> {
  const dockerd = await startDockerd();
  const client = dockerd.client;
  return {
    name: 'docker',
    dockerd,
    client,
    hostNetnsPath: dockerd.hostNetnsPath,
    async createWorkload(name, network, options) {
      const body = {
        Image: BENCH_IMAGE,
        Cmd: CONTAINER_CMD,
        HostConfig: { NetworkMode: network, ...(options?.survivesRestart ? { RestartPolicy: { Name: 'always' } } : {}) },
      };
      const id: string = (await client.ok('POST', `/containers/create?name=${encodeURIComponent(name)}`, body)).json().Id;
      await client.ok('POST', `/containers/${id}/start`);
      return id;
    },
    async removeWorkload(id) {
      await client.ok('DELETE', `/containers/${id}?force=1`);
    },
    async workloadNetns(id) {
      const pid: number = (await client.ok('GET', `/containers/${id}/json`)).json().State.Pid;
      return `/proc/${pid}/ns/net`;
    },
    daemonPid: () => dockerd.pid(),
    async memory() {
      return {
        daemonMiB: ((await rssKiB(dockerd.pid())) ?? NaN) / 1024,
        withHelpersMiB: await totalRssMiB(await dockerd.helperPids()),
      };
    },
    restart: () => dockerd.restart(),
    stop: () => dockerd.stop(),
  };
}
