import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DnsRegistry, type DnsEndpointSpec } from '../../src/dns/registry.js';
import { NotFoundError, InvalidParameterError } from '../../src/errors.js';

/** front ─ net "front" ─ web ─ net "back" ─ db;  lonely on "other". */
function topology(): DnsRegistry {
  const r = new DnsRegistry();
  r.setNetwork({ id: 'n-front', name: 'front', internal: false });
  r.setNetwork({ id: 'n-back', name: 'back', internal: true });
  r.setNetwork({ id: 'n-other', name: 'other', internal: false });
  r.addEndpoint(endpoint('front', 'n-front', '10.1.0.2/24'));
  r.addEndpoint(endpoint('web', 'n-front', '10.1.0.3/24', { aliases: ['www'], ipv6: 'fd01::3/64' }));
  r.addEndpoint(endpoint('web', 'n-back', '10.2.0.3/24', { id: 'ep-web-back' }));
  r.addEndpoint(endpoint('db', 'n-back', '10.2.0.4/24', { aliases: ['database'] }));
  r.addEndpoint(endpoint('lonely', 'n-other', '10.3.0.2/24'));
  return r;
}

function endpoint(sandbox: string, networkId: string, ipv4: string | undefined, over: Partial<DnsEndpointSpec> = {}): DnsEndpointSpec {
  return {
    id: `ep-${sandbox}-${networkId}`,
    networkId,
    sandboxId: `sb-${sandbox}`,
    sandboxName: sandbox,
    hostname: `${sandbox}-host`,
    shortId: `${sandbox.padEnd(12, '0').slice(0, 12)}`,
    aliases: [],
    ...(ipv4 === undefined ? {} : { ipv4 }),
    ...over,
  };
}

describe('DnsRegistry: names and scoping', () => {
  it('answers sandbox name, hostname, short ID and aliases, case-insensitively and with a trailing dot', () => {
    const r = topology();
    for (const name of ['web', 'WEB', 'web-host', 'web000000000', 'www', 'Www.']) {
      assert.deepEqual(r.resolve('sb-front', name, 'A'), { addresses: ['10.1.0.3'], authoritative: true }, name);
    }
  });

  it('only sees names on networks the asker shares with the target', () => {
    const r = topology();
    assert.deepEqual(r.resolve('sb-front', 'db', 'A'), { addresses: [], authoritative: false });
    assert.deepEqual(r.resolve('sb-lonely', 'web', 'A'), { addresses: [], authoritative: false });
    assert.deepEqual(r.resolve('sb-web', 'db', 'A').addresses, ['10.2.0.4']);
    assert.deepEqual(r.resolve('sb-db', 'front', 'A').addresses, []);
    assert.deepEqual(r.resolve('unknown-sandbox', 'web', 'A').addresses, []);
  });

  it('answers the address on the network the asker shares, first network first', () => {
    const r = topology();
    assert.deepEqual(r.resolve('sb-front', 'web', 'A').addresses, ['10.1.0.3']);
    assert.deepEqual(r.resolve('sb-db', 'web', 'A').addresses, ['10.2.0.3']);
    // The asker itself is on both: its first network (front) wins, like Docker's endpoint order.
    assert.deepEqual(r.resolve('sb-web', 'web', 'A').addresses, ['10.1.0.3']);
  });

  it('resolves <name>.<network> and <alias>.<network> on that network only', () => {
    const r = topology();
    assert.deepEqual(r.resolve('sb-web', 'web.back', 'A').addresses, ['10.2.0.3']);
    assert.deepEqual(r.resolve('sb-web', 'www.front', 'A').addresses, ['10.1.0.3']);
    assert.deepEqual(r.resolve('sb-web', 'DATABASE.Back', 'A').addresses, ['10.2.0.4']);
    assert.equal(r.resolve('sb-web', 'db.front', 'A').authoritative, false);
    assert.equal(r.resolve('sb-front', 'db.back', 'A').authoritative, false, 'not on the asker\'s networks');
  });

  it('handles network names with dots', () => {
    const r = new DnsRegistry();
    r.setNetwork({ id: 'n1', name: 'my.net', internal: false });
    r.addEndpoint(endpoint('a', 'n1', '10.0.0.2'));
    r.addEndpoint(endpoint('b', 'n1', '10.0.0.3'));
    assert.deepEqual(r.resolve('sb-a', 'b.my.net', 'A').addresses, ['10.0.0.3']);
  });

  it('a name with no address of the asked family is still authoritative (empty answer, no forwarding)', () => {
    const r = topology();
    assert.deepEqual(r.resolve('sb-front', 'front', 'AAAA'), { addresses: [], authoritative: true });
    assert.deepEqual(r.resolve('sb-front', 'web', 'AAAA'), { addresses: ['fd01::3'], authoritative: true });
  });

  it('a later network with addresses of the family wins over an earlier one without', () => {
    const r = new DnsRegistry();
    r.setNetwork({ id: 'v4', name: 'v4', internal: false });
    r.setNetwork({ id: 'v6', name: 'v6', internal: false });
    r.addEndpoint(endpoint('a', 'v4', '10.0.0.2'));
    r.addEndpoint(endpoint('a', 'v6', undefined, { id: 'a6', ipv6: 'fd00::2' }));
    r.addEndpoint(endpoint('b', 'v4', '10.0.0.3'));
    r.addEndpoint(endpoint('b', 'v6', undefined, { id: 'b6', ipv6: 'fd00::3' }));
    assert.deepEqual(r.resolve('sb-a', 'b', 'AAAA').addresses, ['fd00::3']);
    assert.deepEqual(r.resolve('sb-a', 'b', 'A').addresses, ['10.0.0.3']);
  });
});

describe('DnsRegistry: shared aliases and round robin', () => {
  function shared(n: number): DnsRegistry {
    const r = new DnsRegistry();
    r.setNetwork({ id: 'n', name: 'n', internal: false });
    r.addEndpoint(endpoint('client', 'n', '10.0.0.100'));
    for (let i = 1; i <= n; i++) r.addEndpoint(endpoint(`backend${i}`, 'n', `10.0.0.${i}`, { aliases: ['api'] }));
    return r;
  }

  it('returns every address sharing the alias, rotated by one per query', () => {
    const r = shared(3);
    const answers = [0, 1, 2, 3].map(() => r.resolve('sb-client', 'api', 'A').addresses);
    assert.deepEqual(answers[0], ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    assert.deepEqual(answers[1], ['10.0.0.2', '10.0.0.3', '10.0.0.1']);
    assert.deepEqual(answers[2], ['10.0.0.3', '10.0.0.1', '10.0.0.2']);
    assert.deepEqual(answers[3], answers[0]);
  });

  it('deduplicates the same address under one name', () => {
    const r = shared(1);
    r.addEndpoint(endpoint('dup', 'n', '10.0.0.1', { aliases: ['api'] }));
    assert.deepEqual(r.resolve('sb-client', 'api', 'A').addresses, ['10.0.0.1']);
  });

  it('a removed backend leaves the alias at once; the last one takes the name with it', () => {
    const r = shared(3);
    r.removeEndpoint('ep-backend2-n');
    assert.deepEqual(new Set(r.resolve('sb-client', 'api', 'A').addresses), new Set(['10.0.0.1', '10.0.0.3']));
    r.removeEndpoint('ep-backend1-n');
    r.removeEndpoint('ep-backend3-n');
    assert.deepEqual(r.resolve('sb-client', 'api', 'A'), { addresses: [], authoritative: false });
  });
});

describe('DnsRegistry: changes', () => {
  it('a removed endpoint disappears immediately, names and PTR alike', () => {
    const r = topology();
    r.removeEndpoint('ep-web-n-front');
    assert.equal(r.resolve('sb-front', 'web', 'A').authoritative, false);
    assert.equal(r.resolve('sb-front', 'www', 'A').authoritative, false);
    assert.deepEqual(r.reverse('sb-front', '10.1.0.3'), []);
    // Still on "back" for those who share it.
    assert.deepEqual(r.resolve('sb-db', 'web', 'A').addresses, ['10.2.0.3']);
  });

  it('re-adding an endpoint with the same ID replaces its names and address', () => {
    const r = topology();
    r.addEndpoint(endpoint('web', 'n-front', '10.1.0.33/24', { aliases: ['new-alias'] }));
    assert.deepEqual(r.resolve('sb-front', 'new-alias', 'A').addresses, ['10.1.0.33']);
    assert.equal(r.resolve('sb-front', 'www', 'A').authoritative, false);
    assert.deepEqual(r.resolve('sb-front', 'web', 'A').addresses, ['10.1.0.33']);
  });

  it('removeNetwork drops its endpoints; removeSandbox drops everything of the sandbox', () => {
    const r = topology();
    r.removeNetwork('n-back');
    assert.equal(r.resolve('sb-web', 'db', 'A').authoritative, false);
    assert.equal(r.size().endpoints, 3);
    r.removeSandbox('sb-web');
    assert.equal(r.resolve('sb-front', 'web', 'A').authoritative, false);
    assert.equal(r.size().endpoints, 2);
  });

  it('rejects endpoints on unknown networks and malformed addresses', () => {
    const r = topology();
    assert.throws(() => r.addEndpoint(endpoint('x', 'n-nope', '10.0.0.9')), NotFoundError);
    assert.throws(() => r.addEndpoint(endpoint('x', 'n-front', 'fd00::1')), InvalidParameterError);
    assert.throws(() => r.addEndpoint(endpoint('x', 'n-front', '10.0.0.300/24')), InvalidParameterError);
    assert.equal(r.resolve('sb-front', 'x', 'A').authoritative, false);
  });

  it('renaming a network changes <name>.<network> at once', () => {
    const r = topology();
    r.setNetwork({ id: 'n-front', name: 'renamed', internal: false });
    assert.deepEqual(r.resolve('sb-front', 'web.renamed', 'A').addresses, ['10.1.0.3']);
    assert.equal(r.resolve('sb-front', 'web.front', 'A').authoritative, false);
  });
});

describe('DnsRegistry: PTR', () => {
  it('answers <name>.<network> for addresses on shared networks, IPv4 and IPv6', () => {
    const r = topology();
    assert.deepEqual(r.reverse('sb-front', '10.1.0.3'), ['web.front']);
    assert.deepEqual(r.reverse('sb-front', 'fd01:0:0::3'), ['web.front']);
    assert.deepEqual(r.reverse('sb-front', '10.2.0.4'), [], 'db is not on a shared network');
    assert.deepEqual(r.reverse('sb-web', '10.2.0.4'), ['db.back']);
    assert.deepEqual(r.reverse('sb-web', 'not-an-ip'), []);
  });
});

describe('DnsRegistry: forwarding policy and upstreams', () => {
  it('forwards only for sandboxes with at least one non-internal network', () => {
    const r = topology();
    assert.equal(r.forwardingAllowed('sb-front'), true);
    assert.equal(r.forwardingAllowed('sb-web'), true, 'front is not internal');
    assert.equal(r.forwardingAllowed('sb-db'), false, 'back only, internal');
    assert.equal(r.forwardingAllowed('sb-unknown'), false);
    r.setNetwork({ id: 'n-back', name: 'back', internal: false });
    assert.equal(r.forwardingAllowed('sb-db'), true, 'the flag change applies at once');
  });

  it('uses the sandbox --dns servers (from its namespace), else the host ones (from the daemon), at most 3', () => {
    const r = topology();
    r.setHostDns({ servers: ['127.0.0.53', '10.255.0.1', '8.8.8.8', '1.1.1.1'], search: ['corp'], options: [] });
    assert.deepEqual(
      r.upstreams('sb-front').map((u) => [u.address, u.port, u.from]),
      [['127.0.0.53', 53, 'daemon'], ['10.255.0.1', 53, 'daemon'], ['8.8.8.8', 53, 'daemon']],
    );
    r.setSandboxDns('sb-front', { servers: ['127.0.0.11', '192.0.2.1', '[fd00::53]:5353', 'junk'], search: [], options: [] });
    assert.deepEqual(
      r.upstreams('sb-front').map((u) => [u.address, u.port, u.family, u.from]),
      [['192.0.2.1', 53, 4, 'sandbox'], ['fd00::53', 5353, 6, 'sandbox']],
      'our own address and junk are dropped',
    );
  });

  it("never forwards a sandbox to its own resolver, in any spelling; the daemon's 127.0.0.11 is another resolver", () => {
    const r = topology();
    r.setSandboxDns('sb-front', {
      servers: ['::ffff:127.0.0.11', '127.0.0.11:53', '[::ffff:7f00:b]:53', '[0:0:0:0:0:ffff:127.0.0.11]', '192.0.2.1'],
      search: [],
      options: [],
    });
    assert.deepEqual(r.upstreams('sb-front').map((u) => [u.address, u.port]), [['192.0.2.1', 53]], 'every spelling of 127.0.0.11:53 is dropped');
    r.setSandboxDns('sb-front', { servers: ['127.0.0.11:5353', '::ffff:127.0.0.12'], search: [], options: [] });
    assert.deepEqual(
      r.upstreams('sb-front').map((u) => [u.address, u.port]),
      [['127.0.0.11', 5353], ['::ffff:127.0.0.12', 53]],
      'another port or address is not us',
    );
    // cnm inside a container: the host resolv.conf names Docker's resolver, reached from the daemon's namespace.
    r.setSandboxDns('sb-front', { servers: [], search: [], options: [] });
    r.setHostDns({ servers: ['127.0.0.11', '::ffff:127.0.0.11'], search: [], options: [] });
    assert.deepEqual(
      r.upstreams('sb-front').map((u) => [u.address, u.from]),
      [['127.0.0.11', 'daemon'], ['::ffff:127.0.0.11', 'daemon']],
    );
    assert.equal(r.isOwnResolver(r.upstreams('sb-front')[1]!), true, 'the handler skips it for a sandbox in the daemon namespace');
  });

  it('ndots counts as set when given explicitly or in the effective options', () => {
    const r = topology();
    assert.equal(r.ndotsSet('sb-front'), false);
    r.setHostDns({ servers: [], search: [], options: ['ndots:2'] });
    assert.equal(r.ndotsSet('sb-front'), true);
    r.setSandboxDns('sb-front', { servers: [], search: [], options: ['timeout:1'] });
    assert.equal(r.ndotsSet('sb-front'), false, 'sandbox options replace the host options');
    r.setSandboxDns('sb-front', { servers: [], search: [], options: [], ndots: 3 });
    assert.equal(r.ndotsSet('sb-front'), true);
    assert.equal(r.effectiveDns('sb-front').ndots, 3);
  });
});
