/**
 * `cnm exec`: the command line it builds, and one run through bin/cnm into a throwaway network
 * namespace (root only) to see the namespace, the bound resolv.conf / hosts and the exit status.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execArgv, inOtherMountNamespace } from '../../src/cli/exec.js';
import { startFakeApi } from '../helpers/fake-controller.js';
import { withTestNetns } from '../helpers/netns.js';
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

  it('runs a command in the sandbox namespace and returns its status', { skip: realKernelSkip() }, async () => {
    await withTestNetns(async (_name, nsPath) => {
      const api = await startFakeApi();
      const dir = await mkdtemp(join(tmpdir(), 'cnm-exec-'));
      try {
        const hostsBefore = await readFile('/etc/hosts', 'utf8');
        await writeFile(join(dir, 'resolv.conf'), 'nameserver 192.0.2.53\n');
        await writeFile(join(dir, 'hosts'), '192.0.2.7 sandbox-host\n');
        const sb = await api.controller.createSandbox({ name: 'ex', netnsPath: nsPath, networks: [{ network: 'none' }] });
        api.controller.sandboxFiles = () => ({ netnsPath: nsPath, resolvConf: join(dir, 'resolv.conf'), hosts: join(dir, 'hosts'), hostname: '' });
        const result = await new Promise<{ code: number; out: string; err: string }>((done) => {
          execFile(
            join(REPO, 'bin/cnm'),
            ['exec', sb.sandbox.name, '--', 'sh', '-c', 'cat /etc/resolv.conf /etc/hosts; ip -o link show | wc -l; exit 3'],
            { env: { ...process.env, CNM_HOST: `unix://${api.socketPath}`, CNM_FROM_SOURCE: '1' } },
            (e, out, err) => done({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
          );
        });
        assert.equal(result.code, 3, result.err);
        assert.equal(result.out, 'nameserver 192.0.2.53\n192.0.2.7 sandbox-host\n1\n');
        // The bind mounts stayed private to the command.
        assert.equal(await readFile('/etc/hosts', 'utf8'), hostsBefore);
      } finally {
        await api.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
