/**
 * Network probes for positive AND negative checks. A probe tells three things apart:
 *   - 'reached': the traffic got an answer;
 *   - 'blocked': the probe ran and sent its traffic, and got no answer (timeout), an ICMP unreachable
 *     or no route — `how` says which, so a test can insist on the one it means;
 *   - could not run: spawn error, missing binary or namespace, usage error, a refused connection (dead
 *     listener), any exit code the tool does not document for "no answer". That THROWS
 *     (ProbeCouldNotRun), so a broken probe fails the test instead of passing an isolation check.
 * Every negative check also runs the same probe on an allowed path in the same test (see
 * assertReachedThenBlocked), proving the probe could have succeeded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export interface ProbeRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv somewhere (a namespace, a sandbox through `cnm exec`) and returns its result; throws when it could not start. */
export type CommandRunner = (argv: string[]) => Promise<ProbeRun>;

export class ProbeCouldNotRun extends Error {
  constructor(what: string, r: ProbeRun) {
    super(`probe could not run: ${what} (exit ${r.code})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

export type ProbeResult = { outcome: 'reached'; output: string } | { outcome: 'blocked'; how: 'timeout' | 'unreachable' | 'no-route' | 'refused' };

/**
 * Spawn a process (`env` added to this process's environment); a spawn error (missing binary) rejects, a
 * kill by timeout gives code 124 like timeout(1).
 */
export function runCommand(cmd: string, args: string[], timeoutMs = 20_000, env?: Record<string, string>): Promise<ProbeRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`probe could not run: ${cmd}: ${err.message}`));
    });
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === 'SIGKILL' ? 124 : -1), stdout, stderr });
    });
  });
}

/** `ip netns exec NS argv...` */
export function inNamespace(ns: string): CommandRunner {
  return (argv) => runCommand('ip', ['netns', 'exec', ns, ...argv]);
}

/** `nsenter --net=PATH argv...` (a namespace known by its file, e.g. a sandbox pin). */
export function inNetnsPath(path: string): CommandRunner {
  return (argv) => runCommand('nsenter', [`--net=${path}`, ...argv]);
}

/** One ICMP echo, 1 s to answer. */
export async function ping(run: CommandRunner, address: string): Promise<ProbeResult> {
  const r = await run(['ping', '-c1', '-W1', address]);
  if (r.code === 0 && /1 received/.test(r.stdout)) return { outcome: 'reached', output: r.stdout };
  // ping exits 1 when it sent its packet and got no reply (or an ICMP error instead of one).
  if (r.code === 1 && /1 packets transmitted, 0 received/.test(r.stdout)) {
    return { outcome: 'blocked', how: /\+1 errors|Unreachable/i.test(r.stdout) ? 'unreachable' : 'timeout' };
  }
  // exit 2 is "other error"; only a missing route in the sender counts as blocked.
  if (r.code === 2 && /connect: Network is unreachable/.test(r.stderr)) return { outcome: 'blocked', how: 'no-route' };
  throw new ProbeCouldNotRun(`ping ${address}`, r);
}

/**
 * A TCP connection that reads what the server sends until it closes (2 s). A refused connection means
 * the listener is dead: could not run. bash splits /dev/tcp/HOST/PORT at the last slash, so IPv6
 * addresses go in unbracketed.
 */
export async function tcpRead(run: CommandRunner, address: string, port: number): Promise<ProbeResult> {
  const r = await run(['timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${address}/${port} && cat <&3`]);
  if (r.code === 0) return { outcome: 'reached', output: r.stdout.trim() };
  if (r.code === 124 && r.stderr === '') return { outcome: 'blocked', how: 'timeout' };
  if (r.code === 1 && /connect: No route to host/.test(r.stderr)) return { outcome: 'blocked', how: 'unreachable' };
  if (r.code === 1 && /connect: Network is unreachable/.test(r.stderr)) return { outcome: 'blocked', how: 'no-route' };
  throw new ProbeCouldNotRun(`tcp ${address}:${port}`, r);
}

/**
 * One DNS query with dig (4 s, one try) to SERVER. dig exits 9 when no server answered: a timeout, or
 * "connection refused" (ICMP port unreachable) — a caller that means "nobody listens" asks for 'refused'.
 */
export async function dig(run: CommandRunner, server: string, args: string[]): Promise<ProbeResult> {
  const r = await run(['dig', `@${server}`, '+time=4', '+tries=1', '+noall', '+comments', '+answer', ...args]);
  if (r.code === 0 && /status: \w+/.test(r.stdout)) return { outcome: 'reached', output: r.stdout };
  if (r.code === 9 && /no servers could be reached/.test(r.stdout + r.stderr)) {
    return { outcome: 'blocked', how: /connection refused/.test(r.stdout + r.stderr) ? 'refused' : 'timeout' };
  }
  throw new ProbeCouldNotRun(`dig @${server} ${args.join(' ')}`, r);
}

/** The output of a probe that must have reached its target. */
export function reached(result: ProbeResult, message: string): string {
  assert.equal(result.outcome, 'reached', `${message}: ${JSON.stringify(result)}`);
  return (result as { output: string }).output;
}

/** Asserts the probe ran and was blocked (optionally: in one of the given ways). */
export function blocked(result: ProbeResult, message: string, how?: readonly string[]): void {
  assert.equal(result.outcome, 'blocked', `${message}: ${JSON.stringify(result)}`);
  if (how) assert.ok(how.includes((result as { how: string }).how), `${message}: blocked by ${(result as { how: string }).how}, expected ${how.join('/')}`);
}

/**
 * The shape of every negative check: the same probe first on a path that must work (proving the probe
 * runs and the network under it is up), then on the path that must be blocked.
 */
export async function assertReachedThenBlocked(
  probe: (target: string) => Promise<ProbeResult>,
  allowed: string,
  denied: string,
  message: string,
  how?: readonly string[],
): Promise<void> {
  reached(await probe(allowed), `${message}: the allowed path ${allowed}`);
  blocked(await probe(denied), `${message}: the denied path ${denied}`, how);
}

export type DfPingResult =
  | { outcome: 'reached' }
  | { outcome: 'blocked'; how: 'too-big'; where: 'local' | 'path'; mtu: number }
  | { outcome: 'blocked'; how: 'timeout' };

/**
 * One ICMP echo of exactly `packetBytes` bytes (IP header included) with Don't Fragment set. 'too-big'
 * says who refused it: the sender's own stack ('local', the link or a cached path MTU) or a router /
 * tunnel on the way ('path', an ICMP "Frag needed"), with the MTU it named.
 */
export async function pingDf(run: CommandRunner, address: string, packetBytes: number): Promise<DfPingResult> {
  const r = await run(['ping', '-c1', '-W1', '-M', 'do', '-s', String(packetBytes - 28), address]);
  if (r.code === 0 && /1 received/.test(r.stdout)) return { outcome: 'reached' };
  if (r.code === 1 && /1 packets transmitted, 0 received/.test(r.stdout)) {
    const local = /local error: message too long, mtu=(\d+)/.exec(r.stderr + r.stdout);
    if (local) return { outcome: 'blocked', how: 'too-big', where: 'local', mtu: Number(local[1]) };
    const path = /Frag needed and DF set \(mtu = (\d+)\)/.exec(r.stdout);
    if (path) return { outcome: 'blocked', how: 'too-big', where: 'path', mtu: Number(path[1]) };
    if (!/errors/.test(r.stdout)) return { outcome: 'blocked', how: 'timeout' };
  }
  throw new ProbeCouldNotRun(`ping -M do ${packetBytes} bytes to ${address}`, r);
}
