/** `npm run bench -- [flags]` → typed options; every flag also has a CNM_BENCH_* environment variable. */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  quick: boolean;
  /** Samples per latency row and system. */
  reps: number;
  /** Endpoints already on the network for the connect / disconnect rows (ascending). */
  sizes: number[];
  /** Sandbox create+remove operations per throughput measurement. */
  throughputOps: number;
  /** Throughput measurements per system and concurrency (the median is reported). */
  throughputRounds: number;
  concurrency: number[];
  restartReps: number;
  /** Give up waiting for endpoints after a restart after this long. */
  restartTimeoutS: number;
  /** Docker rows need one container per endpoint: sizes above this are skipped for Docker. */
  dockerMaxEndpoints: number;
  docker: boolean;
  /** Passed to `cnm daemon --kernel`; undefined = the daemon's default. */
  cnmKernel?: 'iproute' | 'netlink';
  /** Row groups to run (default: all of BENCH_GROUPS). */
  only: ReadonlySet<BenchGroup>;
  outDir: string;
}

/** The bench's row groups, in the order they run; `memory` and `restart` use the `connect` population. */
export const BENCH_GROUPS = ['network', 'first-connect', 'throughput', 'connect', 'memory', 'restart'] as const;
export type BenchGroup = (typeof BENCH_GROUPS)[number];

export const BENCH_USAGE = `Usage: npm run bench -- [OPTIONS]

  --quick                       smoke run: 10 reps, sizes 1,100, short throughput and one restart
  --reps N                      samples per latency row and system (default 100)      CNM_BENCH_REPS
  --sizes 1,100,1000            endpoints already on the network for connect rows      CNM_BENCH_SIZES
  --throughput-ops N            create+remove per throughput run (default 64)          CNM_BENCH_THROUGHPUT_OPS
  --throughput-rounds N         throughput runs per system, median reported (default 3)
  --concurrency 1,16            concurrent clients for the throughput rows
  --restart-reps N              daemon restarts per system (default 3)                  CNM_BENCH_RESTART_REPS
  --restart-timeout S           give up waiting for reachability (default 900)
  --docker-max-endpoints N      skip Docker rows above N endpoints (default: no limit)  CNM_BENCH_DOCKER_MAX_ENDPOINTS
  --no-docker                   cnm (and the kernel floor) only                          CNM_BENCH_NO_DOCKER=1
  --cnm-kernel iproute|netlink  cnm daemon --kernel (default: the daemon's default)      CNM_BENCH_CNM_KERNEL
  --only GROUP,...              run only these row groups: network, first-connect, throughput,
                                connect, memory, restart (memory and restart fill the network as
                                connect does)                                            CNM_BENCH_ONLY
  --out DIR                     where JSON and SVG go (default bench/results)
`;

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

function intList(name: string, raw: string | undefined, fallback: number[]): number[] {
  if (raw === undefined || raw === '') return fallback;
  const list = raw.split(',').map((s) => positiveInt(name, s.trim(), 0));
  if (list.some((n) => n < 1)) throw new Error(`${name} entries must be ≥ 1`);
  return [...new Set(list)].sort((a, b) => a - b);
}

function groupList(raw: string | undefined): ReadonlySet<BenchGroup> {
  if (raw === undefined || raw.trim() === '') return new Set(BENCH_GROUPS);
  const groups = raw.split(',').map((g) => g.trim());
  const unknown = groups.filter((g) => !(BENCH_GROUPS as readonly string[]).includes(g));
  if (unknown.length > 0) throw new Error(`--only: unknown group ${unknown.join(', ')} (groups: ${BENCH_GROUPS.join(', ')})`);
  return new Set(groups as BenchGroup[]);
}

export function parseBenchArgs(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      reps: { type: 'string' },
      sizes: { type: 'string' },
      'throughput-ops': { type: 'string' },
      'throughput-rounds': { type: 'string' },
      concurrency: { type: 'string' },
      'restart-reps': { type: 'string' },
      'restart-timeout': { type: 'string' },
      'docker-max-endpoints': { type: 'string' },
      'no-docker': { type: 'boolean' },
      'cnm-kernel': { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) return 'help';
  const quick = Boolean(v.quick) || env.CNM_BENCH_QUICK === '1';
  const cnmKernel = v['cnm-kernel'] ?? env.CNM_BENCH_CNM_KERNEL;
  if (cnmKernel !== undefined && cnmKernel !== 'iproute' && cnmKernel !== 'netlink') {
    throw new Error(`--cnm-kernel must be iproute or netlink, got ${cnmKernel}`);
  }
  const reps = positiveInt('--reps', v.reps ?? env.CNM_BENCH_REPS, quick ? 10 : 100);
  return {
    quick,
    reps: Math.max(1, reps),
    sizes: intList('--sizes', v.sizes ?? env.CNM_BENCH_SIZES, quick ? [1, 100] : [1, 100, 1000]),
    throughputOps: Math.max(1, positiveInt('--throughput-ops', v['throughput-ops'] ?? env.CNM_BENCH_THROUGHPUT_OPS, quick ? 16 : 64)),
    throughputRounds: Math.max(1, positiveInt('--throughput-rounds', v['throughput-rounds'], quick ? 1 : 3)),
    concurrency: intList('--concurrency', v.concurrency, [1, 16]),
    restartReps: positiveInt('--restart-reps', v['restart-reps'] ?? env.CNM_BENCH_RESTART_REPS, quick ? 1 : 3),
    restartTimeoutS: Math.max(1, positiveInt('--restart-timeout', v['restart-timeout'], 900)),
    dockerMaxEndpoints: positiveInt('--docker-max-endpoints', v['docker-max-endpoints'] ?? env.CNM_BENCH_DOCKER_MAX_ENDPOINTS, Infinity),
    docker: !(v['no-docker'] || env.CNM_BENCH_NO_DOCKER === '1'),
    cnmKernel,
    only: groupList(v.only ?? env.CNM_BENCH_ONLY),
    outDir: v.out ?? 'bench/results',
  };
}
