/** The pieces around the embedded DNS wiring: daemon --dns* flags, resolv.conf choice, discovery filtering. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SandboxFiles } from '../../src/controller/sandbox-files.js';
import type { SandboxRecord } from '../../src/controller/records.js';
import { parseDaemonArgs, type DaemonConfig } from '../../src/daemon/config.js';
import { createTestDiscovery } from '../helpers/fake-discovery.js';

const sb: SandboxRecord = {
  id: 'a'.repeat(64),
  name: 'web',
  hostname: 'aaaaaaaaaaaa',
  netnsPath: '/run/cnm/netns/a',
  adopted: false,
  hostNetwork: false,
  created: '',
  labels: {},
  dns: { servers: [], search: [], options: [] },
};

describe('daemon --dns flags', () => {
  it('parses repeatable --dns, --dns-search, --dns-option and rejects a server that is not an address', () => {
    const config = parseDaemonArgs(['--dns', '192.0.2.1', '--dns', 'fd00::53', '--dns-search', 'corp', '--dns-option', 'ndots:2']) as DaemonConfig;
    assert.deepEqual(config.dns, { servers: ['192.0.2.1', 'fd00::53'], search: ['corp'], options: ['ndots:2'] });
    assert.deepEqual((parseDaemonArgs([]) as DaemonConfig).dns, { servers: [], search: [], options: [] });
    assert.throws(() => parseDaemonArgs(['--dns', 'dns.example']), /invalid --dns/);
  });
});

describe('sandbox resolv.conf with daemon-wide DNS settings', () => {
  it('daemon settings replace the host file, sandbox settings replace both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cnmt-files-'));
    try {
      const hostFile = join(dir, 'host-resolv.conf');
      await writeFile(hostFile, 'nameserver 192.0.2.53\nsearch host.example\noptions edns0\n');
      const files = new SandboxFiles(dir, hostFile, { servers: ['127.0.0.1', '198.51.100.7'], search: ['daemon.example'], options: [] });
      const read = () => readFile(files.paths(sb.id).resolvConf, 'utf8');

      await files.write(sb, [], 'host');
      assert.deepEqual((await read()).split('\n').slice(1, 4), ['nameserver 198.51.100.7', 'search daemon.example', 'options edns0']);

      await files.writeResolvConf({ ...sb, dns: { servers: ['203.0.113.1'], search: [], options: ['ndots:3'] } }, 'embedded');
      assert.deepEqual((await read()).split('\n').slice(1, 4), ['nameserver 127.0.0.11', 'search daemon.example', 'options ndots:3']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('EmbeddedDnsDiscovery', () => {
  it('registers names only on user-defined networks and forgets a removed network with its endpoints', () => {
    const dns = createTestDiscovery();
    const endpoint = (id: string, networkId: string, sandboxId: string, name: string, ipv4: string) =>
      dns.discovery.endpointJoined({ id, networkId, sandboxId, sandboxName: name, hostname: name, shortId: sandboxId.slice(0, 12), aliases: [], ipv4 });
    dns.discovery.networkCreated({ id: 'n-bridge', name: 'bridge', internal: false, userDefined: false });
    dns.discovery.networkCreated({ id: 'n-user', name: 'user', internal: false, userDefined: true });
    endpoint('e1', 'n-bridge', 's1'.padEnd(12, '1'), 'one', '172.17.0.2/16');
    endpoint('e2', 'n-bridge', 's2'.padEnd(12, '2'), 'two', '172.17.0.3/16');
    endpoint('e3', 'n-user', 's1'.padEnd(12, '1'), 'one', '10.0.0.2/24');
    endpoint('e4', 'n-user', 's2'.padEnd(12, '2'), 'two', '10.0.0.3/24');
    assert.deepEqual(dns.resolve('s1'.padEnd(12, '1'), 'two'), ['10.0.0.3'], 'only the user-defined address');
    assert.equal(dns.registry.size().networks, 1);
    dns.discovery.networkRemoved('n-user');
    assert.deepEqual(dns.resolve('s1'.padEnd(12, '1'), 'two'), []);
    assert.deepEqual(dns.registry.size(), { networks: 0, endpoints: 0, sandboxes: 0 });
  });
});
