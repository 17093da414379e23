/**
 * Several "hosts" of one cnm cluster in this process, for control-plane tests on a real etcd: each host is
 * a controller on the recording kernel with its own local store, its own EtcdStore on the shared etcd
 * (one key prefix per test), the bridge driver and the recording global driver. Registration in the
 * membership is in-process (Membership.join), or left to the test (`register: false`: a child process
 * that can be SIGKILLed, so its lease expires as a dead host's does).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CnmController } from '../../src/controller/controller.js';
import { SandboxFiles } from '../../src/controller/sandbox-files.js';
import { BridgeDriver } from '../../src/drivers/bridge/driver.js';
import { HostDriver, NullDriver } from '../../src/drivers/simple.js';
import type { AnyNetworkDriver } from '../../src/drivers/types.js';
import { DEFAULT_V4_POOLS, DefaultIpam, ulaPoolForHost } from '../../src/ipam/default.js';
import { FakeKernel } from '../../src/kernel/fake.js';
import { EtcdStore } from '../../src/store/etcd.js';
import { hostDirectory, Membership } from '../../src/store/membership.js';
import { MemoryStore } from '../../src/store/memory.js';
import { silentLogger } from '../../src/util/log.js';
import { startEtcdCluster, type EtcdCluster } from './etcd.js';
import { createTestDiscovery, type TestDiscovery } from './fake-discovery.js';
import { RecordingFirewall, RecordingSandboxBalancer } from './fake-firewall.js';
import { RecordingGlobalDriver } from './global-driver.js';

export interface ClusterHostOptions {
  endpoints: string[];
  /** The etcd key prefix of this test's cluster. */
  prefix: string;
  hostId: string;
  advertiseAddr: string;
  /** Register in the membership in-process (default true). */
  register?: boolean;
  ttlSeconds?: number;
}

export interface ClusterHost {
  id: string;
  controller: CnmController;
  driver: RecordingGlobalDriver;
  /** What each sandbox of this host balances (kept across restart(), as the sandboxes' namespaces are). */
  balancer: RecordingSandboxBalancer;
  /** The host's own firewall (nftables of its namespace). */
  firewall: RecordingFirewall;
  /** The host's real service discovery (registry), with the DNS server's sockets recorded. */
  dns: TestDiscovery;
  kernel: FakeKernel;
  local: MemoryStore;
  shared: EtcdStore;
  /** Stop this host's controller (and its membership: a clean leave) keeping its local state. */
  stop(): Promise<void>;
  /** Stop, then start a new controller on the same local store and kernel (a daemon restart). */
  restart(): Promise<ClusterHost>;
  /** Stop and remove the host's temp dir. */
  destroy(): Promise<void>;
  /**
   * The host dies: its connection to etcd is cut without a goodbye, so its lease is not revoked and
   * expires after the TTL, as a SIGKILLed daemon's does.
   */
  crash(): Promise<void>;
}

interface LocalParts {
  balancer: RecordingSandboxBalancer;
  kernel: FakeKernel;
  local: MemoryStore;
  execRoot: string;
}

export async function startClusterHost(options: ClusterHostOptions, parts?: LocalParts): Promise<ClusterHost> {
  const kernel = parts?.kernel ?? new FakeKernel();
  const balancer = parts?.balancer ?? new RecordingSandboxBalancer();
  const firewall = new RecordingFirewall();
  const local = parts?.local ?? new MemoryStore();
  const execRoot = parts?.execRoot ?? (await mkdtemp(join(tmpdir(), 'cnmt-host-')));
  const shared = await EtcdStore.open({ endpoints: options.endpoints, prefix: options.prefix, callTimeoutMs: 3000 });
  const driver = new RecordingGlobalDriver();
  const dns = createTestDiscovery();
  const drivers = new Map<string, AnyNetworkDriver>(
    [new BridgeDriver(kernel), new HostDriver(), new NullDriver(), driver].map((d) => [d.name, d as AnyNetworkDriver]),
  );
  let controller: CnmController;
  try {
    ({ controller } = await CnmController.start(
      {
        store: local,
        storeKind: 'memory',
        kernel,
        firewall,
        balancer,
        ipam: new DefaultIpam({ v4Pools: DEFAULT_V4_POOLS, v6Pools: [ulaPoolForHost('0123456789abcdef')] }),
        drivers,
        files: new SandboxFiles(execRoot, join(execRoot, 'host-resolv.conf')),
        discovery: dns.discovery,
        rootDir: execRoot,
        execRoot,
        logger: silentLogger,
        cluster: { store: shared, hostId: options.hostId, advertiseAddr: options.advertiseAddr, hosts: hostDirectory(shared) },
      },
      { bridgeName: 'cnm0' },
    ));
  } catch (err) {
    await shared.close();
    throw err;
  }
  const membership =
    options.register === false
      ? undefined
      : await Membership.join({ store: shared, hostId: options.hostId, advertiseAddr: options.advertiseAddr, ttlSeconds: options.ttlSeconds ?? 10 });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await controller.close();
    await membership?.close();
    await shared.close();
  };
  return {
    id: options.hostId,
    controller,
    driver,
    balancer,
    firewall,
    dns,
    kernel,
    local,
    shared,
    stop,
    async restart() {
      await stop();
      return startClusterHost(options, { kernel, local, execRoot, balancer });
    },
    async crash() {
      if (stopped) return;
      stopped = true;
      await controller.close();
      await shared.close();
      await membership?.close(); // only stops its timers now: the revoke cannot reach etcd
    },
    async destroy() {
      await stop();
      await rm(execRoot, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns true (every 25 ms); throws `what` after `ms`. Convergence, not speed. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not converged within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The control-plane cluster tests' fixture, registered in the calling describe: one etcd member for
 * the whole describe; `threeHosts(ttl)` starts three hosts on a fresh key prefix and waits until each
 * sees the three registrations; `adopt(host)` hands over one a test started itself. All of it goes
 * after the describe, also on failure.
 */
export function threeHostsOnEtcd(): {
  etcd(): EtcdCluster;
  threeHosts(ttlSeconds?: number): Promise<[ClusterHost, ClusterHost, ClusterHost]>;
  adopt(host: ClusterHost): void;
} {
  let etcd: EtcdCluster | undefined;
  const hosts: ClusterHost[] = [];
  before(async () => {
    etcd = await startEtcdCluster(1);
  });
  after(async () => {
    for (const h of hosts) await h.destroy().catch(() => {});
    await etcd?.close();
  });
  const running = () => {
    if (!etcd) throw new Error('etcd is not started (threeHostsOnEtcd runs before() of its describe)');
    return etcd;
  };
  return {
    etcd: running,
    async threeHosts(ttlSeconds = 10) {
      const prefix = `/cnmt/${randomBytes(4).toString('hex')}/`;
      const started = await Promise.all(
        [1, 2, 3].map((i) =>
          startClusterHost({ endpoints: running().endpoints, prefix, hostId: `host-${i}`, advertiseAddr: `192.0.2.${i}`, ttlSeconds }),
        ),
      );
      hosts.push(...started);
      for (const h of started) await until(`${h.id} sees 3 hosts`, async () => (await h.shared.list('hosts/')).length === 3);
      return started as [ClusterHost, ClusterHost, ClusterHost];
    },
    adopt: (host) => void hosts.push(host),
  };
}
