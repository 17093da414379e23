/** The bench's pure parts: percentiles, ratios and targets, the table, the SVG chart, flags, ping parsing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeScale, renderChart } from '../../bench/lib/chart.js';
import { parseBenchArgs } from '../../bench/lib/options.js';
import { parsePingOutput } from '../../bench/lib/reach.js';
import { median, percentile, summarize } from '../../bench/lib/stats.js';
import { advantage, evaluateTargets, latencyCell, OP, overFloor, renderTable, valueCell, type Row } from '../../bench/lib/table.js';

const rows: Row[] = [
  { operation: OP.networkCreate, size: '-', unit: 'ms', comparison: 'lower-is-better', cnm: latencyCell([2, 3, 4]), docker: latencyCell([60, 70, 80]) },
  { operation: OP.connect, size: '1', unit: 'ms', comparison: 'lower-is-better', cnm: valueCell(3), docker: valueCell(30), floor: valueCell(2) },
  { operation: OP.connect, size: '1000', unit: 'ms', comparison: 'lower-is-better', cnm: valueCell(6), floor: valueCell(2) },
  { operation: OP.churn, size: '16 clients', unit: 'ops/s', comparison: 'higher-is-better', cnm: valueCell(200), docker: valueCell(8) },
  { operation: OP.rssDaemon, size: 'idle', unit: 'MiB', comparison: 'lower-is-better', cnm: valueCell(90), docker: valueCell(60) },
  { operation: OP.rssDaemon, size: '1000', unit: 'MiB', comparison: 'lower-is-better', cnm: valueCell(120), docker: valueCell(150) },
  { operation: OP.restartLoss, size: '1000', unit: 'lost pkts', comparison: 'none', cnm: valueCell(0), docker: valueCell(900) },
];

describe('bench stats', () => {
  it('takes nearest-rank percentiles and medians', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile([...samples].sort((a, b) => a - b), 50), 50);
    assert.equal(summarize(samples).p99, 99);
    assert.equal(summarize([]).n, 0);
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('computes how many times better cnm is, in the right direction per row', () => {
    assert.equal(advantage(rows[0]!), 70 / 3);
    assert.equal(advantage(rows[3]!), 25);
    assert.equal(advantage(rows[2]!), undefined);
    assert.equal(advantage(rows[6]!), undefined);
    assert.equal(overFloor(rows[1]!), 1.5);
  });

  it('evaluates the issue targets from the rows', () => {
    const targets = evaluateTargets(rows);
    const byGoal = (text: string) => targets.find((t) => t.goal.includes(text));
    assert.equal(byGoal('network create')?.met, true);
    assert.equal(byGoal(`${OP.connect} @1: ≥10×`)?.met, true);
    assert.equal(byGoal(`${OP.connect} @1000: ≥10×`)?.met, undefined);
    assert.equal(byGoal('connect @1000 within 1.5×')?.met, false);
    assert.equal(byGoal(`${OP.connect} @1: within 2.5× of the kernel floor`)?.met, true);
    assert.equal(byGoal('RSS @1000')?.met, true);
  });

  it('holds the first-endpoint and second-interface connect rows to 10× Docker and 2.5× the floor', () => {
    const fresh: Row[] = [
      { operation: OP.connectNewNetwork, size: 'first endpoint', unit: 'ms', comparison: 'lower-is-better', cnm: valueCell(2.7), docker: valueCell(40), floor: valueCell(1) },
      { operation: OP.connectSecond, size: 'its eth1', unit: 'ms', comparison: 'lower-is-better', cnm: valueCell(2), docker: valueCell(15), floor: valueCell(1) },
    ];
    const targets = evaluateTargets(fresh);
    const byGoal = (text: string) => targets.find((t) => t.goal.includes(text));
    assert.equal(byGoal(`${OP.connectNewNetwork} @first endpoint: ≥10×`)?.met, true);
    assert.equal(byGoal(`${OP.connectNewNetwork} @first endpoint: within 2.5×`)?.met, false);
    assert.equal(byGoal(`${OP.connectNewNetwork} @first endpoint: within 2.5×`)?.measured, '2.70×');
    assert.equal(byGoal(`${OP.connectSecond} @its eth1: ≥10×`)?.met, false);
    assert.equal(byGoal(`${OP.connectSecond} @its eth1: within 2.5×`)?.met, true);
  });

  it('renders one aligned table row per result', () => {
    const lines = renderTable(rows).split('\n');
    assert.equal(lines.length, rows.length + 2);
    assert.ok(new Set(lines.map((l) => l.length)).size === 1, 'all lines have the same width');
    assert.match(lines[2]!, /network create .* 23\.3×/);
    assert.match(lines[8]!, /\| 900 /);
    const never = renderTable([{ operation: OP.restart, size: '1000', unit: 's', comparison: 'lower-is-better', cnm: valueCell(3), docker: valueCell(Infinity) }]);
    assert.match(never, /\| never +\|/);
  });
});

describe('bench chart', () => {
  it('scales log axes by decades and linear axes by nice steps', () => {
    const log = makeScale([2, 300], true);
    assert.deepEqual(log.ticks, [1, 10, 100, 1000]);
    assert.ok(log.x(10) < log.x(100));
    const lin = makeScale([0, 7.5], false);
    assert.deepEqual(lin.ticks, [0, 2, 4, 6, 8]);
  });

  it('draws a bar per measured cell and escapes text', () => {
    const svg = renderChart(rows, 'a < b & c');
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.ok(svg.includes('a &lt; b &amp; c'));
    const cells = rows.reduce((n, r) => n + [r.cnm, r.docker, r.floor].filter(Boolean).length, 0);
    assert.equal(svg.match(/<rect x="300"/g)?.length, cells);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    const never = renderChart([{ operation: OP.restart, size: '1000', unit: 's', comparison: 'lower-is-better', cnm: latencyCell([3, 4]), docker: latencyCell([Infinity]) }], '');
    assert.doesNotMatch(never, /NaN|Infinity/);
    assert.ok(never.includes('>never</text>'));
  });
});

describe('bench options and ping parsing', () => {
  it('defaults to the full run and shrinks with --quick', () => {
    const full = parseBenchArgs([], {});
    assert.ok(full !== 'help');
    assert.deepEqual(full.sizes, [1, 100, 1000]);
    assert.equal(full.dockerMaxEndpoints, Infinity);
    const quick = parseBenchArgs(['--quick', '--docker-max-endpoints', '50', '--cnm-kernel', 'iproute'], {});
    assert.ok(quick !== 'help');
    assert.deepEqual(quick.sizes, [1, 100]);
    assert.equal(quick.reps, 10);
    assert.equal(quick.dockerMaxEndpoints, 50);
    assert.equal(quick.cnmKernel, 'iproute');
    assert.deepEqual((parseBenchArgs([], { CNM_BENCH_SIZES: '100,5' }) as { sizes: number[] }).sizes, [5, 100]);
    assert.throws(() => parseBenchArgs(['--cnm-kernel', 'ebpf'], {}));
    assert.deepEqual([...(parseBenchArgs([], {}) as { only: ReadonlySet<string> }).only].length, 6);
    assert.deepEqual([...(parseBenchArgs(['--only', 'first-connect, connect'], {}) as { only: ReadonlySet<string> }).only], ['first-connect', 'connect']);
    assert.deepEqual([...(parseBenchArgs([], { CNM_BENCH_ONLY: 'restart' }) as { only: ReadonlySet<string> }).only], ['restart']);
    assert.throws(() => parseBenchArgs(['--only', 'connect,dns'], {}), /unknown group dns/);
  });

  it('counts lost probes from ping output, ignoring the last one in flight', () => {
    const out = [
      '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.1 ms',
      '64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.1 ms',
      '--- 10.0.0.2 ping statistics ---',
      '4 packets transmitted, 2 received, 50% packet loss, time 30ms',
    ].join('\n');
    assert.deepEqual(parsePingOutput(out), { transmitted: 4, received: 2, lost: 1 });
    assert.ok(Number.isNaN(parsePingOutput('ping: bad address').lost));
  });
});
