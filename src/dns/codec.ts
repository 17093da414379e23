/**
 * The hot path of the embedded DNS server: parse a query, build a local answer or an error, and adjust
 * forwarded responses (ID, truncation). Hand-written over Buffers because every query goes through it;
 * nothing here throws on hostile input: malformed queries become `undefined` (drop) or a rejection the
 * server answers with FORMERR / NOTIMP. Full message decode/encode (tests, fake upstreams) lives in
 * message.ts.
 */
import { InvalidParameterError } from '../errors.js';

export const RecordType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended rcode (needs EDNS): the query's EDNS version is not supported. */
  BADVERS: 16,
} as const;

export const CLASS_IN = 1;
export const HEADER_SIZE = 12;
/** Classic DNS over UDP without EDNS. */
export const UDP_MIN_SIZE = 512;
/** What we advertise in our own OPT record: the DNS flag day 2020 value, safe from IP fragmentation. */
export const ADVERTISED_UDP_SIZE = 1232;
export const TCP_MAX_SIZE = 65535;

const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_CD = 0x0010;
const OPT_RR_SIZE = 11;
const MAX_NAME_LENGTH = 255;

export interface EdnsInfo {
  /** Clamped to at least 512 (RFC 6891: smaller values are treated as 512). */
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

export interface ParsedQuery {
  id: number;
  opcode: number;
  recursionDesired: boolean;
  checkingDisabled: boolean;
  /** Lowercase, no trailing dot, "" for the root. Only meaningful when `plainName`. */
  name: string;
  /**
   * False when a label holds bytes that cannot be part of a container name ('.', control or non-ASCII
   * bytes): such names are never looked up locally, so "a.b" in one label cannot pose as "a" in network "b".
   */
  plainName: boolean;
  type: number;
  qclass: number;
  /** The question is bytes [12, questionEnd) of the query, copied verbatim into answers (keeps 0x20 case). */
  questionEnd: number;
  edns: EdnsInfo | undefined;
}

/** A query we can answer only with an error (header was readable). */
export interface QueryRejection {
  id: number;
  opcode: number;
  recursionDesired: boolean;
  rcode: number;
}

export type QueryParse = { ok: true; query: ParsedQuery } | { ok: false; rejection: QueryRejection };

/**
 * Parse a client query. `undefined` means drop silently: shorter than a header, or a response (QR=1),
 * which we must never answer (two resolvers answering each other's answers would loop forever).
 */
export function parseQuery(msg: Buffer): QueryParse | undefined {
  if (msg.length < HEADER_SIZE) return undefined;
  const flags = msg.readUInt16BE(2);
  if (flags & FLAG_QR) return undefined;
  const id = msg.readUInt16BE(0);
  const opcode = (flags >> 11) & 0xf;
  const recursionDesired = (flags & FLAG_RD) !== 0;
  const reject = (rcode: number): QueryParse => ({ ok: false, rejection: { id, opcode, recursionDesired, rcode } });
  if (opcode !== 0) return reject(Rcode.NOTIMP);
  if (msg.readUInt16BE(4) !== 1) return reject(Rcode.FORMERR);

  const name = readQuestionName(msg, HEADER_SIZE);
  if (name === undefined || name.end + 4 > msg.length) return reject(Rcode.FORMERR);
  const type = msg.readUInt16BE(name.end);
  const qclass = msg.readUInt16BE(name.end + 2);
  const questionEnd = name.end + 4;

  const edns = findEdns(msg, questionEnd);
  if (edns === null) return reject(Rcode.FORMERR);
  return {
    ok: true,
    query: {
      id,
      opcode,
      recursionDesired,
      checkingDisabled: (flags & FLAG_CD) !== 0,
      name: name.text,
      plainName: name.plain,
      type,
      qclass,
      questionEnd,
      edns,
    },
  };
}

/**
 * The question name, uncompressed (a pointer in the question could only point into the header). Builds the
 * lowercase dotted form in one pass.
 */
function readQuestionName(msg: Buffer, start: number): { text: string; plain: boolean; end: number } | undefined {
  let offset = start;
  let text = '';
  let plain = true;
  let wireLength = 1;
  for (;;) {
    if (offset >= msg.length) return undefined;
    const length = msg[offset]!;
    if (length === 0) return { text, plain, end: offset + 1 };
    if (length > 63) return undefined;
    wireLength += length + 1;
    if (wireLength > MAX_NAME_LENGTH || offset + 1 + length > msg.length) return undefined;
    if (text.length > 0) text += '.';
    for (let i = offset + 1; i <= offset + length; i++) {
      let byte = msg[i]!;
      if (byte >= 0x41 && byte <= 0x5a) byte += 0x20;
      else if (byte <= 0x20 || byte === 0x2e || byte >= 0x7f) plain = false;
      text += String.fromCharCode(byte);
    }
    offset += length + 1;
  }
}

/**
 * Walk the answer, authority and additional sections looking for an OPT record. `undefined`: no EDNS;
 * `null`: the sections are malformed.
 */
function findEdns(msg: Buffer, start: number): EdnsInfo | undefined | null {
  const records = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  let offset = start;
  let edns: EdnsInfo | undefined;
  for (let i = 0; i < records; i++) {
    const nameEnd = skipName(msg, offset);
    if (nameEnd === undefined || nameEnd + 10 > msg.length) return null;
    const type = msg.readUInt16BE(nameEnd);
    const rdLength = msg.readUInt16BE(nameEnd + 8);
    if (nameEnd + 10 + rdLength > msg.length) return null;
    if (type === RecordType.OPT) {
      if (edns !== undefined) return null; // RFC 6891: more than one OPT is FORMERR
      edns = {
        udpSize: Math.max(UDP_MIN_SIZE, msg.readUInt16BE(nameEnd + 2)),
        version: msg[nameEnd + 5]!,
        dnssecOk: (msg[nameEnd + 6]! & 0x80) !== 0,
      };
    }
    offset = nameEnd + 10 + rdLength;
  }
  return edns;
}

/** Offset just past a (possibly compressed) name, or undefined when it runs off the message. */
export function skipName(msg: Buffer, start: number): number | undefined {
  let offset = start;
  for (let hops = 0; hops < 128; hops++) {
    if (offset >= msg.length) return undefined;
    const length = msg[offset]!;
    if (length === 0) return offset + 1;
    if ((length & 0xc0) === 0xc0) return offset + 2 <= msg.length ? offset + 2 : undefined;
    if (length > 63) return undefined;
    offset += length + 1;
  }
  return undefined;
}

/** The largest response the client accepts over this transport. */
export function responseLimit(query: ParsedQuery | undefined, overTcp: boolean): number {
  if (overTcp) return TCP_MAX_SIZE;
  return query?.edns ? query.edns.udpSize : UDP_MIN_SIZE;
}

export interface AnswerRecord {
  type: number;
  /** Encoded RDATA (4 bytes for A, 16 for AAAA, a wire name for PTR). */
  rdata: Buffer;
}

export interface LocalAnswer {
  rcode: number;
  authoritative: boolean;
  ttl: number;
  records: readonly AnswerRecord[];
}

/**
 * Build the response to `query` (whose raw bytes are `raw`). Every answer's owner name is a compression
 * pointer to the question (offset 12), so each A record costs 16 bytes. When the records do not fit in
 * `limit`, as many whole records as fit are kept and TC is set, so the client retries over TCP.
 */
export function encodeAnswer(raw: Buffer, query: ParsedQuery, answer: LocalAnswer, limit: number): Buffer {
  const questionLength = query.questionEnd - HEADER_SIZE;
  const optSize = query.edns ? OPT_RR_SIZE : 0;
  let size = HEADER_SIZE + questionLength + optSize;
  let count = 0;
  for (const record of answer.records) {
    const recordSize = 12 + record.rdata.length;
    if (size + recordSize > limit) break;
    size += recordSize;
    count++;
  }
  const truncated = count < answer.records.length;
  const out = Buffer.allocUnsafe(size);
  writeHeader(out, query, answer.rcode, answer.authoritative, truncated, count, optSize > 0);
  raw.copy(out, HEADER_SIZE, HEADER_SIZE, query.questionEnd);
  let offset = query.questionEnd;
  for (let i = 0; i < count; i++) {
    const record = answer.records[i]!;
    out.writeUInt16BE(0xc000 | HEADER_SIZE, offset);
    out.writeUInt16BE(record.type, offset + 2);
    out.writeUInt16BE(CLASS_IN, offset + 4);
    out.writeUInt32BE(answer.ttl, offset + 6);
    out.writeUInt16BE(record.rdata.length, offset + 10);
    record.rdata.copy(out, offset + 12);
    offset += 12 + record.rdata.length;
  }
  if (optSize > 0) writeOpt(out, offset, answer.rcode);
  return out;
}

/** An empty response with `rcode` (SERVFAIL, NXDOMAIN, REFUSED, NODATA as NOERROR, ...). */
export function encodeError(raw: Buffer, query: ParsedQuery, rcode: number): Buffer {
  return encodeAnswer(raw, query, { rcode, authoritative: false, ttl: 0, records: [] }, TCP_MAX_SIZE);
}

/** A header-only error for a query we could not parse past its header (FORMERR, NOTIMP). */
export function encodeRejection(rejection: QueryRejection): Buffer {
  const out = Buffer.alloc(HEADER_SIZE);
  out.writeUInt16BE(rejection.id, 0);
  out.writeUInt16BE(
    FLAG_QR | ((rejection.opcode & 0xf) << 11) | (rejection.recursionDesired ? FLAG_RD : 0) | FLAG_RA | (rejection.rcode & 0xf),
    2,
  );
  return out;
}

function writeHeader(
  out: Buffer,
  query: ParsedQuery,
  rcode: number,
  authoritative: boolean,
  truncated: boolean,
  answers: number,
  withOpt: boolean,
): void {
  out.writeUInt16BE(query.id, 0);
  let flags = FLAG_QR | FLAG_RA | (rcode & 0xf);
  if (authoritative) flags |= FLAG_AA;
  if (truncated) flags |= FLAG_TC;
  if (query.recursionDesired) flags |= FLAG_RD;
  if (query.checkingDisabled) flags |= FLAG_CD;
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(answers, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(withOpt ? 1 : 0, 10);
}

/** Our OPT record: root owner, our UDP size, the upper 8 bits of an extended rcode, version 0, no DO. */
function writeOpt(out: Buffer, offset: number, rcode: number): void {
  out[offset] = 0;
  out.writeUInt16BE(RecordType.OPT, offset + 1);
  out.writeUInt16BE(ADVERTISED_UDP_SIZE, offset + 3);
  out.writeUInt32BE(((rcode >> 4) & 0xff) << 24, offset + 5);
  out.writeUInt16BE(0, offset + 9);
}

// ---- Forwarded messages: only the header is touched, the rest passes through verbatim. ----

export function isResponse(msg: Buffer): boolean {
  return msg.length >= HEADER_SIZE && (msg.readUInt16BE(2) & FLAG_QR) !== 0;
}

export function isTruncated(msg: Buffer): boolean {
  return msg.length >= HEADER_SIZE && (msg.readUInt16BE(2) & FLAG_TC) !== 0;
}

export function rcodeOf(msg: Buffer): number {
  return msg.length >= 4 ? msg.readUInt16BE(2) & 0xf : Rcode.FORMERR;
}

/**
 * A forwarded response cut down for a UDP client that accepts at most `limit` bytes: header and question
 * with TC set, so the client asks again over TCP (what a server does when an answer does not fit).
 */
export function truncateForClient(response: Buffer, raw: Buffer, query: ParsedQuery, limit: number): Buffer {
  if (response.length <= limit) return response;
  const questionLength = query.questionEnd - HEADER_SIZE;
  const out = Buffer.allocUnsafe(HEADER_SIZE + questionLength);
  response.copy(out, 0, 0, 4);
  out.writeUInt16BE(out.readUInt16BE(2) | FLAG_TC, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  // The client's own question: the upstream echoes it, but the client's bytes are the ones it checks.
  raw.copy(out, HEADER_SIZE, HEADER_SIZE, query.questionEnd);
  return out;
}

/** Encode a dotted name as uncompressed wire labels ("" → the root). Throws on labels over 63 bytes. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = trimmed === '' ? [] : trimmed.split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length === 0 || bytes.length > 63) throw new InvalidParameterError(`bad DNS label in ${JSON.stringify(name)}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > MAX_NAME_LENGTH) throw new InvalidParameterError(`DNS name too long: ${name}`);
  return out;
}
