/**
 * The watchdog's pure parts: which recorded nftables events (test/fixtures/nft/events-*.json, datagrams
 * read by NftEventMonitor from nft 1.0.6 on kernel 6.18) count as a foreign change of cnm's tables, and
 * how bursts are debounced into single checks (mocked timers).
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { splitMessages, type NetlinkMessage } from '../../src/kernel/netlink/codec.js';
import { NftChangeFilter } from '../../src/firewall/nft-events.js';
import { Debouncer, FirewallWatchdog } from '../../src/firewall/watchdog.js';

function recorded(name: string): NetlinkMessage[] {
  const datagrams = JSON.parse(readFileSync(new URL(`../fixtures/nft/events-${name}.json`, import.meta.url), 'utf8')) as string[];
  return datagrams.flatMap((hex) => splitMessages(Buffer.from(hex, 'hex')));
}

const NFT_PID = 1447; // the `nft` process that made the recorded delete-element transaction
const notOwn = () => false;

describe('NftChangeFilter on recorded events', () => {
  it('`nft delete element inet cnm bridges` is one foreign change with its PID and generation', () => {
    const changes = new NftChangeFilter(notOwn).feed(recorded('delete-element'));
    assert.deepEqual(changes, [{ generation: 15, pid: NFT_PID, process: 'nft', objects: 1 }]);
  });

  it('`nft flush ruleset` is one foreign change', () => {
    const changes = new NftChangeFilter(notOwn).feed(recorded('flush-ruleset'));
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.process, 'nft');
    assert.ok(changes[0]!.objects > 10, `${changes[0]!.objects} objects`);
  });

  it('transactions on other tables are not changes', () => {
    const messages = recorded('other-table');
    assert.ok(messages.length >= 4, 'add table + NEWGEN, delete table + NEWGEN');
    assert.deepEqual(new NftChangeFilter(notOwn).feed(messages), []);
  });

  it('the daemon\'s own transactions are not changes', () => {
    const seen: number[] = [];
    const filter = new NftChangeFilter((pid) => (seen.push(pid), pid === NFT_PID));
    assert.deepEqual(filter.feed(recorded('delete-element')), []);
    assert.deepEqual(seen, [NFT_PID]);
  });

  it('a transaction split over several reads is completed by its NEWGEN', () => {
    const filter = new NftChangeFilter(notOwn);
    const messages = recorded('flush-ruleset');
    const results = messages.map((m) => filter.feed([m]));
    assert.deepEqual(results.slice(0, -1).flat(), []);
    assert.equal(results.at(-1)!.length, 1);
  });

  it('reset() forgets a half-seen transaction (events were lost: the caller checks anyway)', () => {
    const filter = new NftChangeFilter(notOwn);
    const messages = recorded('delete-element');
    filter.feed(messages.slice(0, -1));
    filter.reset();
    assert.deepEqual(filter.feed(messages.slice(-1)), []);
  });
});

describe('Debouncer', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('a burst becomes one run after it goes quiet', async () => {
    let runs = 0;
    const d = new Debouncer(async () => void runs++, { quietMs: 20, maxDelayMs: 100 });
    d.trigger();
    mock.timers.tick(10);
    d.trigger();
    mock.timers.tick(19);
    assert.equal(runs, 0, 'still inside the burst');
    mock.timers.tick(1);
    await Promise.resolve();
    assert.equal(runs, 1);
    mock.timers.tick(1000);
    assert.equal(runs, 1, 'nothing more without a trigger');
  });

  it('an endless burst still runs by maxDelayMs', async () => {
    let runs = 0;
    const d = new Debouncer(async () => void runs++, { quietMs: 20, maxDelayMs: 100 });
    for (let t = 0; t < 100; t += 10) {
      d.trigger();
      mock.timers.tick(10);
    }
    await Promise.resolve();
    assert.equal(runs, 1);
  });

  it('never runs twice at once; a trigger during a run schedules exactly one more', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    let release!: () => void;
    const d = new Debouncer(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs++;
      await new Promise<void>((r) => (release = r));
      running--;
    }, { quietMs: 5, maxDelayMs: 50 });
    d.trigger();
    mock.timers.tick(5);
    assert.equal(runs, 1);
    d.trigger();
    d.trigger();
    mock.timers.tick(100);
    assert.equal(runs, 1, 'waits for the running check');
    release();
    await new Promise((r) => setImmediate(r));
    mock.timers.tick(5);
    assert.equal(runs, 2);
    release();
    await new Promise((r) => setImmediate(r));
    mock.timers.tick(100);
    assert.equal(runs, 2);
    assert.equal(maxRunning, 1);
  });

  it('stop() cancels a pending run', () => {
    let runs = 0;
    const d = new Debouncer(async () => void runs++, { quietMs: 5, maxDelayMs: 50 });
    d.trigger();
    d.stop();
    mock.timers.tick(100);
    d.trigger();
    mock.timers.tick(100);
    assert.equal(runs, 0);
  });
});

/** Advance mocked time, then let the checks' promises settle. */
async function step(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await new Promise((r) => setImmediate(r));
}

describe('FirewallWatchdog', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] }));
  afterEach(() => mock.timers.reset());

  const quiet = { info() {}, warn() {}, error() {} };

  function withEvents(isOwnProcess: (pid: number) => boolean) {
    let handlers!: Parameters<NonNullable<ConstructorParameters<typeof FirewallWatchdog>[0]['openEvents']>>[0];
    let checks = 0;
    let closed = false;
    const dog = new FirewallWatchdog({
      check: async () => (checks++, true),
      backstopMs: 0,
      openEvents: (h) => ((handlers = h), { close: async () => void (closed = true) }),
      isOwnProcess,
      logger: quiet,
    });
    return { dog, handlers, checks: () => checks, closed: () => closed };
  }

  it('checks once after a foreign change, not after its own', async () => {
    const w = withEvents((pid) => pid !== NFT_PID);
    w.handlers.onMessages(recorded('delete-element'));
    w.handlers.onMessages(recorded('flush-ruleset'));
    mock.timers.tick(100);
    assert.equal(w.checks(), 1);
    const own = withEvents(() => true);
    own.handlers.onMessages(recorded('flush-ruleset'));
    mock.timers.tick(100);
    assert.equal(own.checks(), 0);
    await w.dog.close();
    assert.equal(w.closed(), true);
  });

  it('lost events trigger a check', () => {
    const w = withEvents(() => true);
    w.handlers.onLoss(Object.assign(new Error('ENOBUFS'), { errno: 'ENOBUFS' }) as never, false);
    mock.timers.tick(100);
    assert.equal(w.checks(), 1);
  });

  it('without events the backstop checks periodically', async () => {
    let checks = 0;
    const dog = new FirewallWatchdog({
      check: async () => (checks++, false),
      backstopMs: 1000,
      openEvents: () => {
        throw new Error('EPERM');
      },
      logger: quiet,
    });
    assert.equal(dog.followingEvents, false);
    // Node 20's mock timers run a timeout scheduled by an interval only on a later tick: step through.
    for (let t = 0; t < 3100; t += 10) await step(10);
    assert.equal(checks, 3);
    await dog.close();
    for (let t = 0; t < 5000; t += 10) await step(10);
    assert.equal(checks, 3);
  });
});
