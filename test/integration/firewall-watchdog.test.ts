/**
 * The firewall watchdog on a real daemon (README: "If the rules vanish ... the daemon restores them"):
 * `nft flush ruleset` run inside the daemon's own throwaway namespace, a set element deleted by hand,
 * an element added by hand. The daemon runs with a one-hour backstop interval, so only nftables events
 * can bring the rules back within the test.
 *
 * Isolation is probed with ping between sandboxes through their namespace files (`nsenter`, not `cnm
 * exec`, so the probe also runs while the daemon is stopped): a1 → b1 (another network) must fail while
 * a1 → a2 (same network) succeeds, so a failing probe cannot pass for isolation. While the daemon is
 * SIGSTOPped after a flush, a1 → b1 passes: the test sees the difference the rules make.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { isRoot } from '../helpers/netns.js';

const SKIP = isRoot() ? false : 'needs root (namespaces, nftables)';
const WAIT_MS = 10_000;

interface Sandbox {
  netns: string;
  ip: string;
}

/** ping from a sandbox namespace; a probe that could not run at all fails the test. */
function pings(from: Sandbox, to: Sandbox): boolean {
  const r = spawnSync('nsenter', [`--net=${from.netns}`, 'ping', '-c1', '-W1', '-q', to.ip], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw r.error;
  if (r.status !== 0 && r.status !== 1) throw new Error(`ping could not run (${r.status}): ${r.stderr}`);
  return r.status === 0;
}

function assertIsolated(s: Record<string, Sandbox>, when: string): void {
  assert.equal(pings(s.a1!, s.a2!), true, `${when}: a1 reaches a2 on its own network (the probe works)`);
  assert.equal(pings(s.a1!, s.b1!), false, `${when}: a1 must not reach b1 on another network`);
}

/** cnm's tables as JSON, without handles, elements sorted: comparable across a restore. */
async function cnmRuleset(d: TestDaemon): Promise<unknown[]> {
  const r = await d.inHost('nft', ['-j', 'list', 'ruleset']);
  assert.equal(r.code, 0, r.stderr);
  const items = (JSON.parse(r.stdout).nftables as Array<Record<string, any>>).filter((item) => {
    const obj = Object.values(item)[0] as Record<string, unknown> | undefined;
    return !('metainfo' in item) && (obj?.table === 'cnm' || obj?.name === 'cnm');
  });
  return items
    .map((item) => JSON.parse(JSON.stringify(item, (key, value) => (key === 'handle' ? undefined : value))))
    .map((item) => {
      const set = item.set ?? item.map;
      if (set?.elem) set.elem = [...set.elem].map((e: unknown) => JSON.stringify(e)).sort();
      return item;
    })
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

async function waitFor(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function nft(d: TestDaemon, ...args: string[]): Promise<void> {
  const r = await d.inHost('nft', args);
  assert.equal(r.code, 0, `nft ${args.join(' ')}: ${r.stderr}`);
}

describe('firewall watchdog (real daemon, nftables events)', { skip: SKIP }, () => {
  let d: TestDaemon;
  const s: Record<string, Sandbox> = {};
  let before_: unknown[];
  let svcMap: string;

  before(async () => {
    d = await startTestDaemon(['--firewall-check-interval', '3600']);
    for (const [name, subnet] of [['neta', '10.61.0.0/24'], ['netb', '10.62.0.0/24']]) {
      const r = await d.api('POST', '/networks/create', { Name: name, IPAM: { Config: [{ Subnet: subnet }] } });
      assert.equal(r.status, 201, r.body);
    }
    const svc = await d.api('POST', '/cnm/v1/services', { Name: 'web', Network: 'neta' });
    assert.equal(svc.status, 201, svc.body);
    svcMap = `svc_${svc.json().Id.slice(0, 16)}`;
    for (const [name, net, services] of [['a1', 'neta', []], ['a2', 'neta', ['web']], ['b1', 'netb', []]] as const) {
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: [{ Network: net, Services: services }] });
      assert.equal(r.status, 201, r.body);
      const sb = (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
      s[name] = { netns: sb.NetnsPath, ip: sb.Networks[net].IPAddress };
    }
    before_ = await cnmRuleset(d);
    assert.ok(JSON.stringify(before_).includes(svcMap), 'the service map is part of the ruleset compared');
    assertIsolated(s, 'before any change');
    // The daemon's own transactions (networks, sandboxes, the service) are recognised and never checked.
    assert.doesNotMatch(d.logs(), /changed by another process/);
  });
  after(async () => {
    await d?.cleanup();
  });

  it('`nft flush ruleset` in the daemon namespace: rules and isolation come back', async () => {
    // Hold the daemon so the flushed window can be observed: its events wait in the socket meanwhile.
    process.kill(d.pid(), 'SIGSTOP');
    try {
      await nft(d, 'flush', 'ruleset');
      assert.deepEqual(await cnmRuleset(d), [], 'the flush removed cnm tables');
      assert.equal(pings(s.a1!, s.b1!), true, 'without the rules, a1 reaches b1 (the probe sees isolation)');
    } finally {
      process.kill(d.pid(), 'SIGCONT');
    }
    await waitFor('rules restored', async () => (await cnmRuleset(d)).length > 0);
    assert.deepEqual(await cnmRuleset(d), before_, 'the whole ruleset, elements included, is back');
    assertIsolated(s, 'after the flush');
    assert.match(d.logs(), /changed by another process/);
  });

  it('a set element deleted by hand is restored', async () => {
    await nft(d, 'delete', 'element', 'inet', 'cnm', 'masq_v4', '{ 10.62.0.0/24 }');
    await waitFor('element restored', async () => JSON.stringify(await cnmRuleset(d)) === JSON.stringify(before_));
    assert.deepEqual(await cnmRuleset(d), before_);
  });

  it('a bridge element deleted by hand is restored, and isolation with it', async () => {
    const r = await d.inHost('nft', ['-j', 'list', 'set', 'inet', 'cnm', 'bridges']);
    const bridges = JSON.parse(r.stdout).nftables.find((i: any) => i.set)?.set.elem as string[];
    assert.ok(bridges.length >= 3, r.stdout);
    process.kill(d.pid(), 'SIGSTOP');
    try {
      await nft(d, 'delete', 'element', 'inet', 'cnm', 'bridges', `{ ${bridges.map((b) => `"${b}"`).join(', ')} }`);
      assert.equal(pings(s.a1!, s.b1!), true, 'without the bridges set, a1 reaches b1');
    } finally {
      process.kill(d.pid(), 'SIGCONT');
    }
    await waitFor('bridges restored', async () => JSON.stringify(await cnmRuleset(d)) === JSON.stringify(before_));
    assertIsolated(s, 'after the bridges set was emptied');
  });

  it('a service map slot deleted by hand is restored', async () => {
    await nft(d, 'delete', 'element', 'inet', 'cnm', svcMap, '{ 7 }');
    await waitFor('slot restored', async () => JSON.stringify(await cnmRuleset(d)) === JSON.stringify(before_));
  });

  it('an element added by hand to a cnm set is removed', async () => {
    await nft(d, 'add', 'element', 'inet', 'cnm', 'internal', '{ "cnmx-intruder" }');
    await waitFor('extra element removed', async () => JSON.stringify(await cnmRuleset(d)) === JSON.stringify(before_));
    await nft(d, 'add', 'element', 'bridge', 'cnm', 'no_icc_v4', '{ 10.61.0.0/24 }');
    await waitFor('extra no_icc element removed', async () => JSON.stringify(await cnmRuleset(d)) === JSON.stringify(before_));
    assertIsolated(s, 'after the extra elements');
  });

  it('a chain added by hand to a cnm table is removed; other tables are left alone', async () => {
    await nft(d, 'add', 'table', 'inet', 'cnmt-other');
    await nft(d, 'add', 'chain', 'inet', 'cnm', 'intruder');
    await waitFor('extra chain removed', async () => JSON.stringify(await cnmRuleset(d)) === JSON.stringify(before_));
    const other = await d.inHost('nft', ['list', 'table', 'inet', 'cnmt-other']);
    assert.equal(other.code, 0, 'a table that is not cnm\'s stays');
  });
});
