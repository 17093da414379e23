/**
 * Input validation at the edges (API bodies, daemon flags, CLI numbers): text that would reach
 * resolv.conf or DNS answers, name and label sizes, numeric bounds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toConnectRequest, toCreateNetworkRequest, toCreateSandboxRequest, toCreateServiceRequest } from '../../src/api/validation.js';
import { parseIntFlag, UsageError } from '../../src/cli/args.js';
import { parseDaemonArgs, type DaemonConfig } from '../../src/daemon/config.js';
import { httpStatusOf } from '../../src/errors.js';
import { aliasError, dnsOptionError, searchDomainError } from '../../src/util/dns-names.js';

function rejects400(fn: () => unknown, match: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal(httpStatusOf(err), 400, String(err));
    assert.match((err as Error).message, match);
    return true;
  });
}

describe('resolver settings of a sandbox (API)', () => {
  it('accepts ordinary search domains, options and servers', () => {
    const req = toCreateSandboxRequest({
      Name: 's1',
      Dns: ['192.0.2.53', 'fd00::53'],
      DnsSearch: ['corp.example', 'example.com.', '.'],
      DnsOptions: ['ndots:2', 'timeout:3', 'attempts:2', 'rotate', 'edns0', 'use-vc', 'no-aaaa', 'trust-ad'],
    });
    assert.deepEqual(req.dnsSearch, ['corp.example', 'example.com.', '.']);
    assert.equal(req.dnsOptions?.length, 8);
  });

  it('refuses anything that would add a line or a word to resolv.conf', () => {
    rejects400(() => toCreateSandboxRequest({ DnsSearch: ['corp\nnameserver 6.6.6.6'] }), /DnsSearch\[0\].*control character/);
    rejects400(() => toCreateSandboxRequest({ DnsSearch: ['a b'] }), /whitespace/);
    rejects400(() => toCreateSandboxRequest({ DnsSearch: ['ok.example', 'bad_domain.example'] }), /DnsSearch\[1\].*invalid label/);
    rejects400(() => toCreateSandboxRequest({ DnsSearch: [`${'a'.repeat(64)}.example`] }), /label longer than 63/);
    rejects400(() => toCreateSandboxRequest({ DnsSearch: [Array(130).fill('ab').join('.')] }), /longer than 253 octets/);
    rejects400(() => toCreateSandboxRequest({ DnsOptions: ['ndots:1\nnameserver 6.6.6.6'] }), /DnsOptions\[0\].*control character/);
    rejects400(() => toCreateSandboxRequest({ DnsOptions: ['ndots:1 rotate'] }), /whitespace/);
    rejects400(() => toCreateSandboxRequest({ DnsOptions: ['ndots:16'] }), /between 0 and 15/);
    rejects400(() => toCreateSandboxRequest({ DnsOptions: ['timeout:99999'] }), /between 0 and 30/);
    rejects400(() => toCreateSandboxRequest({ DnsOptions: ['ndots'] }), /needs a value/);
    rejects400(() => toCreateSandboxRequest({ DnsOptions: ['nameserver=1'] }), /not a resolver option/);
    rejects400(() => toCreateSandboxRequest({ Dns: ['6.6.6.6\n'] }), /Dns\[0\].*not an IP address/);
    rejects400(() => toCreateSandboxRequest({ Dns: ['dns.example'] }), /not an IP address/);
  });
});

describe('aliases, names, labels and numbers (API)', () => {
  it('accepts DNS-name aliases, refuses the rest', () => {
    assert.deepEqual(toConnectRequest('n', { Container: 'c', EndpointConfig: { Aliases: ['web', 'web.v1', 'my_db', 'a-b'] } }).aliases, [
      'web',
      'web.v1',
      'my_db',
      'a-b',
    ]);
    for (const bad of ['web\nx', 'two words', '-lead', 'trail-', 'a..b', '.', 'x'.repeat(64), `${'abcd.'.repeat(51)}ab`, 'a/b', 'ü']) {
      rejects400(() => toConnectRequest('n', { Container: 'c', EndpointConfig: { Aliases: [bad] } }), /Aliases\[0\]: alias/);
      rejects400(() => toCreateSandboxRequest({ Networks: [{ Network: 'n', Aliases: [bad] }] }), /Networks\[0\]\.Aliases\[0\]/);
    }
    assert.equal(aliasError('x'.repeat(63)), undefined);
    assert.equal(aliasError(`${'abcd.'.repeat(50)}abc`), undefined, '253 octets is the limit');
  });

  it('caps names, labels and option maps', () => {
    const long = 'n'.repeat(254);
    rejects400(() => toCreateNetworkRequest({ Name: long }, '1.47'), /field Name: at most 253/);
    rejects400(() => toCreateSandboxRequest({ Name: long }), /field Name: at most 253/);
    rejects400(() => toCreateServiceRequest({ Name: long, Network: 'n' }), /field Name: at most 253/);
    assert.equal(toCreateNetworkRequest({ Name: 'n'.repeat(253) }, '1.47').name.length, 253);
    rejects400(() => toCreateNetworkRequest({ Name: 'x', Labels: { ['k'.repeat(256)]: 'v' } }, '1.47'), /key "k+\.\.\." longer than 255/);
    rejects400(() => toCreateNetworkRequest({ Name: 'x', Labels: { k: 'v'.repeat(4097) } }, '1.47'), /value of "k" longer than 4096/);
    rejects400(() => toCreateNetworkRequest({ Name: 'x', Labels: { '': 'v' } }, '1.47'), /empty key/);
    rejects400(() => toCreateNetworkRequest({ Name: 'x', Options: { k: 'a\nb' } }, '1.47'), /control character in value of "k"/);
    rejects400(() => toCreateSandboxRequest({ Labels: { 'a\u0000': 'v' } }), /control character in key/);
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, 'v']));
    rejects400(() => toCreateNetworkRequest({ Name: 'x', Labels: many }, '1.47'), /more than 256 entries/);
  });

  it('bounds GwPriority to the integers JSON carries exactly', () => {
    assert.equal(toConnectRequest('n', { Container: 'c', EndpointConfig: { GwPriority: -5 } }).gwPriority, -5);
    rejects400(() => toConnectRequest('n', { Container: 'c', EndpointConfig: { GwPriority: 1e300 } }), /GwPriority/);
    rejects400(() => toCreateSandboxRequest({ Networks: [{ Network: 'n', GwPriority: -1e20 }] }), /GwPriority/);
  });
});

describe('daemon flags', () => {
  const parse = (argv: string[]) => parseDaemonArgs(argv) as DaemonConfig;

  it('refuses resolver flags that would inject into resolv.conf, and non-IP servers', () => {
    assert.deepEqual(parse(['--dns-search', 'corp.example', '--dns-option', 'ndots:3']).dns.search, ['corp.example']);
    rejects400(() => parse(['--dns-search', 'corp\nnameserver 6.6.6.6']), /invalid --dns-search .*control character/);
    rejects400(() => parse(['--dns-search', 'a b']), /whitespace/);
    rejects400(() => parse(['--dns-option', 'ndots:1\nnameserver 6.6.6.6']), /invalid --dns-option/);
    rejects400(() => parse(['--dns-option', 'ndots:99']), /between 0 and 15/);
    rejects400(() => parse(['--dns', 'resolver.example']), /invalid --dns .*not an IP address/);
  });

  it('bounds numbers: check interval, MTU; checks the bridge name', () => {
    assert.equal(parse([]).firewallCheckInterval, 30);
    assert.equal(parse(['--firewall-check-interval', '0']).firewallCheckInterval, 0);
    assert.equal(parse(['--firewall-check-interval', '0.5']).firewallCheckInterval, 0.5);
    assert.equal(parse(['--firewall-check-interval', '86400']).firewallCheckInterval, 86400);
    for (const bad of ['1e10', '86401', '0.01', '-1', '', ' 5', 'Infinity', 'NaN', '0x10']) {
      rejects400(() => parse([`--firewall-check-interval=${bad}`]), /invalid --firewall-check-interval .*0 \(off\) or from 0.1 to 86400/);
    }
    assert.equal(parse(['--mtu', '1400']).mtu, 1400);
    for (const bad of ['67', '65536', '1e3', '1400.5', '', ' 1400']) rejects400(() => parse([`--mtu=${bad}`]), /invalid --mtu/);
    rejects400(() => parse(['--bridge-name', 'a-name-far-too-long']), /invalid --bridge-name/);
    rejects400(() => parse(['--bridge-name', 'a b']), /invalid --bridge-name/);
  });
});

describe('CLI integer flags', () => {
  it('reads integers like strconv.ParseInt within JSON-exact bounds', () => {
    assert.equal(parseIntFlag('-7', '--gw-priority'), -7);
    assert.equal(parseIntFlag('+7', '--gw-priority'), 7);
    assert.throws(() => parseIntFlag('1e3', '--gw-priority'), (e: unknown) => e instanceof UsageError && /invalid syntax/.test((e as Error).message));
    assert.throws(() => parseIntFlag('99999999999999999999', '--gw-priority'), (e: unknown) => e instanceof UsageError && /out of range/.test((e as Error).message));
  });
});

describe('resolver option and search-domain checks', () => {
  it('match what glibc reads', () => {
    for (const ok of ['ndots:0', 'ndots:15', 'timeout:30', 'attempts:5', 'rotate', 'inet6', 'single-request-reopen', 'no-tld-query']) {
      assert.equal(dnsOptionError(ok), undefined, ok);
    }
    assert.equal(searchDomainError('xn--bcher-kva.example'), undefined);
    assert.match(searchDomainError('-bad.example') ?? '', /invalid label/);
  });
});
