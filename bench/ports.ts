/**
 * Published ports side by side (issue 13; README benchmark section):
 *
 *   node --import tsx bench/ports.ts [--sizes 1,100,1000] [--reps 5] [--big-reps 2] [--population 10000] [--no-docker]
 *
 * Subjects, each through its own API and in its own throwaway cnmt-* namespace, alternating per rep:
 * the compiled cnm daemon (a sandbox with N ports), Debian's dockerd with its default docker-proxy, and a
 * second dockerd with --userland-proxy=false (a busybox container with N ports: create + start). A row
 * is create (+ start) then remove of one sandbox / container with N published ports (container port
 * 10000+i → host port 20000+i, so no run of kept ports folds into one element). Then the cost of one
 * more port with 0 and with POPULATION ports already published: a 1-port sandbox create + rm on the
 * daemon, and the firewall's own transaction (NftFirewall over libnftables in a throwaway namespace,
 * add + remove of one port's elements). Docker is not run at 10,000 ports (20,000 docker-proxy
 * processes, or minutes of iptables calls). p50 of the reps; the machine's load average is printed.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { LibNftRunner } from '../src/firewall/runner-libnft.js';
import { NftFirewall } from '../src/firewall/nft-firewall.js';
import type { FirewallPort, FirewallPorts } from '../src/firewall/types.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../test/helpers/netns.js';
import { buildDist } from './lib/build.js';
import { Cleanup } from './lib/cleanup.js';
import { BENCH_IMAGE, startDockerd } from './lib/dockerd.js';
import type { SocketClient } from './lib/http.js';
import { median, timeMs } from './lib/stats.js';
import { startCnm } from './lib/systems.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,100,1000' },
    reps: { type: 'string', default: '5' },
    'big-reps': { type: 'string', default: '2' },
    population: { type: 'string', default: '10000' },
    'no-docker': { type: 'boolean', default: false },
  },
});
const sizes = values.sizes!.split(',').map(Number);
const reps = Number(values.reps);
const bigReps = Number(values['big-reps']);
const population = Number(values.population);

const t0 = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`);

interface Subject {
  label: string;
  client: SocketClient;
  /** Create (and start) a workload publishing `n` ports on `network`; returns its ID. */
  create(name: string, network: string, n: number, firstHostPort?: number): Promise<string>;
  remove(id: string): Promise<void>;
}

function bindings(n: number, firstHostPort: number): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (let i = 0; i < n; i++) out[`${10000 + i}/tcp`] = [{ HostIp: '', HostPort: String(firstHostPort + i) }];
  return out;
}

function cnmSubject(client: SocketClient): Subject {
  return {
    label: 'cnm',
    client,
    async create(name, network, n, first = 20000) {
      return (await client.ok('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: network }], PortBindings: bindings(n, first) }, 600_000)).json().Id;
    },
    async remove(id) {
      await client.ok('DELETE', `/cnm/v1/sandboxes/${id}?force=1`, undefined, 600_000);
    },
  };
}

const CONTAINER_CMD = ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 86400 & wait'];

function dockerSubject(label: string, client: SocketClient): Subject {
  return {
    label,
    client,
    async create(name, network, n, first = 20000) {
      const portBindings = bindings(n, first);
      const body = {
        Image: BENCH_IMAGE,
        Cmd: CONTAINER_CMD,
        ExposedPorts: Object.fromEntries(Object.keys(portBindings).map((k) => [k, {}])),
        HostConfig: { NetworkMode: network, PortBindings: portBindings },
      };
      const id: string = (await client.ok('POST', `/containers/create?name=${name}`, body, 600_000)).json().Id;
      await client.ok('POST', `/containers/${id}/start`, undefined, 900_000);
      return id;
    },
    async remove(id) {
      await client.ok('DELETE', `/containers/${id}?force=1`, undefined, 900_000);
    },
  };
}

/** The firewall alone: one port's add + remove transaction at 0 and at `population` published ports. */
async function firewallFloor(reps: number): Promise<Record<string, number>> {
  const ns = createTestNetns('cnmt-bpf');
  const runner = new LibNftRunner({ netnsPath: netnsPath(ns) });
  try {
    const fw = new NftFirewall(runner);
    await fw.ensureBase();
    const one: FirewallPorts = { sandboxId: 'f'.repeat(64), ports: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 9, address: '10.0.0.9', containerPort: 80 }] };
    const measure = async (): Promise<{ add: number; remove: number }> => {
      const add: number[] = [];
      const remove: number[] = [];
      for (let i = 0; i < reps; i++) {
        add.push(await timeMs(() => fw.addPorts(one)));
        remove.push(await timeMs(() => fw.removePorts(one)));
      }
      return { add: median(add), remove: median(remove) };
    };
    const at0 = await measure();
    const ports: FirewallPort[] = [];
    for (let i = 0; i < population; i++) ports.push({ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 20000 + i, address: `10.1.${i >> 8}.${i & 255}`, containerPort: 10000 + (i % 50000) });
    const load = await timeMs(() => fw.addPorts({ sandboxId: 'e'.repeat(64), ports }));
    const atN = await measure();
    return { addAt0: at0.add, removeAt0: at0.remove, addAtN: atN.add, removeAtN: atN.remove, loadN: load };
  } finally {
    runner.close();
    deleteTestNetns(ns);
  }
}

async function main(): Promise<void> {
  const cleanup = new Cleanup(log);
  cleanup.exitOnSignals();
  try {
    log('building cnm (tsc into dist/)');
    const cnm = await startCnm(undefined, await buildDist());
    cleanup.add('cnm', () => cnm.stop());
    const subjects: Subject[] = [cnmSubject(cnm.client)];
    if (!values['no-docker']) {
      log('starting dockerd (default: docker-proxy) and dockerd --userland-proxy=false');
      const proxied = await startDockerd();
      cleanup.add('dockerd', () => proxied.stop());
      const direct = await startDockerd(['--userland-proxy=false']);
      cleanup.add('dockerd --userland-proxy=false', () => direct.stop());
      subjects.push(dockerSubject('docker (docker-proxy)', proxied.client), dockerSubject('docker (--userland-proxy=false)', direct.client));
      log(`Docker ${(await proxied.client.ok('GET', '/version')).json().Version}`);
    }
    for (const s of subjects) await s.client.ok('POST', '/networks/create', { Name: 'bench-ports' });

    const results = new Map<string, Map<number, number[]>>();
    for (const size of sizes) {
      const n = size >= 1000 ? bigReps : reps;
      for (let rep = 0; rep < n; rep++) {
        const order = subjects.map((_, i) => subjects[(i + rep) % subjects.length]!);
        for (const s of order) {
          const ms = await timeMs(async () => s.remove(await s.create(`bp-${size}-${rep}`, 'bench-ports', size)));
          const bySize = results.get(s.label) ?? new Map<number, number[]>();
          results.set(s.label, bySize);
          (bySize.get(size) ?? bySize.set(size, []).get(size)!).push(ms);
          log(`  ${s.label}: ${size} port(s), rep ${rep + 1}/${n}: ${ms.toFixed(1)} ms`);
        }
      }
    }

    // One more port at 0 and at `population` published (cnm only), through the daemon.
    const c = subjects[0]!;
    const oneMore = async (): Promise<number[]> => {
      const out: number[] = [];
      for (let rep = 0; rep < reps * 4; rep++) out.push(await timeMs(async () => c.remove(await c.create(`one-${rep}-${out.length}`, 'bench-ports', 1, 9000))));
      return out;
    };
    const at0 = await oneMore();
    log(`publishing ${population} ports in one sandbox`);
    const filler = await timeMs(() => c.create('filler', 'bench-ports', population, 30000).then(() => undefined));
    log(`  ${population} ports published in ${filler.toFixed(0)} ms`);
    const atN = await oneMore();
    log('firewall alone (libnftables, throwaway namespace)');
    const floor = await firewallFloor(reps * 10);

    const load = loadavg()[0]!.toFixed(1);
    console.log(`\nPublished ports, p50 (load average ${load} on ${(await import('node:os')).cpus().length} cores)\n`);
    const labels = subjects.map((s) => s.label);
    console.log(`| create + rm of one workload with N ports | ${labels.join(' | ')} | ${labels.slice(1).map((l) => `cnm vs ${l}`).join(' | ')} |`);
    console.log(`|---|${labels.map(() => '---').join('|')}|${labels.slice(1).map(() => '---').join('|')}|`);
    for (const size of sizes) {
      const p50 = labels.map((l) => median(results.get(l)?.get(size) ?? [NaN]));
      const cells = p50.map((v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`));
      const ratios = p50.slice(1).map((v) => `${(v / p50[0]!).toFixed(0)}×`);
      console.log(`| ${size} port${size === 1 ? '' : 's'} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
    }
    console.log(`\none more port (1-port sandbox create + rm) at 0 published: ${median(at0).toFixed(1)} ms; at ${population}: ${median(atN).toFixed(1)} ms (ratio ${(median(atN) / median(at0)).toFixed(2)}×)`);
    console.log(
      `firewall alone, one port: add ${floor.addAt0!.toFixed(2)} / remove ${floor.removeAt0!.toFixed(2)} ms at 0; ` +
        `add ${floor.addAtN!.toFixed(2)} / remove ${floor.removeAtN!.toFixed(2)} ms at ${population} (ratio ${(floor.addAtN! / floor.addAt0!).toFixed(2)}× / ${(floor.removeAtN! / floor.removeAt0!).toFixed(2)}×); ` +
        `${population} ports loaded in one transaction in ${floor.loadN!.toFixed(0)} ms`,
    );
  } finally {
    log('cleaning up');
    await cleanup.run();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
