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

export const parseBoolOption: OptionParser<boolean> = (value, key) => {
  const v = value.trim().toLowerCase();
  if (['true', '1', 't', 'yes'].includes(v)) return true;
  if (['false', '0', 'f', 'no'].includes(v)) return false;
  throw new InvalidParameterError(`invalid value ${JSON.stringify(value)} for option ${key}: expected a boolean`);
};

export function intOption(min: number, max: number): OptionParser<number> {
  return (value, key) => {
    if (!/^\d+$/.test(value.trim())) {
      throw new InvalidParameterError(`invalid value ${JSON.stringify(value)} for option ${key}: expected an integer`);
    }
    const n = Number(value.trim());
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
    throw new InvalidParameterError(`invalid interface name ${JSON.stringify(value)} for option ${key}`);
  }
  return value;
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
