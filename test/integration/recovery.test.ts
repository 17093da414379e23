/**
 * Crash recovery on the real kernel: SIGTERM keeps networks; kill -9 (also in the middle of a burst of
 * requests) followed by a restart loses nothing and leaks nothing — links, namespace pins, addresses
 * and nft rules all match what the API reports.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventually } from '../conformance/kernel-support.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { ping, reached } from '../helpers/probe.js';

interface KernelView {
  links: string[];
  bridgeAddrs: string[];
  pins: string[];
  sets: { bridges: string[]; same_bridge: string[]; masq_v4: string[] };
}

/** The elements of one set of `inet cnm`, as text ("cnm0", "10.0.0.0/24", "a . a"), sorted. */
async function nftSet(d: TestDaemon, name: string): Promise<string[]> {
  const r = await d.inHost('nft', ['-j', 'list', 'set', 'inet', 'cnm', name]);
  assert.equal(r.code, 0, r.stderr);
  const set = (JSON.parse(r.stdout).nftables as any[]).find((o) => o.set)!.set;
  const text = (e: any): string =>
    typeof e === 'string' ? e : e.prefix ? `${e.prefix.addr}/${e.prefix.len}` : e.concat ? e.concat.map(text).join(' . ') : JSON.stringify(e);
  return ((set.elem ?? []) as any[]).map(text).sort();
}

async function kernelView(d: TestDaemon): Promise<KernelView> {
  const links = JSON.parse((await d.inHost('ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  const addrs = JSON.parse((await d.inHost('ip', ['-j', 'addr', 'show'])).stdout) as Array<{
    ifname: string;
    addr_info: Array<{ local: string; prefixlen: number; scope: string }>;
  }>;
  return {
    links: links.map((l) => l.ifname).filter((n) => n.startsWith('cnm')).sort(),
    bridgeAddrs: addrs
      .filter((a) => a.ifname.startsWith('cnm'))
      .flatMap((a) => a.addr_info.filter((i) => i.scope === 'global').map((i) => `${a.ifname} ${i.local}/${i.prefixlen}`))
      .sort(),
    pins: (await readdir(join(d.execRoot, 'netns')).catch(() => [] as string[])).sort(),
    sets: { bridges: await nftSet(d, 'bridges'), same_bridge: await nftSet(d, 'same_bridge'), masq_v4: await nftSet(d, 'masq_v4') },
  };
}

/** What the kernel should hold according to the API. */
async function expectedView(d: TestDaemon): Promise<{ bridges: string[]; veths: number; pins: string[]; gateways: string[]; masq: string[] }> {
  const nets = (await d.api('GET', '/networks')).json() as any[];
  const bridges: string[] = [];
  const gateways: string[] = [];
  const masq: string[] = [];
  for (const n of nets.filter((x) => x.Driver === 'bridge')) {
    const name = n.Options['com.docker.network.bridge.name'] ?? `cnm-${n.Id.slice(0, 11)}`;
    bridges.push(name);
    for (const c of n.IPAM.Config) {
      gateways.push(`${name} ${c.Gateway}/${c.Subnet.split('/')[1]}`);
      if (!c.Subnet.includes(':') && !n.Internal && n.Options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false') masq.push(c.Subnet);
    }
  }
  const sandboxes = (await d.api('GET', '/cnm/v1/sandboxes')).json() as any[];
  const veths = sandboxes.reduce((acc, s) => acc + Object.values(s.Networks).filter((e: any) => e.IPAddress).length, 0);
  const pins = sandboxes.filter((s) => !s.HostNetwork && !s.Adopted).map((s) => s.Id).sort();
  return { bridges: bridges.sort(), veths, pins, gateways: gateways.sort(), masq: masq.sort() };
}

/** Deleted veths and bridges are retired at once (renamed cnmz…) and destroyed in the background: they must go. */
async function settledKernelView(d: TestDaemon): Promise<KernelView> {
  await eventually(async () => !(await kernelView(d)).links.some((l) => l.startsWith('cnmz')), 'retired links destroyed');
  return kernelView(d);
}

async function assertConsistent(d: TestDaemon): Promise<void> {
  const k = await settledKernelView(d);
  const e = await expectedView(d);
  const bridgesInKernel = k.links.filter((l) => !l.startsWith('cnmv') && !l.startsWith('cnmt'));
  assert.deepEqual(bridgesInKernel, e.bridges, 'bridges match networks');
  assert.equal(k.links.filter((l) => l.startsWith('cnmv')).length, e.veths, 'one host veth per endpoint');
  assert.deepEqual(k.pins, e.pins, 'one namespace pin per sandbox');
  assert.deepEqual(k.bridgeAddrs, e.gateways, 'bridge addresses are exactly the gateways');
  assert.deepEqual(k.sets.bridges, e.bridges, 'nft bridges set: exactly the networks');
  assert.deepEqual(k.sets.same_bridge, e.bridges.map((b) => `${b} . ${b}`).sort(), 'nft same_bridge set (every network has icc)');
  assert.deepEqual(k.sets.masq_v4, e.masq, 'nft masq_v4 set: exactly the IPv4 subnets');
}

describe('crash recovery (real kernel)', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
  });
  after(async () => d?.cleanup());

  it('keeps networks and connectivity across SIGTERM and kill -9', async () => {
    assert.equal((await d.api('POST', '/networks/create', { Name: 'r1', IPAM: { Config: [{ Subnet: '10.60.0.0/24' }] } })).status, 201);
    for (const name of ['s1', 's2']) {
      assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: 'r1' }] })).status, 201);
    }
    const s2ip = (await d.api('GET', '/cnm/v1/sandboxes/s2')).json().Networks.r1.IPAddress;
    assert.equal((await d.exec('s1', ['ping', '-c1', '-W1', s2ip])).code, 0);

    assert.equal(await d.stop('SIGTERM'), 0, 'clean exit on SIGTERM');
    const afterStop = await kernelView(d);
    assert.ok(afterStop.links.some((l) => l.startsWith('cnm-')), 'networks stay when the daemon stops');
    await d.start();
    assert.equal((await d.exec('s1', ['ping', '-c1', '-W1', s2ip])).code, 0);

    await d.stop('SIGKILL');
    await d.start();
    assert.equal((await d.exec('s1', ['ping', '-c1', '-W1', s2ip])).code, 0, 'connectivity after kill -9');
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/s2')).json().Networks.r1.IPAddress, s2ip);
    await assertConsistent(d);
  });

  it('leaks nothing when killed while requests are in flight; answered requests stand, survivors work', async () => {
    // Workers create sandboxes (and networks) back to back. Records are stored before the kernel is
    // changed, so a sandbox listed by GET whose POST has not been answered is one the daemon accepted
    // and has not completed: the kill lands only once such requests exist and some were answered.
    const outcomes = new Map<string, number | string>(); // name -> HTTP status, or the connection error
    const sent = new Set<string>();
    let killed = false;
    let seq = 0;
    const worker = async (kind: 'sandbox' | 'network') => {
      while (!killed) {
        const name = `${kind === 'sandbox' ? 'burst' : 'bn'}${seq++}`;
        sent.add(name);
        try {
          const r = kind === 'sandbox'
            ? await d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: 'r1' }] })
            : await d.api('POST', '/networks/create', { Name: name });
          outcomes.set(name, r.status);
          assert.equal(r.status, 201, `${name} before the kill: ${r.body}`);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
          outcomes.set(name, code);
          if (!killed) throw err;
        }
      }
    };
    const workers = [worker('sandbox'), worker('sandbox'), worker('sandbox'), worker('network')];
    const failed = Promise.all(workers).then(() => undefined, (err: unknown) => err);
    let inFlight: string[] = [];
    for (let round = 0; round < 2000 && !killed; round++) {
      const listed = ((await d.api('GET', '/cnm/v1/sandboxes')).json() as any[]).map((x) => x.Name as string);
      inFlight = listed.filter((n) => sent.has(n) && !outcomes.has(n));
      const answered = [...outcomes.values()].filter((v) => v === 201).length;
      if (inFlight.length > 0 && answered >= 3) {
        killed = true;
        process.kill(d.pid(), 'SIGKILL');
      }
    }
    assert.ok(killed, 'never saw an accepted, unanswered request');
    await d.stop('SIGKILL');
    assert.equal(await failed, undefined, 'no request failed before the kill');
    const statuses = [...outcomes.entries()];
    const answered = statuses.filter(([, v]) => v === 201).map(([n]) => n);
    const broken = statuses.filter(([, v]) => typeof v === 'string');
    assert.ok(answered.length >= 3, 'requests succeeded before the kill');
    assert.ok(broken.length >= 1, `requests in flight failed with the kill (in flight: ${inFlight.join(', ')})`);
    for (const [name, v] of broken) assert.match(String(v), /ECONNRESET|ECONNREFUSED|ENOENT|socket hang up/, name);
    assert.deepEqual(statuses.filter(([, v]) => v !== 201 && typeof v !== 'string'), [], 'no other answers');

    await d.start();
    await assertConsistent(d);
    const sandboxes = (await d.api('GET', '/cnm/v1/sandboxes')).json() as any[];
    const names = new Set(sandboxes.map((x) => x.Name as string));
    const networks = new Set(((await d.api('GET', '/networks')).json() as any[]).map((n) => n.Name as string));
    for (const name of answered) assert.ok(name.startsWith('burst') ? names.has(name) : networks.has(name), `${name} was answered 201 and survives`);
    // Every sandbox that survived works (s1 pings it) and no address is handed out twice.
    const ips = sandboxes.flatMap((x) => Object.values(x.Networks).map((e: any) => e.IPAddress)).filter(Boolean);
    assert.equal(new Set(ips).size, ips.length, 'addresses are unique');
    for (const x of sandboxes.filter((x) => x.Name !== 's1')) {
      // A create killed between storing the sandbox and its endpoint is rolled back, never kept half done.
      assert.ok(x.Networks.r1, `${x.Name} survived without the network its create asked for`);
      reached(await ping((argv) => d.exec('s1', argv), x.Networks.r1.IPAddress), `s1 -> ${x.Name}`);
    }
  });

  it('a create killed after its record was stored, before its endpoints were, is rolled back by the next start', async () => {
    assert.equal((await d.api('POST', '/networks/create', { Name: 'w1', IPAM: { Config: [{ Subnet: '10.61.0.0/24' }] } })).status, 201);
    assert.equal((await d.api('POST', '/networks/create', { Name: 'w2', IPAM: { Config: [{ Subnet: '10.62.0.0/24' }] } })).status, 201);
    const veths = async () => (await kernelView(d)).links.filter((l) => l.startsWith('cnmv'));
    const vethsBefore = await veths();
    // The daemon's store write of the first endpoint never returns: a trigger (in this test's own store
    // file) spins inside that transaction. The sandbox record is committed before, so the daemon is
    // provably inside the window when it is killed; nothing of the daemon is changed for the test.
    const db = new Database(join(d.root, 'cnm.db'));
    try {
      db.exec(`CREATE TABLE cnmt_spin (x INTEGER);
        WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000) INSERT INTO cnmt_spin SELECT x FROM n;
        CREATE TRIGGER cnmt_hold AFTER INSERT ON kv WHEN NEW.key LIKE 'cnm/v1/endpoints/%'
        BEGIN SELECT count(*) FROM cnmt_spin a, cnmt_spin b, cnmt_spin c, cnmt_spin e; END;`);
      const outcome = d.api('POST', '/cnm/v1/sandboxes', { Name: 'halfway', Networks: [{ Network: 'w1' }, { Network: 'w2' }] }).then(
        (r) => `answered ${r.status}`,
        (err: NodeJS.ErrnoException) => err.code ?? err.message,
      );
      const record = () =>
        (db.prepare(`SELECT value FROM kv WHERE key LIKE 'cnm/v1/sandboxes/%'`).all() as Array<{ value: string }>)
          .map((r) => JSON.parse(r.value))
          .find((s) => s.name === 'halfway');
      await eventually(async () => record() !== undefined, 'sandbox record stored', 30_000);
      // Its first network is joined in the kernel (the veth exists) and the daemon is inside the endpoint write.
      await eventually(async () => (await veths()).length > vethsBefore.length, 'first endpoint joined', 30_000);
      const stored = record();
      assert.equal(stored.creating, true, 'record stored with the create-in-progress marker');
      assert.equal((db.prepare(`SELECT count(*) AS n FROM kv WHERE key LIKE 'cnm/v1/endpoints/%' AND value LIKE ?`).get(`%${stored.id}%`) as { n: number }).n, 0, 'no endpoint stored yet');
      process.kill(d.pid(), 'SIGKILL');
      await d.stop('SIGKILL');
      assert.match(await outcome, /ECONNRESET|socket hang up/, 'the client got no answer');
      assert.ok((await kernelView(d)).pins.includes(stored.id), 'its namespace pin existed at the kill');
      db.exec('DROP TRIGGER cnmt_hold; DROP TABLE cnmt_spin;');
    } finally {
      db.close();
    }

    await d.start();
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/halfway')).status, 404, 'the unanswered create is rolled back');
    assert.deepEqual(await veths(), vethsBefore, 'its veth is gone');
    await assertConsistent(d);
    // The name and the addresses are free again; a second try works end to end.
    const again = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'halfway', Networks: [{ Network: 'w1' }, { Network: 'w2' }] });
    assert.equal(again.status, 201, again.body);
    assert.deepEqual(Object.keys((await d.api('GET', '/cnm/v1/sandboxes/halfway')).json().Networks).sort(), ['w1', 'w2']);
    await assertConsistent(d);
  });

  it('removing everything leaves only the predefined bridge', async () => {
    const sandboxes = (await d.api('GET', '/cnm/v1/sandboxes')).json() as any[];
    for (const s of sandboxes) assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${s.Id}?force=1`)).status, 204);
    const pruned = await d.api('POST', '/networks/prune');
    assert.equal(pruned.status, 200, pruned.body);
    const k = await settledKernelView(d);
    assert.deepEqual(k.links.filter((l) => !l.startsWith('cnmt')), ['cnm0']);
    assert.deepEqual(k.pins, []);
    await assertConsistent(d);
  });
});
