/**
 * What the embedded server answers, without sockets on the client side: local names, PTR, NODATA,
 * ndots, internal networks, protocol errors; forwarding to a fake upstream on 127.0.0.1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rcode, RecordType } from '../../src/dns/codec.js';
import { FakeUpstream } from '../../src/dns/fake-upstream.js';
import { Forwarder, InFlightBudget } from '../../src/dns/forwarder.js';
import { decodeMessage, encodeMessage, encodeQuery, type DnsMessage } from '../../src/dns/message.js';
import { QueryHandler, type QueryOrigin } from '../../src/dns/query-handler.js';
import { DnsRegistry } from '../../src/dns/registry.js';
import { reverseNameOf } from '../../src/dns/reverse-names.js';
import { addressBytes } from '../../src/dns/message.js';
import { CurrentNamespaceSockets, UpstreamPool } from '../../src/dns/upstream.js';
import { silentLogger } from '../../src/util/log.js';

function registry(): DnsRegistry {
  const r = new DnsRegistry();
  r.setNetwork({ id: 'n-app', name: 'app', internal: false });
  r.setNetwork({ id: 'n-vault', name: 'vault', internal: true });
  const add = (sandbox: string, networkId: string, ipv4: string, aliases: string[] = [], ipv6?: string) =>
    r.addEndpoint({
      id: `${sandbox}@${networkId}`,
      networkId,
      sandboxId: `sb-${sandbox}`,
      sandboxName: sandbox,
      hostname: sandbox,
      shortId: '0123456789ab'.slice(0, 12 - sandbox.length) + sandbox,
      aliases,
      ipv4,
      ...(ipv6 ? { ipv6 } : {}),
    });
  add('client', 'n-app', '10.5.0.2/24');
  add('web', 'n-app', '10.5.0.3/24', ['www'], 'fd05::3/64');
  for (let i = 0; i < 50; i++) add(`pool${i}`, 'n-app', `10.5.1.${i + 1}/16`, ['pool']);
  add('secret', 'n-vault', '10.6.0.2/24');
  add('peer', 'n-vault', '10.6.0.3/24');
  return r;
}

describe('QueryHandler', () => {
  const upstream = new FakeUpstream(new Map([['example.test', ['192.0.2.80']]]));
  const daemonPool = new UpstreamPool(new CurrentNamespaceSockets());
  const reg = registry();
  const handler = new QueryHandler(reg, new Forwarder({ timeoutMs: 2000, maxInFlight: 16 }, silentLogger), daemonPool, silentLogger);

  before(async () => {
    const { port } = await upstream.start({ address: '127.0.0.1' });
    reg.setHostDns({ servers: [`127.0.0.1:${port}`], search: [], options: [] });
  });

  after(async () => {
    daemonPool.close();
    await upstream.stop();
  });

  function origin(sandboxId: string): QueryOrigin {
    return {
      sandboxId,
      budget: new InFlightBudget(16),
      sandboxPool: () => assert.fail('no --dns servers in this test'),
    };
  }

  async function ask(sandbox: string, name: string, type: number, options: { tcp?: boolean; edns?: number } = {}): Promise<DnsMessage> {
    const reply = await handler.handle(origin(sandbox), encodeQuery(0xbeef, name, type, options.edns), options.tcp ?? false);
    assert.ok(reply, 'an answer');
    const m = decodeMessage(reply);
    assert.equal(m.id, 0xbeef);
    return m;
  }

  it('answers local A and AAAA synchronously with TTL 600, authoritative, RA set', () => {
    const reply = handler.handle(origin('sb-client'), encodeQuery(1, 'WWW', RecordType.A), false);
    assert.ok(Buffer.isBuffer(reply), 'no promise for a local name');
    const m = decodeMessage(reply);
    assert.deepEqual(m.answers.map((a) => [a.name, a.ttl, a.data]), [['WWW', 600, '10.5.0.3']]);
    assert.equal(m.authoritative, true);
    assert.equal(m.recursionAvailable, true);
  });

  it('answers AAAA, and NODATA for a local name without an address of the family', async () => {
    assert.deepEqual((await ask('sb-client', 'web.app', RecordType.AAAA)).answers.map((a) => a.data), ['fd05::3']);
    const nodata = await ask('sb-web', 'client', RecordType.AAAA);
    assert.equal(nodata.rcode, Rcode.NOERROR);
    assert.equal(nodata.answers.length, 0);
    assert.deepEqual(upstream.seen, [], 'nothing forwarded');
  });

  it('answers other types for local names with NODATA instead of leaking them upstream', async () => {
    for (const type of [RecordType.MX, RecordType.TXT, 65, RecordType.ANY]) {
      const m = await ask('sb-client', 'web', type);
      assert.equal(m.rcode, Rcode.NOERROR);
      assert.equal(m.answers.length, 0);
    }
    assert.deepEqual(upstream.seen, []);
  });

  it('answers PTR for addresses on shared networks, v4 and v6', async () => {
    const v4 = await ask('sb-client', reverseNameOf(addressBytes('10.5.0.3')), RecordType.PTR);
    assert.deepEqual(v4.answers.map((a) => a.data), ['web.app']);
    const v6 = await ask('sb-client', reverseNameOf(addressBytes('fd05::3')), RecordType.PTR);
    assert.deepEqual(v6.answers.map((a) => a.data), ['web.app']);
  });

  it('truncates a 50-address alias over plain UDP, not with EDNS 4096 nor over TCP', async () => {
    const udp = await ask('sb-client', 'pool', RecordType.A);
    assert.equal(udp.truncated, true);
    assert.ok(udp.answers.length > 0 && udp.answers.length < 50);
    assert.equal((await ask('sb-client', 'pool', RecordType.A, { edns: 4096 })).answers.length, 50);
    const tcp = await ask('sb-client', 'pool', RecordType.A, { tcp: true });
    assert.equal(tcp.truncated, false);
    assert.equal(tcp.answers.length, 50);
  });

  it('forwards names it does not own to the host upstreams', async () => {
    upstream.seen.length = 0;
    const m = await ask('sb-client', 'example.test', RecordType.A);
    assert.deepEqual(m.answers.map((a) => a.data), ['192.0.2.80']);
    const nx = await ask('sb-client', 'secret', RecordType.A);
    assert.equal(nx.rcode, Rcode.NXDOMAIN, 'a name on a network the client does not share goes upstream');
    assert.deepEqual(upstream.seen, ['example.test/1/udp', 'secret/1/udp']);
  });

  it("forwards to the daemon's upstream at our own address, except for a sandbox living in the daemon's namespace", async () => {
    // Here "our address" is the fake upstream's, as if the daemon's resolv.conf named 127.0.0.11.
    const port = reg.upstreams('sb-client')[0]!.port;
    const ownRegistry = new DnsRegistry('127.0.0.1', port);
    ownRegistry.setNetwork({ id: 'n-app', name: 'app', internal: false });
    ownRegistry.addEndpoint({ id: 'x@n-app', networkId: 'n-app', sandboxId: 'sb-x', sandboxName: 'x', hostname: 'x', shortId: '0123456789ab', aliases: [], ipv4: '10.5.0.9/24' });
    ownRegistry.setHostDns({ servers: [`[::ffff:127.0.0.1]:${port}`], search: [], options: [] });
    const ownHandler = new QueryHandler(ownRegistry, new Forwarder({ timeoutMs: 2000, maxInFlight: 16 }, silentLogger), daemonPool, silentLogger);
    const seen = upstream.seen.length;
    const elsewhere = decodeMessage(await ownHandler.handle(origin('sb-x'), encodeQuery(1, 'example.test', RecordType.A), false)!);
    assert.deepEqual(elsewhere.answers.map((a) => a.data), ['192.0.2.80'], "another namespace: the daemon's resolver answers");
    const inside = decodeMessage(await ownHandler.handle({ ...origin('sb-x'), inDaemonNamespace: true }, encodeQuery(2, 'example.test', RecordType.A), false)!);
    assert.equal(inside.rcode, Rcode.SERVFAIL, 'in the daemon namespace that address is ourselves: never forwarded to');
    assert.equal(upstream.seen.length, seen + 1, 'the upstream saw only the first query');
  });

  it('never forwards for a sandbox on internal networks only: SERVFAIL at once', async () => {
    upstream.seen.length = 0;
    const reply = handler.handle(origin('sb-secret'), encodeQuery(2, 'example.test', RecordType.A), false);
    assert.ok(Buffer.isBuffer(reply), 'answered synchronously');
    assert.equal(decodeMessage(reply).rcode, Rcode.SERVFAIL);
    assert.deepEqual((await ask('sb-secret', 'peer', RecordType.A)).answers.map((a) => a.data), ['10.6.0.3'], 'local names still work');
    assert.deepEqual(upstream.seen, []);
  });

  it('with ndots set, answers an unknown single label with empty NOERROR (search domains go on)', async () => {
    upstream.seen.length = 0;
    reg.setSandboxDns('sb-web', { servers: [], search: ['corp.test'], options: ['ndots:1'] });
    try {
      const m = await ask('sb-web', 'printer', RecordType.A);
      assert.equal(m.rcode, Rcode.NOERROR);
      assert.equal(m.answers.length, 0);
      assert.deepEqual(upstream.seen, []);
      await ask('sb-web', 'printer.corp.test', RecordType.A);
      assert.deepEqual(upstream.seen, ['printer.corp.test/1/udp'], 'dotted names are still forwarded');
    } finally {
      reg.setSandboxDns('sb-web', { servers: [], search: [], options: [] });
    }
  });

  it('answers FORMERR, NOTIMP, BADVERS; drops responses and runts', () => {
    const notify = encodeMessage({ id: 5, opcode: 4, questions: [{ name: 'web', type: 1, class: 1 }] });
    assert.equal(decodeMessage(handler.handle(origin('sb-client'), notify, false) as Buffer).rcode, Rcode.NOTIMP);
    const noQuestion = encodeMessage({ id: 6 });
    assert.equal(decodeMessage(handler.handle(origin('sb-client'), noQuestion, false) as Buffer).rcode, Rcode.FORMERR);
    const v1 = encodeQuery(7, 'web', RecordType.A, 1232);
    v1[v1.length - 5] = 1; // EDNS version 1 (OPT: ... ext-rcode, version, flags, rdlength)
    const badvers = decodeMessage(handler.handle(origin('sb-client'), v1, false) as Buffer);
    assert.equal(badvers.additionals[0]!.ttl >>> 24, 1);
    const response = encodeMessage({ id: 8, response: true, questions: [{ name: 'web', type: 1, class: 1 }] });
    assert.equal(handler.handle(origin('sb-client'), response, false), undefined);
    assert.equal(handler.handle(origin('sb-client'), Buffer.from([1, 2, 3]), false), undefined);
  });

  it('sees a change of the record set on the very next query', async () => {
    reg.addEndpoint({ id: 'late', networkId: 'n-app', sandboxId: 'sb-late', sandboxName: 'late', hostname: 'late', shortId: 'aaaaaaaaaaaa', aliases: [], ipv4: '10.5.0.99' });
    assert.deepEqual((await ask('sb-client', 'late', RecordType.A)).answers.map((a) => a.data), ['10.5.0.99']);
    reg.removeEndpoint('late');
    upstream.seen.length = 0;
    assert.equal((await ask('sb-client', 'late', RecordType.A)).rcode, Rcode.NXDOMAIN);
  });
});
