/**
 * A real etcd cluster (Debian's etcd-server) for tests: 1 or 3 members, all in one throwaway cnmt-
 * namespace on its loopback (peer and client ports per member), data in a temp dir. Each member also
 * serves clients on a unix socket in that dir, so tests and daemons in any namespace reach it without
 * a route to the etcd namespace and without touching the machine's network.
 *
 *   const cluster = await startEtcdCluster(3);
 *   cluster.endpoints           // ['unix:/tmp/cnmt-etcd-…/m0.sock:0', …] for EtcdStore / --cluster-store
 *   await cluster.stop(1);      // SIGTERM (or stop(1, 'SIGKILL')); waits for the process to exit
 *   await cluster.restart(1);   // same data dir; resolves once the member answers again
 *   await cluster.close();      // kills every member, removes the namespace and the temp dir
 *
 * Everything is removed by close(), also when start fails; a process exit hook kills leftovers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestNetns, deleteTestNetns, netnsPath } from './netns.js';
import { noteForSweep, onKilled } from './teardown.js';

const execFileAsync = promisify(execFile);

export interface EtcdCluster {
  /** The namespace every member runs in. */
  readonly ns: string;
  readonly size: number;
  /** One unix-socket endpoint per member (`unix:/abs/path`), usable from any namespace. */
  readonly endpoints: string[];
  /** `127.0.0.1:port` per member, reachable only inside `ns`. */
  readonly tcpEndpoints: string[];
  /** With `tls: true`: the CA, a client certificate and an unrelated CA. */
  readonly tls?: EtcdTlsFiles;
  running(i: number): boolean;
  stop(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again on its data dir and waits until it answers. */
  restart(i: number): Promise<void>;
  /** The index of the current raft leader. */
  leader(): Promise<number>;
  /** SIGSTOP / SIGCONT: a member that hangs with its connections open (a freeze, a partition). */
  pause(i: number): void;
  resume(i: number): void;
  /** Runs etcdctl (API v3) against the given members (default: all); returns stdout. */
  etcdctl(args: string[], members?: number[]): Promise<string>;
  logs(i: number): string;
  close(): Promise<void>;
}

interface Member {
  name: string;
  dataDir: string;
  socketName: string;
  clientPort: number;
  peerPort: number;
  child?: ChildProcess;
  exited?: Promise<void>;
  output: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export interface EtcdClusterOptions {
  /** Serve clients over TLS only, requiring a client certificate (`cluster.tls` has the files). */
  tls?: boolean;
}

/** PEM files of a throwaway CA, the members' server certificate and a client certificate. */
export interface EtcdTlsFiles {
  ca: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing etcd trusts. */
  otherCa: string;
}

async function makeTlsFiles(dir: string): Promise<EtcdTlsFiles & { serverCert: string; serverKey: string }> {
  const f = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileAsync('openssl', args, { timeout: 30_000 });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await openssl(['req', '-x509', ...key, '-keyout', f(`${ca}.key`), '-out', f(`${ca}.pem`), '-days', '2', '-subj', `/CN=cnmt-${ca}`]);
  }
  const sign = async (name: string, cn: string, ext: string) => {
    await writeFile(f(`${name}.ext`), ext);
    await openssl(['req', ...key, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(`${name}.ext`)]);
  };
  await sign('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await sign('client', 'cnmt-client', 'extendedKeyUsage=clientAuth\n');
  return { ca: f('ca.pem'), clientCert: f('client.pem'), clientKey: f('client.key'), otherCa: f('other-ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key') };
}

export async function startEtcdCluster(size = 1, options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  installExitHook();
  const ns = createTestNetns();
  const base = await mkdtemp(join(tmpdir(), 'cnmt-etcd-'));
  const note = noteForSweep('dir', base);
  let tls: Awaited<ReturnType<typeof makeTlsFiles>> | undefined;
  try {
    if (options.tls) tls = await makeTlsFiles(base);
  } catch (err) {
    deleteTestNetns(ns);
    await rm(base, { recursive: true, force: true });
    note.forget();
    throw err;
  }
  const clientScheme = tls ? 'https' : 'http';
  const socketScheme = tls ? 'unixs' : 'unix';
  const tlsFlags = tls ? [`--cert-file=${tls.serverCert}`, `--key-file=${tls.serverKey}`, `--trusted-ca-file=${tls.ca}`, '--client-cert-auth'] : [];
  // etcdctl checks a unix socket's certificate against the socket path; the helper's own checks skip
  // that (cnm's client checks "localhost", what the certificate names).
  const ctlTls = tls ? [`--cacert=${tls.ca}`, `--cert=${tls.clientCert}`, `--key=${tls.clientKey}`, '--insecure-skip-tls-verify'] : [];
  const token = `cnmt-${randomBytes(4).toString('hex')}`;
  const members: Member[] = Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    dataDir: join(base, `m${i}`),
    socketName: `m${i}.sock:0`,
    clientPort: 23790 + i,
    peerPort: 23800 + i,
    output: '',
  }));
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const socketOf = (m: Member) => join(base, m.socketName);

  const launch = async (m: Member) => {
    await rm(socketOf(m), { force: true }); // a SIGKILLed member leaves its socket file behind
    m.output = '';
    const child = spawn(
      'nsenter',
      [
        `--net=${netnsPath(ns)}`,
        // Dies with the test process even when that is killed (a test runner's timeout): no stray etcd.
        'setpriv',
        '--pdeathsig=KILL',
        'etcd',
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${clientScheme}://127.0.0.1:${m.clientPort},${socketScheme}://${m.socketName}`,
        `--advertise-client-urls=${clientScheme}://127.0.0.1:${m.clientPort}`,
        ...tlsFlags,
        `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${token}`,
        '--initial-cluster-state=new',
        // etcd's defaults (100 ms, 1 s): shorter ones make a loaded test machine flap leaders.
        '--heartbeat-interval=100',
        '--election-timeout=1000',
      ],
      { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    live.add(child);
    m.child = child;
    const append = (d: Buffer) => {
      m.output = (m.output + d.toString()).slice(-64 * 1024);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    m.exited = new Promise((resolve) =>
      child.on('close', () => {
        live.delete(child);
        if (m.child === child) m.child = undefined;
        resolve();
      }),
    );
    child.on('error', (err) => append(Buffer.from(`spawn failed: ${err.message}\n`)));
  };

  const etcdctl = async (args: string[], which: number[] = members.map((_, i) => i)) => {
    const endpoints = which.map((i) => `${socketScheme}://${socketOf(members[i]!)}`).join(',');
    const { stdout } = await execFileAsync('etcdctl', [`--endpoints=${endpoints}`, '--command-timeout=2s', ...ctlTls, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: 10_000,
    });
    return stdout;
  };

  const waitHealthy = async (i: number) => {
    const m = members[i]!;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!m.child) throw new Error(`etcd member ${m.name} exited while starting:\n${m.output}`);
      try {
        // A linearizable read: answers only once the member has joined a cluster with a leader.
        await etcdctl(['get', '--limit=1', 'cnmt-health-probe'], [i]);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`etcd member ${m.name} not healthy after 30 s: ${(err as Error).message}\n${m.output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const stop = async (i: number, signal: NodeJS.Signals = 'SIGTERM') => {
    const m = members[i]!;
    if (!m.child) return;
    m.child.kill('SIGCONT'); // a paused member would not act on SIGTERM
    m.child.kill(signal);
    await m.exited;
  };

  const close = async () => {
    await Promise.all(members.map((_, i) => stop(i, 'SIGKILL')));
    deleteTestNetns(ns);
    await rm(base, { recursive: true, force: true });
    note.forget();
    unregister();
  };
  // Killed by the test runner: the same (test/helpers/teardown.ts).
  const unregister = onKilled(close);

  try {
    for (const m of members) await launch(m);
    await Promise.all(members.map((_, i) => waitHealthy(i)));
  } catch (err) {
    await close();
    throw err;
  }

  return {
    ns,
    size,
    endpoints: members.map((m) => `unix:${socketOf(m)}`),
    tcpEndpoints: members.map((m) => `127.0.0.1:${m.clientPort}`),
    tls: tls && { ca: tls.ca, clientCert: tls.clientCert, clientKey: tls.clientKey, otherCa: tls.otherCa },
    running: (i) => members[i]!.child !== undefined,
    stop,
    async restart(i) {
      await stop(i);
      await launch(members[i]!);
      await waitHealthy(i);
    },
    async leader() {
      const status = JSON.parse(await etcdctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Endpoint: string; Status: { header: { member_id: number }; leader: number } }>;
      const leaderId = status[0]!.Status.leader;
      const at = status.find((s) => s.Status.header.member_id === leaderId);
      const index = members.findIndex((m) => at?.Endpoint.endsWith(m.socketName));
      if (index < 0) throw new Error(`no leader among ${JSON.stringify(status)}`);
      return index;
    },
    pause: (i) => void members[i]!.child?.kill('SIGSTOP'),
    resume: (i) => void members[i]!.child?.kill('SIGCONT'),
    etcdctl,
    logs: (i) => members[i]!.output,
    close,
  };
}
