/**
 * Result rows, the printed table and the targets (reported as ratios, never asserted).
 */
import { summarize } from './stats.js';

export type Unit = 'ms' | 'ops/s' | 'MiB' | 's' | 'lost pkts' | 'endpoints';
/** How "cnm vs docker" is computed: how many times better cnm is, or not at all. */
export type Comparison = 'lower-is-better' | 'higher-is-better' | 'none';

export interface Cell {
  p50: number;
  /** Absent for single-value rows (memory, throughput medians of few rounds). */
  p99?: number;
  n: number;
  /** Extra facts kept in the JSON (raw samples, timings breakdown). */
  detail?: Record<string, unknown>;
}

export interface Row {
  operation: string;
  size: string;
  unit: Unit;
  comparison: Comparison;
  cnm?: Cell;
  docker?: Cell;
  /** The same kernel work done by the tools directly (connect / disconnect rows only). */
  floor?: Cell;
  note?: string;
}

export const OP = {
  networkCreate: 'network create',
  networkRm: 'network rm',
  connect: 'connect (running sandbox)',
  disconnect: 'disconnect (running sandbox)',
  connectNewNetwork: 'connect (new network)',
  connectSecond: 'connect (sandbox on a network)',
  churn: 'sandbox create+rm, 1 network',
  rssDaemon: 'daemon RSS (daemon process)',
  rssAll: 'daemon RSS (+containerd+shims)',
  restart: 'daemon restart → all reachable',
  restartBack: 'endpoints back after restart',
  restartLoss: 'ping loss during restart',
} as const;

export function latencyCell(samples: number[], detail?: Record<string, unknown>): Cell | undefined {
  if (samples.length === 0) return undefined;
  const s = summarize(samples);
  return { p50: s.p50, p99: s.p99, n: s.n, detail: { ...detail, mean: s.mean, min: s.min, max: s.max, samples } };
}

export function valueCell(value: number, detail?: Record<string, unknown>): Cell {
  return { p50: value, n: 1, detail };
}

/** How many times better cnm is than Docker on this row (>1: cnm better). */
export function advantage(row: Row): number | undefined {
  if (!row.cnm || !row.docker || row.comparison === 'none') return undefined;
  const r = row.comparison === 'lower-is-better' ? row.docker.p50 / row.cnm.p50 : row.cnm.p50 / row.docker.p50;
  return Number.isFinite(r) ? r : undefined;
}

export function overFloor(row: Row): number | undefined {
  return row.cnm && row.floor ? row.cnm.p50 / row.floor.p50 : undefined;
}

export function formatNumber(n: number | undefined, unit?: Unit): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  // A restart after which some endpoints never came back.
  if (n === Infinity) return 'never';
  if (unit === 'lost pkts' || unit === 'endpoints') return String(Math.round(n));
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  return Math.abs(n) < 10 ? n.toFixed(2) : n.toFixed(1);
}

const ratio = (r: number | undefined) => (r === undefined ? '-' : `${r < 10 ? r.toFixed(2) : r.toFixed(1)}×`);

export function renderTable(rows: Row[]): string {
  const header = ['operation', 'size', 'unit', 'cnm p50', 'cnm p99', 'docker p50', 'docker p99', 'floor p50', 'floor p99', 'cnm vs docker', 'cnm ÷ floor'];
  const lines = rows.map((r) => [
    r.operation,
    r.size,
    r.unit,
    formatNumber(r.cnm?.p50, r.unit),
    formatNumber(r.cnm?.p99, r.unit),
    formatNumber(r.docker?.p50, r.unit),
    formatNumber(r.docker?.p99, r.unit),
    formatNumber(r.floor?.p50, r.unit),
    formatNumber(r.floor?.p99, r.unit),
    ratio(advantage(r)),
    ratio(overFloor(r)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cols: string[]) => '| ' + cols.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [render(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.map(render)].join('\n');
}

/** cnm ÷ the in-process kernel floor (issue 10 item 12). */
export const FLOOR_TARGET = 2.5;
const CONNECT_OPS: string[] = [OP.connect, OP.connectNewNetwork, OP.connectSecond];

export interface Target {
  goal: string;
  measured: string;
  /** undefined when a side of the comparison was not measured. */
  met?: boolean;
}

function find(rows: Row[], operation: string, size?: string): Row | undefined {
  return rows.find((r) => r.operation === operation && (size === undefined || r.size === size));
}

export function evaluateTargets(rows: Row[]): Target[] {
  const targets: Target[] = [];
  for (const op of [OP.networkCreate, OP.networkRm, OP.connect, OP.disconnect, OP.connectNewNetwork, OP.connectSecond]) {
    for (const row of rows.filter((r) => r.operation === op)) {
      const a = advantage(row);
      const label = row.size === '-' ? op : `${op} @${row.size}`;
      targets.push({ goal: `${label}: ≥10× faster than Docker (p50)`, measured: ratio(a), met: a === undefined ? undefined : a >= 10 });
    }
  }
  for (const row of rows.filter((r) => CONNECT_OPS.includes(r.operation))) {
    const f = overFloor(row);
    targets.push({
      goal: `${row.operation} @${row.size}: within ${FLOOR_TARGET}× of the kernel floor`,
      measured: ratio(f),
      met: f === undefined ? undefined : f <= FLOOR_TARGET,
    });
  }
  const connects = rows.filter((r) => r.operation === OP.connect && r.cnm);
  if (connects.length >= 2) {
    const first = connects[0]!;
    const last = connects[connects.length - 1]!;
    const growth = last.cnm!.p50 / first.cnm!.p50;
    targets.push({ goal: `connect @${last.size} within 1.5× of connect @${first.size}`, measured: ratio(growth), met: growth <= 1.5 });
  }
  const rssRows = rows.filter((r) => r.operation === OP.rssDaemon && r.size !== 'idle');
  const rss = rssRows[rssRows.length - 1] ?? find(rows, OP.rssDaemon);
  if (rss) {
    const measured = `cnm ${formatNumber(rss.cnm?.p50)} MiB vs dockerd ${formatNumber(rss.docker?.p50)} MiB`;
    targets.push({
      goal: `cnm RSS @${rss.size} below dockerd's`,
      measured,
      met: rss.cnm && rss.docker ? rss.cnm.p50 < rss.docker.p50 : undefined,
    });
  }
  return targets;
}

export function renderTargets(targets: Target[]): string {
  return targets.map((t) => `  ${t.met === undefined ? '?' : t.met ? 'met ' : 'MISS'}  ${t.goal}: ${t.measured}`).join('\n');
}
