/**
 * README claims that only a real daemon can show, each with a control that proves the test can tell:
 *   - automatic pools skip subnets routed in the daemon's namespace (and use them when not routed);
 *   - an established connection through a service VIP stays on its backend while backends come and go,
 *     while new connections spread over the current backends;
 *   - two daemons sharing one store file never hand out one address twice under concurrent connects.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { isRoot } from '../helpers/netns.js';

const SKIP = isRoot() ? false : 'needs root';

/** True when the IPv4 subnet `inner` lies inside `outer`. */
function subnetContains(outer: string, inner: string): boolean {
  const parse = (c: string) => {
    const [ip, len] = c.split('/');
    return { n: ip!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0), len: Number(len) };
  };
  const o = parse(outer);
  const i = parse(inner);
  const size = 2 ** (32 - o.len);
  return i.len >= o.len && Math.floor(i.n / size) === Math.floor(o.n / size);
}

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `cnm ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout.trim();
}

async function hostOk(d: TestDaemon, cmd: string, args: string[]): Promise<string> {
  const r = await d.inHost(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function subnetOf(d: TestDaemon, name: string): Promise<string> {
  const r = await d.api('POST', '/networks/create', { Name: name });
  assert.equal(r.status, 201, r.body);
  return (await d.api('GET', `/networks/${name}`)).json().IPAM.Config[0].Subnet;
}

describe('automatic pools skip subnets routed in the daemon namespace (real daemon)', { skip: SKIP }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon(['--default-address-pool', 'base=172.18.0.0/16,size=24', '--default-address-pool', 'base=172.19.0.0/16,size=24']);
    // A link for the route to point at (no dummy module on every kernel: a veth pair inside the namespace).
    await hostOk(d, 'ip', ['link', 'add', 'cnmt-rt0', 'type', 'veth', 'peer', 'name', 'cnmt-rt1']);
    await hostOk(d, 'ip', ['link', 'set', 'cnmt-rt0', 'up']);
    await hostOk(d, 'ip', ['link', 'set', 'cnmt-rt1', 'up']);
  });
  after(async () => d?.cleanup());

  it('without the route the pool is used; with it the next pool is; after a restart too; without it again the first', async () => {
    const plain = await subnetOf(d, 'plain');
    assert.ok(subnetContains('172.18.0.0/16', plain), `control: an unrouted pool is used (${plain})`);
    await hostOk(d, 'ip', ['route', 'add', '172.18.0.0/16', 'dev', 'cnmt-rt0']);
    const routed = await subnetOf(d, 'routed');
    assert.ok(subnetContains('172.19.0.0/16', routed), `172.18.0.0/16 is routed elsewhere: ${routed}`);
    await d.stop('SIGTERM');
    await d.start();
    const afterRestart = await subnetOf(d, 'after-restart');
    assert.ok(subnetContains('172.19.0.0/16', afterRestart) && afterRestart !== routed, `routed before start: ${afterRestart}`);
    await hostOk(d, 'ip', ['route', 'del', '172.18.0.0/16', 'dev', 'cnmt-rt0']);
    const again = await subnetOf(d, 'again');
    assert.ok(subnetContains('172.18.0.0/16', again), `the route is gone, the pool is free again: ${again}`);
  });
});

/** A TCP server in a sandbox: every line it reads is answered with "<name> <line>". */
function echoServer(netnsPath: string, name: string, port: number): Promise<ChildProcess> {
  const code = `const net = require('net');
    net.createServer((s) => { let buf = ''; s.setEncoding('utf8'); s.on('error', () => {});
      s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { s.write(${JSON.stringify(name)} + ' ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
    }).listen(${port}, '0.0.0.0', () => console.log('ready'));`;
  const child = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => reject(new Error(`echo server ${name} exited with ${c}`)));
    child.stdout!.once('data', () => resolve(child));
  });
}

/** One long-lived TCP connection from a sandbox, driven line by line from the test. */
class LineClient {
  private readonly child: ChildProcess;
  private buffered = '';
  private waiting?: (line: string) => void;
  readonly connected: Promise<void>;

  constructor(netnsPath: string, address: string, port: number) {
    const code = `const s = require('net').connect(${port}, ${JSON.stringify(address)}, () => console.log('connected'));
      s.on('error', (e) => { console.error(e.message); process.exit(3); });
      s.on('data', (d) => process.stdout.write(d));
      process.stdin.on('data', (d) => s.write(d));`;
    this.child = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0 && this.waiting) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
      }
    });
    this.connected = this.next().then((l) => assert.equal(l, 'connected'));
  }

  private next(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply within 5 s: the connection is broken')), 5000);
      this.waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }

  exchange(line: string): Promise<string> {
    const reply = this.next();
    this.child.stdin!.write(line + '\n');
    return reply;
  }

  close(): void {
    this.child.kill();
  }
}

describe('an established connection through a service VIP stays on its backend (real daemon)', { skip: SKIP }, () => {
  let d: TestDaemon;
  const servers: ChildProcess[] = [];
  const PORT = 7000;
  const netnsOf = async (name: string) => (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json().NetnsPath as string;
  const addBackend = async (name: string) => {
    await ok(d, ['sandbox', 'create', name, '--network', 'stickynet', '--service', 'sticky']);
    servers.push(await echoServer(await netnsOf(name), name, PORT));
  };

  before(async () => {
    d = await startTestDaemon();
    await ok(d, ['network', 'create', '--subnet', '10.62.0.0/24', 'stickynet']);
    await ok(d, ['service', 'create', 'sticky', '--network', 'stickynet']);
    for (const name of ['k1', 'k2', 'k3']) await addBackend(name);
    await ok(d, ['sandbox', 'create', 'client', '--network', 'stickynet']);
  });
  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await d?.cleanup();
  });

  /** `count` fresh connections through the VIP from the client: which backend answered each. */
  async function freshConnections(vip: string, count: number): Promise<Map<string, number>> {
    const code = `const net = require('net'); (async () => { for (let i = 0; i < ${count}; i++) {
        const line = await new Promise((res) => { const s = net.connect(${PORT}, ${JSON.stringify(vip)}, () => s.write('hi\\n'));
          s.setTimeout(3000, () => { s.destroy(); res('TIMEOUT'); }); s.on('error', (e) => res('ERROR ' + e.code));
          s.once('data', (d) => { s.destroy(); res(String(d).trim()); }); });
        console.log(line.split(' ')[0]); } })();`;
    const r = await d.exec('client', [process.execPath, '-e', code]);
    assert.equal(r.code, 0, r.stderr);
    const counts = new Map<string, number>();
    for (const l of r.stdout.split('\n').filter(Boolean)) counts.set(l, (counts.get(l) ?? 0) + 1);
    return counts;
  }

  it('backends are added and removed under an open connection: it keeps talking to the same one', async () => {
    const vip = (await d.api('GET', '/cnm/v1/services/sticky')).json().VirtualIP as string;
    const spread = await freshConnections(vip, 60);
    assert.deepEqual([...spread.keys()].sort(), ['k1', 'k2', 'k3'], `new connections spread: ${JSON.stringify([...spread])}`);

    const client = new LineClient(await netnsOf('client'), vip, PORT);
    try {
      await client.connected;
      const first = await client.exchange('one');
      const backend = first.split(' ')[0]!;
      assert.equal(first, `${backend} one`);
      assert.ok(['k1', 'k2', 'k3'].includes(backend));
      const others = ['k1', 'k2', 'k3'].filter((n) => n !== backend);
      // Change the backend set around the open connection: one other leaves, a new one joins, the last
      // other leaves too. Each change rewrites the service's balancing rules.
      await ok(d, ['network', 'disconnect', 'stickynet', others[0]!]);
      assert.equal(await client.exchange('two'), `${backend} two`, 'after a backend left');
      await addBackend('k4');
      assert.equal(await client.exchange('three'), `${backend} three`, 'after a backend joined');
      await ok(d, ['sandbox', 'rm', '--force', others[1]!]);
      assert.equal(await client.exchange('four'), `${backend} four`, 'after another backend was removed');

      const svc = (await d.api('GET', '/cnm/v1/services/sticky')).json();
      assert.deepEqual(svc.Backends.map((b: { SandboxName: string }) => b.SandboxName).sort(), [backend, 'k4'].sort());
      const now = await freshConnections(vip, 40);
      assert.deepEqual([...now.keys()].sort(), [backend, 'k4'].sort(), `new connections spread over the current backends: ${JSON.stringify([...now])}`);
      assert.equal(await client.exchange('five'), `${backend} five`, 'still the same backend at the end');
    } finally {
      client.close();
    }
  });
});

describe('two daemons on one store file never hand out an address twice (real daemons)', { skip: SKIP }, () => {
  let a: TestDaemon;
  let b: TestDaemon;
  before(async () => {
    a = await startTestDaemon();
    const r = await a.api('POST', '/networks/create', { Name: 'shared', IPAM: { Config: [{ Subnet: '10.63.0.0/24' }] } });
    assert.equal(r.status, 201, r.body);
    // The second daemon opens the same SQLite file (its own namespace and exec root): it learns the
    // network at start, then each daemon allocates from its own view of the pool.
    b = await startTestDaemon(['--root', a.root]);
  });
  after(async () => {
    await b?.cleanup();
    await a?.cleanup();
  });

  it('concurrent connects through both daemons: every address granted is unique, conflicts are refused', async () => {
    assert.equal((await b.api('GET', '/networks/shared')).status, 200, 'the second daemon sees the shared network');
    const PER_DAEMON = 20;
    const create = (d: TestDaemon, name: string) => d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: 'shared' }] });
    const results = await Promise.all([
      ...Array.from({ length: PER_DAEMON }, (_, i) => create(a, `a${i}`).then((r) => ({ d: a, name: `a${i}`, r }))),
      ...Array.from({ length: PER_DAEMON }, (_, i) => create(b, `b${i}`).then((r) => ({ d: b, name: `b${i}`, r }))),
    ]);
    const granted: string[] = [];
    let refused = 0;
    for (const { d, name, r } of results) {
      if (r.status === 201) {
        const sb = (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
        if (sb.Networks.shared) granted.push(sb.Networks.shared.IPAddress);
        else refused++; // created, but its connect lost the address race and was undone
      } else {
        assert.equal(r.status, 403, r.body);
        assert.match(r.json().message, /already in use/i);
        refused++;
      }
    }
    const dupes = granted.filter((ip, i) => granted.indexOf(ip) !== i);
    assert.deepEqual(dupes, [], 'no address handed out twice');
    assert.ok(granted.length >= PER_DAEMON, `addresses were granted (${granted.length})`);
    assert.ok(refused > 0, 'the daemons did collide (each allocates from its own view), so the claims were exercised');
  });
});
