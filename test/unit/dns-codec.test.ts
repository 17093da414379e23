import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeAnswer,
  encodeError,
  encodeName,
  encodeRejection,
  parseQuery,
  Rcode,
  RecordType,
  responseLimit,
  truncateForClient,
  type ParsedQuery,
} from '../../src/dns/codec.js';
import { addressBytes, decodeMessage, encodeMessage, encodeQuery } from '../../src/dns/message.js';
import { addressFromReverseName, reverseNameOf } from '../../src/dns/reverse-names.js';
import { InvalidParameterError } from '../../src/errors.js';

function parsed(raw: Buffer): ParsedQuery {
  const result = parseQuery(raw);
  assert.ok(result?.ok, 'query parses');
  return result.query;
}

/** Deterministic pseudo-random bytes (xorshift), so a failing fuzz case can be replayed. */
function* randomBuffers(seed: number, count: number, maxLength: number): Generator<Buffer> {
  let state = seed;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  for (let i = 0; i < count; i++) {
    const buffer = Buffer.alloc(next() % maxLength);
    for (let j = 0; j < buffer.length; j++) buffer[j] = next() & 0xff;
    yield buffer;
  }
}

describe('codec: queries', () => {
  it('parses a query: ID, RD, lowercase name, type, class, EDNS size', () => {
    const q = parsed(encodeQuery(0x1234, 'Web.Front.', RecordType.AAAA, 1400));
    assert.equal(q.id, 0x1234);
    assert.equal(q.recursionDesired, true);
    assert.equal(q.name, 'web.front');
    assert.equal(q.plainName, true);
    assert.equal(q.type, RecordType.AAAA);
    assert.equal(q.qclass, 1);
    assert.deepEqual(q.edns, { udpSize: 1400, version: 0, dnssecOk: false });
    assert.equal(responseLimit(q, false), 1400);
    assert.equal(responseLimit(q, true), 65535);
  });

  it('treats EDNS sizes under 512 as 512 and no EDNS as 512', () => {
    assert.equal(parsed(encodeQuery(1, 'a', RecordType.A, 100)).edns?.udpSize, 512);
    assert.equal(responseLimit(parsed(encodeQuery(1, 'a', RecordType.A)), false), 512);
  });

  it('flags names whose labels hold dots or control bytes as not plain', () => {
    const raw = encodeMessage({ id: 1, questions: [{ name: 'x', type: 1, class: 1 }] });
    const dotted = Buffer.concat([raw.subarray(0, 12), Buffer.from([3, 0x61, 0x2e, 0x62, 0]), raw.subarray(raw.length - 4)]);
    const q = parsed(dotted);
    assert.equal(q.plainName, false);
  });

  it('drops responses and runts, rejects other opcodes and bad question counts', () => {
    assert.equal(parseQuery(Buffer.alloc(5)), undefined);
    const response = encodeMessage({ id: 7, response: true, questions: [{ name: 'a', type: 1, class: 1 }] });
    assert.equal(parseQuery(response), undefined, 'never answer a response (loops)');
    const notify = encodeMessage({ id: 7, opcode: 4, questions: [{ name: 'a', type: 1, class: 1 }] });
    assert.deepEqual(parseQuery(notify), { ok: false, rejection: { id: 7, opcode: 4, recursionDesired: false, rcode: Rcode.NOTIMP } });
    const two = encodeMessage({ id: 8, questions: [{ name: 'a', type: 1, class: 1 }, { name: 'b', type: 1, class: 1 }] });
    assert.equal(parseQuery(two)?.ok, false);
    const rejection = encodeRejection({ id: 8, opcode: 0, recursionDesired: true, rcode: Rcode.FORMERR });
    const decoded = decodeMessage(rejection);
    assert.equal(decoded.id, 8);
    assert.equal(decoded.rcode, Rcode.FORMERR);
    assert.equal(decoded.response, true);
  });

  it('never throws on random bytes, nor on random corruption of a valid query', () => {
    for (const junk of randomBuffers(0x9e3779b9, 20_000, 80)) {
      const result = parseQuery(junk);
      if (result?.ok) {
        // Whatever parsed must be answerable without throwing either.
        encodeAnswer(junk, result.query, { rcode: 0, authoritative: true, ttl: 600, records: [] }, 512);
      }
    }
    const valid = encodeQuery(1, 'some.name.example', RecordType.A, 4096);
    for (const noise of randomBuffers(12345, 20_000, 8)) {
      const copy = Buffer.from(valid);
      for (let i = 0; i + 1 < noise.length; i += 2) copy[noise[i]! % copy.length] = noise[i + 1]!;
      parseQuery(copy);
      parseQuery(copy.subarray(0, noise.length * 3));
    }
  });

  it('rejects a truncated question and an OPT record running off the end', () => {
    const valid = encodeQuery(1, 'abc.def', RecordType.A, 4096);
    for (let cut = 12; cut < valid.length; cut++) {
      const result = parseQuery(valid.subarray(0, cut));
      assert.equal(result?.ok, false, `cut at ${cut}`);
    }
  });
});

describe('codec: answers', () => {
  const rdata = (ip: string) => addressBytes(ip);

  it('round-trips a local answer through a full decoder', () => {
    const raw = encodeQuery(77, 'Web', RecordType.A, 1232);
    const q = parsed(raw);
    const out = encodeAnswer(raw, q, {
      rcode: Rcode.NOERROR,
      authoritative: true,
      ttl: 600,
      records: [{ type: RecordType.A, rdata: rdata('10.0.0.2') }, { type: RecordType.A, rdata: rdata('10.0.0.3') }],
    }, responseLimit(q, false));
    const m = decodeMessage(out);
    assert.equal(m.id, 77);
    assert.equal(m.response, true);
    assert.equal(m.authoritative, true);
    assert.equal(m.recursionAvailable, true);
    assert.equal(m.recursionDesired, true);
    assert.equal(m.truncated, false);
    assert.deepEqual(m.questions, [{ name: 'Web', type: RecordType.A, class: 1 }], 'question echoed with its case');
    assert.deepEqual(m.answers.map((a) => [a.name, a.ttl, a.data]), [['Web', 600, '10.0.0.2'], ['Web', 600, '10.0.0.3']]);
    assert.equal(m.additionals[0]?.type, RecordType.OPT, 'EDNS query gets an OPT back');
  });

  it('truncates to whole records within 512 bytes and sets TC; TCP takes them all', () => {
    const raw = encodeQuery(1, 'many', RecordType.A);
    const q = parsed(raw);
    const records = Array.from({ length: 60 }, (_, i) => ({ type: RecordType.A, rdata: rdata(`10.0.${i}.1`) }));
    const udp = encodeAnswer(raw, q, { rcode: 0, authoritative: true, ttl: 600, records }, responseLimit(q, false));
    assert.ok(udp.length <= 512);
    const m = decodeMessage(udp);
    assert.equal(m.truncated, true);
    assert.equal(m.answers.length, Math.floor((512 - 12 - 10) / 16));
    const tcp = decodeMessage(encodeAnswer(raw, q, { rcode: 0, authoritative: true, ttl: 600, records }, responseLimit(q, true)));
    assert.equal(tcp.truncated, false);
    assert.equal(tcp.answers.length, 60);
  });

  it('honours a larger EDNS size before truncating', () => {
    const raw = encodeQuery(1, 'many', RecordType.A, 4096);
    const q = parsed(raw);
    const records = Array.from({ length: 60 }, (_, i) => ({ type: RecordType.A, rdata: rdata(`10.0.${i}.1`) }));
    const m = decodeMessage(encodeAnswer(raw, q, { rcode: 0, authoritative: true, ttl: 600, records }, responseLimit(q, false)));
    assert.equal(m.truncated, false);
    assert.equal(m.answers.length, 60);
  });

  it('encodes errors with the question and the extended rcode in the OPT record', () => {
    const raw = encodeQuery(9, 'x.example', RecordType.A, 4096);
    const servfail = decodeMessage(encodeError(raw, parsed(raw), Rcode.SERVFAIL));
    assert.equal(servfail.rcode, Rcode.SERVFAIL);
    assert.equal(servfail.questions[0]?.name, 'x.example');
    const badvers = decodeMessage(encodeError(raw, parsed(raw), Rcode.BADVERS));
    assert.equal(badvers.rcode, 0, 'low 4 bits of 16');
    assert.equal(badvers.additionals[0]!.ttl >>> 24, 1, 'high bits in the OPT TTL');
  });

  it('cuts an oversized forwarded response down to header + question with TC', () => {
    const raw = encodeQuery(5, 'big.example', RecordType.TXT);
    const q = parsed(raw);
    const upstream = encodeMessage({
      id: 5,
      response: true,
      recursionAvailable: true,
      questions: [{ name: 'big.example', type: RecordType.TXT, class: 1 }],
      answers: [{ name: 'big.example', type: RecordType.TXT, class: 1, ttl: 5, data: Buffer.alloc(700, 1) }],
    });
    assert.equal(truncateForClient(upstream, raw, q, 4096), upstream, 'fits: untouched');
    const cut = decodeMessage(truncateForClient(upstream, raw, q, 512));
    assert.equal(cut.truncated, true);
    assert.equal(cut.id, 5);
    assert.equal(cut.answers.length, 0);
    assert.deepEqual(cut.questions, [{ name: 'big.example', type: RecordType.TXT, class: 1 }]);
  });

  it('encodes names and refuses bad labels', () => {
    assert.deepEqual(encodeName('a.bc.'), Buffer.from([1, 0x61, 2, 0x62, 0x63, 0]));
    assert.deepEqual(encodeName(''), Buffer.from([0]));
    assert.throws(() => encodeName('a..b'), InvalidParameterError);
    assert.throws(() => encodeName('x'.repeat(64)), InvalidParameterError);
  });
});

describe('message: full decode / encode', () => {
  it('compresses repeated names and decodes them back', () => {
    const message = {
      id: 3,
      response: true,
      questions: [{ name: 'www.example.org', type: RecordType.A, class: 1 }],
      answers: [
        { name: 'www.example.org', type: RecordType.CNAME, class: 1, ttl: 60, data: 'web.example.org' },
        { name: 'web.example.org', type: RecordType.A, class: 1, ttl: 60, data: '192.0.2.1' },
        { name: 'web.example.org', type: RecordType.AAAA, class: 1, ttl: 60, data: '2001:db8::1' },
      ],
    };
    const wire = encodeMessage(message);
    const plain = 12 + 17 + 4 + 3 * (17 + 10) + 17 + 4 + 16;
    assert.ok(wire.length < plain - 30, `compressed (${wire.length} bytes)`);
    const back = decodeMessage(wire);
    assert.deepEqual(back.answers.map((a) => [a.name, a.data]), message.answers.map((a) => [a.name, a.data]));
  });

  it('throws InvalidParameterError (only) on malformed input, including pointer loops', () => {
    const loop = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    assert.throws(() => decodeMessage(loop), InvalidParameterError);
    for (const junk of randomBuffers(42, 20_000, 60)) {
      try {
        decodeMessage(junk);
      } catch (err) {
        assert.ok(err instanceof InvalidParameterError, String(err));
      }
    }
  });
});

describe('reverse names', () => {
  it('maps in-addr.arpa and ip6.arpa names to addresses and back', () => {
    assert.equal(addressFromReverseName('4.3.2.10.in-addr.arpa'), '10.2.3.4');
    const v6 = 'fd00::1:2';
    const name = reverseNameOf(addressBytes(v6));
    assert.equal(name, '2.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa');
    assert.equal(addressFromReverseName(name), v6);
    assert.equal(reverseNameOf(addressBytes('10.2.3.4')), '4.3.2.10.in-addr.arpa');
  });

  it('rejects partial and malformed reverse names', () => {
    for (const name of ['3.2.10.in-addr.arpa', '256.3.2.1.in-addr.arpa', '01.3.2.1.in-addr.arpa', 'x.ip6.arpa', 'in-addr.arpa', 'example.com']) {
      assert.equal(addressFromReverseName(name), undefined, name);
    }
  });
});
