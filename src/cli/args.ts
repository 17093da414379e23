/**
 * A small pflag-style argument parser, enough for Docker's flag conventions: `--name value`,
 * `--name=value`, `-n value`, `-nvalue`, grouped short booleans (`-fq`), `--bool=false`, repeatable
 * flags, comma-separated slices, interspersed positionals and `--` as the end of flags.
 */

/**
 * - bool: a switch (optionally `--x=false`);
 * - string: one value (the last one given wins);
 * - list: repeatable, every occurrence kept (Docker's ListOpts / MapOpts);
 * - csv: repeatable and comma-split (pflag's StringSlice).
 */
export type FlagKind = 'bool' | 'string' | 'list' | 'csv';

export interface FlagSpec {
  long: string;
  short?: string;
  kind: FlagKind;
  description: string;
  /** Shown in help, e.g. "string" / "list". */
  valueName?: string;
}

/** A mistake in how the command was called (exit 125, like Docker's flag errors). */
export class UsageError extends Error {}

export class ParsedArgs {
  constructor(
    private readonly values: ReadonlyMap<string, string | boolean | string[]>,
    readonly positionals: string[],
  ) {}

  /** Whether the flag was given at all. */
  has(name: string): boolean {
    return this.values.has(name);
  }

  string(name: string): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  bool(name: string): boolean {
    return this.values.get(name) === true;
  }

  list(name: string): string[] {
    const v = this.values.get(name);
    return Array.isArray(v) ? [...v] : [];
  }
}

export interface ParseOptions {
  /** When false, the first positional ends flag parsing (for `exec SANDBOX CMD -x ...`). */
  interspersed?: boolean;
}

const HELP_FLAG: FlagSpec = { long: 'help', kind: 'bool', description: 'Print usage' };

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], options: ParseOptions = {}): ParsedArgs {
  const interspersed = options.interspersed ?? true;
  const all = [...specs, ...(specs.some((s) => s.long === 'help') ? [] : [HELP_FLAG])];
  const byLong = new Map(all.map((s) => [s.long, s]));
  const byShort = new Map(all.filter((s) => s.short).map((s) => [s.short!, s]));
  if (!byShort.has('h') && !specs.some((s) => s.long === 'help')) byShort.set('h', HELP_FLAG);
  const values = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];

  const set = (spec: FlagSpec, raw: string | undefined, shown: string) => {
    if (spec.kind === 'bool') {
      if (raw === undefined) values.set(spec.long, true);
      else values.set(spec.long, parseBool(raw, shown));
      return;
    }
    if (raw === undefined) throw new UsageError(`flag needs an argument: ${shown}`);
    if (spec.kind === 'string') values.set(spec.long, raw);
    else {
      const prev = (values.get(spec.long) as string[] | undefined) ?? [];
      const add = spec.kind === 'csv' ? (raw === '' ? [] : raw.split(',')) : [raw];
      values.set(spec.long, [...prev, ...add]);
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      let raw = eq < 0 ? undefined : arg.slice(eq + 1);
      if (raw === undefined && spec.kind !== 'bool') {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        raw = argv[++i];
      }
      set(spec, raw, `--${name}`);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // A group of short flags; the first one taking a value consumes the rest (or the next arg).
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = byShort.get(letter);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${letter}' in ${arg}`);
        if (spec.kind === 'bool') {
          set(spec, undefined, `-${letter}`);
          continue;
        }
        let raw: string | undefined = arg.slice(j + 1).replace(/^=/, '');
        if (raw === '') {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${letter}' in -${letter}`);
          raw = argv[++i];
        }
        set(spec, raw, `-${letter}`);
        break;
      }
      continue;
    }
    positionals.push(arg);
    if (!interspersed) {
      positionals.push(...argv.slice(i + 1));
      break;
    }
  }
  return new ParsedArgs(values, positionals);
}

function parseBool(raw: string, shown: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(raw)) return false;
  throw new UsageError(`invalid argument "${raw}" for "${shown}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`);
}

/**
 * A decimal integer flag value as Go's strconv.ParseInt reads it, bounded to [min, max] (by default the
 * integers a JSON number carries exactly), with pflag's wording.
 */
export function parseIntFlag(raw: string, shown: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[+-]?\d+$/.test(raw)) {
    throw new UsageError(`invalid argument "${raw}" for "${shown}" flag: strconv.ParseInt: parsing "${raw}": invalid syntax`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new UsageError(`invalid argument "${raw}" for "${shown}" flag: value out of range (${min} to ${max})`);
  }
  return n;
}

/** "k=v" pairs into a map (Docker's MapOpts / ConvertKVStringsToMap: a bare "k" maps to ""). */
export function keyValueMap(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0) out[pair] = '';
    else out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Docker's --filter values ("name=value") as the API's filters JSON ({"name":{"value":true}}). */
export function filtersJson(values: readonly string[]): string | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq < 0) throw new UsageError('bad format of filter (expected name=value)');
    const name = value.slice(0, eq).trim().toLowerCase();
    (out[name] ??= {})[value.slice(eq + 1).trim()] = true;
  }
  return JSON.stringify(out);
}

export function formatFlagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names = s.short ? `-${s.short}, --${s.long}` : `    --${s.long}`;
    const value = s.kind === 'bool' ? '' : ` ${s.valueName ?? (s.kind === 'string' ? 'string' : 'list')}`;
    return [`  ${names}${value}`, s.description];
  });
  const width = Math.max(0, ...rows.map((r) => r[0]!.length)) + 3;
  return rows.map(([left, right]) => left!.padEnd(width) + right).join('\n');
}
