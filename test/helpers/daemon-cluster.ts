/**
 * Three real cnm daemons on a real 3-member etcd, for the multi-host tests: one daemon per "host"
 * namespace (makeUnderlayHosts: 10.199.0.<i> on an underlay bridge), each with --cluster-store on the
 * members' unix sockets, --advertise-addr its underlay address and --host-ttl `ttl`. `--dns 127.0.0.1`
 * (nothing listens there): a name the embedded DNS does not own is never answered from outside.
 *
 *   const cluster = await startDaemonCluster({ ttl: 3 });   // in before()
 *   await cluster.close();                                   // in after(): daemons, namespaces, etcd
 *
 * Also the probes these tests share: `until` (polling, convergence not speed), `cli` (exit 0 or fail),
 * `ping` (0 answered / 1 not; could not run fails) and `resolveA` (the embedded DNS's answer).
 */
import assert from 'node:assert/strict';
import { startTestDaemon, type TestDaemon } from './daemon.js';
import { startEtcdCluster, type EtcdCluster } from './etcd.js';
import { deleteTestNetns } from './netns.js';
import { dig, reached } from './probe.js';
import { makeUnderlayHosts, underlayAddress } from './underlay.js';

export interface DaemonCluster {
  etcd: EtcdCluster;
  /** Host i+1's daemon at index i. */
  daemons: TestDaemon[];
  close(): Promise<void>;
}

export async function startDaemonCluster(options: { ttl: number; hosts?: number; extraArgs?: string[] }): Promise<DaemonCluster> {
  const namespaces: string[] = [];
  const daemons: TestDaemon[] = [];
  let etcd: EtcdCluster | undefined;
  const close = async () => {
    for (const d of daemons) await d.cleanup().catch(() => {});
    for (const ns of namespaces.reverse()) deleteTestNetns(ns);
    await etcd?.close();
  };
  try {
    etcd = await startEtcdCluster(3);
    const { hosts } = makeUnderlayHosts(options.hosts ?? 3, namespaces);
    const store = `unix://${etcd.endpoints.map((e) => e.slice('unix:'.length)).join(',')}`;
    for (const [i, hostNs] of hosts.entries()) {
      const args = ['--dns', '127.0.0.1', '--cluster-store', store, '--advertise-addr', underlayAddress(i + 1), '--host-ttl', String(options.ttl), ...(options.extraArgs ?? [])];
      daemons.push(await startTestDaemon(args, { hostNs }));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { etcd, daemons, close };
}

/** Polls `check` every 200 ms until true; throws `what` after `ms` (convergence, not speed). */
export async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not converged within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs the CLI against `d`; fails the test unless it exits 0. Returns stdout. */
export async function cli(d: TestDaemon, ...args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** 0 answered, 1 no answer; anything else (ping missing, sandbox gone) fails the test. */
export async function ping(d: TestDaemon, from: string, ip: string): Promise<number> {
  const r = await d.exec(from, ['ping', '-c1', '-W1', ip]);
  assert.ok(r.code === 0 || r.code === 1, `ping could not run: ${r.code} ${r.stderr}`);
  return r.code;
}

/** The A records the embedded DNS of `from` answers for `name`, and the status (the query must be answered). */
export async function resolveA(d: TestDaemon, from: string, name: string): Promise<{ status: string; addresses: string[] }> {
  const out = reached(await dig((argv) => d.exec(from, argv), '127.0.0.11', [name, 'A']), `dig ${name} from ${from}`);
  const addresses = [...out.matchAll(/\sIN\s+A\s+(\S+)/g)].map((m) => m[1]!);
  return { status: /status: (\w+)/.exec(out)![1]!, addresses };
}

/** The IPv4 address (no prefix) of this host's sandbox `name` on `network`, from the Docker API's inspect. */
export async function sandboxAddress(d: TestDaemon, network: string, name: string): Promise<string> {
  const inspect = (await d.api('GET', `/networks/${network}`)).json() as { Containers: Record<string, { Name: string; IPv4Address: string }> };
  const c = Object.values(inspect.Containers).find((x) => x.Name === name);
  assert.ok(c, `${name} on ${network} in ${JSON.stringify(inspect.Containers)}`);
  return c.IPv4Address.split('/')[0]!;
}
