/** GET /version and GET /info in Docker's shapes (types.Version, system.Info). */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { API_VERSION, MIN_API_VERSION } from './router.js';

/** Facts about the host that do not change while the daemon runs; gathered once per server. */
export interface HostFacts {
  hostname: string;
  kernelVersion: string;
  operatingSystem: string;
  osVersion: string;
  /** uname -m style ("x86_64"). */
  machine: string;
  /** Go style ("amd64"). */
  goArch: string;
  ncpu: number;
  memTotal: number;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function gatherHostFacts(): HostFacts {
  const osRelease = readOsRelease();
  return {
    hostname: os.hostname(),
    kernelVersion: os.release(),
    operatingSystem: osRelease.PRETTY_NAME ?? 'Linux',
    osVersion: osRelease.VERSION_ID ?? '',
    machine: os.machine(),
    goArch: GO_ARCH[process.arch] ?? process.arch,
    ncpu: os.availableParallelism(),
    memTotal: os.totalmem(),
  };
}

function readOsRelease(): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    }
    return out;
  } catch {
    return {};
  }
}

export function renderVersion(version: string, host: HostFacts): Record<string, unknown> {
  return {
    Platform: { Name: 'cnm' },
    Components: [
      {
        Name: 'Engine',
        Version: version,
        Details: {
          ApiVersion: API_VERSION,
          Arch: host.goArch,
          BuildTime: '',
          Experimental: 'false',
          GitCommit: '',
          GoVersion: `node ${process.version}`,
          KernelVersion: host.kernelVersion,
          MinAPIVersion: MIN_API_VERSION,
          Os: 'linux',
        },
      },
    ],
    Version: version,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: `node ${process.version}`,
    Os: 'linux',
    Arch: host.goArch,
    KernelVersion: host.kernelVersion,
    BuildTime: '',
  };
}

export interface InfoFacts {
  networks: number;
  sandboxes: number;
  endpoints: number;
  storeKind: string;
  rootDir: string;
  execRoot: string;
  pid: number;
  /** Names of the network drivers registered (the overlay only with a cluster store). */
  drivers: string[];
}

/** Enough of system.Info for `docker info` to print; container counts are sandbox counts. */
export function renderInfo(version: string, host: HostFacts, facts: InfoFacts, eventListeners: number): Record<string, unknown> {
  return {
    ID: '',
    Containers: facts.sandboxes,
    ContainersRunning: facts.sandboxes,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: '',
    DriverStatus: [],
    Plugins: { Volume: [], Network: facts.drivers, Authorization: null, Log: [] },
    MemoryLimit: false,
    SwapLimit: false,
    CpuCfsPeriod: false,
    CpuCfsQuota: false,
    CPUShares: false,
    CPUSet: false,
    PidsLimit: false,
    IPv4Forwarding: true,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: '',
    CgroupDriver: '',
    CgroupVersion: '',
    NEventsListener: eventListeners,
    KernelVersion: host.kernelVersion,
    OperatingSystem: host.operatingSystem,
    OSVersion: host.osVersion,
    OSType: 'linux',
    Architecture: host.machine,
    IndexServerAddress: '',
    RegistryConfig: null,
    NCPU: host.ncpu,
    MemTotal: host.memTotal,
    GenericResources: null,
    DockerRootDir: facts.rootDir,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: host.hostname,
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: version,
    Runtimes: {},
    DefaultRuntime: '',
    Swarm: {
      NodeID: '',
      NodeAddr: '',
      LocalNodeState: 'inactive',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: null,
    },
    LiveRestoreEnabled: true,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '' },
    RuncCommit: { ID: '' },
    InitCommit: { ID: '' },
    SecurityOptions: [],
    Warnings: null,
    // cnm's own facts (ignored by Docker clients).
    CnmEndpoints: facts.endpoints,
    CnmNetworks: facts.networks,
    CnmStore: facts.storeKind,
    CnmExecRoot: facts.execRoot,
    CnmPid: facts.pid,
  };
}
