/**
 * Service records in the embedded DNS's registry and discovery: NAME → VIP (vip) or the backends
 * (dnsrr, rotated), tasks.NAME → the backends, scoped to the service's network, replaced as a whole on
 * every change and gone at once on removal; the endpoints' own names are never disturbed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddedDnsDiscovery } from '../../src/dns/discovery.js';
import { DnsRegistry, type DnsServiceSpec } from '../../src/dns/registry.js';
import { InvalidParameterError, NotFoundError } from '../../src/errors.js';
import { RecordingDnsServer } from '../helpers/fake-discovery.js';

/** Sandboxes b1, b2 (backends) and client on "app"; outsider on "other". */
function topology(): DnsRegistry {
  const r = new DnsRegistry();
  r.setNetwork({ id: 'n-app', name: 'app', internal: false });
  r.setNetwork({ id: 'n-other', name: 'other', internal: false });
  for (const [name, net, ip] of [['b1', 'n-app', '10.5.0.2/24'], ['b2', 'n-app', '10.5.0.3/24'], ['client', 'n-app', '10.5.0.9/24'], ['outsider', 'n-other', '10.6.0.2/24']] as const) {
    r.addEndpoint({ id: `ep-${name}`, networkId: net, sandboxId: `sb-${name}`, sandboxName: name, hostname: name, shortId: `${name}00000000`.slice(0, 12), aliases: [], ipv4: ip });
  }
  return r;
}

const web = (backends: DnsServiceSpec['backends'], over: Partial<DnsServiceSpec> = {}): DnsServiceSpec => ({
  id: 'svc-web', networkId: 'n-app', name: 'web', vip: '10.5.0.200/24', backends, ...over,
});
const a = (r: DnsRegistry, name: string, asker = 'sb-client') => r.resolve(asker, name, 'A').addresses;

describe('DnsRegistry: service records', () => {
  it('vip: NAME answers the VIP alone, tasks.NAME every backend; PTR of the VIP names the service', () => {
    const r = topology();
    r.setService(web([{ ipv4: '10.5.0.2/24' }, { ipv4: '10.5.0.3' }]));
    assert.deepEqual(r.resolve('sb-client', 'web', 'A'), { addresses: ['10.5.0.200'], authoritative: true });
    assert.deepEqual(a(r, 'WEB.app.'), ['10.5.0.200']);
    assert.deepEqual(a(r, 'tasks.web').sort(), ['10.5.0.2', '10.5.0.3']);
    assert.deepEqual(r.resolve('sb-client', 'web', 'AAAA'), { addresses: [], authoritative: true });
    assert.deepEqual(r.reverse('sb-client', '10.5.0.200'), ['web.app']);
    // The backends keep their own names and PTRs.
    assert.deepEqual(a(r, 'b1'), ['10.5.0.2']);
    assert.deepEqual(r.reverse('sb-client', '10.5.0.2'), ['b1.app']);
  });

  it('dnsrr: NAME and tasks.NAME answer every backend, rotated per query like a shared alias', () => {
    const r = topology();
    r.setService({ id: 'svc-db', networkId: 'n-app', name: 'db', backends: [{ ipv4: '10.5.0.2/24' }, { ipv4: '10.5.0.3/24', ipv6: 'fd05::3/64' }] });
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const answer = a(r, 'db');
      assert.deepEqual([...answer].sort(), ['10.5.0.2', '10.5.0.3']);
      firsts.add(answer[0]!);
    }
    assert.equal(firsts.size, 2, 'the first answer rotates');
    assert.deepEqual(a(r, 'tasks.db').sort(), ['10.5.0.2', '10.5.0.3']);
    assert.deepEqual(r.resolve('sb-client', 'db', 'AAAA').addresses, ['fd05::3']);
    assert.deepEqual(r.reverse('sb-client', '10.5.0.3'), ['b2.app']);
  });

  it('is seen only from the service network', () => {
    const r = topology();
    r.setService(web([{ ipv4: '10.5.0.2/24' }]));
    assert.deepEqual(r.resolve('sb-outsider', 'web', 'A'), { addresses: [], authoritative: false });
    assert.deepEqual(a(r, 'tasks.web', 'sb-outsider'), []);
    assert.deepEqual(r.reverse('sb-outsider', '10.5.0.200'), []);
  });

  it('a change replaces the backends; removal (of the service or its network) takes every name at once', () => {
    const r = topology();
    r.setService(web([{ ipv4: '10.5.0.2/24' }, { ipv4: '10.5.0.3/24' }]));
    r.setService(web([{ ipv4: '10.5.0.3/24' }]));
    assert.deepEqual(a(r, 'tasks.web'), ['10.5.0.3']);
    r.setService(web([]));
    assert.deepEqual(r.resolve('sb-client', 'tasks.web', 'A'), { addresses: [], authoritative: false });
    assert.deepEqual(a(r, 'web'), ['10.5.0.200'], 'the VIP stays while the service has no backends');
    r.removeService('svc-web');
    r.removeService('svc-web');
    assert.deepEqual(r.resolve('sb-client', 'web', 'A'), { addresses: [], authoritative: false });
    assert.deepEqual(r.reverse('sb-client', '10.5.0.200'), []);
    r.setService(web([{ ipv4: '10.5.0.2/24' }]));
    r.removeNetwork('n-app');
    r.setNetwork({ id: 'n-app', name: 'app', internal: false });
    r.addEndpoint({ id: 'ep-c2', networkId: 'n-app', sandboxId: 'sb-c2', sandboxName: 'c2', hostname: 'c2', shortId: 'c20000000000', aliases: [], ipv4: '10.5.0.10/24' });
    assert.deepEqual(a(r, 'web', 'sb-c2'), []);
    assert.deepEqual(a(r, 'tasks.web', 'sb-c2'), []);
  });

  it('shares a name with an alias without taking it over', () => {
    const r = topology();
    r.addEndpoint({ id: 'ep-x', networkId: 'n-app', sandboxId: 'sb-x', sandboxName: 'x', hostname: 'x', shortId: 'x00000000000', aliases: ['tasks.web'], ipv4: '10.5.0.7/24' });
    r.setService(web([{ ipv4: '10.5.0.2/24' }]));
    assert.deepEqual(a(r, 'tasks.web').sort(), ['10.5.0.2', '10.5.0.7']);
    r.removeService('svc-web');
    assert.deepEqual(a(r, 'tasks.web'), ['10.5.0.7']);
  });

  it('refuses bad input before changing anything', () => {
    const r = topology();
    r.setService(web([{ ipv4: '10.5.0.2/24' }]));
    assert.throws(() => r.setService(web([{ ipv4: '10.5.0.3/24' }, { ipv4: 'nope' }])), InvalidParameterError);
    assert.throws(() => r.setService(web([], { vip: 'fd00::1' })), InvalidParameterError);
    assert.throws(() => r.setService(web([], { networkId: 'n-missing' })), NotFoundError);
    assert.deepEqual(a(r, 'tasks.web'), ['10.5.0.2'], 'the previous records are untouched');
  });
});

describe('EmbeddedDnsDiscovery: services', () => {
  it('registers services on user-defined networks only, and forgets them on removal', () => {
    const registry = new DnsRegistry();
    const discovery = new EmbeddedDnsDiscovery(registry, new RecordingDnsServer());
    discovery.networkCreated({ id: 'n-app', name: 'app', internal: false, userDefined: true });
    discovery.networkCreated({ id: 'n-bridge', name: 'bridge', internal: false, userDefined: false });
    discovery.endpointJoined({ id: 'ep-c', networkId: 'n-app', sandboxId: 'sb-c', sandboxName: 'c', hostname: 'c', shortId: 'c00000000000', aliases: [], ipv4: '10.5.0.9/24' });
    discovery.serviceChanged(web([{ ipv4: '10.5.0.2/24' }]));
    discovery.serviceChanged({ id: 'svc-b', networkId: 'n-bridge', name: 'onbridge', backends: [{ ipv4: '172.17.0.2/16' }] });
    assert.deepEqual(registry.resolve('sb-c', 'web', 'A').addresses, ['10.5.0.200']);
    assert.deepEqual(registry.resolve('sb-c', 'onbridge', 'A').addresses, []);
    discovery.serviceRemoved('svc-web');
    discovery.serviceRemoved('svc-unknown');
    assert.deepEqual(registry.resolve('sb-c', 'web', 'A').addresses, []);
  });
});
