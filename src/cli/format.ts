/**
 * Output like the docker CLI's: tabwriter tables, --format templates (a small subset of Go
 * templates), `{{json .}}` rows, indented inspect arrays, truncated IDs and Go time strings.
 */

/** Docker-style table output (the docker CLI's tabwriter: min width 10, three spaces of padding). */
export function renderTable(header: string[], rows: string[][]): string {
  return `${tabwrite([header, ...rows].map((r) => r.join('\t')).join('\n'))}\n`;
}

export function shortId(id: string, noTrunc: boolean): string {
  return noTrunc ? id : id.slice(0, 12);
}

/** Run `fn` for every reference, printing Docker's per-item error line; true when any failed. */
export async function forEachRef(
  refs: string[],
  err: (text: string) => void,
  fn: (ref: string) => Promise<void>,
  ignore: (e: unknown) => boolean = () => false,
): Promise<boolean> {
  let failed = false;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (e) {
      if (ignore(e)) continue;
      failed = true;
      // Only answers from the daemon carry Docker's prefix; local failures print as they are.
      const fromDaemon = typeof (e as { status?: unknown }).status === 'number';
      err(`${fromDaemon ? 'Error response from daemon: ' : ''}${(e as Error).message}\n`);
    }
  }
  return failed;
}

/** Go's text/tabwriter as the docker CLI sets it up; the last cell of a line is not padded. */
export function tabwrite(text: string, minWidth = 10, padding = 3): string {
  const cells = text.split('\n').map((line) => line.split('\t'));
  const widthOf = (s: string) => [...s].length;
  const widths = cells.map((row) => row.map(() => 0));
  const maxCols = Math.max(0, ...cells.map((row) => row.length - 1));
  for (let col = 0; col < maxCols; col++) {
    // A column block is a run of consecutive lines that have a tab-terminated cell in this column.
    let start = 0;
    while (start < cells.length) {
      if (cells[start]!.length - 1 <= col) {
        start++;
        continue;
      }
      let end = start;
      let width = minWidth;
      while (end < cells.length && cells[end]!.length - 1 > col) {
        width = Math.max(width, widthOf(cells[end]![col]!) + padding);
        end++;
      }
      for (let r = start; r < end; r++) widths[r]![col] = width;
      start = end;
    }
  }
  return cells
    .map((row, r) => row.map((cell, c) => (c < row.length - 1 ? cell + ' '.repeat(widths[r]![c]! - widthOf(cell)) : cell)).join(''))
    .join('\n');
}

/** github.com/fvbommel/sortorder NaturalLess (the order of `docker network ls`): digit runs compare as numbers. */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+|\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      const diff = BigInt(x) - BigInt(y);
      if (diff !== 0n) return diff < 0n ? -1 : 1;
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** Go's time.Time.String() for an RFC3339Nano timestamp: "2024-01-02 03:04:05.123456789 +0000 UTC". */
export function goTimeString(rfc3339: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(rfc3339);
  if (!m) return rfc3339;
  const frac = (m[3] ?? '').replace(/0+$/, '');
  const offset = m[4]!.replace(':', '');
  const zone = m[4]!.toUpperCase() === 'Z' ? '+0000 UTC' : `${offset} ${offset}`;
  return `${m[1]} ${m[2]}${frac ? `.${frac}` : ''} ${zone}`;
}

/** Go's fmt %v, for template output. */
function goValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${goValue(x)}`).join(' ')}]`;
  }
  return String(v);
}

function lookupPath(root: unknown, path: string): unknown {
  if (path === '.') return root;
  let cur = root;
  for (const key of path.slice(1).split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** A --format template the subset below cannot render. */
export class FormatError extends Error {}

/**
 * The subset of Go templates people pass to --format: `{{.A.B}}`, `{{json .A}}`, `{{json .}}`,
 * `{{index .Labels "key"}}`, `{{upper .X}}` / `{{lower .X}}`.
 */
export function renderTemplate(template: string, data: unknown): string {
  return template.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_whole, expr: string) => {
    const json = /^json\s+(\.[\w.]*)$/.exec(expr);
    if (json) return JSON.stringify(lookupPath(data, json[1]!) ?? null);
    const index = /^index\s+(\.[\w.]*)\s+"([^"]*)"$/.exec(expr);
    if (index) return goValue((lookupPath(data, index[1]!) as Record<string, unknown> | undefined)?.[index[2]!]);
    const fn = /^(upper|lower)\s+(\.[\w.]*)$/.exec(expr);
    if (fn) {
      const s = goValue(lookupPath(data, fn[2]!));
      return fn[1] === 'upper' ? s.toUpperCase() : s.toLowerCase();
    }
    if (/^\.[\w.]*$/.test(expr)) return goValue(lookupPath(data, expr));
    throw new FormatError(`template parsing error: unsupported expression {{${expr}}}`);
  });
}

export interface ListFormat<Row extends Record<string, string>> {
  /** Template of the default table, without the "table " prefix. */
  defaultTable: string;
  /** Column header per field, for table formats. */
  headers: Record<keyof Row & string, string>;
  /** What -q prints. */
  quietField: keyof Row & string;
}

/**
 * Docker's formatter.Context: "" or "table" → the default table, "table TEMPLATE" → a custom table,
 * "json" → one JSON object per row (keys sorted), anything else → TEMPLATE once per row.
 */
export function formatList<Row extends Record<string, string>>(
  rows: Row[],
  spec: ListFormat<Row>,
  format: string | undefined,
  quiet: boolean,
): string {
  const source = format || 'table';
  if (quiet && source === 'table') return rows.map((r) => `${r[spec.quietField]}\n`).join('');
  if (source === 'json') return rows.map((r) => `${sortedJson(r)}\n`).join('');
  const unescape = (t: string) => t.trim().replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  if (source === 'table' || source.startsWith('table ')) {
    const template = unescape(source === 'table' ? spec.defaultTable : source.slice('table '.length));
    const header = renderTemplate(template, spec.headers);
    const body = rows.map((r) => renderTemplate(template, r));
    return `${tabwrite([header, ...body].join('\n'))}\n`;
  }
  const template = unescape(source);
  return rows.map((r) => `${template === '{{json .}}' ? sortedJson(r) : renderTemplate(template, r)}\n`).join('');
}

function sortedJson(row: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/**
 * `docker X inspect REF...`: fetch every reference (a failed one prints Docker's error line and the rest
 * go on), print what was found, and return the exit code.
 */
export async function inspectRefs(
  refs: string[],
  io: { out(text: string): void; err(text: string): void },
  template: string | undefined,
  fetch: (ref: string) => Promise<unknown>,
): Promise<number> {
  const found: unknown[] = [];
  const failed = await forEachRef(refs, io.err, async (r) => {
    found.push(await fetch(r));
  });
  io.out(formatInspect(found, template));
  return failed ? 1 : 0;
}

/** `docker inspect` output: a JSON array indented by four spaces, or the template once per element. */
export function formatInspect(elements: unknown[], template: string | undefined): string {
  if (template) {
    const t = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
    return elements.map((e) => `${renderTemplate(t, e)}\n`).join('');
  }
  if (elements.length === 0) return '[]\n';
  return `${JSON.stringify(elements, null, 4)}\n`;
}
