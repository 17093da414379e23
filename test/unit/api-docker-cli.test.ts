/** The real docker CLI (28.x) against the API server on the real controller (harness): Docker’s client must work unchanged. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { realClientSkip } from '../helpers/privileges.js';
import { startRealApi, type RealApi } from '../helpers/real-api.js';

// Whichever docker CLI is on PATH (Debian's docker.io, installed by scripts/setup.sh test, or another).
const skip = realClientSkip('docker');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('docker CLI against the cnm API', { skip }, () => {
  let api: RealApi;
  const docker = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        'docker',
        args,
        {
          env: { PATH: process.env.PATH, HOME: api.dir, DOCKER_HOST: `unix://${api.socketPath}`, DOCKER_CONFIG: join(api.dir, 'docker-config'), DOCKER_CLI_HINTS: 'false' },
          timeout: 30_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const ok = async (args: string[]) => {
    const r = await docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    api = await startRealApi();
    await api.controller.createSandbox({ name: 'web' });
  });
  after(async () => api?.close());

  it('network ls shows the predefined networks in Docker’s table', async () => {
    const lines = (await ok(['network', 'ls'])).trimEnd().split('\n');
    assert.match(lines[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[1]), ['bridge', 'host', 'none']);
  });

  it('network create, inspect and connect', async () => {
    const id = (await ok(['network', 'create', '--subnet', '10.60.0.0/24', '--gateway', '10.60.0.254', '--label', 'team=net', 'dn1'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await ok(['network', 'connect', '--ip', '10.60.0.10', '--alias', 'www', 'dn1', 'web']);
    const [net] = JSON.parse(await ok(['network', 'inspect', 'dn1']));
    assert.equal(net.Id, id);
    assert.equal(net.IPAM.Config[0].Gateway, '10.60.0.254');
    assert.deepEqual(net.Labels, { team: 'net' });
    const entry = Object.values(net.Containers as Record<string, { Name: string; IPv4Address: string }>)[0]!;
    assert.deepEqual([entry.Name, entry.IPv4Address], ['web', '10.60.0.10/24']);
    const connect = api.controller.calls.find((c) => c.method === 'connect')!.args[0] as Record<string, unknown>;
    assert.deepEqual(connect.aliases, ['www']);
    assert.equal((await ok(['network', 'inspect', '-f', '{{.Name}}', id.slice(0, 10)])).trim(), 'dn1');
    assert.equal((await ok(['network', 'ls', '-q', '--filter', 'label=team=net'])).trim(), id.slice(0, 12));
  });

  it('ps and inspect show the sandbox as a container', async () => {
    const ps = (await ok(['ps', '--format', '{{.Names}} {{.Status}} {{.Networks}}'])).trim().split(' ');
    assert.equal(ps[0], 'web');
    assert.equal(ps[1], 'Up');
    assert.deepEqual(ps[ps.length - 1]!.split(',').sort(), ['bridge', 'dn1']);
    const [c] = JSON.parse(await ok(['inspect', 'web']));
    assert.equal(c.Name, '/web');
    assert.equal(c.NetworkSettings.Networks.dn1.IPAddress, '10.60.0.10');
    // docker inspect falls through containers and images to networks.
    assert.equal(JSON.parse(await ok(['inspect', 'dn1']))[0].Driver, 'bridge');
  });

  it('network rm refuses a network in use, disconnect frees it, prune -f removes unused ones', async () => {
    const inUse = await docker(['network', 'rm', 'dn1']);
    assert.equal(inUse.code, 1);
    const dn1 = api.controller.getNetwork('dn1').network.id;
    assert.match(inUse.stderr, new RegExp(`Error response from daemon: error while removing network: network dn1 id ${dn1} has active endpoints \\(web\\)`));
    await ok(['network', 'disconnect', 'dn1', 'web']);
    assert.equal((await ok(['network', 'rm', 'dn1'])).trim(), 'dn1');
    const gone = await docker(['network', 'inspect', 'dn1']);
    assert.equal(gone.code, 1);
    // docker 28 prints the daemon's message; Debian's docker.io (20.10) client words a 404 itself
    assert.match(gone.stderr, /network dn1 not found|No such network: dn1/);
    await ok(['network', 'create', 'spare1']);
    await ok(['network', 'create', 'spare2']);
    const pruned = await ok(['network', 'prune', '-f']);
    assert.deepEqual(pruned.trim().split('\n'), ['Deleted Networks:', 'spare1', 'spare2']);
  });

  it('events, version and info work', async () => {
    // The CLI sends whole seconds for relative times, so `until` is the next full second (the stream ends there).
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const events = await ok(['events', '--since', '5m', '--until', until, '--filter', 'type=network', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    assert.ok(events.includes('create dn1\n'), events);
    assert.ok(events.includes('destroy spare2\n'), events);
    const v = await ok(['version', '--format', '{{.Server.Platform.Name}} {{.Server.APIVersion}}']);
    assert.equal(v.trim(), 'cnm 1.51');
    const info = await ok(['info', '--format', '{{.OSType}} {{.Swarm.LocalNodeState}} {{.Containers}}']);
    assert.equal(info.trim(), 'linux inactive 1');
  });
});
