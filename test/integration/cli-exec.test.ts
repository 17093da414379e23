/**
 * `cnm exec`: the command line it builds, and one run through bin/cnm against a real daemon (root only)
 * to see the sandbox's namespace, the daemon's resolv.conf / hosts bound over /etc and the exit status.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execArgv, inOtherMountNamespace } from '../../src/cli/exec.js';
import { startTestDaemon } from '../helpers/daemon.js';
import { realKernelSkip } from '../helpers/privileges.js';

const REPO = resolve(import.meta.dirname, '../..');
const SB = { NetnsPath: '/run/cnm/netns/abc', HostNetwork: false, ResolvConfPath: '/r/resolv.conf', HostsPath: '/r/hosts', DaemonPid: 42 };

describe('cnm exec command line', () => {
  it('enters the network namespace, then a private mount namespace that binds the sandbox files', () => {
    const argv = execArgv(SB, ['ip', 'addr'], false);
    assert.deepEqual(argv.slice(0, 3), ['nsenter', '--net=/run/cnm/netns/abc', '--']);
    assert.deepEqual(argv.slice(3, 8), ['unshare', '--mount', '--propagation', 'private', '--']);
    assert.deepEqual(argv.slice(-5), ['sh', '/r/resolv.conf', '/r/hosts', 'ip', 'addr']);
    assert.match(argv[10]!, /mount --bind "\$1" \/etc\/resolv\.conf.*mount --bind "\$2" \/etc\/hosts.*exec "\$@"/);
  });

  it('enters the daemon’s mount namespace first when it differs, and skips --net for host-network sandboxes', () => {
    assert.deepEqual(execArgv(SB, ['true'], true).slice(0, 6), ['nsenter', '-t', '42', '-m', '--', 'nsenter']);
    assert.equal(execArgv({ ...SB, HostNetwork: true }, ['true'], false)[0], 'unshare');
    assert.equal(inOtherMountNamespace(process.pid), false);
  });

  it('runs a command in the sandbox namespace with its files and returns its status', { skip: realKernelSkip() }, async () => {
    const d = await startTestDaemon();
    try {
      const made = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'ex', Dns: ['192.0.2.53'], Networks: [{ Network: 'bridge' }] });
      assert.equal(made.status, 201, made.body);
      const sb = (await d.api('GET', '/cnm/v1/sandboxes/ex')).json();
      const [resolvConf, hosts] = [await readFile(sb.ResolvConfPath, 'utf8'), await readFile(sb.HostsPath, 'utf8')];
      assert.match(resolvConf, /nameserver 192\.0\.2\.53/);
      assert.match(hosts, new RegExp(`${sb.Networks.bridge.IPAddress.replaceAll('.', '\\.')}\\s`));
      const hostsBefore = await readFile('/etc/hosts', 'utf8');
      const result = await new Promise<{ code: number; out: string; err: string }>((done) => {
        execFile(
          join(REPO, 'bin/cnm'),
          ['exec', 'ex', '--', 'sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; ip -o -4 addr show eth0; exit 3'],
          { env: { ...process.env, CNM_HOST: `unix://${d.socket}`, CNM_FROM_SOURCE: '1' } },
          (e, out, err) => done({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
        );
      });
      assert.equal(result.code, 3, result.err);
      const [seenResolv, seenHosts, addr] = result.out.split('---\n');
      assert.equal(seenResolv, resolvConf, "the daemon's resolv.conf is bound over /etc/resolv.conf");
      assert.equal(seenHosts, hosts, "the daemon's hosts file is bound over /etc/hosts");
      assert.match(addr!, new RegExp(`inet ${sb.Networks.bridge.IPAddress}/`), "the sandbox's namespace: its eth0 address");
      // The bind mounts stayed private to the command.
      assert.equal(await readFile('/etc/hosts', 'utf8'), hostsBefore);
    } finally {
      await d.cleanup();
    }
  });
});
