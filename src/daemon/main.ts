/**
 * `cnm daemon`: the only place that picks concrete implementations and wires them together.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CnmController } from '../controller/controller.js';
import { Repository } from '../controller/repository.js';
import { SandboxFiles } from '../controller/sandbox-files.js';
import { BridgeDriver } from '../drivers/bridge/driver.js';
import { OverlayDriver } from '../drivers/overlay/driver.js';
import { HostDriver, NullDriver } from '../drivers/simple.js';
import type { AnyNetworkDriver } from '../drivers/types.js';
import { DnsRegistry, EmbeddedDnsDiscovery, EmbeddedDnsServer, parseResolvConf, type ResolverConfig } from '../dns/index.js';
import { errorMessage } from '../errors.js';
import { NftFirewall } from '../firewall/nft-firewall.js';
import { ConntrackCli } from '../firewall/conntrack.js';
import { FirewallWatchdog } from '../firewall/watchdog.js';
import { DEFAULT_V4_POOLS, DefaultIpam, parseAddressPoolFlag, ulaPoolForHost } from '../ipam/default.js';
import { readHostPortFacts } from '../kernel/host-ports.js';
import { ownerGroupFor, type KernelOps } from '../kernel/types.js';
import type { NftRunner, SandboxBalancer } from '../firewall/types.js';
import { hostDirectory } from '../store/membership.js';
import { SqliteStore } from '../store/sqlite.js';
import { joinCluster, openClusterStore } from './cluster.js';
import { NamespaceWatch } from './namespace-watch.js';
import { startApiServer } from '../api/server.js';
import { startDockerPluginServer } from '../api/docker-plugin/server.js';
import { resolveGroup } from '../api/socket.js';
import { createLogger, type Logger } from '../util/log.js';
import { DAEMON_USAGE, parseDaemonArgs, type DaemonConfig } from './config.js';

export const CNM_VERSION = '0.1.0';
const HOST_RESOLV_CONF = '/etc/resolv.conf';

export async function runDaemon(argv: string[]): Promise<void> {
  const config = parseDaemonArgs(argv);
  if (config === 'help') {
    process.stdout.write(DAEMON_USAGE);
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('cnm daemon must run as root (it manages network namespaces, links and nftables)');
  const daemon = await startDaemon(config);
  // Last resort. No request reaches these (every handler answers its own errors); a bug in a
  // background task must be logged, not take every sandbox's DNS and the API down with it.
  process.on('unhandledRejection', (err) => daemon.logger.error('unhandled rejection (bug)', { err }));
  process.on('uncaughtException', (err) => daemon.logger.error('uncaught exception (bug)', { err }));
  const stop = async (signal: string) => {
    daemon.logger.info('shutting down', { signal });
    await daemon.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

export interface RunningDaemon {
  controller: CnmController;
  logger: ReturnType<typeof createLogger>;
  close(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig): Promise<RunningDaemon> {
  const logger = createLogger(config.logLevel, { component: 'cnm' });
  // Files are created as the daemon means them, whatever umask it was started with.
  process.umask(0o022);
  const socketGid = config.group === undefined ? 0 : resolveGroup(config.group);
  await prepareStateDirs(config);
  const pidFile = join(config.execRoot, 'cnm.pid');
  await claimPidFile(pidFile);

  // Before the kernel is touched: a daemon that cannot reach its cluster store changes nothing.
  const clusterStore = config.cluster ? await openClusterStore(config.cluster, logger) : undefined;
  await writeSysctl('/proc/sys/net/ipv4/ip_forward', '1', logger);
  await writeSysctl('/proc/sys/net/ipv6/conf/all/forwarding', '1', logger);

  const store = await SqliteStore.open(join(config.root, 'cnm.db'));
  const repo = new Repository(store);
  const hostId = await repo.putSettingOnce('host-id', randomBytes(16).toString('hex'));
  // The mark of this daemon's links: its state root and its namespace (a link moved in from another cnm
  // daemon's namespace carries that daemon's mark, not ours).
  const ownerGroup = ownerGroupFor(`${resolve(config.root)}\0${(await stat('/proc/self/ns/net')).ino}`);
  const kernel = await createKernel(config, logger);
  const runner = await createNftRunner(config);
  const firewall = new NftFirewall(runner, new ConntrackCli(logger.child({ component: 'firewall' })));
  const balancer = await createSandboxBalancer(config);
  const v4Pools = config.defaultAddressPools.length > 0 ? config.defaultAddressPools.map(parseAddressPoolFlag) : DEFAULT_V4_POOLS;
  const ipam = new DefaultIpam({ v4Pools, v6Pools: [ulaPoolForHost(hostId)] });
  // Overlay networks span hosts: only a daemon in a cluster (a shared store, an advertise address) has them.
  const overlay = config.cluster
    ? [new OverlayDriver({ kernel, vtep: config.cluster.advertiseAddr, dataPathPort: config.cluster.dataPathPort, ownerGroup, logger: logger.child({ component: 'overlay' }) })]
    : [];
  const drivers = new Map<string, AnyNetworkDriver>(
    [new BridgeDriver(kernel, ownerGroup), new HostDriver(), new NullDriver(), ...overlay].map((d) => [d.name, d as AnyNetworkDriver]),
  );

  const dnsRegistry = new DnsRegistry();
  dnsRegistry.setHostDns(await hostResolverConfig(config.dns));
  const dnsServer = new EmbeddedDnsServer(dnsRegistry, logger.child({ component: 'dns' }));

  const started = Date.now();
  const { controller, report } = await CnmController.start(
    {
      store,
      storeKind: 'sqlite',
      kernel,
      firewall,
      balancer,
      ipam,
      drivers,
      files: new SandboxFiles(config.execRoot, HOST_RESOLV_CONF, config.dns),
      discovery: new EmbeddedDnsDiscovery(dnsRegistry, dnsServer),
      rootDir: config.root,
      execRoot: config.execRoot,
      logger,
      maxQueuedChanges: config.maxQueuedChanges,
      ownerGroup,
      hostPorts: readHostPortFacts,
      // Global-scope networks live in the cluster store; without one they are refused.
      ...(clusterStore && config.cluster
        ? { cluster: { store: clusterStore, hostId, advertiseAddr: config.cluster.advertiseAddr, hosts: hostDirectory(clusterStore) } }
        : {}),
    },
    { bridgeName: config.bridgeName, subnet: config.bip, mtu: config.mtu },
  );
  logger.info('reconciled kernel with store', { ms: Date.now() - started, ownerGroup, ...report });

  // The plugin door first: once the API answers (what clients and tests wait for), dockerd can use it too.
  const plugin = config.dockerPlugin
    ? await startDockerPluginServer({
        controller,
        name: config.dockerPlugin.name,
        socketPath: config.dockerPlugin.socket,
        logger,
        limits: { maxConnections: config.maxConnections },
      })
    : undefined;
  const api = await startApiServer({
    controller,
    socketPath: config.socket,
    logger,
    version: CNM_VERSION,
    daemon: { pid: process.pid, rootDir: config.root, execRoot: config.execRoot },
    socketGid,
    limits: { maxConnections: config.maxConnections },
  }).catch(async (err) => {
    await plugin?.close();
    throw err;
  });
  logger.info('API listening', { socket: config.socket, pid: process.pid });

  const watchdog = config.firewallCheckInterval > 0 ? await startFirewallWatchdog(controller, config, logger) : undefined;
  const namespaceWatch = await startNamespaceWatch(controller, config, logger);
  // Networks that could not be restored at start-up are tried again on the backstop period, and every
  // global network's peers are sent to its driver again (it repairs its tables to match).
  const retryBroken =
    config.firewallCheckInterval > 0
      ? setInterval(() => {
          controller.retryBrokenNetworks().catch((err) => logger.error('retry of broken networks failed', { error: errorMessage(err) }));
          if (clusterStore) controller.syncCluster().catch((err) => logger.error('cluster peers check failed', { error: errorMessage(err) }));
        }, config.firewallCheckInterval * 1000)
      : undefined;
  retryBroken?.unref();
  // Last: a host announces itself to the cluster once it serves (and a failed start leaves no lease).
  const cluster = clusterStore && config.cluster ? await joinCluster(clusterStore, config.cluster, hostId, logger) : undefined;

  return {
    controller,
    logger,
    async close() {
      await watchdog?.close();
      await namespaceWatch.close();
      if (retryBroken) clearInterval(retryBroken);
      await plugin?.close();
      await api.close();
      await controller.close();
      await dnsServer.close();
      await cluster?.close();
      await store.close();
      firewall.close();
      // Let background link deletions finish so a clean stop leaves no tombstone behind.
      await kernel.settle().catch(() => undefined);
      kernel.close();
      await rm(pidFile, { force: true });
    },
  };
}

/**
 * State directories, their modes set also when they already existed: the store is root's alone (0700);
 * the exec root and the sandbox files below it can be traversed (0711) — the socket lives there and
 * a sandbox's resolv.conf / hosts are bound into it — but not listed; namespace pins are root's (0700).
 */
async function prepareStateDirs(config: DaemonConfig): Promise<void> {
  const dirs: Array<[string, number]> = [
    [config.root, 0o700],
    [config.execRoot, 0o711],
    [join(config.execRoot, 'netns'), 0o700],
    [join(config.execRoot, 'sandboxes'), 0o711],
  ];
  for (const [dir, mode] of dirs) {
    await mkdir(dir, { recursive: true, mode });
    await chmod(dir, mode);
  }
}

/**
 * Restore cnm's rules when another process changes them: nftables events in the daemon's namespace
 * (where its rules are) trigger a check at once, --firewall-check-interval is the periodic backstop.
 */
async function startFirewallWatchdog(controller: CnmController, config: DaemonConfig, logger: ReturnType<typeof createLogger>): Promise<FirewallWatchdog> {
  const { NftEventMonitor } = await import('../kernel/netlink/nft-monitor.js');
  const { loadLibc } = await import('../kernel/netlink/libc.js');
  return new FirewallWatchdog({
    check: () => controller.restoreFirewallIfLost(),
    backstopMs: config.firewallCheckInterval * 1000,
    openEvents: (handlers) => NftEventMonitor.open(loadLibc(), handlers),
    logger: logger.child({ component: 'firewall' }),
  });
}

/** Sandboxes following another runtime's namespace (CNI) are released when it dies: see NamespaceWatch. */
async function startNamespaceWatch(controller: CnmController, config: DaemonConfig, logger: Logger): Promise<NamespaceWatch> {
  const { LinkRemovalMonitor } = await import('../kernel/netlink/link-monitor.js');
  const { loadLibc } = await import('../kernel/netlink/libc.js');
  return new NamespaceWatch({
    release: () => controller.releaseLostSandboxes(),
    openLinkEvents: (onRemoved, onLoss) => LinkRemovalMonitor.open(loadLibc(), onRemoved, onLoss),
    backstopMs: config.firewallCheckInterval * 1000,
    logger: logger.child({ component: 'netns-watch' }),
  });
}

/** Implementations are loaded on demand: the FFI ones pull in koffi and native libraries. */
async function createKernel(config: DaemonConfig, logger: Logger): Promise<KernelOps> {
  // netlink (in-process, default) is the fast path; iproute2 spawns a process per step and is kept as the
  // readable reference implementation (both pass the same conformance suite).
  if (config.kernel === 'iproute') return new (await import('../kernel/iproute.js')).IprouteKernel({});
  return new (await import('../kernel/netlink/kernel.js')).NetlinkKernel({
    onBackgroundError: (err) => logger.error('background link deletion failed; left for the next start or stop', { error: errorMessage(err) }),
  });
}

async function createNftRunner(config: DaemonConfig): Promise<NftRunner> {
  if (config.nft === 'cli') return new (await import('../firewall/runner-cli.js')).CliNftRunner({});
  return new (await import('../firewall/runner-libnft.js')).LibNftRunner({});
}

/** Service balancing inside sandboxes: a runner of the same kind as the host's, made per call in the sandbox's namespace. */
async function createSandboxBalancer(config: DaemonConfig): Promise<SandboxBalancer> {
  const { NftSandboxBalancer } = await import('../firewall/sandbox-lb.js');
  if (config.nft === 'cli') {
    const { CliNftRunner } = await import('../firewall/runner-cli.js');
    return new NftSandboxBalancer((netnsPath) => new CliNftRunner({ netnsPath }));
  }
  const { LibNftRunner } = await import('../firewall/runner-libnft.js');
  return new NftSandboxBalancer((netnsPath) => new LibNftRunner({ netnsPath }));
}

/**
 * Where the embedded DNS forwards what it does not own: the host's resolv.conf, each kind of entry
 * replaced by the daemon's --dns* flags. Loopback servers (systemd-resolved's 127.0.0.53) are kept: the
 * daemon queries these from its own namespace, where they are reachable.
 */
async function hostResolverConfig(overrides: ResolverConfig): Promise<ResolverConfig> {
  const host = parseResolvConf(await readFile(HOST_RESOLV_CONF, 'utf8').catch(() => ''));
  const pick = (own: string[], fromHost: string[]) => (own.length > 0 ? own : fromHost);
  return {
    servers: pick(overrides.servers, host.servers),
    search: pick(overrides.search, host.search),
    options: pick(overrides.options, host.options),
  };
}

/** One daemon per exec root: refuse to start when the recorded PID is still a live process. */
async function claimPidFile(path: string): Promise<void> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    if (pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new Error(`another cnm daemon (pid ${pid}) is running with this exec root (${path})`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await writeFile(path, `${process.pid}\n`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function writeSysctl(path: string, value: string, logger: ReturnType<typeof createLogger>): Promise<void> {
  try {
    await writeFile(path, value);
  } catch (err) {
    logger.warn('could not set sysctl', { path, error: errorMessage(err) });
  }
}
