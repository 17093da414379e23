/** Docker-style table output. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
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
      err(`Error response from daemon: ${(e as Error).message}\n`);
    }
  }
  return failed;
}
