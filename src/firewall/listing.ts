/**
 * cnm's tables as `nft list table FAMILY cnm` prints them: parsed from the kernel's listing, and
 * predicted from the desired state (networks and services), so that a check can say what differs —
 * a flushed chain, a set element deleted by hand, an element or chain someone added. Pure.
 */
import { BASE_CHAINS, SETS, networkElements, type TableFamily } from './compile.js';
import { portElements } from './ports.js';
import { serviceListing } from './services.js';
import type { FirewallNetwork, FirewallPorts, FirewallService } from './types.js';

export interface ListedSet {
  keyword: string;
  /** Lines other than the elements (type, typeof, flags, ...). */
  declaration: string[];
  /** Sorted, normalised (see normaliseElement). */
  elements: string[];
}

export interface ListedChain {
  /** The base chain line (`type filter hook ...`), '' for a regular chain. */
  header: string;
  rules: string[];
}

export interface TableListing {
  sets: Map<string, ListedSet>;
  chains: Map<string, ListedChain>;
  /** Anything else inside the table (flowtables, stateful objects, table flags): cnm makes none. */
  other: string[];
}

export interface TableDifferences {
  /** Base chains or base sets missing or different: the table must be rebuilt. */
  structure: string[];
  /** Elements, service objects or foreign objects that differ from the desired state. */
  content: string[];
}

/** Parse the listing of one table (tables other than the first are ignored). */
export function parseTableListing(output: string): TableListing {
  const listing: TableListing = { sets: new Map(), chains: new Map(), other: [] };
  const lines = output.split('\n').map((l) => l.trim());
  let i = lines.findIndex((l) => /^table \S+ \S+ \{$/.test(l));
  if (i < 0) return listing;
  for (i++; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '}') break;
    if (line === '') continue;
    const block = /^(set|map|chain) (\S+) \{$/.exec(line);
    if (!block) {
      listing.other.push(line);
      if (line.endsWith('{')) i = skipBlock(lines, i);
      continue;
    }
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '}'; i++) if (lines[i] !== '') body.push(lines[i]!);
    if (block[1] === 'chain') {
      const header = body[0]?.startsWith('type ') ? body.shift()! : '';
      listing.chains.set(block[2]!, { header, rules: body });
    } else {
      listing.sets.set(block[2]!, { keyword: block[1]!, ...splitElements(body) });
    }
  }
  return listing;
}

/** What the listing of `family`'s table must be for these networks and services. */
export function expectedListing(
  family: TableFamily,
  networks: Iterable<FirewallNetwork>,
  services: Iterable<FirewallService>,
  ports: Iterable<FirewallPorts> = [],
): TableListing {
  const listing: TableListing = { sets: new Map(), chains: new Map(), other: [] };
  for (const set of SETS.filter((s) => s.family === family)) {
    listing.sets.set(set.name, {
      keyword: set.keyword,
      declaration: [`type ${set.type}`, ...(set.interval ? ['flags interval'] : [])],
      elements: [],
    });
  }
  for (const chain of BASE_CHAINS.filter((c) => c.family === family)) {
    listing.chains.set(chain.name, { header: chain.header, rules: [...chain.rules] });
  }
  const add = (set: string, texts: readonly string[]) => listing.sets.get(set)?.elements.push(...texts.map(normaliseElement));
  for (const net of networks) {
    for (const [set, elements] of Object.entries(networkElements(net))) add(set, (elements ?? []).map((e) => e.text));
  }
  if (family === 'inet') {
    for (const p of ports) {
      for (const [set, elements] of Object.entries(portElements(p))) add(set, elements.map((e) => e.text));
    }
    for (const svc of services) {
      const s = serviceListing(svc);
      listing.sets.set(s.name, { keyword: 'map', declaration: [s.mapDeclaration], elements: s.slots.map(normaliseElement) });
      listing.chains.set(s.name, { header: '', rules: [s.rule] });
      for (const { set, elements } of s.sets) add(set, elements);
    }
  }
  for (const set of listing.sets.values()) set.elements.sort();
  return listing;
}

/** Differences between the desired listing and the kernel's, in words (empty: identical). */
export function compareListings(family: TableFamily, expected: TableListing, actual: TableListing): TableDifferences {
  const base = new Set([...SETS.filter((s) => s.family === family).map((s) => s.name), ...BASE_CHAINS.filter((c) => c.family === family).map((c) => `chain ${c.name}`)]);
  const out: TableDifferences = { structure: [], content: [] };
  const report = (key: string, text: string) => (base.has(key) ? out.structure : out.content).push(`${family} cnm: ${text}`);
  for (const [name, want] of expected.chains) {
    const got = actual.chains.get(name);
    if (!got) report(`chain ${name}`, `chain ${name} is missing`);
    else if (got.header !== want.header || !sameList(got.rules, want.rules)) report(`chain ${name}`, `chain ${name} differs`);
  }
  for (const name of actual.chains.keys()) if (!expected.chains.has(name)) out.content.push(`${family} cnm: unexpected chain ${name}`);
  for (const [name, want] of expected.sets) {
    const got = actual.sets.get(name);
    if (!got) {
      report(name, `${want.keyword} ${name} is missing`);
      continue;
    }
    if (got.keyword !== want.keyword || !sameList(got.declaration, want.declaration)) {
      report(name, `${want.keyword} ${name} is declared differently`);
      continue;
    }
    const have = new Set(got.elements);
    const wanted = new Set(want.elements);
    const missing = want.elements.filter((e) => !have.has(e));
    const extra = got.elements.filter((e) => !wanted.has(e));
    if (missing.length > 0) out.content.push(`${family} cnm: ${want.keyword} ${name} lacks ${sample(missing)}`);
    if (extra.length > 0) out.content.push(`${family} cnm: ${want.keyword} ${name} has extra ${sample(extra)}`);
  }
  for (const name of actual.sets.keys()) if (!expected.sets.has(name)) out.content.push(`${family} cnm: unexpected set ${name}`);
  for (const line of actual.other) out.content.push(`${family} cnm: unexpected ${JSON.stringify(line)}`);
  return out;
}

/**
 * One element as nft lists it: a prefix as long as its address (`10.0.0.5/32`) is printed as the bare
 * address, and whitespace is single.
 */
export function normaliseElement(text: string): string {
  return text
    .trim()
    .split(/\s+/)
    .map((token) => {
      const m = /^([^/]+)\/(\d+)$/.exec(token);
      if (!m) return token;
      const full = m[1]!.includes(':') ? '128' : '32';
      return m[2] === full ? m[1]! : token;
    })
    .join(' ');
}

function splitElements(body: string[]): { declaration: string[]; elements: string[] } {
  const declaration: string[] = [];
  const elements: string[] = [];
  for (let i = 0; i < body.length; i++) {
    if (!body[i]!.startsWith('elements = {')) {
      declaration.push(body[i]!);
      continue;
    }
    let text = body[i]!.slice('elements = {'.length);
    while (!text.trimEnd().endsWith('}') && i + 1 < body.length) text += ' ' + body[++i]!;
    text = text.trimEnd().replace(/\}$/, '');
    elements.push(...text.split(',').map((e) => e.trim()).filter((e) => e !== '').map(normaliseElement));
  }
  return { declaration, elements: elements.sort() };
}

function skipBlock(lines: readonly string[], start: number): number {
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    if (lines[i]!.endsWith('{')) depth++;
    if (lines[i] === '}' && --depth === 0) return i;
  }
  return lines.length;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sample(items: readonly string[]): string {
  const shown = items.slice(0, 3).join(', ');
  return items.length > 3 ? `${shown} (+${items.length - 3} more)` : shown;
}
