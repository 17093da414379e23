/**
 * Docker's `filters` query parameter (moby daemon/internal/filters) and its time formats
 * (daemon/internal/timestamp), with the same matching rules and error messages.
 *
 * Patterns (`name`, `id`) are client text, so they run on re2js — RE2's linear-time automata, with
 * Go's regexp syntax, as Docker's regexp.MatchString does — never on JavaScript's backtracking
 * RegExp, where `^(?:[0-9a-f]|[0-9a-f])*z` against a 64-hex ID would take longer than a lifetime and
 * hold the whole daemon (API, embedded DNS, firewall check) meanwhile. Each pattern is compiled once
 * per request, not once per object it is tested against.
 *
 * Linear is not enough on one event loop: Go's limits let `\pL{1000}` repeated a thousand times through
 * (a million instructions, a second to compile, 80 ms per object to match — Docker pays that in one
 * goroutine, cnm would pay it for everyone). So a request's patterns get a budget far above any real
 * filter (`^web-[0-9]+$` costs 14): over it, 400 instead of a stall.
 */
import { RE2JS } from 're2js';
import { InvalidParameterError } from '../errors.js';

/** A compiled pattern's unanchored search, or null for a pattern Go's regexp would refuse. */
type Search = ((source: string) => boolean) | null;

/** Compiled program size (RE2's instruction count) allowed for all of one request's patterns together. */
export const MAX_PATTERN_PROGRAM = 1000;
/** Pattern length × every counted repeat multiplied: a bound on what compiling may expand, checked first. */
const MAX_PATTERN_EXPANSION = 50_000;

export class FilterArgs {
  /** Compiled patterns of this request's values. */
  private readonly searches = new Map<string, Search>();
  private programSize = 0;

  private constructor(private readonly fields: ReadonlyMap<string, ReadonlySet<string>>) {}

  static empty(): FilterArgs {
    return new FilterArgs(new Map());
  }

  static fromPairs(pairs: Array<[string, string]>): FilterArgs {
    const fields = new Map<string, Set<string>>();
    for (const [k, v] of pairs) {
      if (!fields.has(k)) fields.set(k, new Set());
      fields.get(k)!.add(v);
    }
    return new FilterArgs(fields);
  }

  /**
   * Parse `{"key":{"value":true}}` or the legacy `{"key":["value"]}`. Empty → no filters.
   * Anything else → 400 "invalid filter".
   */
  static fromJson(text: string | null): FilterArgs {
    if (text === null || text === '') return FilterArgs.empty();
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new InvalidParameterError('invalid filter');
    }
    if (raw === null) return FilterArgs.empty();
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidParameterError('invalid filter');
    const fields = new Map<string, Set<string>>();
    for (const [key, values] of Object.entries(raw as Record<string, unknown>)) {
      const set = new Set<string>();
      if (Array.isArray(values)) {
        for (const v of values) {
          if (typeof v !== 'string') throw new InvalidParameterError('invalid filter');
          set.add(v);
        }
      } else if (values !== null && typeof values === 'object') {
        for (const [v, flag] of Object.entries(values as Record<string, unknown>)) {
          if (typeof flag !== 'boolean') throw new InvalidParameterError('invalid filter');
          set.add(v);
        }
      } else if (values !== null) {
        throw new InvalidParameterError('invalid filter');
      }
      fields.set(key, set);
    }
    return new FilterArgs(fields);
  }

  /** 400 `invalid filter 'x'` for the first key not in `accepted`. */
  validate(accepted: readonly string[]): void {
    for (const key of this.fields.keys()) {
      if (!accepted.includes(key)) throw new InvalidParameterError(`invalid filter '${key}'`);
    }
  }

  keys(): string[] {
    return [...this.fields.keys()];
  }

  contains(key: string): boolean {
    return this.fields.has(key);
  }

  get(key: string): string[] {
    return [...(this.fields.get(key) ?? [])];
  }

  /** True when no values are set for `key` or `source` equals one of them. */
  exactMatch(key: string, source: string): boolean {
    const values = this.fields.get(key);
    if (!values || values.size === 0) return true;
    return values.has(source);
  }

  /**
   * Exact match, else any value used as a regular expression matches somewhere in `source`
   * (Go's regexp.MatchString: unanchored). As in Docker, a value that is no valid pattern simply
   * never matches.
   */
  match(key: string, source: string): boolean {
    if (this.exactMatch(key, source)) return true;
    const patterns = this.fields.get(key) ?? [];
    // All of a key's patterns are compiled at its first use, so an over-budget one is refused whatever
    // the order of values and objects.
    for (const pattern of patterns) this.compile(pattern);
    for (const pattern of patterns) {
      if (this.searches.get(pattern)?.(source)) return true;
    }
    return false;
  }

  private compile(pattern: string): void {
    if (this.searches.has(pattern)) return;
    const { search, programSize } = compileSearch(pattern);
    this.programSize += programSize;
    if (this.programSize > MAX_PATTERN_PROGRAM) throw tooComplex(pattern);
    this.searches.set(pattern, search);
  }

  /** Exact match, else `source` starts with one of the values. */
  fuzzyMatch(key: string, source: string): boolean {
    if (this.exactMatch(key, source)) return true;
    for (const prefix of this.fields.get(key) ?? []) {
      if (source.startsWith(prefix)) return true;
    }
    return false;
  }

  /** Every value "k" or "k=v" must be present in `labels`; true when there are no values. */
  matchKVList(key: string, labels: Record<string, string>): boolean {
    const values = this.fields.get(key);
    if (!values || values.size === 0) return true;
    if (Object.keys(labels).length === 0) return false;
    for (const value of values) {
      const eq = value.indexOf('=');
      const k = eq < 0 ? value : value.slice(0, eq);
      if (!Object.hasOwn(labels, k)) return false;
      if (eq >= 0 && labels[k] !== value.slice(eq + 1)) return false;
    }
    return true;
  }
}

/**
 * RE2 syntax (Go's); a pattern it refuses (syntax, repeat count over 1000) never matches, as in Docker.
 * 400 when compiling could expand beyond MAX_PATTERN_EXPANSION.
 */
export function compileSearch(pattern: string): { search: Search; programSize: number } {
  if (expansionBound(pattern) > MAX_PATTERN_EXPANSION) throw tooComplex(pattern);
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch {
    return { search: null, programSize: 0 };
  }
  return { search: (source) => re.test(source), programSize: re.programSize() };
}

/** Length times the product of every {n} / {n,m} count: over-counts, never under-counts, the program. */
function expansionBound(pattern: string): number {
  let bound = Math.max(pattern.length, 1);
  for (const m of pattern.matchAll(/\{(\d{1,7})(?:,(\d{0,7}))?\}/g)) {
    bound *= Math.max(Number(m[1]), Number(m[2] || 0), 1);
    if (bound > MAX_PATTERN_EXPANSION) break;
  }
  return bound;
}

function tooComplex(pattern: string): InvalidParameterError {
  const shown = pattern.length > 40 ? `${pattern.slice(0, 40)}...` : pattern;
  return new InvalidParameterError(
    `invalid filter: pattern ${JSON.stringify(shown)} is too complex (cnm allows ${MAX_PATTERN_PROGRAM} RE2 instructions for all of a request's patterns)`,
  );
}

// ---- time ----------------------------------------------------------------------------------------

const NANOS_PER_SECOND = 1_000_000_000n;

/** "2024-01-02T03:04:05.123456789Z" (or any RFC3339 offset) → Unix nanoseconds. */
export function rfc3339ToNanos(text: string): bigint {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$/i.exec(text);
  if (!m) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new InvalidParameterError(`invalid time ${JSON.stringify(text)}`);
    return BigInt(ms) * 1_000_000n;
  }
  const ms = Date.parse(`${m[1]}${m[3] ?? 'Z'}`);
  if (Number.isNaN(ms)) throw new InvalidParameterError(`invalid time ${JSON.stringify(text)}`);
  const frac = BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  return BigInt(ms) * 1_000_000n + frac;
}

export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** Docker's "seconds[.fraction]" (events since/until). Empty → undefined. */
export function parseUnixTimestamp(value: string | null): bigint | undefined {
  if (value === null || value === '') return undefined;
  return parseSecondsDotNanos(value) ?? failTimestamp(value);
}

function failTimestamp(value: string): never {
  throw new InvalidParameterError(`invalid timestamp ${JSON.stringify(value)}`);
}

function parseSecondsDotNanos(value: string): bigint | undefined {
  const m = /^(-?\d+)(?:\.(\d{0,20}))?$/.exec(value);
  if (!m) return undefined;
  const nanos = BigInt((m[2] ?? '').slice(0, 9).padEnd(9, '0') || '0');
  return BigInt(m[1]!) * NANOS_PER_SECOND + nanos;
}

const GO_DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration ("1h30m", "-1.5h", "300ms"), in nanoseconds; undefined when not a duration. */
export function parseGoDuration(value: string): number | undefined {
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(value);
  if (!m) return undefined;
  let total = 0;
  for (const part of value.slice(m[1]!.length).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number.parseFloat(part[1]!) * GO_DURATION_UNITS[part[2]!]!;
  }
  return m[1] === '-' ? -total : total;
}

/**
 * Docker's timestamp.Parse (prune `until`): a Go duration before `reference`, an RFC3339 date/time
 * (local time zone when none is given), or Unix seconds[.nanos]. Returns Unix nanoseconds.
 */
export function parseTimeOrDuration(value: string, referenceNanos: bigint = nowNanos()): bigint {
  if (value.trim() === '') throw new InvalidParameterError('failed to parse value as time or duration: value is empty');
  const duration = value !== '0' ? parseGoDuration(value) : undefined;
  if (duration !== undefined) return referenceNanos - BigInt(Math.round(duration));
  if (value.includes('-')) {
    const hasZone = /[zZ]|[+-]\d{2}:?\d{2}$/.test(value.slice(10));
    const withTime = value.includes('T') ? value : `${value}T00:00:00`;
    const normalised = /T\d{2}$/.test(withTime) ? `${withTime}:00` : withTime;
    const text = hasZone ? normalised : `${normalised}${localOffset()}`;
    try {
      return rfc3339ToNanos(text);
    } catch {
      throw new InvalidParameterError(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
    }
  }
  const ts = parseSecondsDotNanos(value);
  if (ts === undefined) throw new InvalidParameterError(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
  return ts;
}

function localOffset(): string {
  const minutes = -new Date().getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
