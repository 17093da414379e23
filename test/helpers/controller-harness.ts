/**
 * A controller wired to fast fakes (recording kernel, in-memory store, recording firewall, DNS discovery
 * without sockets) with the real IPAM and drivers: for unit tests of the control plane. The same
 * store/kernel can be handed to a second controller to simulate a daemon restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { CnmController } from '../../src/controller/controller.js';
import { SandboxFiles } from '../../src/controller/sandbox-files.js';
import { BridgeDriver } from '../../src/drivers/bridge/driver.js';
import { HostDriver, NullDriver } from '../../src/drivers/simple.js';
import type { AnyNetworkDriver } from '../../src/drivers/types.js';
import { DEFAULT_V4_POOLS, DefaultIpam, ulaPoolForHost } from '../../src/ipam/default.js';
import { FakeKernel } from '../../src/kernel/fake.js';
import type { KernelOps } from '../../src/kernel/types.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { silentLogger } from '../../src/util/log.js';
import { createTestDiscovery, type TestDiscovery } from './fake-discovery.js';
import { RecordingFirewall, RecordingSandboxBalancer } from './fake-firewall.js';

export interface Harness {
  controller: CnmController;
  kernel: FakeKernel;
  store: Store;
  firewall: RecordingFirewall;
  balancer: RecordingSandboxBalancer;
  /** This controller's own (a restart gets a fresh one, as a new daemon process would). */
  dns: TestDiscovery;
  execRoot: string;
  /** Start a second controller on the same store and kernel, as a daemon restart would. */
  restart(): Promise<Harness>;
  cleanup(): Promise<void>;
}

export async function startHarness(
  shared?: { kernel: FakeKernel; store: Store; execRoot: string; firewall?: RecordingFirewall; balancer?: RecordingSandboxBalancer },
  wrapKernel: (k: FakeKernel) => KernelOps = (k) => k,
  extraDrivers: AnyNetworkDriver[] = [],
): Promise<Harness> {
  const kernel = shared?.kernel ?? new FakeKernel();
  const store = shared?.store ?? new MemoryStore();
  const execRoot = shared?.execRoot ?? (await mkdtemp(join(tmpdir(), 'cnmt-ctl-')));
  const firewall = shared?.firewall ?? new RecordingFirewall();
  const balancer = shared?.balancer ?? new RecordingSandboxBalancer();
  const k = wrapKernel(kernel);
  const dns = createTestDiscovery();
  const drivers = new Map<string, AnyNetworkDriver>(
    [new BridgeDriver(k), new HostDriver(), new NullDriver(), ...extraDrivers].map((d) => [d.name, d as AnyNetworkDriver]),
  );
  const { controller } = await CnmController.start(
    {
      store,
      storeKind: 'memory',
      kernel: k,
      firewall,
      balancer,
      ipam: new DefaultIpam({ v4Pools: DEFAULT_V4_POOLS, v6Pools: [ulaPoolForHost('0123456789abcdef')] }),
      drivers,
      files: new SandboxFiles(execRoot, join(execRoot, 'host-resolv.conf')),
      discovery: dns.discovery,
      rootDir: execRoot,
      execRoot,
      logger: silentLogger,
    },
    { bridgeName: 'cnm0' },
  );
  const self: Harness = {
    controller,
    kernel,
    store,
    firewall,
    balancer,
    dns,
    execRoot,
    restart: () => startHarness({ kernel, store, execRoot, firewall, balancer }, wrapKernel, extraDrivers),
    cleanup: async () => {
      await rm(execRoot, { recursive: true, force: true });
    },
  };
  return self;
}

/** The real API server in front of a harness's controller, on a socket in its exec root. */
export async function serveApi(h: Harness): Promise<{ socketPath: string; server: ApiServer }> {
  const socketPath = join(h.execRoot, 'api.sock');
  const server = await startApiServer({
    controller: h.controller,
    socketPath,
    logger: silentLogger,
    version: '0.1.0',
    daemon: { pid: process.pid, rootDir: h.execRoot, execRoot: h.execRoot },
  });
  return { socketPath, server };
}
