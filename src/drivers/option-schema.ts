/**
 * Declarative schemas for driver option maps (Docker passes them as string → string).
 * Each driver declares its keys once; parsing validates every key and value before anything is
 * applied and produces a typed object, so no untyped option bag travels further down.
 */
import { InvalidParameterError } from '../errors.js';
import { isIP } from 'node:net';

export type OptionParser<T> = (value: string, key: string) => T;

export interface OptionField<T> {
  key: string;
  parse: OptionParser<T>;
}

export type OptionSchema<Out> = { [K in keyof Out]: OptionField<Out[K]> };

export interface SchemaConfig {
  /** Keys under these prefixes must be known to the schema: a typo gets an error instead of being ignored. */
  strictPrefixes: string[];
}

/** Parse `raw` against `schema`; absent keys come out undefined. Unknown keys outside strictPrefixes are ignored (as Docker does). */
export function parseOptions<Out>(
  schema: OptionSchema<Out>,
  raw: Record<string, string>,
  config: SchemaConfig,
): Partial<Out> {
  const byKey = new Map<string, [keyof Out, OptionField<unknown>]>();
  for (const name of Object.keys(schema) as Array<keyof Out>) {
    const field = schema[name] as OptionField<unknown>;
    byKey.set(field.key, [name, field]);
  }
  const out: Partial<Out> = {};
  for (const [key, value] of Object.entries(raw)) {
    const entry = byKey.get(key);
    if (!entry) {
      if (config.strictPrefixes.some((p) => key.startsWith(p))) {
        throw new InvalidParameterError(`unknown option ${JSON.stringify(key)}`);
      }
      continue;
    }
    if (typeof value !== 'string') throw new InvalidParameterError(`option ${key} must be a string`);
    const [name, field] = entry;
    out[name] = field.parse(value, key) as Out[typeof name];
  }
  return out;
}

/** Go's strconv.ParseBool, exactly: these twelve spellings and nothing else (no spaces, no "yes"). */
export function goParseBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

export const parseBoolOption: OptionParser<boolean> = (value, key) => {
  const b = goParseBool(value);
  if (b === undefined) {
    throw new InvalidParameterError(`invalid value ${JSON.stringify(value)} for option ${key}: expected a boolean (true/false/1/0/t/f)`);
  }
  return b;
};

/** A decimal integer within [min, max] (no sign, spaces, exponent or fraction). */
export function intOption(min: number, max: number): OptionParser<number> {
  return (value, key) => {
    if (!/^\d{1,10}$/.test(value)) {
      throw new InvalidParameterError(`invalid value ${JSON.stringify(value)} for option ${key}: expected an integer`);
    }
    const n = Number(value);
    if (n < min || n > max) {
      throw new InvalidParameterError(`invalid value ${n} for option ${key}: must be between ${min} and ${max}`);
    }
    return n;
  };
}

export function enumOption<T extends string>(allowed: readonly T[]): OptionParser<T> {
  return (value, key) => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new InvalidParameterError(
        `invalid value ${JSON.stringify(value)} for option ${key}: expected one of ${allowed.join(', ')}`,
      );
    }
    return value as T;
  };
}

/** Linux interface names: 1–15 bytes, no '/', ':', whitespace. */
export function isValidIfName(name: string): boolean {
  return /^[A-Za-z0-9_.\-@+]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

export const ifNameOption: OptionParser<string> = (value, key) => {
  if (!isValidIfName(value)) {
    throw new InvalidParameterError(
      `invalid interface name ${JSON.stringify(value)} for option ${key}: 1 to 15 characters of letters, digits and _ . - @ +`,
    );
  }
  return value;
};

/**
 * An interface name inside a sandbox. Its per-interface sysctls are addressed as net.ipv4.conf.NAME.key,
 * where a dot in NAME would read as a path separator (eth0.5 → conf/eth0/5), so a dot is refused here
 * rather than letting every connect fail afterwards.
 */
export const sandboxIfNameOption: OptionParser<string> = (value, key) => {
  const name = ifNameOption(value, key);
  if (name.includes('.')) {
    throw new InvalidParameterError(
      `invalid interface name ${JSON.stringify(value)} for option ${key}: a sandbox interface name cannot contain '.'`,
    );
  }
  return name;
};

/** An interface-name prefix: the index is appended, so leave room for it. */
export const ifPrefixOption: OptionParser<string> = (value, key) => {
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,11}$/.test(value)) {
    throw new InvalidParameterError(`invalid interface prefix ${JSON.stringify(value)} for option ${key}`);
  }
  return value;
};

export const ipOption: OptionParser<string> = (value, key) => {
  if (isIP(value) === 0) throw new InvalidParameterError(`invalid IP address ${JSON.stringify(value)} for option ${key}`);
  return value;
};

export const macOption: OptionParser<string> = (value, key) => {
  const mac = value.toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) {
    throw new InvalidParameterError(`invalid MAC address ${JSON.stringify(value)} for option ${key}`);
  }
  if (parseInt(mac.slice(0, 2), 16) & 1) {
    throw new InvalidParameterError(`invalid MAC address ${value} for option ${key}: multicast addresses cannot be assigned`);
  }
  return mac;
};

export const stringListOption: OptionParser<string[]> = (value) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
