import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseResolvConf, renderHosts, renderResolvConf, SandboxFiles } from '../../src/controller/sandbox-files.js';
import type { EndpointRecord, SandboxRecord } from '../../src/controller/records.js';

const sb: SandboxRecord = {
  id: 'f'.repeat(64),
  name: 'web',
  hostname: 'ffffffffffff',
  netnsPath: '/run/cnm/netns/x',
  adopted: false,
  hostNetwork: false,
  created: '',
  labels: {},
  dns: { servers: [], search: [], options: [] },
};

describe('sandbox files', () => {
  it('drops loopback nameservers from the host configuration and keeps the rest', () => {
    const host = 'nameserver 127.0.0.53\nnameserver 192.0.2.53 # office\nsearch example.org corp\noptions edns0\n';
    assert.deepEqual(parseResolvConf(host), { nameservers: ['127.0.0.53', '192.0.2.53'], search: ['example.org', 'corp'], options: ['edns0'] });
    const out = renderResolvConf(sb, host);
    assert.doesNotMatch(out, /127\.0\.0\.53/);
    assert.match(out, /^nameserver 192\.0\.2\.53$/m);
    assert.match(out, /^search example\.org corp$/m);
  });

  it('lets --dns, --dns-search and --dns-option override the host', () => {
    const out = renderResolvConf({ ...sb, dns: { servers: ['198.51.100.1'], search: ['lab'], options: ['ndots:2'] } }, 'nameserver 192.0.2.53\n');
    assert.deepEqual(out.split('\n').slice(1, 4), ['nameserver 198.51.100.1', 'search lab', 'options ndots:2']);
  });

  it('lists the sandbox addresses under its hostname and name', () => {
    const ep = { ipv4Address: '10.0.0.2/24', ipv6Address: 'fd00::2/64' } as EndpointRecord;
    const hosts = renderHosts(sb, [ep]);
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(hosts, /^10\.0\.0\.2\tffffffffffff web$/m);
    assert.match(hosts, /^fd00::2\tffffffffffff web$/m);
  });

  it('rewrites hosts in place, longer and shorter, leaving no old bytes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cnmt-files-'));
    try {
      const files = new SandboxFiles(root, join(root, 'none'));
      const a = { ipv4Address: '10.0.0.2/24' } as EndpointRecord;
      const b = { ipv4Address: '10.0.1.2/24', ipv6Address: 'fd00:1::2/64' } as EndpointRecord;
      const hosts = () => readFile(files.paths(sb.id).hosts, 'utf8');
      await files.write(sb, [a], 'host');
      assert.equal(await hosts(), renderHosts(sb, [a]));
      await files.writeHosts(sb, [a, b]);
      assert.equal(await hosts(), renderHosts(sb, [a, b]));
      await files.writeHosts(sb, [a]);
      assert.equal(await hosts(), renderHosts(sb, [a]), 'shorter text: truncated');
      await files.writeHosts(sb, [b]);
      assert.equal(await hosts(), renderHosts(sb, [b]));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
