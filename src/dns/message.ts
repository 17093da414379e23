/**
 * Whole DNS messages as plain values: decode with name decompression, encode with name compression.
 * Not on the server's hot path (codec.ts is); used to inspect upstream answers, by tests, and by the
 * test upstream servers. decodeMessage throws InvalidParameterError on malformed input, never anything
 * else, and never loops on hostile compression pointers.
 */
import { InvalidParameterError } from '../errors.js';
import { formatIp, ipToBytes, parseIp } from '../util/ip.js';
import { CLASS_IN, HEADER_SIZE, RecordType } from './codec.js';

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /**
   * A / AAAA: the address text; PTR, CNAME, NS: the target name; MX: {preference, exchange} is not
   * modelled, everything else (and OPT) stays raw bytes.
   */
  data: string | Buffer;
}

export interface DnsFlags {
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  checkingDisabled: boolean;
  rcode: number;
}

export interface DnsMessage extends DnsFlags {
  id: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

const NAME_TYPES: ReadonlySet<number> = new Set([RecordType.PTR, RecordType.CNAME, RecordType.NS]);

export function decodeMessage(msg: Buffer): DnsMessage {
  if (msg.length < HEADER_SIZE) throw malformed('shorter than a header');
  const flags = msg.readUInt16BE(2);
  const counts = [msg.readUInt16BE(4), msg.readUInt16BE(6), msg.readUInt16BE(8), msg.readUInt16BE(10)] as const;
  let offset = HEADER_SIZE;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const name = readName(msg, offset);
    offset = name.end;
    need(msg, offset, 4);
    questions.push({ name: name.text, type: msg.readUInt16BE(offset), class: msg.readUInt16BE(offset + 2) });
    offset += 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const record = readRecord(msg, offset);
      sections[s]!.push(record.record);
      offset = record.end;
    }
  }
  return {
    id: msg.readUInt16BE(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    checkingDisabled: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions,
    answers: sections[0]!,
    authorities: sections[1]!,
    additionals: sections[2]!,
  };
}

function readRecord(msg: Buffer, start: number): { record: DnsRecord; end: number } {
  const name = readName(msg, start);
  let offset = name.end;
  need(msg, offset, 10);
  const type = msg.readUInt16BE(offset);
  const cls = msg.readUInt16BE(offset + 2);
  const ttl = msg.readUInt32BE(offset + 4);
  const rdLength = msg.readUInt16BE(offset + 8);
  offset += 10;
  need(msg, offset, rdLength);
  const rdata = msg.subarray(offset, offset + rdLength);
  let data: string | Buffer;
  if (type === RecordType.A && rdLength === 4) data = `${rdata[0]}.${rdata[1]}.${rdata[2]}.${rdata[3]}`;
  else if (type === RecordType.AAAA && rdLength === 16) data = formatIp({ family: 6, value: BigInt(`0x${rdata.toString('hex')}`) });
  else if (NAME_TYPES.has(type)) data = readName(msg, offset).text;
  else data = Buffer.from(rdata);
  return { record: { name: name.text, type, class: cls, ttl, data }, end: offset + rdLength };
}

/** A possibly compressed name. Pointers must point backwards, which also rules out loops. */
function readName(msg: Buffer, start: number): { text: string; end: number } {
  const labels: string[] = [];
  let offset = start;
  let end: number | undefined;
  let wireLength = 1;
  for (;;) {
    need(msg, offset, 1);
    const length = msg[offset]!;
    if (length === 0) {
      return { text: labels.join('.'), end: end ?? offset + 1 };
    }
    if ((length & 0xc0) === 0xc0) {
      need(msg, offset, 2);
      const target = msg.readUInt16BE(offset) & 0x3fff;
      if (target >= offset) throw malformed('compression pointer does not point backwards');
      end ??= offset + 2;
      offset = target;
      continue;
    }
    if (length > 63) throw malformed('label longer than 63 bytes');
    need(msg, offset + 1, length);
    wireLength += length + 1;
    if (wireLength > 255) throw malformed('name longer than 255 bytes');
    labels.push(msg.toString('latin1', offset + 1, offset + 1 + length));
    offset += length + 1;
  }
}

function need(msg: Buffer, offset: number, length: number): void {
  if (offset + length > msg.length) throw malformed('message ends early');
}

function malformed(why: string): InvalidParameterError {
  return new InvalidParameterError(`malformed DNS message: ${why}`);
}

/** Everything optional except what a message cannot do without. */
export interface MessageSpec extends Partial<DnsFlags> {
  id: number;
  questions?: DnsQuestion[];
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
}

/** Encode with name compression (every name and name-valued RDATA may point at an earlier suffix). */
export function encodeMessage(spec: MessageSpec): Buffer {
  const writer = new MessageWriter();
  const questions = spec.questions ?? [];
  const sections = [spec.answers ?? [], spec.authorities ?? [], spec.additionals ?? []];
  let flags = ((spec.opcode ?? 0) << 11) | ((spec.rcode ?? 0) & 0xf);
  if (spec.response) flags |= 0x8000;
  if (spec.authoritative) flags |= 0x0400;
  if (spec.truncated) flags |= 0x0200;
  if (spec.recursionDesired) flags |= 0x0100;
  if (spec.recursionAvailable) flags |= 0x0080;
  if (spec.checkingDisabled) flags |= 0x0010;
  writer.u16(spec.id);
  writer.u16(flags);
  writer.u16(questions.length);
  for (const section of sections) writer.u16(section.length);
  for (const q of questions) {
    writer.name(q.name);
    writer.u16(q.type);
    writer.u16(q.class);
  }
  for (const section of sections) {
    for (const record of section) writer.record(record);
  }
  return writer.finish();
}

/** A query for `name` (class IN), optionally with an OPT record advertising `ednsUdpSize`. */
export function encodeQuery(id: number, name: string, type: number, ednsUdpSize?: number): Buffer {
  return encodeMessage({
    id,
    recursionDesired: true,
    questions: [{ name, type, class: CLASS_IN }],
    additionals: ednsUdpSize === undefined ? [] : [{ name: '', type: RecordType.OPT, class: ednsUdpSize, ttl: 0, data: Buffer.alloc(0) }],
  });
}

class MessageWriter {
  private buffer = Buffer.alloc(512);
  private length = 0;
  /** Lowercase name suffix → offset of its first occurrence, for compression pointers. */
  private readonly suffixes = new Map<string, number>();

  u16(value: number): void {
    this.reserve(2);
    this.buffer.writeUInt16BE(value & 0xffff, this.length);
    this.length += 2;
  }

  u32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32BE(value >>> 0, this.length);
    this.length += 4;
  }

  bytes(data: Buffer): void {
    this.reserve(data.length);
    data.copy(this.buffer, this.length);
    this.length += data.length;
  }

  name(text: string): void {
    const trimmed = text.endsWith('.') ? text.slice(0, -1) : text;
    const labels = trimmed === '' ? [] : trimmed.split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const earlier = this.suffixes.get(suffix);
      if (earlier !== undefined) {
        this.u16(0xc000 | earlier);
        return;
      }
      if (this.length < 0x4000) this.suffixes.set(suffix, this.length);
      const label = Buffer.from(labels[i]!, 'latin1');
      if (label.length === 0 || label.length > 63) throw new InvalidParameterError(`bad DNS label in ${JSON.stringify(text)}`);
      this.reserve(1);
      this.buffer[this.length++] = label.length;
      this.bytes(label);
    }
    this.reserve(1);
    this.buffer[this.length++] = 0;
  }

  record(record: DnsRecord): void {
    this.name(record.name);
    this.u16(record.type);
    this.u16(record.class);
    this.u32(record.ttl);
    const lengthAt = this.length;
    this.u16(0);
    if (typeof record.data === 'string') {
      if (NAME_TYPES.has(record.type)) this.name(record.data);
      else this.bytes(addressBytes(record.data));
    } else {
      this.bytes(record.data);
    }
    this.buffer.writeUInt16BE(this.length - lengthAt - 2, lengthAt);
  }

  finish(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.length));
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + extra));
    this.buffer.copy(grown);
    this.buffer = grown;
  }
}

/** 4 or 16 bytes for an IPv4 / IPv6 address text. */
export function addressBytes(text: string): Buffer {
  const ip = parseIp(text);
  if (!ip) throw new InvalidParameterError(`invalid IP address ${text}`);
  return ipToBytes(ip);
}
