/**
 * Servers and probes for published-port tests over both families. A server answers each TCP connection
 * or UDP datagram with "NAME SOURCE-ADDRESS" (an IPv4 client shows as its IPv4 address), so every probe
 * also tells whether the client's address was kept. A probe that could not run throws.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { ProbeCouldNotRun, type CommandRunner, type ProbeResult } from './probe.js';

const WAIT_MS = 20_000;

export async function waitFor(what: string, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Run a python script that prints "ready" once listening, in the namespace at `path`; resolves when ready. */
export async function startPython(path: string, script: string, what: string): Promise<ChildProcess> {
  const p = spawn('nsenter', [`--net=${path}`, 'python3', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (b) => (out += b));
  p.stderr!.on('data', (b) => (err += b));
  p.once('error', (e) => (err += String(e)));
  await waitFor(what, () => out.includes('ready') || p.exitCode !== null || err.includes('spawn'));
  assert.match(out, /ready/, `${what} did not start: ${err}`);
  return p;
}

/**
 * Serve `proto` on `ports` on every address of both families (one IPv6 socket, V6ONLY off), inside the
 * namespace at `path`; each answer is "NAME SOURCE-ADDRESS".
 */
export function serveDualStack(path: string, name: string, proto: 'tcp' | 'udp', ports: number[]): Promise<ChildProcess> {
  const script = [
    'import socket, threading, sys',
    `name, proto = ${JSON.stringify(name)}, ${JSON.stringify(proto)}`,
    'def src(peer):',
    '    a = peer[0]',
    '    return a[7:] if a.startswith("::ffff:") else a',
    'def tcp(s):',
    '    while True:',
    '        c, peer = s.accept()',
    '        c.sendall(f"{name} {src(peer)}\\n".encode()); c.close()',
    'def udp(s):',
    '    while True:',
    '        _, peer = s.recvfrom(100)',
    '        s.sendto(f"{name} {src(peer)}".encode(), peer)',
    `for port in ${JSON.stringify(ports)}:`,
    '    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)',
    '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    '    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)',
    "    s.bind(('::', port))",
    '    if proto == "tcp": s.listen(16)',
    '    threading.Thread(target=tcp if proto == "tcp" else udp, args=(s,), daemon=True).start()',
    'print("ready", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  return startPython(path, script, `${proto} server ${name}`);
}

/** Listen (TCP) on each of `binds` ([address, port, v6only]) and do nothing else: a process holding host ports. */
export function holdPorts(path: string, binds: Array<[string, number, boolean]>): Promise<ChildProcess> {
  const script = [
    'import socket, sys',
    `for addr, port, v6only in ${JSON.stringify(binds).replace(/true/g, 'True').replace(/false/g, 'False')}:`,
    '    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET',
    '    s = socket.socket(fam, socket.SOCK_STREAM)',
    '    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)',
    '    s.bind((addr, port)); s.listen(1)',
    '    globals().setdefault("held", []).append(s)',
    'print("ready", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  return startPython(path, script, `listeners ${JSON.stringify(binds)}`);
}

/** One datagram to address:port (either family); the answer within 2 s, or blocked (timeout). */
export async function udpAsk(run: CommandRunner, address: string, port: number): Promise<ProbeResult> {
  const family = address.includes(':') ? 'AF_INET6' : 'AF_INET';
  const r = await run([
    'python3',
    '-c',
    [
      'import socket, sys',
      `s = socket.socket(socket.${family}, socket.SOCK_DGRAM)`,
      's.settimeout(2)',
      `s.sendto(b'?', ('${address}', ${port}))`,
      'try:',
      '    print(s.recvfrom(200)[0].decode())',
      'except socket.timeout:',
      '    sys.exit(3)',
    ].join('\n'),
  ]);
  if (r.code === 0) return { outcome: 'reached', output: r.stdout.trim() };
  if (r.code === 3) return { outcome: 'blocked', how: 'timeout' };
  throw new ProbeCouldNotRun(`udp ${address}:${port}`, r);
}

/** A TCP connection the host refuses (RST: nothing listens and nothing translates), as opposed to one forwarded. */
export async function tcpRefused(run: CommandRunner, address: string, port: number): Promise<boolean> {
  const r = await run(['timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${address}/${port}`]);
  if (r.code === 0) return false;
  if (r.code === 1 && /Connection refused/.test(r.stderr)) return true;
  throw new ProbeCouldNotRun(`tcp ${address}:${port}`, r);
}
