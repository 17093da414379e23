/**
 * Docker's `filters` query parameter (moby daemon/internal/filters) and its time formats
 * (daemon/internal/timestamp), with the same matching rules and error messages.
 */
import { InvalidParameterError } from '../errors.js';

export class FilterArgs {
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

  /** Exact match, else any value used as a regular expression matches somewhere in `source`. */
  match(key: string, source: string): boolean {
    if (this.exactMatch(key, source)) return true;
    for (const pattern of this.fields.get(key) ?? []) {
      if (safeRegexTest(pattern, source)) return true;
    }
    return false;
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

/** Go's regexp syntax mostly coincides with JS for names; patterns JS cannot compile never match (as in Go). */
function safeRegexTest(pattern: string, source: string): boolean {
  try {
    return new RegExp(pattern).test(source);
  } catch {
    return false;
  }
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
