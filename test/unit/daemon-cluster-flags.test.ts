/** The multi-host daemon flags: --cluster-store, --advertise-addr, --host-ttl, the etcd TLS files. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDaemonArgs, type DaemonConfig } from '../../src/daemon/config.js';
import { InvalidParameterError } from '../../src/errors.js';

const parse = (args: string[]) => parseDaemonArgs(args) as DaemonConfig;
const refused = (args: string[], message: RegExp) =>
  assert.throws(() => parse(args), (err: unknown) => err instanceof InvalidParameterError && err.status === 400 && message.test(err.message), args.join(' '));

describe('daemon cluster flags', () => {
  it('no --cluster-store: no cluster', () => {
    assert.equal(parse([]).cluster, undefined);
  });

  it('etcd:// endpoints, advertise address and the default TTL of 30 s', () => {
    const c = parse(['--cluster-store', 'etcd://h1.example:2379,10.0.0.2:2379,[fd00::3]:2379', '--advertise-addr', '10.0.0.1']).cluster!;
    assert.deepEqual(c.endpoints, ['h1.example:2379', '10.0.0.2:2379', '[fd00::3]:2379']);
    assert.equal(c.advertiseAddr, '10.0.0.1');
    assert.equal(c.hostTtl, 30);
    assert.equal(c.dataPathPort, 4789);
    assert.equal(c.tls, undefined);
    assert.equal(c.url, 'etcd://h1.example:2379,10.0.0.2:2379,[fd00::3]:2379');
  });

  it('unix:// sockets, an IPv6 advertise address in canonical form, --host-ttl, TLS files', () => {
    const c = parse(['--cluster-store', 'unix:///run/etcd/a.sock,/run/etcd/b.sock', '--advertise-addr', 'FD00:0::1', '--host-ttl', '5']).cluster!;
    assert.deepEqual(c.endpoints, ['unix:/run/etcd/a.sock', 'unix:/run/etcd/b.sock']);
    assert.equal(c.advertiseAddr, 'fd00::1');
    assert.equal(c.hostTtl, 5);
    assert.equal(parse(['--cluster-store', 'etcd://h:2379', '--advertise-addr', '10.0.0.1', '--data-path-port', '4790']).cluster!.dataPathPort, 4790);
    const t = parse(['--cluster-store', 'etcd://h:2379', '--advertise-addr', '10.0.0.1', '--cluster-store-cacert', '/ca.pem', '--cluster-store-cert', '/c.pem', '--cluster-store-key', '/k.pem']).cluster!;
    assert.deepEqual(t.tls, { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
    // etcd serves TLS on unix sockets too (unixs://); the certificate is checked against "localhost".
    assert.deepEqual(parse(['--cluster-store', 'unix:///s.sock', '--advertise-addr', '10.0.0.1', '--cluster-store-cacert', '/ca.pem']).cluster!.tls, { caFile: '/ca.pem', certFile: undefined, keyFile: undefined });
    assert.deepEqual(parse(['--cluster-store', 'etcd://h:2379', '--advertise-addr', '10.0.0.1', '--cluster-store-cacert', '/ca.pem']).cluster!.tls, { caFile: '/ca.pem', certFile: undefined, keyFile: undefined });
  });

  it('refuses malformed stores, addresses and TTLs with a 400 naming the flag', () => {
    const ok = ['--advertise-addr', '10.0.0.1'];
    refused(['--cluster-store', 'http://h:2379', ...ok], /--cluster-store/);
    refused(['--cluster-store', 'etcd://', ...ok], /--cluster-store/);
    refused(['--cluster-store', 'etcd://h', ...ok], /HOST:PORT/);
    refused(['--cluster-store', 'etcd://h:0', ...ok], /port/);
    refused(['--cluster-store', 'etcd://h:65536', ...ok], /port/);
    refused(['--cluster-store', 'etcd://h:2379,h:2379', ...ok], /twice/);
    refused(['--cluster-store', 'etcd://fd00::1:2379', ...ok], /brackets/);
    refused(['--cluster-store', 'etcd://999.1.1.1:2379', ...ok], /IPv4/);
    refused(['--cluster-store', 'etcd://-bad-:2379', ...ok], /host name/);
    refused(['--cluster-store', 'unix://relative.sock', ...ok], /absolute/);
    refused(['--cluster-store', 'etcd://h:2379'], /needs --advertise-addr/);
    refused(['--cluster-store', 'etcd://h:2379', '--advertise-addr', 'eth0'], /--advertise-addr/);
    refused(['--cluster-store', 'etcd://h:2379', '--advertise-addr', '0.0.0.0'], /--advertise-addr/);
    for (const ttl of ['1', '0', '3601', '2.5', '-3', '', '1e2']) refused(['--cluster-store', 'etcd://h:2379', ...ok, '--host-ttl', ttl], /--host-ttl/);
    refused(['--cluster-store', 'etcd://h:2379', ...ok, '--cluster-store-cert', '/c.pem'], /go together/);
    refused(['--cluster-store', 'etcd://h:2379', ...ok, '--cluster-store-key', '/k.pem'], /go together/);
    refused(['--cluster-store', 'etcd://h:2379', ...ok, '--cluster-store-cacert', 'ca.pem'], /absolute path/);
  });

  it('refuses the companion flags without --cluster-store', () => {
    refused(['--advertise-addr', '10.0.0.1'], /--advertise-addr needs --cluster-store/);
    refused(['--host-ttl', '10'], /--host-ttl needs --cluster-store/);
    refused(['--data-path-port', '4790'], /--data-path-port needs --cluster-store/);
    for (const port of ['1023', '49152', '0', '4789.5', '', 'x', '04789x']) {
      refused(['--cluster-store', 'etcd://h:2379', '--advertise-addr', '10.0.0.1', '--data-path-port', port], /--data-path-port/);
    }
    refused(['--cluster-store-cacert', '/ca.pem'], /needs --cluster-store/);
  });
});
