/**
 * Checks for names and resolver settings that end up in DNS answers or in a sandbox's resolv.conf.
 * Pure; each returns an error text (undefined = valid) so API, CLI and daemon flags can word their own
 * error around it. A value reaching resolv.conf must never carry a control character or a space: it
 * would start a new line or a new word (`nameserver 6.6.6.6`) in the file.
 */
import { isIP } from 'node:net';

/** A DNS name's limit in octets of text form without the trailing dot (RFC 1035 2.3.4). */
export const MAX_DNS_NAME = 253;
export const MAX_DNS_LABEL = 63;

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `text` is not a usable DNS name under `labelRe`, or undefined. One trailing dot is allowed. */
function dnsNameError(text: string, labelRe: RegExp, labelRule: string): string | undefined {
  if (CONTROL.test(text)) return 'contains a control character';
  if (/\s/.test(text)) return 'contains whitespace';
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > MAX_DNS_NAME) return `is longer than ${MAX_DNS_NAME} octets`;
  for (const label of name.split('.')) {
    if (label.length === 0) return 'has an empty label';
    if (label.length > MAX_DNS_LABEL) return `has a label longer than ${MAX_DNS_LABEL} characters`;
    if (!labelRe.test(label)) return `has an invalid label ${JSON.stringify(label)}: ${labelRule}`;
  }
  return undefined;
}

/**
 * A network alias (also a container or service name on the embedded DNS): dot-separated labels of
 * letters, digits, '_' and '-' (Docker's container-name characters), not starting or ending with '-'.
 */
export function aliasError(alias: string): string | undefined {
  return dnsNameError(alias, /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/, "letters, digits, '_' and '-', not starting or ending with '-'");
}

/**
 * A resolv.conf search domain, as Docker's ValidateDNSSearch: a domain name of letters, digits and
 * '-' labels, or "." alone (no search domains).
 */
export function searchDomainError(domain: string): string | undefined {
  if (domain === '.') return undefined;
  return dnsNameError(domain, /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/, "letters, digits and '-', not starting or ending with '-'");
}

/** Upper bounds glibc applies to numeric resolver options (RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY). */
const NUMERIC_OPTIONS: Record<string, number> = { ndots: 15, timeout: 30, attempts: 5 };

/**
 * A resolv.conf `options` token: a word (`rotate`, `edns0`, `use-vc`, `no-aaaa`, ...) or `name:N`
 * (`ndots:N` ≤ 15, `timeout:N` ≤ 30, `attempts:N` ≤ 5, as glibc caps them; others ≤ 65535).
 */
export function dnsOptionError(option: string): string | undefined {
  if (CONTROL.test(option)) return 'contains a control character';
  if (/\s/.test(option)) return 'contains whitespace';
  if (option.length > 64) return 'is longer than 64 characters';
  const m = /^([A-Za-z][A-Za-z0-9_-]*)(?::(\d+))?$/.exec(option);
  if (!m) return 'is not a resolver option (a word, or name:NUMBER such as ndots:2)';
  const [, name, num] = m;
  const max = NUMERIC_OPTIONS[name!];
  if (max !== undefined && num === undefined) return `needs a value (${name}:N)`;
  if (num !== undefined) {
    const limit = max ?? 65535;
    if (num.length > 5 || Number(num) > limit) return `value must be between 0 and ${limit}`;
  }
  return undefined;
}

/** A DNS server: an IP address. */
export function dnsServerError(server: string): string | undefined {
  return isIP(server) === 0 ? 'is not an IP address' : undefined;
}
