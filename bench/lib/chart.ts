/**
 * A self-contained SVG of the result rows: one panel per unit, one group of horizontal bars per row
 * (cnm, Docker, kernel floor), the bar at p50 and a whisker out to p99. Latency panels use a log axis
 * because Docker and cnm differ by orders of magnitude.
 */
import { formatNumber, type Row, type Unit } from './table.js';

const WIDTH = 980;
const LABEL_W = 300;
const PLOT_W = WIDTH - LABEL_W - 90;
const BAR_H = 9;
const ROW_GAP = 10;
const PANEL_HEAD = 44;

const SERIES = [
  { key: 'cnm', label: 'cnm', color: '#2563eb' },
  { key: 'docker', label: 'Docker', color: '#ea580c' },
  { key: 'floor', label: 'kernel floor (the same kernel work, in one process)', color: '#6b7280' },
] as const;

const LOG_UNITS: ReadonlySet<Unit> = new Set(['ms', 's']);

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Scale {
  x(v: number): number;
  ticks: number[];
}

export function makeScale(values: number[], log: boolean): Scale {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  const max = positive.length ? Math.max(...positive) : 1;
  if (log) {
    const lo = Math.floor(Math.log10(positive.length ? Math.min(...positive) : 1));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
    const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
    return { ticks, x: (v) => (v <= 0 ? 0 : Math.max(0, ((Math.log10(v) - lo) / (hi - lo)) * PLOT_W)) };
  }
  const step = niceStep(max / 4);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
  return { ticks, x: (v) => Math.max(0, (v / top) * PLOT_W) };
}

function tickLabel(t: number): string {
  return Number.isInteger(t) ? String(t) : String(Number(t.toPrecision(3)));
}

function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function panel(unit: Unit, rows: Row[], top: number): { svg: string; height: number } {
  const log = LOG_UNITS.has(unit);
  const values = rows.flatMap((r) => SERIES.flatMap((s) => [r[s.key]?.p50, r[s.key]?.p99])).filter((v): v is number => v !== undefined);
  const scale = makeScale(values, log);
  const rowH = (r: Row) => SERIES.filter((s) => r[s.key]).length * BAR_H + ROW_GAP;
  const plotH = rows.reduce((h, r) => h + Math.max(rowH(r), BAR_H + ROW_GAP), 0);
  const x0 = LABEL_W;
  const parts: string[] = [];
  const better = unit === 'ops/s' || unit === 'endpoints' ? 'higher is better' : 'lower is better';
  parts.push(`<text x="10" y="${top + 18}" class="h">${esc(unit)}${log ? ' (log scale)' : ''} — ${better}</text>`);
  const plotTop = top + PANEL_HEAD - 14;
  for (const t of scale.ticks) {
    const x = x0 + scale.x(t);
    parts.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotTop + plotH}" class="grid"/>`);
    parts.push(`<text x="${x}" y="${plotTop - 4}" class="tick">${esc(tickLabel(t))}</text>`);
  }
  let y = plotTop + ROW_GAP / 2;
  for (const r of rows) {
    const label = r.size === '-' ? r.operation : `${r.operation} · ${r.size}`;
    const present = SERIES.filter((s) => r[s.key]);
    const h = Math.max(present.length, 1) * BAR_H;
    parts.push(`<text x="${x0 - 8}" y="${y + h / 2 + 4}" class="lbl">${esc(label)}</text>`);
    present.forEach((s, i) => {
      const cell = r[s.key]!;
      const by = y + i * BAR_H;
      const w = Number.isFinite(cell.p50) ? scale.x(cell.p50) : 0;
      parts.push(`<rect x="${x0}" y="${by + 1}" width="${w.toFixed(1)}" height="${BAR_H - 2}" fill="${s.color}"><title>${esc(`${s.label}: p50 ${formatNumber(cell.p50, unit)} ${unit}`)}</title></rect>`);
      if (cell.p99 !== undefined && Number.isFinite(cell.p99)) {
        const wx = x0 + scale.x(cell.p99);
        parts.push(`<line x1="${(x0 + w).toFixed(1)}" y1="${by + BAR_H / 2}" x2="${wx.toFixed(1)}" y2="${by + BAR_H / 2}" stroke="${s.color}"/>`);
        parts.push(`<line x1="${wx.toFixed(1)}" y1="${by + 1}" x2="${wx.toFixed(1)}" y2="${by + BAR_H - 1}" stroke="${s.color}"/>`);
      }
      const whiskerEnd = cell.p99 !== undefined && Number.isFinite(cell.p99) ? scale.x(cell.p99) : 0;
      parts.push(`<text x="${(x0 + Math.max(w, whiskerEnd) + 4).toFixed(1)}" y="${by + BAR_H - 1}" class="val">${esc(formatNumber(cell.p50, unit))}</text>`);
    });
    if (present.length === 0) parts.push(`<text x="${x0 + 4}" y="${y + BAR_H}" class="val">not measured</text>`);
    y += Math.max(rowH(r), BAR_H + ROW_GAP);
  }
  return { svg: parts.join('\n'), height: PANEL_HEAD + plotH + 8 };
}

export function renderChart(rows: Row[], subtitle: string): string {
  const units: Unit[] = [];
  for (const r of rows) if (!units.includes(r.unit)) units.push(r.unit);
  const body: string[] = [];
  let y = 64;
  for (const unit of units) {
    const p = panel(unit, rows.filter((r) => r.unit === unit), y);
    body.push(p.svg);
    y += p.height;
  }
  const legend = SERIES.map(
    (s, i) => `<rect x="${10 + i * 190}" y="${y + 6}" width="12" height="12" fill="${s.color}"/><text x="${28 + i * 190}" y="${y + 16}" class="leg">${esc(s.label)}</text>`,
  ).join('');
  const height = y + 50;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">
<style>
.t{font-size:17px;font-weight:bold}.s{font-size:12px;fill:#444}.h{font-size:13px;font-weight:bold;fill:#222}
.tick{font-size:10px;fill:#666;text-anchor:middle}.lbl{font-size:11px;text-anchor:end;fill:#222}
.val{font-size:10px;fill:#333}.leg{font-size:12px}.grid{stroke:#e5e7eb}
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" class="t">cnm vs Docker: bar = p50, whisker = p99</text>
<text x="10" y="44" class="s">${esc(subtitle)}</text>
${body.join('\n')}
${legend}
<text x="10" y="${y + 38}" class="s">Bars are drawn from the axis origin; on log panels the origin is the lowest decade shown.</text>
</svg>
`;
}
